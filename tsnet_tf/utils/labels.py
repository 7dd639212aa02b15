"""The class-names file: `labels.txt`, one name a line, in label order.

The one reader and writer of the format, wherever such a file lives: a data
directory (tools/prepare_hmdb51.py), a training run (`training.run_dir`), a
SavedModel's `assets/`, or beside a `.tflite` file (for people; the file itself
carries its names, `export.tflite`).
"""

import os
from typing import List, Sequence

from tsnet_tf.utils.io import atomic_write

LABELS_FILE = "labels.txt"


def read_labels(path: str) -> List[str]:
  """Class names from a labels file (blank lines and surrounding spaces ignored).

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: it lists no class.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"labels file {path!r} does not exist")
  with open(path, encoding="utf-8") as f:
    labels = [line.strip() for line in f if line.strip()]
  if not labels:
    raise ValueError(f"labels file {path!r} lists no classes")
  return labels


def check_labels(labels: Sequence[str]) -> List[str]:
  """The names as strings; raises ValueError for an empty name or one with a newline."""
  labels = [str(l).strip() for l in labels]
  if not labels or any(not l or "\n" in l for l in labels):
    raise ValueError(f"class names must be non-empty single lines, got {labels!r}")
  return labels


def write_labels(path: str, labels: Sequence[str]) -> None:
  """Writes the names one a line, atomically."""
  labels = check_labels(labels)
  with atomic_write(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write("".join(name + "\n" for name in labels))
