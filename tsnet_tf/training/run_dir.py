"""The training run directory (`--model_dir`): file names, class names, the classifier.

Layout written by `trainer.train` (docs/design.md):

  config.yaml            the resolved config (resume guard; `load_run_config`)
  labels.txt             class names in label order
  model.keras            the final classifier, with its clip contract attached
  best.keras, best.json  the best classifier on validation and its metric
  history.json, training_curves.png, logs/ (TensorBoard), backup/ (resume state)
  eval.json, confusion_matrix.png   written by tools/evaluate.py

A finished run (model.keras, no backup/) is never trained over unless told to
(`remove_training_outputs` then deletes only what the trainer writes); an
interrupted one (backup/ left) resumes only under the config it started with.
Tools that take a run check the stage its config.yaml records (`check_stage`).

Every module that reads or writes these files uses the names and functions here.
"""

import glob
import logging
import os
import shutil
from typing import List, Optional, Sequence, Tuple

import keras

from tsnet_tf import config as config_lib
from tsnet_tf import layers  # pylint: disable=unused-import  # registers the saved models' layers
from tsnet_tf.data import clip_spec
from tsnet_tf.layers import clip_contract as clip_contract_lib
from tsnet_tf.utils import errors
from tsnet_tf.utils import io as io_utils
from tsnet_tf.utils import labels as labels_lib

log = logging.getLogger(__name__)

# The resolved config a training run writes into its --model_dir.
CONFIG_FILE = "config.yaml"
LABELS_FILE = labels_lib.LABELS_FILE
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
BEST_INFO_FILE = "best.json"
HISTORY_FILE = "history.json"
CURVES_FILE = "training_curves.png"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
CHECKPOINTS = (MODEL_FILE, BEST_FILE)
# What `trainer.train` writes (and `remove_training_outputs` may delete):
# files, the TensorBoard subdirectories of logs/, and the non-chief workers'
# resume state (`.worker-<type>-<index>/`).
TRAINER_FILES = (CONFIG_FILE, LABELS_FILE, MODEL_FILE, BEST_FILE, BEST_INFO_FILE, HISTORY_FILE,
                 CURVES_FILE)
LOG_SUBDIRS = ("train", "validation")
WORKER_DIR_PATTERN = ".worker-*"


class RunDirError(errors.InputError, ValueError):
  """A run directory that cannot be used as asked (one line naming the flag and directory)."""


def path(run_dir: str, name: str) -> str:
  return os.path.join(run_dir, name)


def read_labels(run_dir: str) -> List[str]:
  """The run's class names (`labels.txt`)."""
  return labels_lib.read_labels(path(run_dir, LABELS_FILE))


def write_labels(run_dir: str, labels) -> None:
  labels_lib.write_labels(path(run_dir, LABELS_FILE), labels)


def load_run_config(model_dir: str) -> Optional[config_lib.ExperimentConfig]:
  """The resolved config a training run saved in `model_dir`, or None if it has none."""
  file = os.path.join(model_dir, CONFIG_FILE)
  return config_lib.load_config(file) if os.path.isfile(file) else None


def run_frame_stride(model_dir: str) -> int:
  """`data.frame_stride` of the training run in `model_dir` (1 if it has no config).

  Evaluation, export and prediction must sample clips as training did.
  """
  cfg = load_run_config(model_dir)
  return cfg.data.frame_stride if cfg is not None else 1


def load_classifier(run_dir: str, checkpoint: str = MODEL_FILE, flag: str = "--model_dir"):
  """Loads a run's trained classifier (`model.keras` or `best.keras`), uncompiled.

  The custom layers it may name are registered by `tsnet_tf.layers` (imported here).

  Raises:
    FileNotFoundError: naming `flag`, the directory and the missing file.
    io.NotAKerasFileError: the file is not a `.keras` archive (Keras itself would
      call it "File not found").
  """
  if not run_dir:
    raise FileNotFoundError(f"{flag} is required")
  if not os.path.isdir(run_dir):
    raise FileNotFoundError(f"{flag} {run_dir!r} is not a directory")
  file = path(run_dir, checkpoint)
  if not os.path.isfile(file):
    raise FileNotFoundError(f"{flag} {run_dir!r} has no {checkpoint} (train that stage first)")
  try:
    io_utils.check_keras_file(file)
  except io_utils.NotAKerasFileError as e:
    raise io_utils.NotAKerasFileError(f"{flag} {run_dir!r}: {e}") from e
  return keras.saving.load_model(file, compile=False)


