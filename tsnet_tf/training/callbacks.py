"""The trainer's Keras callbacks: history.json, TensorBoard scalars, best.keras,
and the student stage's Eq. 7 schedules (`MseWarmup`, `DistillWeightDecay`).

Each file writer writes one of the run directory's files (names owned by
`run_dir`), atomically, and picks up where an interrupted run left it on
resume; the schedules are functions of the epoch, so a resumed run continues them.
"""

import json
import logging
import math
import os
import re
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tsnet_tf.models import distillation
from tsnet_tf.training import run_dir
from tsnet_tf.training.errors import TrainingError
from tsnet_tf.utils.io import atomic_write

log = logging.getLogger(__name__)


def to_float(value) -> Optional[float]:
  """A metric value as a finite Python float, or None."""
  try:
    value = float(np.asarray(value))
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) else None


def write_json(path: str, obj) -> None:
  """`obj` as indented JSON at `path`, written atomically."""
  with atomic_write(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(obj, f, indent=1)


class HistoryLogger(keras.callbacks.Callback):
  """Appends each epoch's logs and learning rate to `history.json`.

  A resumed run starts at the restored epoch and drops any later records left
  by the interrupted run, so the file always holds one record per epoch.
  """

  def __init__(self, path: str, write: bool = True):
    super().__init__()
    self.path = path
    self.write = write
    self.history: Dict[str, List] = {}
    self._started = False

  def on_epoch_begin(self, epoch, logs=None):
    if self._started:
      return
    self._started = True
    self.history = {}
    if epoch > 0 and os.path.isfile(self.path):
      with open(self.path, encoding="utf-8") as f:
        old = json.load(f)
      keep = [i for i, e in enumerate(old.get("epoch", [])) if e < epoch]
      self.history = {k: [v[i] for i in keep] for k, v in old.items()}

  def on_train_end(self, logs=None):
    # A run resumed after its last epoch (killed while writing the final
    # model) trains no epoch: its history is the file's.
    if not self._started:
      self.on_epoch_begin(getattr(self.model, "_initial_epoch", None) or 0)

  def on_epoch_end(self, epoch, logs=None):
    record = {"epoch": epoch}
    record.update({k: to_float(v) for k, v in (logs or {}).items()})
    record["learning_rate"] = to_float(self.model.optimizer.learning_rate)
    n = len(self.history.get("epoch", []))
    for key in set(self.history) | set(record):
      column = self.history.setdefault(key, [None] * n)
      column.append(record.get(key))
    if self.write:
      write_json(self.path, self.history)


class EpochSummaries(keras.callbacks.Callback):
  """Per-epoch scalars as TensorBoard event files in `log_dir/{train,validation}`.

  Written with TF's core summary ops and the scalars plugin's metadata, so it
  needs no `tensorboard` package at training time (Keras' TensorBoard callback
  does); `tensorboard --logdir=log_dir` reads them as usual. Keys `val_*` go to
  `validation/`, the rest (and the learning rate) to `train/`.
  """

  def __init__(self, log_dir: str):
    super().__init__()
    self.log_dir = log_dir
    self._writers = {}

  def _writer(self, name):
    if name not in self._writers:
      self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
    return self._writers[name]

  def on_epoch_end(self, epoch, logs=None):
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    values = dict(logs or {})
    values["learning_rate"] = self.model.optimizer.learning_rate
    for key, value in values.items():
      value = to_float(value)
      if value is None:
        continue
      name, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
      with self._writer(name).as_default():
        tf.summary.write(f"epoch_{tag}", tf.constant(value, tf.float32), step=epoch,
                         metadata=metadata)
    for writer in self._writers.values():
      writer.flush()

  def on_train_end(self, logs=None):
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


class BestModelCheckpoint(keras.callbacks.Callback):
  """Saves the classifier to `best.keras` whenever `monitor` improves.

  The best value so far lives in `best.json` next to it, so a resumed run
  keeps comparing against the interrupted run's best (a fresh run, starting
  at epoch 0, forgets it). Both files are written atomically.
  """

  def __init__(self, model_dir: str, export: Callable[[], keras.Model],
               monitor: str = "val_accuracy", write: bool = True):
    super().__init__()
    self.model_path = os.path.join(model_dir, run_dir.BEST_FILE)
    self.info_path = os.path.join(model_dir, run_dir.BEST_INFO_FILE)
    self.export = export
    self.monitor = monitor
    self.write = write
    self.best: Optional[float] = None
    self.best_epoch: Optional[int] = None
    self._started = False

  def on_epoch_begin(self, epoch, logs=None):
    if self._started:
      return
    self._started = True
    if epoch > 0 and os.path.isfile(self.info_path):
      with open(self.info_path, encoding="utf-8") as f:
        info = json.load(f)
      if info.get("monitor") == self.monitor and info.get("epoch", epoch) < epoch:
        self.best, self.best_epoch = info["value"], info["epoch"]

  def on_train_end(self, logs=None):
    if not self._started:  # resumed after the last epoch: nothing trained
      self.on_epoch_begin(getattr(self.model, "_initial_epoch", None) or 0)

  def on_epoch_end(self, epoch, logs=None):
    value = to_float((logs or {}).get(self.monitor))
    if value is None:
      return
    if self.best is not None and value <= self.best:
      return
    self.best, self.best_epoch = value, epoch
    if not self.write:
      return
    with atomic_write(self.model_path) as tmp:
      self.export().save(tmp)
    write_json(self.info_path, {"monitor": self.monitor, "value": value, "epoch": epoch})


# The resume state in `backup/`: one weights file (model + optimizer variables)
# per backed-up epoch count, named by the epoch training resumes at.
BACKUP_PATTERN = "epoch-{:05d}.weights.h5"
_BACKUP_RE = re.compile(r"epoch-(\d+)\.weights\.h5")
_BACKUP_TMP_PREFIX = ".tmp-"
# What `keras.callbacks.BackupAndRestore` wrote there (runs started before
# `SaveBackup`): still resumed, newest readable first.
_LEGACY_WEIGHTS = "latest.weights.h5"
_LEGACY_METADATA = "training_metadata.json"


def _json_epoch(path: str) -> int:
  try:
    with open(path, encoding="utf-8") as f:
      return int(json.load(f).get("epoch", 0))
  except (OSError, ValueError, TypeError, AttributeError):
    return 0


def backups(backup_dir: str) -> List[Tuple[int, str]]:
  """`(epoch to resume at, weights file)` of every backup in `backup_dir`, newest first.

  `SaveBackup`'s files first, then a legacy `BackupAndRestore` pair
  (`latest.weights.h5` and its `.bkp`, with their metadata's epochs).
  Unvalidated: see `readable`.
  """
  if not os.path.isdir(backup_dir):
    return []
  found = []
  for name in os.listdir(backup_dir):
    m = _BACKUP_RE.fullmatch(name)
    if m:
      found.append((int(m.group(1)), os.path.join(backup_dir, name)))
  found.sort(reverse=True)
  for suffix in ("", ".bkp"):
    epoch = _json_epoch(os.path.join(backup_dir, _LEGACY_METADATA + suffix))
    weights = os.path.join(backup_dir, _LEGACY_WEIGHTS + suffix)
    if epoch > 0 and os.path.isfile(weights):
      found.append((epoch, weights))
  return found


def readable(path: str) -> bool:
  """Whether a `.weights.h5` file opens and every array in it reads (a truncated one fails)."""
  import h5py  # pylint: disable=g-import-not-at-top

  def read(_, obj):
    if isinstance(obj, h5py.Dataset):
      obj[()]  # pylint: disable=pointless-statement

  try:
    with h5py.File(path, "r") as f:
      f.visititems(read)
    return True
  except Exception:  # pylint: disable=broad-except
    return False  # h5py raises OSError, KeyError, RuntimeError... on damaged files


def backed_up_epoch(backup_dir: str) -> int:
  """The epoch `RestoreBackup(backup_dir)` will resume at (0: none).

  The newest backup that `readable` accepts. Read before `fit`, so the input
  stream can be positioned there; only a backup that reads but fails to load
  into the model makes the callback fall back further, which
  `ResumedEpochCheck` reports.
  """
  for epoch, path in backups(backup_dir):
    if readable(path):
      return epoch
  return 0


def _fsync(path: str) -> None:
  with open(path, "rb+") as f:
    os.fsync(f.fileno())


class RestoreBackup(keras.callbacks.Callback):
  """Restores the newest usable resume state `SaveBackup` left in `backup_dir`.

  `on_train_begin` loads the newest backup that reads and loads, falling back
  to older ones with a warning, and sets the epoch `fit` starts at. Put it
  first, so the other callbacks see the restored state.

  Raises (from `on_train_begin`):
    TrainingError: backups exist but none loads.
  """

  def __init__(self, backup_dir: str):
    super().__init__()
    self.backup_dir = backup_dir
    self.restored_epoch = 0

  def _load(self, path: str) -> None:
    if self.model.optimizer is not None and not self.model.optimizer.built:
      self.model.optimizer.build(self.model.trainable_variables)
    if path.endswith(".weights.h5"):
      self.model.load_weights(path)
      return
    # A legacy `latest.weights.h5.bkp`: Keras loads only `*.weights.h5` names.
    fd, tmp = tempfile.mkstemp(prefix=_BACKUP_TMP_PREFIX, suffix=".weights.h5",
                               dir=self.backup_dir)
    os.close(fd)
    try:
      shutil.copyfile(path, tmp)
      self.model.load_weights(tmp)
    finally:
      os.remove(tmp)

  def on_train_begin(self, logs=None):
    self.restored_epoch = 0
    if not os.path.isdir(self.backup_dir):
      return
    for name in os.listdir(self.backup_dir):  # a killed write's temporary file
      if name.startswith(_BACKUP_TMP_PREFIX):
        os.remove(os.path.join(self.backup_dir, name))
    found = backups(self.backup_dir)
    for epoch, path in found:
      if not readable(path):
        log.warning("resume state %s is damaged (unreadable): trying an older one", path)
        continue
      try:
        self._load(path)
      except Exception as e:  # pylint: disable=broad-except
        log.warning("resume state %s does not load (%s): trying an older one", path,
                    str(e).splitlines()[0] if str(e) else type(e).__name__)
        continue
      self.restored_epoch = epoch
      self.model._initial_epoch = epoch  # pylint: disable=protected-access
      return
    if found:
      raise TrainingError(
          f"{self.backup_dir!r} holds no readable resume state ({len(found)} damaged "
          "backup(s)): pass --overwrite to train afresh")


class SaveBackup(keras.callbacks.Callback):
  """Writes the resume state at the end of each epoch so that a kill at any instant leaves it usable.

  The model's and optimizer's variables go to a temporary file in
  `backup_dir`, flushed to disk and renamed to `epoch-<N>.weights.h5` (N =
  the epoch to resume at); only then are older backups deleted (the last
  `keep` stay, the fallback for a damaged newest). A kill during the write
  leaves the previous backup whole. (Keras' `BackupAndRestore` overwrote its
  weights and its metadata in place, two files: a Ctrl-C in the write left a
  truncated `latest.weights.h5` that every rerun died on.) Put it last: a
  backup for epoch N then means the other callbacks' files (history, best
  model) hold epoch N - 1. The directory stays when training ends; the
  trainer removes it (`remove_backup`) once the final model is written.

  Args:
    backup_dir: directory of the resume state (created when first written).
    keep: backups kept (>= 1).
  """

  def __init__(self, backup_dir: str, keep: int = 2):
    super().__init__()
    self.backup_dir = backup_dir
    self.keep = max(1, int(keep))

  def on_epoch_end(self, epoch, logs=None):
    self.save(epoch + 1)

  def save(self, epoch: int) -> str:
    """Writes the backup to resume at `epoch`, atomically; returns its path."""
    os.makedirs(self.backup_dir, exist_ok=True)
    final = os.path.join(self.backup_dir, BACKUP_PATTERN.format(epoch))
    fd, tmp = tempfile.mkstemp(prefix=_BACKUP_TMP_PREFIX, suffix=".weights.h5",
                               dir=self.backup_dir)
    os.close(fd)
    try:
      self.model.save_weights(tmp, overwrite=True)
      _fsync(tmp)
      os.replace(tmp, final)
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise
    # Older backups beyond `keep`, and any later one (a damaged backup this run
    # fell back from): the new file is in place, so these may go.
    ours = [(e, p) for e, p in backups(self.backup_dir)
            if p != final and _BACKUP_RE.fullmatch(os.path.basename(p))]
    older = [p for e, p in ours if e < epoch]
    for path in [p for e, p in ours if e >= epoch] + older[self.keep - 1:]:
      os.remove(path)
    for name in (_LEGACY_WEIGHTS, _LEGACY_METADATA):  # superseded for good
      for suffix in ("", ".bkp"):
        legacy = os.path.join(self.backup_dir, name + suffix)
        if os.path.exists(legacy):
          os.remove(legacy)
    return final


def remove_backup(backup_dir: str) -> None:
  """Deletes the resume state of a finished run: renamed first, so a kill while
  deleting never leaves a partial `backup/` that looks like an older resume point."""
  if not os.path.isdir(backup_dir):
    return
  doomed = backup_dir.rstrip(os.sep) + ".removing"
  if os.path.isdir(doomed):
    shutil.rmtree(doomed)
  os.replace(backup_dir, doomed)
  shutil.rmtree(doomed)


class ResumedEpochCheck(keras.callbacks.Callback):
  """Warns when training starts at another epoch than the input stream was positioned for.

  (`RestoreBackup` falls back to an older backup when the newest reads but
  does not load: earlier than `backed_up_epoch` read.)
  """

  def __init__(self, expected_epoch: int):
    super().__init__()
    self.expected_epoch = int(expected_epoch)
    self._checked = False

  def on_epoch_begin(self, epoch, logs=None):
    if self._checked:
      return
    self._checked = True
    if epoch != self.expected_epoch:
      log.warning("resumed at epoch %d, but the input stream was positioned for epoch %d "
                  "(the backup was unreadable and an older one was used): the batches "
                  "differ from an uninterrupted run's", epoch, self.expected_epoch)


class MseWarmup(keras.callbacks.Callback):
  """Trains on the MSE term alone for the first `warmup_epochs` epochs.

  Sets `model.ce_weight` to 0 before each warm-up epoch and to `ce_weight`
  after (the paper: MSE first for the early part of the student, then
  CE + MSE for the whole). Resumed runs get the right phase from the epoch.
  """
  def __init__(self, warmup_epochs: int, ce_weight: float = 1.0):
    super().__init__()
    self.warmup_epochs = int(warmup_epochs)
    self.ce_weight = float(ce_weight)

  def on_epoch_begin(self, epoch, logs=None):
    if not isinstance(self.model, distillation.DistillationModel):
      raise TypeError(
          f"MseWarmup needs a DistillationModel, got {type(self.model)}")
    self.model.ce_weight.assign(
        0.0 if epoch < self.warmup_epochs else self.ce_weight)


class DistillWeightDecay(keras.callbacks.Callback):
  """Decays lambda of Eq. 7 from `distill_weight` to 0 by the last epoch.

  Epochs before `start_epoch` (the MSE warm-up) keep `distill_weight`; epoch
  e in [start_epoch, epochs) trains with
  `distill_weight * 0.5 * (1 + cos(pi * (e - start_epoch) / (epochs - start_epoch)))`.
  The schedule is a function of the epoch alone, so a resumed run continues it.
  """
  def __init__(self, distill_weight: float, epochs: int, start_epoch: int = 0):
    super().__init__()
    if epochs <= start_epoch:
      raise ValueError(f"need epochs > start_epoch, got {epochs} and {start_epoch}")
    self.distill_weight = float(distill_weight)
    self.epochs = int(epochs)
    self.start_epoch = int(start_epoch)

  def weight(self, epoch: int) -> float:
    if epoch < self.start_epoch:
      return self.distill_weight
    progress = min(1.0, (epoch - self.start_epoch) / (self.epochs - self.start_epoch))
    return self.distill_weight * 0.5 * (1.0 + math.cos(math.pi * progress))

  def on_epoch_begin(self, epoch, logs=None):
    if not isinstance(self.model, distillation.DistillationModel):
      raise TypeError(
          f"DistillWeightDecay needs a DistillationModel, got {type(self.model)}")
    self.model.distill_weight.assign(self.weight(epoch))
