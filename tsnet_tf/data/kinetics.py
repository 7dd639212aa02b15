"""Kinetics annotation CSVs -> a conversion plan (`tfrecords.Plan`).

The CSVs of Kinetics-400/600/700 (`label,youtube_id,time_start,time_end,split`,
one clip a line) and the file names the community's downloaders write,
`<youtube_id>_<time_start:06d>_<time_end:06d>.mp4` (any video extension), in
`<video_dir>/<label>/`, `<video_dir>/<split>/<label>/` or `<video_dir>/`
itself. The split column becomes split 1's subset (train, val -> validation,
test), so the records, labels.txt and summary.json are those of an HMDB51
conversion with one split.
"""

import csv
import os
from typing import Dict, List, Sequence

from tsnet_tf.data import hmdb51
from tsnet_tf.data import tfrecords

COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
_SUBSETS = {"train": hmdb51.TRAIN, "val": hmdb51.VALIDATION, "validate": hmdb51.VALIDATION,
            "validation": hmdb51.VALIDATION, "test": hmdb51.TEST}
_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")


def clip_stem(youtube_id: str, time_start: str, time_end: str) -> str:
  """`<youtube_id>_<start:06d>_<end:06d>`, the downloaders' file name without extension."""
  return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def _find(video_dir: str, label: str, split: str, stem: str) -> str:
  for folder in (os.path.join(video_dir, label), os.path.join(video_dir, split, label),
                 video_dir):
    for ext in _EXTENSIONS:
      path = os.path.join(folder, stem + ext)
      if os.path.isfile(path):
        return path
  return ""


def build_plan(csv_paths: Sequence[str], video_dir: str) -> tfrecords.Plan:
  """The videos of Kinetics annotation CSVs, as `tfrecords.build_plan` gives HMDB51's.

  Args:
    csv_paths: annotation CSVs (e.g. train.csv, validate.csv), with a header
      naming at least `COLUMNS`.
    video_dir: where the clips are (see the module doc).

  Returns:
    Plan with split [1]: classes sorted by name, videos sorted by (label,
    file name); clips listed but not found are `missing`.

  Raises:
    hmdb51.LayoutError: a CSV missing, without the columns, or with an
      unknown split value (naming the file and line).
  """
  if not os.path.isdir(video_dir):
    raise hmdb51.LayoutError(f"--video_dir {video_dir!r} is not a directory")
  rows = []
  for csv_path in csv_paths:
    try:
      with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
          raise hmdb51.LayoutError(f"{csv_path}: no column {', '.join(absent)} in the header "
                                   f"(expected {','.join(COLUMNS)})")
        for line, row in enumerate(reader, start=2):
          split = row["split"].strip().lower()
          if split not in _SUBSETS:
            raise hmdb51.LayoutError(f"{csv_path}, line {line}: split {row['split']!r} is not "
                                     f"one of {', '.join(sorted(_SUBSETS))}")
          rows.append((row["label"].strip(), split, clip_stem(row["youtube_id"].strip(),
                                                              row["time_start"],
                                                              row["time_end"]),
                       os.path.basename(csv_path)))
    except OSError as e:
      raise hmdb51.LayoutError(f"cannot read --kinetics_csv {csv_path!r}: "
                               f"{e.strerror or e}") from e
  classes = sorted({r[0] for r in rows})
  label_of = {c: i for i, c in enumerate(classes)}
  found: Dict[str, List] = {}
  missing = []
  for label, split, stem, csv_name in rows:
    path = _find(video_dir, label, split, stem)
    if not path:
      missing.append({"video": f"{label}/{stem}", "split_file": csv_name,
                      "subset_id": _SUBSETS[split]})
      continue
    found[(label, os.path.basename(path))] = (path, _SUBSETS[split])
  videos = []
  for (label, name), (path, subset) in sorted(found.items(), key=lambda kv: (label_of[kv[0][0]],
                                                                            kv[0][1])):
    videos.append(tfrecords.VideoTask(path=path, class_name=label, label=label_of[label],
                                      file_name=name, video_index=len(videos),
                                      split_ids={1: subset}))
  return tfrecords.Plan(classes=classes, splits=[1], videos=videos, missing=missing, unused=[])
