"""Tests for tsnet_tf/training/stages.py: what each stage builds, compiles and exports."""

import keras
import numpy as np
import pytest

from tsnet_tf import config as config_lib
from tsnet_tf.data import clip_spec
from tsnet_tf.layers import clip_contract
from tsnet_tf.training import stages
from tsnet_tf.training.errors import TrainingError

OVERRIDE = ("data.num_frames=4,data.crop_size=16,model.backbone=light,model.width=4,"
            "distill.mse_warmup_epochs=2")


def _cfg(stage, extra=""):
  return config_lib.load_config(None, stage, OVERRIDE + ("," + extra if extra else ""))


def _spec():
  return clip_spec.ClipSpec(4, 16, 2, clip_spec.StoredFrames.from_conversion({}))


def test_make_stage_picks_the_class_and_its_input_runs():
  cfg = _cfg("rgb")
  assert type(stages.make_stage("rgb", cfg, 3)) is stages.RgbStage
  assert type(stages.make_stage("teacher", cfg, 3)) is stages.TeacherStage
  student = stages.make_stage("student", cfg, 3, teacher_dir="T", rgb_dir="R")
  assert student.input_runs() == [("T", "--teacher_dir", ("teacher",))]
  fused = stages.make_stage("twostream", cfg, 3, rgb_dir="R", flow_dir="F")
  assert [r[:2] for r in fused.input_runs()] == [("R", "--rgb_dir"), ("F", "--flow_dir")]
  assert stages.make_stage("rgb", cfg, 3).input_runs() == []
  with pytest.raises(TrainingError, match="unknown stage 'flowz'"):
    stages.make_stage("flowz", cfg, 3)


def test_rgb_stage_builds_compiles_and_exports_with_the_contract():
  stage = stages.make_stage("rgb", _cfg("rgb"), 3, spec=_spec(), labels=["a", "b", "c"])
  model = stage.build()
  assert model is stage.model and model.name == "rgb"
  assert model.input_shape == (None, 4, 16, 16, 3) and model.output_shape == (None, 3)
  kwargs = stage.compile_kwargs()
  assert kwargs["metrics"] == ["accuracy"] and kwargs["loss"].get_config()["from_logits"]
  assert stage.callbacks() == []
  exported = stage.export()
  assert exported is not model and clip_contract.from_model(exported) == (_spec(), ["a", "b", "c"])
  x = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(exported(x), model(x), atol=1e-6)
  # Without a spec nothing is attached.
  bare = stages.make_stage("rgb", _cfg("rgb"), 3)
  bare.build()
  assert clip_contract.from_model(bare.export()) is None


def test_twostream_checks_its_flags_before_building():
  with pytest.raises(TrainingError, match="go together"):
    stages.make_stage("twostream", _cfg("twostream"), 3, rgb_dir="R").build()
  with pytest.raises(TrainingError, match="train.epochs > 0"):
    stages.make_stage("twostream", _cfg("twostream", "train.epochs=0"), 3).build()


def test_twostream_fuses_by_the_configs_rule():
  for rule in ("mean", "geometric"):
    cfg = _cfg("twostream", f"train.epochs=1,model.fusion={rule}")
    model = stages.make_stage("twostream", cfg, 3).build()
    assert model.get_layer("late_fusion").mode == rule


def test_student_stage_trains_eq7_and_exports_the_student(tmp_path):
  teacher = stages.build_rgb(_cfg("rgb"), 3, "flow")
  keras.Model(teacher.input, teacher.output, name="flow").save(str(tmp_path / "model.keras"))
  stage = stages.make_stage("student", _cfg("student"), 3, teacher_dir=str(tmp_path))
  model = stage.build()
  assert stage.compile_kwargs() == {}  # Eq. 7 is the model's own loss
  assert [type(c).__name__ for c in stage.callbacks()] == ["MseWarmup"]
  decaying = stages.make_stage("student", _cfg("student", "distill.lambda_schedule=cosine,"
                                               "train.epochs=6"), 3, teacher_dir=str(tmp_path))
  warmup, decay = decaying.callbacks()
  assert (type(warmup).__name__, decay.start_epoch, decay.epochs) == ("MseWarmup", 2, 6)
  with pytest.raises(config_lib.ConfigError, match="lambda_schedule"):
    _cfg("student", "distill.lambda_schedule=linear")
  assert stage.export() is model.student and model.student.name == "student"
  with pytest.raises(TrainingError, match="--teacher_dir is required"):
    stages.make_stage("student", _cfg("student"), 3).build()
  with pytest.raises(TrainingError, match="has 3 classes but the data directory has 5"):
    stages.make_stage("student", _cfg("student"), 5, teacher_dir=str(tmp_path)).build()


