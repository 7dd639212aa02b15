"""Session fixtures: a tiny data directory and tiny trained models of each stage."""

import os

import pytest

from tsnet_tf import config as config_lib

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))


def _load_helper():
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("tiny_data", os.path.join(_HERE, "tiny_data.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


tiny_data = _load_helper()


@pytest.fixture(scope="session")
def tiny_data_module():
  """tests/training/tiny_data.py, loaded once (test modules cannot import it by name)."""
  return tiny_data


def tiny_config(stage, extra=""):
  override = tiny_data.TINY_OVERRIDE + ("," + extra if extra else "")
  return config_lib.load_config(os.path.join(REPO, "configs", "synthetic.yaml"), stage, override)


@pytest.fixture(scope="session")
def data_dir(tiny_data_dir):
  return tiny_data_dir


@pytest.fixture(scope="session")
def teacher_dir(data_dir, tmp_path_factory):
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path_factory.mktemp("teacher"))
  trainer.train(tiny_config("flow"), "flow", model_dir, data_dir, verbose=0)
  return model_dir


@pytest.fixture(scope="session")
def rgb_run(data_dir, tmp_path_factory):
  """An rgb run killed in its second epoch, then re-run to completion.

  Returns (model_dir, info) with what the second run saw when it started.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top

  class Kill(keras.callbacks.Callback):

    def on_train_batch_end(self, batch, logs=None):
      if self._epoch == 1:
        raise KeyboardInterrupt("simulated kill")

    def on_epoch_begin(self, epoch, logs=None):
      self._epoch = epoch

  class Record(keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.info = {}

    def on_train_begin(self, logs=None):
      self.info["iterations_at_start"] = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
      self.info.setdefault("first_epoch", epoch)

  model_dir = str(tmp_path_factory.mktemp("rgb"))
  cfg = tiny_config("rgb", "train.epochs=2,train.steps_per_epoch=1,data.validation_subset=none")
  with pytest.raises(KeyboardInterrupt):
    trainer.train(cfg, "rgb", model_dir, data_dir, verbose=0, callbacks=[Kill()])
  info = {"backup_after_kill": sorted(os.listdir(os.path.join(model_dir, "backup")))}
  with open(os.path.join(model_dir, "history.json")) as f:
    import json  # pylint: disable=g-import-not-at-top
    info["history_after_kill"] = json.load(f)
  record = Record()
  result = trainer.train(cfg, "rgb", model_dir, data_dir, verbose=0, callbacks=[record])
  info.update(record.info)
  info["result"] = result
  return model_dir, info