def clip_contract(run_dir: str, model) -> Tuple["clip_spec.ClipSpec", Optional[List[str]]]:
  """`(spec, labels)` of a run's classifier.

  From the model itself (`layers.clip_contract.from_model`); a model saved before the
  contract existed gets a spec from the run's `config.yaml` (stride) and its
  input shape, with a warning (its stored frame format is unknown).
  """
  carried = clip_contract_lib.from_model(model)
  if carried is not None:
    spec, labels = carried
    return spec, (labels or None)
  log.warning("%s carries no clip spec (saved before tsnet_tf 0.2?): using %s's "
              "data.frame_stride and the model's input shape", model.name,
              path(run_dir, CONFIG_FILE))
  spec = clip_spec.ClipSpec.for_model(model, run_frame_stride(run_dir))
  labels = read_labels(run_dir) if os.path.isfile(path(run_dir, LABELS_FILE)) else None
  return spec, labels


def is_finished(run_dir: str) -> bool:
  """Whether `run_dir` holds a completed training run: model.keras and no backup/."""
  return (os.path.isfile(path(run_dir, MODEL_FILE))
          and not os.path.isdir(path(run_dir, BACKUP_DIR)))


def is_interrupted(run_dir: str) -> bool:
  """Whether `run_dir` holds resume state (backup/) of a run that did not complete."""
  return os.path.isdir(path(run_dir, BACKUP_DIR))


def remove_training_outputs(run_dir: str) -> List[str]:
  """Deletes what `trainer.train` writes in `run_dir` (and its temporaries); nothing else.

  Returns:
    the removed paths, relative to `run_dir`.
  """
  removed = []
  names = list(TRAINER_FILES) + [BACKUP_DIR, BACKUP_DIR + ".removing"] + [
      os.path.join(LOGS_DIR, d) for d in LOG_SUBDIRS]
  # Leftovers of `utils.io.atomic_write` of a killed run: `.<base>.tmp-*<ext>`.
  for name in TRAINER_FILES:
    base, ext = os.path.splitext(name)
    names += [os.path.relpath(p, run_dir)
              for p in glob.glob(path(run_dir, f".{glob.escape(base)}.tmp-*{ext}"))]
  names += [os.path.relpath(p, run_dir) for p in glob.glob(path(run_dir, WORKER_DIR_PATTERN))]
  for name in names:
    full = path(run_dir, name)
    if os.path.isdir(full) and not os.path.islink(full):
      shutil.rmtree(full)
    elif os.path.lexists(full):
      os.remove(full)
    else:
      continue
    removed.append(name)
  logs = path(run_dir, LOGS_DIR)
  if os.path.isdir(logs) and not os.listdir(logs):
    os.rmdir(logs)
  return removed


def recorded_stage(run_dir: str) -> Optional[str]:
  """The stage `run_dir/config.yaml` records, or None if it has none.

  Raises:
    config_lib.ConfigError: config.yaml is not a valid YAML mapping.
  """
  file = path(run_dir, CONFIG_FILE)
  if not os.path.isfile(file):
    return None
  stage = config_lib.read_yaml(file).get("stage")
  return config_lib.STAGE_ALIASES.get(stage, stage) if stage else None


def check_stage(run_dir: str, flag: str, expected: Sequence[str]) -> None:
  """Checks that the run in `run_dir` (given as `flag`) trained one of the `expected` stages.

  A directory without config.yaml (not written by `trainer.train`, e.g. a bare
  model.keras) has no recorded stage and passes with a warning; a missing
  directory is left to the loader's own error.

  Raises:
    RunDirError: naming `flag`, the directory and the stage found.
  """
  if not run_dir or not os.path.isdir(run_dir):
    return
  try:
    stage = recorded_stage(run_dir)
  except config_lib.ConfigError as e:
    raise RunDirError(f"{flag} {run_dir!r}: {e}") from e
  if stage is None:
    log.warning("%s %r has no %s: cannot check it is a %s run", flag, run_dir, CONFIG_FILE,
                " or ".join(expected))
    return
  if stage not in expected:
    raise RunDirError(f"{flag} {run_dir!r} holds a {stage} run ({CONFIG_FILE}: stage: "
                      f"{stage}), not a {' or '.join(expected)} run")


def check_classes(run_dir: str, flag: str, labels: Sequence[str],
                  labels_model: Optional[Sequence[str]] = None,
                  against: str = "--data_dir") -> None:
  """Checks that the run in `run_dir` (given as `flag`) was trained on the classes `labels`.

  The run's classes are `labels_model` when given (e.g. carried by the model's
  clip contract), else its labels.txt; a run with neither passes (nothing to
  compare; the class count is checked by the caller).

  Raises:
    RunDirError: naming `flag`, the directory and the first class that differs.
  """
  if labels_model is None:
    if not run_dir or not os.path.isfile(path(run_dir, LABELS_FILE)):
      return
    labels_model = read_labels(run_dir)
  ours, theirs = list(labels_model), list(labels)
  if ours == theirs:
    return
  if len(ours) != len(theirs):
    raise RunDirError(f"{flag} {run_dir!r} was trained on {len(ours)} classes, {against} "
                      f"has {len(theirs)}")
  i = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
  raise RunDirError(f"{flag} {run_dir!r} was trained on other classes than {against}: "
                    f"class {i} is {ours[i]!r} there and {theirs[i]!r} here")
