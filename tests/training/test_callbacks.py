"""The resume state (RestoreBackup / SaveBackup): a kill during its write leaves a run that resumes."""

import json
import os

import keras
import numpy as np
import pytest

from tsnet_tf.training import callbacks


def tiny_config(stage, extra=""):
  # conftest's helper (conftest modules are not importable by name here).
  import importlib.util  # pylint: disable=g-import-not-at-top
  here = os.path.dirname(os.path.abspath(__file__))
  spec = importlib.util.spec_from_file_location("training_conftest",
                                                os.path.join(here, "conftest.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.tiny_config(stage, extra)


def _model():
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
  return model


_X, _Y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")


def _fit(model, backup, epochs, extra=()):
  seen = []

  class First(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
      seen.append(epoch)

  model.fit(_X, _Y, epochs=epochs, verbose=0, shuffle=False, batch_size=4,
            callbacks=[callbacks.RestoreBackup(backup), First(), *extra,
                       callbacks.SaveBackup(backup)])
  return seen


def _weights(model):
  return [v.numpy().copy() for v in model.weights + model.optimizer.variables]


class _StopAfter(keras.callbacks.Callback):
  """A kill once epoch `epoch` is backed up (put after SaveBackup) or before (before it)."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_end(self, epoch, logs=None):
    if epoch == self.epoch:
      raise KeyboardInterrupt


def test_kill_during_the_backup_write_leaves_the_previous_backup(tmp_path, monkeypatch):
  keras.utils.set_random_seed(0)
  ref = _model()
  ref_state = ref.get_weights()
  _fit(ref, str(tmp_path / "ref"), 3)

  backup = str(tmp_path / "backup")
  keras.utils.set_random_seed(0)
  model = _model()
  model.set_weights(ref_state)
  real_save = keras.Model.save_weights
  calls = []

  def dies_half_way(self, path, *args, **kwargs):  # Ctrl-C in the middle of the write
    calls.append(path)
    if len(calls) < 2:
      return real_save(self, path, *args, **kwargs)
    real_save(self, path, *args, **kwargs)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
    raise KeyboardInterrupt

  monkeypatch.setattr(keras.Model, "save_weights", dies_half_way)
  with pytest.raises(KeyboardInterrupt):
    _fit(model, backup, 3)
  monkeypatch.undo()
  # Epoch 0's backup is whole; the half-written file of epoch 1 is a temporary, removed.
  assert sorted(os.listdir(backup)) == ["epoch-00001.weights.h5"]
  assert callbacks.backed_up_epoch(backup) == 1

  keras.utils.set_random_seed(0)
  resumed = _model()
  assert _fit(resumed, backup, 3) == [1, 2]
  for a, b in zip(_weights(resumed), _weights(ref)):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def _fit_and_stop(model, backup, epochs, stop_after):
  model.fit(_X, _Y, epochs=epochs, verbose=0, shuffle=False, batch_size=4,
            callbacks=[callbacks.RestoreBackup(backup), callbacks.SaveBackup(backup),
                       _StopAfter(stop_after)])


def test_damaged_backups_fall_back_and_legacy_keras_backups_resume(tmp_path, caplog):
  backup = str(tmp_path / "backup")
  model = _model()
  with pytest.raises(KeyboardInterrupt):
    _fit_and_stop(model, backup, 5, stop_after=2)
  # Two kept: epochs 2 and 3 (3 = resume at epoch 3).
  assert sorted(os.listdir(backup)) == ["epoch-00002.weights.h5", "epoch-00003.weights.h5"]
  after_1 = _model()
  after_1.optimizer.build(after_1.trainable_variables)
  after_1.load_weights(os.path.join(backup, "epoch-00002.weights.h5"))
  newest = os.path.join(backup, "epoch-00003.weights.h5")
  with open(newest, "r+b") as f:  # damaged on disk
    f.truncate(os.path.getsize(newest) - 100)
  assert not callbacks.readable(newest)
  assert callbacks.backed_up_epoch(backup) == 2
  resumed = _model()
  assert _fit(resumed, backup, 2) == []  # resumed at epoch 2 of 2: nothing left to train
  assert "damaged" in caplog.text
  for a, b in zip(resumed.get_weights(), after_1.get_weights()):
    np.testing.assert_array_equal(a, b)

  # What keras.callbacks.BackupAndRestore left after a Ctrl-C in its write (issue #25):
  # a truncated latest.weights.h5 and a whole .bkp one epoch older.
  legacy = str(tmp_path / "legacy")
  os.makedirs(legacy)
  after_1.save_weights(os.path.join(legacy, "good.weights.h5"))
  os.replace(os.path.join(legacy, "good.weights.h5"),
             os.path.join(legacy, "latest.weights.h5.bkp"))
  with open(os.path.join(legacy, "latest.weights.h5"), "wb") as f:
    f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
  for name, epoch in (("training_metadata.json", 3), ("training_metadata.json.bkp", 2)):
    with open(os.path.join(legacy, name), "w") as f:
      json.dump({"epoch": epoch, "batch": -1}, f)
  assert callbacks.backed_up_epoch(legacy) == 2
  resumed = _model()
  assert _fit(resumed, legacy, 3) == [2]
  # The first new backup supersedes the legacy files.
  assert os.listdir(legacy) == ["epoch-00003.weights.h5"]

  # Nothing loads: one line naming the directory and --overwrite.
  for name in os.listdir(legacy):
    with open(os.path.join(legacy, name), "wb") as f:
      f.write(b"garbage")
  with pytest.raises(callbacks.TrainingError, match="no readable resume state.*--overwrite"):
    _fit(_model(), legacy, 3)


def test_trainer_resumes_after_a_kill_in_any_write_of_an_epoch_end(data_dir, rgb_run, tmp_path,
                                                                   monkeypatch):
  """Kills in the backup write, between model.keras and the backup's removal; the
  reference is conftest's rgb run (same config, killed between epochs and resumed,
  which tests/reliability/test_kill_resume.py checks against an uninterrupted run)."""
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  cfg = tiny_config("rgb", "train.epochs=2,train.steps_per_epoch=1,data.validation_subset=none")
  ref = rgb_run[1]["result"]

  run = str(tmp_path / "run")
  real_save = keras.Model.save_weights
  count = []

  def dies_in_second_write(self, path, *args, **kwargs):
    count.append(path)
    real_save(self, path, *args, **kwargs)
    if len(count) == 2:
      with open(path, "r+b") as f:
        f.truncate(100)
      raise KeyboardInterrupt

  monkeypatch.setattr(keras.Model, "save_weights", dies_in_second_write)
  with pytest.raises(KeyboardInterrupt):
    trainer.train(cfg, "rgb", run, data_dir, verbose=0)
  monkeypatch.undo()
  assert os.listdir(os.path.join(run, "backup")) == ["epoch-00001.weights.h5"]

  # Killed after model.keras was written, before the backup was removed: resumes at
  # the end (trains nothing) and finishes.
  monkeypatch.setattr(callbacks, "remove_backup", lambda _: (_ for _ in ()).throw(
      KeyboardInterrupt()))
  with pytest.raises(KeyboardInterrupt):
    trainer.train(cfg, "rgb", run, data_dir, verbose=0)
  monkeypatch.undo()
  assert os.path.isfile(os.path.join(run, "model.keras"))
  result = trainer.train(cfg, "rgb", run, data_dir, verbose=0)
  assert not os.path.exists(os.path.join(run, "backup"))
  assert result.history["epoch"] == [0, 1]
  for a, b in zip(result.model.get_weights(), ref.model.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
