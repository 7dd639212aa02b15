"""The training run directory (`--model_dir`): file names, class names, the classifier.

Layout written by `trainer.train` (docs/design.md):

  config.yaml            the resolved config (resume guard; `config.load_run_config`)
  labels.txt             class names in label order
  model.keras            the final classifier, with its clip contract attached
  best.keras, best.json  the best classifier on validation and its metric
  history.json, training_curves.png, logs/ (TensorBoard), backup/ (resume state)
  eval.json, confusion_matrix.png   written by tools/evaluate.py

Every module that reads or writes these files uses the names and functions here.
"""

import logging
import os
from typing import List, Optional, Tuple

from tsnet_tf import config as config_lib
from tsnet_tf.utils import labels as labels_lib

log = logging.getLogger(__name__)

CONFIG_FILE = config_lib.RUN_CONFIG_FILE
LABELS_FILE = labels_lib.LABELS_FILE
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
BEST_INFO_FILE = "best.json"
HISTORY_FILE = "history.json"
CURVES_FILE = "training_curves.png"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
CHECKPOINTS = (MODEL_FILE, BEST_FILE)


def path(run_dir: str, name: str) -> str:
  return os.path.join(run_dir, name)


def read_labels(run_dir: str) -> List[str]:
  """The run's class names (`labels.txt`)."""
  return labels_lib.read_labels(path(run_dir, LABELS_FILE))


def write_labels(run_dir: str, labels) -> None:
  labels_lib.write_labels(path(run_dir, LABELS_FILE), labels)


def load_classifier(run_dir: str, checkpoint: str = MODEL_FILE, flag: str = "--model_dir"):
  """Loads a run's trained classifier (`model.keras` or `best.keras`), uncompiled.

  The custom layers it may name are registered by `import tsnet_tf`.

  Raises:
    FileNotFoundError: naming `flag`, the directory and the missing file.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tsnet_tf  # pylint: disable=g-import-not-at-top,unused-import
  if not run_dir:
    raise FileNotFoundError(f"{flag} is required")
  if not os.path.isdir(run_dir):
    raise FileNotFoundError(f"{flag} {run_dir!r} is not a directory")
  file = path(run_dir, checkpoint)
  if not os.path.isfile(file):
    raise FileNotFoundError(f"{flag} {run_dir!r} has no {checkpoint} (train that stage first)")
  return keras.saving.load_model(file, compile=False)


def clip_contract(run_dir: str, model) -> Tuple["clip_spec.ClipSpec", Optional[List[str]]]:
  """`(spec, labels)` of a run's classifier.

  From the model itself (`clip_spec.from_model`); a model saved before the
  contract existed gets a spec from the run's `config.yaml` (stride) and its
  input shape, with a warning (its stored frame format is unknown).
  """
  from tsnet_tf.data import clip_spec  # pylint: disable=g-import-not-at-top
  carried = clip_spec.from_model(model)
  if carried is not None:
    spec, labels = carried
    return spec, (labels or None)
  log.warning("%s carries no clip spec (saved before tsnet_tf 0.2?): using %s's "
              "data.frame_stride and the model's input shape", model.name,
              path(run_dir, CONFIG_FILE))
  spec = clip_spec.ClipSpec.for_model(model, config_lib.run_frame_stride(run_dir))
  labels = read_labels(run_dir) if os.path.isfile(path(run_dir, LABELS_FILE)) else None
  return spec, labels