@pytest.mark.parametrize("name", ["hmdb51.yaml", "hmdb51_paper.yaml"])
def test_hmdb51_configs_build_every_stage(name):
  """configs/hmdb51.yaml (the validated Eq. 7) and hmdb51_paper.yaml (the paper's literal
  one) differ only in `distill`; each stage's R3D-18 model builds, and the student
  trains a step with the file's feature layer, projection and weighting."""
  import os  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  path = os.path.join(repo, "configs", name)
  # 9 frames: as at 25, the teacher's T - 1 flows leave its maps one time step short of
  # the student's after the strides (5 vs 4 at stage 2): a map layer would not align.
  tiny = ("data.num_frames=9,data.crop_size=32,model.width=4,"
          "model.flow.overrides={num_scales: 1, num_warps: 1, num_iters: 2}")
  full = config_lib.load_config(path, "student")
  other = config_lib.load_config(os.path.join(repo, "configs", "hmdb51_paper.yaml" if name ==
                                              "hmdb51.yaml" else "hmdb51.yaml"), "student")
  assert {k.split(".")[0] for k, _, _ in config_lib.config_differences(full, other)} == {
      "distill"}
  assert (full.model.backbone, full.data.num_frames, full.data.crop_size) == ("r3d18", 25, 224)
  assert full.data.batch_size == 32 and full.train.micro_batch_size == 16
  if name == "hmdb51.yaml":
    assert (full.distill.feature_layer, full.distill.projection,
            full.distill.confidence_weighting) == ("features", "always", True)
  else:
    assert (full.distill.feature_layer, full.distill.lambda_, full.distill.projection,
            full.distill.confidence_weighting) == ("features", 1.0, "auto", False)
  built = {}
  for stage_name in ("rgb", "teacher"):
    stage = stages.make_stage(stage_name, config_lib.load_config(path, stage_name, tiny), 3)
    built[stage_name] = stage.build()
    assert built[stage_name].output_shape == (None, 3)
  cfg = config_lib.load_config(path, "student", tiny)
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  student = stages.build_rgb(cfg, 3, "student")
  student.get_layer(cfg.distill.feature_layer)  # the layer exists in R3D-18
  model = models.DistillationModel(
      student, built["teacher"], distill_weight=cfg.distill.lambda_,
      feature_layer=cfg.distill.feature_layer, projection=cfg.distill.projection,
      confidence_weighting=cfg.distill.confidence_weighting, name="distillation")
  model.build((None, 9, 32, 32, 3))
  # Why not the stage-3 map of the validation studies: its time steps differ.
  with pytest.raises(ValueError, match="positions"):
    models.DistillationModel(stages.build_rgb(cfg, 3, "s2"), built["teacher"],
                             feature_layer="stage3_block2_out", projection="always")
  model.compile(optimizer="sgd", run_eagerly=True)  # eager: no tracing of TV-L1 + 2 R3D-18
  x = np.random.default_rng(0).uniform(0, 255, (2, 9, 32, 32, 3)).astype(np.float32)
  logs = model.train_on_batch(x, np.array([0, 1]), return_dict=True)
  assert np.isfinite(logs["loss"])
  fused = models.build_two_stream(built["rgb"], built["teacher"], fusion=cfg.model.fusion)
  assert fused.output_shape == (None, 3)


def test_teacher_subtracts_the_median_flow_in_graph_and_from_stored_flow():
  # model.flow.subtract_median lives in the "flow_scaling" layer, so the stored-flow
  # network (which starts there) and the RGB-input teacher agree.
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  teacher = stages.build_flow(_cfg("teacher", "model.flow.subtract_median=true"), 3)
  assert teacher.get_layer("flow_scaling").subtract_median
  assert not stages.build_flow(_cfg("teacher"), 3).get_layer("flow_scaling").subtract_median
  clip = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  flow = keras.Model(teacher.input, teacher.get_layer("flow").output)(clip)
  np.testing.assert_allclose(models.flow_network(teacher)(flow), teacher(clip),
                             rtol=1e-5, atol=1e-5)
  # A pan added to every pixel's flow changes nothing after the subtraction.
  panned = np.asarray(flow) + np.array([1.5, -0.5], "float32")
  np.testing.assert_allclose(models.flow_network(teacher)(panned),
                             models.flow_network(teacher)(flow), rtol=1e-4, atol=1e-4)
