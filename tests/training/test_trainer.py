"""Tests for tsnet_tf/training/trainer.py: every stage on tiny shapes, resume, errors."""

import json
import math
import os

import keras
import numpy as np
import pytest

from tsnet_tf.training import optimization
from tsnet_tf.training import trainer
from tsnet_tf.training.errors import TrainingError

OUTPUTS = ("config.yaml", "labels.txt", "model.keras", "best.keras", "best.json",
           "history.json", "training_curves.png")


def _tiny_config(stage, extra=""):
  # conftest's helper (conftest modules are not importable by name here).
  import importlib.util
  here = os.path.dirname(os.path.abspath(__file__))
  spec = importlib.util.spec_from_file_location("training_conftest",
                                                os.path.join(here, "conftest.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.tiny_config(stage, extra)


def test_warmup_cosine_and_step_schedules_match_hand_computation():
  cosine = optimization.WarmupDecay(peak=0.1, total_steps=10, warmup_steps=2, decay="cosine")
  # Warm-up: linear, reaching the peak at the end of step warmup_steps - 1.
  assert float(cosine(0)) == pytest.approx(0.05)
  assert float(cosine(1)) == pytest.approx(0.1)
  for s in (2, 5, 9):
    p = (s - 2) / 8
    assert float(cosine(s)) == pytest.approx(0.05 * (1 + math.cos(math.pi * p)), rel=1e-5)
  step = optimization.WarmupDecay(peak=0.1, total_steps=10, warmup_steps=0, decay="step",
                                  boundaries=[3, 6], decay_rate=0.1)
  assert [round(float(step(s)), 6) for s in (0, 2, 3, 5, 6, 9)] == [0.1, 0.1, 0.01, 0.01,
                                                                    0.001, 0.001]
  again = optimization.WarmupDecay.from_config(cosine.get_config())
  assert float(again(5)) == pytest.approx(float(cosine(5)))


def test_bad_directories_give_clear_errors(data_dir, tmp_path):
  cfg = _tiny_config("rgb")
  with pytest.raises(TrainingError, match="--data_dir .*missing.* is not a directory"):
    trainer.train(cfg, "rgb", str(tmp_path / "m"), str(tmp_path / "missing"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(TrainingError, match=r"empty.*not found.*prepare_hmdb51"):
    trainer.train(cfg, "rgb", str(tmp_path / "m"), str(empty))
  # Any split number >= 1 (a session layout has one per session); one the data
  # directory lacks is named before any work.
  with pytest.raises(TrainingError, match="--split must be a split number >= 1"):
    trainer.train(cfg, "rgb", str(tmp_path / "m"), data_dir, split=0)
  with pytest.raises(TrainingError, match="split 4 was not converted"):
    trainer.train(cfg, "rgb", str(tmp_path / "m"), data_dir, split=4)
  with pytest.raises(TrainingError, match="--teacher_dir is required"):
    trainer.train(_tiny_config("student"), "student", str(tmp_path / "m"), data_dir)
  with pytest.raises(TrainingError, match="--teacher_dir .* has no model.keras"):
    trainer.train(_tiny_config("student"), "student", str(tmp_path / "m"), data_dir,
                  teacher_dir=str(empty))


def test_steps_are_planned_from_the_summary_read_once(data_dir):
  labels, summary = trainer.check_data_dir(data_dir, 1)
  with open(os.path.join(data_dir, "summary.json"), encoding="utf-8") as f:
    assert summary == json.load(f)
  assert labels == open(os.path.join(data_dir, "labels.txt")).read().split()
  # Planned from the dict alone: this data_dir does not exist.
  cfg = _tiny_config("rgb", "train.steps_per_epoch=null,data.batch_size=4,"
                            "data.eval_batch_size=4,data.validation_clips=3")
  counts = {"splits": {"1": {"train": 10, "validation": 3, "test": 5}}}
  steps = trainer._plan_steps(cfg, counts, "/no/such/dir", 1, multi_worker=False)
  assert (steps.steps_per_epoch, steps.validation_subset) == (10 // 4, "validation")
  assert (steps.validation_steps, steps.monitor) == (math.ceil(3 * 3 / 4), "val_accuracy")
  counts["splits"]["1"]["validation"] = 0
  steps = trainer._plan_steps(cfg, counts, "/no/such/dir", 1, multi_worker=False)
  assert (steps.validation_subset, steps.monitor) == ("none", "accuracy")


def test_teacher_stage_writes_every_output(teacher_dir):
  for name in OUTPUTS:
    assert os.path.isfile(os.path.join(teacher_dir, name)), name
  assert os.listdir(os.path.join(teacher_dir, "logs", "train"))
  # Training completed: the resume state is gone.
  assert not os.path.exists(os.path.join(teacher_dir, "backup"))
  model = keras.saving.load_model(os.path.join(teacher_dir, "model.keras"))
  assert model.get_layer("flow") is not None
  assert model.output_shape == (None, 2)
  with open(os.path.join(teacher_dir, "labels.txt")) as f:
    assert f.read().split() == ["move_left", "move_right"]


def test_resume_after_kill_continues_from_the_last_epoch(rgb_run):
  model_dir, info = rgb_run
  # The kill came in epoch 1 (0-based): epoch 0 was backed up and logged.
  assert info["backup_after_kill"] == ["epoch-00001.weights.h5"]
  assert info["history_after_kill"]["epoch"] == [0]
  # The re-run restored epoch 0's state and went on with epoch 1.
  assert info["first_epoch"] == 1
  assert info["iterations_at_start"] == 1  # one step per epoch
  with open(os.path.join(model_dir, "history.json")) as f:
    history = json.load(f)
  assert history["epoch"] == [0, 1]
  assert all(np.isfinite(history["loss"]))
  for name in OUTPUTS:
    assert os.path.isfile(os.path.join(model_dir, name)), name
  assert not os.path.exists(os.path.join(model_dir, "backup"))


def test_student_trains_against_a_frozen_teacher(teacher_dir, data_dir, tmp_path):
  teacher_file = keras.saving.load_model(os.path.join(teacher_dir, "model.keras"))
  before = [w.numpy().copy() for w in teacher_file.weights]
  seen = {}

  class Probe(keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      seen.setdefault("ce_weight", []).append(float(self.model.ce_weight.numpy()))

    def on_train_end(self, logs=None):
      seen["teacher"] = [w.numpy().copy() for w in self.model.teacher.weights]
      seen["student_changed"] = not all(
          np.array_equal(a, b) for a, b in zip(seen["student_before"],
                                               [w.numpy() for w in self.model.student.weights]))

    def on_train_begin(self, logs=None):
      seen["student_before"] = [w.numpy().copy() for w in self.model.student.weights]

  model_dir = str(tmp_path / "student")
  cfg = _tiny_config("student", "train.epochs=2,train.steps_per_epoch=1,data.validation_subset=none,"
                     "distill.mse_warmup_epochs=1,distill.lambda=0.5")
  result = trainer.train(cfg, "student", model_dir, data_dir, teacher_dir=teacher_dir,
                         verbose=0, callbacks=[Probe()])
  # MSE-only warm-up epoch, then CE + lambda * MSE.
  assert seen["ce_weight"] == [0.0, 1.0]
  assert seen["student_changed"]
  assert len(seen["teacher"]) == len(before)
  for a, b in zip(before, seen["teacher"]):
    np.testing.assert_array_equal(a, b)
  assert {"ce_loss", "distill_loss", "accuracy"} <= set(result.history)
  # model.keras is the student alone: RGB in, logits out, no flow layer.
  student = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
  assert "flow" not in [layer.name for layer in student.layers]
  assert student.get_layer("features") is not None
  assert student.input_shape == (None, 4, 16, 16, 3)


def test_twostream_fuses_trained_streams(rgb_run, teacher_dir, data_dir, tmp_path):
  rgb_dir, _ = rgb_run
  model_dir = str(tmp_path / "twostream")
  result = trainer.train(_tiny_config("twostream", "train.epochs=0"), "twostream", model_dir,
                         data_dir, rgb_dir=rgb_dir, flow_dir=teacher_dir, verbose=0)
  assert 0.0 <= result.history["val_accuracy"][0] <= 1.0
  fused = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
  rgb = keras.saving.load_model(os.path.join(rgb_dir, "model.keras"))
  flow = keras.saving.load_model(os.path.join(teacher_dir, "model.keras"))
  clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  expected = (keras.ops.softmax(rgb(clips)) + keras.ops.softmax(flow(clips))) / 2
  np.testing.assert_allclose(keras.ops.softmax(fused(clips)), expected, atol=1e-5)


def _checksums(directory):
  import hashlib  # pylint: disable=g-import-not-at-top
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_finished_run_is_refused_and_left_unchanged(teacher_dir, data_dir):
  import pathlib  # pylint: disable=g-import-not-at-top
  before = _checksums(pathlib.Path(teacher_dir))
  assert "model.keras" in before
  for stage in ("flow", "rgb"):
    with pytest.raises(TrainingError,
                       match=r"--model_dir .* holds a finished run .*--overwrite"):
      trainer.train(_tiny_config(stage), stage, teacher_dir, data_dir, verbose=0)
  assert _checksums(pathlib.Path(teacher_dir)) == before


def test_overwrite_replaces_only_what_training_writes(teacher_dir, data_dir, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / "run"
  shutil.copytree(teacher_dir, model_dir)
  (model_dir / "notes.txt").write_text("mine")
  (model_dir / "logs" / "mine.txt").write_text("mine")
  old_model = (model_dir / "model.keras").read_bytes()
  result = trainer.train(_tiny_config("rgb", "data.validation_subset=none"), "rgb",
                         str(model_dir), data_dir, verbose=0, overwrite=True)
  assert result.stage == "rgb"
  assert (model_dir / "notes.txt").read_text() == "mine"
  assert (model_dir / "logs" / "mine.txt").read_text() == "mine"
  assert (model_dir / "model.keras").read_bytes() != old_model
  assert "stage: rgb" in (model_dir / "config.yaml").read_text()
  # The teacher's best.json (val_accuracy) went; this run (no validation) wrote its own.
  assert json.loads((model_dir / "best.json").read_text())["monitor"] == "accuracy"
  assert len(json.loads((model_dir / "history.json").read_text())["epoch"]) == 1


def test_resume_under_a_changed_config_is_refused(teacher_dir, data_dir, tmp_path):
  import pathlib  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  # An interrupted teacher run: its config.yaml and resume state (backup/).
  model_dir = tmp_path / "killed"
  model_dir.mkdir()
  shutil.copy(os.path.join(teacher_dir, "config.yaml"), model_dir / "config.yaml")
  (model_dir / "backup").mkdir()
  (model_dir / "backup" / "training_metadata.json").write_text("{}")
  before = _checksums(model_dir)
  started = _tiny_config("flow").train.learning_rate
  with pytest.raises(TrainingError) as e:
    trainer.train(_tiny_config("flow", "train.learning_rate=0.375,data.batch_size=3"), "flow",
                  str(model_dir), data_dir, verbose=0)
  message = str(e.value)
  assert "\n" not in message and "interrupted run" in message and "--overwrite" in message
  assert f"train.learning_rate: {started!r} (run) vs 0.375 (now)" in message
  assert "data.batch_size: 2 (run) vs 3 (now)" in message
  with pytest.raises(TrainingError, match=r"stage: 'teacher' \(run\) vs 'rgb' \(now\)"):
    trainer.train(_tiny_config("rgb"), "rgb", str(model_dir), data_dir, verbose=0)
  assert _checksums(pathlib.Path(model_dir)) == before


def test_wrong_stage_input_runs_are_refused(rgb_run, teacher_dir, data_dir, tmp_path):
  rgb_dir, _ = rgb_run
  model_dir = tmp_path / "student"
  with pytest.raises(TrainingError,
                     match=r"--teacher_dir .* holds a rgb run \(config.yaml: stage: rgb\), "
                           r"not a teacher run"):
    trainer.train(_tiny_config("student"), "student", str(model_dir), data_dir,
                  teacher_dir=rgb_dir)
  with pytest.raises(TrainingError, match="--rgb_dir .* holds a teacher run"):
    trainer.train(_tiny_config("twostream", "train.epochs=0"), "twostream", str(model_dir),
                  data_dir, rgb_dir=teacher_dir, flow_dir=rgb_dir)
  assert not model_dir.exists()


def test_min_steps_lengthens_the_epochs_of_a_small_set():
  counts = {"splits": {"1": {"train": 15, "validation": 5, "test": 5}}}
  cfg = _tiny_config("rgb", "train.steps_per_epoch=null,data.batch_size=8,train.epochs=24")
  assert trainer._plan_steps(cfg, counts, "/x", 1, multi_worker=False).steps_per_epoch == 1
  cfg = _tiny_config("rgb", "train.steps_per_epoch=null,data.batch_size=8,train.epochs=24,"
                            "train.min_steps=300")
  # ceil(300 / 24) = 13 steps an epoch: 312 steps, not 24.
  assert trainer._plan_steps(cfg, counts, "/x", 1, multi_worker=False).steps_per_epoch == 13
  # A large set already has more steps than the floor: unchanged.
  counts["splits"]["1"]["train"] = 1000
  assert trainer._plan_steps(cfg, counts, "/x", 1, multi_worker=False).steps_per_epoch == 125
  # An explicit steps_per_epoch wins.
  cfg = _tiny_config("rgb", "train.steps_per_epoch=2,train.min_steps=300")
  assert trainer._plan_steps(cfg, counts, "/x", 1, multi_worker=False).steps_per_epoch == 2


def test_early_stopping_starts_after_the_warm_ups_and_needs_validation():
  counts = {"splits": {"1": {"train": 15, "validation": 5, "test": 5}}}
  cfg = _tiny_config("student", "train.early_stopping_patience=3,train.warmup_epochs=1.5,"
                                "distill.mse_warmup_epochs=4")
  steps = trainer._plan_steps(cfg, counts, "/x", 1, multi_worker=False)
  stop, = trainer._early_stopping(cfg, "student", steps)
  assert isinstance(stop, keras.callbacks.EarlyStopping)
  assert (stop.patience, stop.start_from_epoch, stop.monitor) == (3, 4, "val_accuracy")
  assert stop.restore_best_weights
  stop, = trainer._early_stopping(cfg, "rgb", steps)
  assert stop.start_from_epoch == 2
  assert trainer._early_stopping(_tiny_config("rgb"), "rgb", steps) == []
  counts["splits"]["1"]["validation"] = 0
  steps = trainer._plan_steps(cfg, counts, "/x", 1, multi_worker=False)
  assert trainer._early_stopping(cfg, "rgb", steps) == []


def test_early_stopping_ends_with_the_best_epochs_weights(data_dir, tmp_path):
  cfg = _tiny_config("rgb", "train.epochs=4,train.early_stopping_patience=1,"
                            "train.warmup_epochs=0")
  result = trainer.train(cfg, "rgb", str(tmp_path / "m"), data_dir, verbose=0)
  assert 2 <= len(result.history["val_accuracy"]) <= 4
  # model.keras is the best epoch's model, i.e. best.keras.
  final = keras.saving.load_model(str(tmp_path / "m" / "model.keras"))
  best = keras.saving.load_model(str(tmp_path / "m" / "best.keras"))
  for a, b in zip(final.get_weights(), best.get_weights()):
    np.testing.assert_array_equal(a, b)


def test_micro_batches_accumulate_and_out_of_memory_names_the_flag(data_dir, tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import backend  # pylint: disable=g-import-not-at-top
  seen = {}

  class Record(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      seen["micro_steps"] = seen.get("micro_steps", 0) + 1

    def on_train_end(self, logs=None):
      seen["iterations"] = int(self.model.optimizer.iterations)
      seen["accumulation"] = self.model.optimizer.gradient_accumulation_steps

  cfg = _tiny_config("rgb", "train.micro_batch_size=1,data.validation_subset=none")
  trainer.train(cfg, "rgb", str(tmp_path / "run"), data_dir, verbose=0, callbacks=[Record()])
  # batch 2 in micro-batches of 1: 2 optimizer steps per epoch are 4 micro-steps.
  assert seen == {"micro_steps": 4, "iterations": 2, "accumulation": 2}

  cfg = _tiny_config("rgb", "data.batch_size=8,train.micro_batch_size=8")
  steps = trainer._plan_steps(cfg, {"splits": {"1": {"train": 16, "validation": 0}}}, "", 1,
                              multi_worker=False)
  hint = trainer._memory_hint(cfg, steps, mixed=False)
  for oom in (tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
              type("XlaRuntimeError", (RuntimeError,), {})("RESOURCE_EXHAUSTED: Out of memory")):
    with pytest.raises(backend.OutOfMemoryError) as e:
      with backend.out_of_memory_hint(hint):
        raise oom
    assert "\n" not in str(e.value)
    assert "train.micro_batch_size=4" in str(e.value) and "--mixed_precision" in str(e.value)
  with pytest.raises(RuntimeError, match="other"):
    with backend.out_of_memory_hint(hint):
      raise RuntimeError("other")
  assert backend.use_mixed_precision("auto") is False  # this machine has no GPU


def test_stages_with_tvl1_in_the_graph_fit_without_the_arithmetic_optimizer(
    data_dir, tmp_path, monkeypatch):
  # Grappler's AddOpsRewrite crashes TV-L1's loops at the paper's clip
  # (tsnet_tf/utils/tf_graph.py; the slow test below runs that clip): the
  # trainer runs the fit/evaluate steps of every model with TV-L1 in its graph
  # without it, and leaves the others' Grappler defaults alone.
  from tsnet_tf.utils import tf_graph  # pylint: disable=g-import-not-at-top
  wrapped = []
  real = tf_graph.keras_functions_without_add_ops_rewrite

  def spy(model):
    wrapped.append(model.name)
    real(model)

  monkeypatch.setattr(tf_graph, "keras_functions_without_add_ops_rewrite", spy)
  trainer.train(_tiny_config("flow", "train.steps_per_epoch=1"), "flow", str(tmp_path), data_dir,
                verbose=0)
  assert wrapped == ["flow"]
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  rgb = models.build_rgb_model(2, 4, 16, backbone="light", width=4)
  assert not trainer._computes_tvl1(rgb)  # pylint: disable=protected-access
