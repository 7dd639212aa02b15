"""The teacher stage with `model.flow.source: stored`: trains on the TFRecords' flow,
runs no TV-L1 in its training steps, saves the usual RGB-input teacher."""

import os

import keras
import numpy as np
import pytest

from tsnet_tf import config as config_lib
from tsnet_tf.layers import tvl1_flow
from tsnet_tf.training import run_dir
from tsnet_tf.training import trainer
from tsnet_tf.training.errors import TrainingError

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))


@pytest.fixture(scope="module")
def make_cfg(tiny_data_module):
  """`make_cfg(extra, stage)`: the tiny config of `stage` without its TV-L1 overrides (stored
  flow has none), plus `extra` overrides."""
  override = tiny_data_module.TINY_OVERRIDE.split(",model.flow.overrides=")[0]

  def make(extra="", stage="teacher"):
    return config_lib.load_config(os.path.join(REPO, "configs", "synthetic.yaml"), stage,
                                  override + ("," + extra if extra else ""))

  return make


@pytest.fixture(scope="module")
def flow_data_dir(data_dir, tiny_data_module):
  return tiny_data_module.make_tiny_flow_data_dir(os.path.dirname(data_dir))


class _CountTvl1(keras.callbacks.Callback):
  """TVL1Flow calls inside training batches (the tiny config runs eagerly)."""

  def __init__(self, calls):
    super().__init__()
    self.calls = calls
    self.in_train_steps = 0

  def on_train_batch_begin(self, batch, logs=None):
    self._start = self.calls[0]

  def on_train_batch_end(self, batch, logs=None):
    self.in_train_steps += self.calls[0] - self._start


def _train_counting_tvl1(*args, **kwargs):
  """`trainer.train(*args, **kwargs)` -> (result, TVL1Flow calls in training steps, in all)."""
  calls = [0]
  original = tvl1_flow.TVL1Flow.call

  def counting(self, clip):
    calls[0] += 1
    return original(self, clip)

  counter = _CountTvl1(calls)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(tvl1_flow.TVL1Flow, "call", counting)
    result = trainer.train(*args, callbacks=[counter], verbose=0, **kwargs)
  return result, counter.in_train_steps, calls[0]


@pytest.fixture(scope="module")
def stored_teacher(flow_data_dir, tmp_path_factory, make_cfg):
  model_dir = str(tmp_path_factory.mktemp("stored_teacher"))
  result, in_steps, total = _train_counting_tvl1(make_cfg("model.flow.source=stored"), "teacher",
                                                 model_dir, flow_data_dir)
  return model_dir, result, in_steps, total


def test_teacher_trains_from_stored_flow_and_saves_the_rgb_teacher(stored_teacher):
  model_dir, result, in_steps, total = stored_teacher
  assert in_steps == 0  # two steps, no TV-L1
  assert total > 0  # validation scored the RGB-input teacher
  assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])
  assert "val_accuracy" in result.history
  model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
  assert model.input_shape == (None, 4, 16, 16, 3)
  assert isinstance(model.get_layer("flow"), tvl1_flow.TVL1Flow)
  assert model.get_layer("flow").preset == "fast"
  assert model.get_layer("flow_scaling").bound == 4.0
  clip = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  np.testing.assert_allclose(model.predict(clip, verbose=0), result.model(clip), atol=1e-4)
  saved = run_dir.load_run_config(model_dir)
  assert saved.model.flow.source == "stored"


def test_student_distils_from_stored_flow(stored_teacher, flow_data_dir, data_dir, tmp_path,
                                          make_cfg):
  teacher_dir = stored_teacher[0]
  student_cfg = make_cfg("model.flow.source=stored,distill.mse_warmup_epochs=0", "student")
  result, in_steps, _ = _train_counting_tvl1(student_cfg, "student", str(tmp_path / "s"),
                                             flow_data_dir, teacher_dir=teacher_dir)
  assert in_steps == 0
  assert np.isfinite(result.history["distill_loss"][0]) and result.history["distill_loss"][0] > 0
  model = keras.saving.load_model(str(tmp_path / "s" / "model.keras"))
  assert model.name == "student" and model.input_shape == (None, 4, 16, 16, 3)
  # The stored flow must be the teacher's: data without flow is refused.
  with pytest.raises(TrainingError, match="has no stored flow"):
    trainer.train(student_cfg, "student", str(tmp_path / "t"), data_dir, teacher_dir=teacher_dir,
                  verbose=0)


def test_student_distils_from_a_wider_stored_flow_teacher(flow_data_dir, tmp_path, make_cfg):
  # Table 1 v5's pairing (configs/table1.yaml): the teacher wider than the student, its
  # feature map reached through the student's learned projection.
  teacher_dir = str(tmp_path / "wide_teacher")
  trainer.train(make_cfg("model.flow.source=stored,model.width=8"), "teacher",
                teacher_dir, flow_data_dir, verbose=0)
  student_cfg = make_cfg("model.flow.source=stored,distill.mse_warmup_epochs=0", "student")
  result, in_steps, _ = _train_counting_tvl1(student_cfg, "student", str(tmp_path / "s"),
                                             flow_data_dir, teacher_dir=teacher_dir)
  assert in_steps == 0
  assert np.isfinite(result.history["distill_loss"][0]) and result.history["distill_loss"][0] > 0
  layer = student_cfg.distill.feature_layer
  teacher = keras.saving.load_model(os.path.join(teacher_dir, "model.keras"))
  student = keras.saving.load_model(str(tmp_path / "s" / "model.keras"))
  assert teacher.get_layer(layer).output.shape[-1] == 2 * student.get_layer(layer).output.shape[-1]
  assert student.count_params() < teacher.count_params()


def test_stored_source_needs_matching_stored_flow(data_dir, flow_data_dir, tmp_path, make_cfg):
  with pytest.raises(TrainingError, match="has no stored flow"):
    trainer.train(make_cfg("model.flow.source=stored"), "teacher", str(tmp_path / "a"), data_dir,
                  verbose=0)
  with pytest.raises(TrainingError,
                     match=r"model.flow.preset='accurate' .*flow.preset='fast'"):
    trainer.train(make_cfg("model.flow.source=stored,model.flow.preset=accurate"), "teacher",
                  str(tmp_path / "b"), flow_data_dir, verbose=0)
  with pytest.raises(TrainingError, match=r"data.frame_stride=2 .*flow.stride=3"):
    trainer.train(make_cfg("model.flow.source=stored,data.frame_stride=2"), "teacher",
                  str(tmp_path / "c"), flow_data_dir, verbose=0)
  assert not os.listdir(tmp_path)  # refused before writing anything


def test_source_is_a_choice_key(make_cfg):
  with pytest.raises(config_lib.ConfigError,
                     match="'model.flow.source' must be one of graph, stored, got 'disk'"):
    make_cfg("model.flow.source=disk")
  assert make_cfg().model.flow.source == "graph"
