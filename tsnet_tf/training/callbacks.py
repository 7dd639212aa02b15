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
from typing import Callable, Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tsnet_tf.models import distillation
from tsnet_tf.training import run_dir
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


# Keras' BackupAndRestore writes the epoch it restores to here.
_BACKUP_METADATA = "training_metadata.json"


def backed_up_epoch(backup_dir: str) -> int:
  """The epoch `keras.callbacks.BackupAndRestore(backup_dir)` will resume at (0: none).

  Read before `fit`, so the input stream can be positioned there; only the
  callback's fallback to its previous checkpoint (a corrupt backup) differs,
  which `ResumedEpochCheck` reports.
  """
  path = os.path.join(backup_dir, _BACKUP_METADATA)
  try:
    with open(path, encoding="utf-8") as f:
      return int(json.load(f).get("epoch", 0))
  except (OSError, ValueError, TypeError, AttributeError):
    return 0


class ResumedEpochCheck(keras.callbacks.Callback):
  """Warns when training starts at another epoch than the input stream was positioned for.

  (BackupAndRestore falls back to its previous checkpoint when the last one is
  unreadable: one epoch earlier than `backed_up_epoch` read.)
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
