"""Tests for tsnet_tf/config.py: YAML <-> dataclasses, stages, overrides, errors."""

import os

import pytest
import yaml

from tsnet_tf import config as config_lib
from tsnet_tf.training import run_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(tmp_path, text, name="c.yaml"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_round_trip_through_yaml(tmp_path):
  cfg = config_lib.load_config(None, stage="student", params_override="distill.lambda=2.5")
  path = str(tmp_path / "out.yaml")
  config_lib.save_config(cfg, path)
  again = config_lib.load_config(path)
  assert again == cfg
  assert again.distill.lambda_ == 2.5
  # The YAML key is `lambda`, not the Python field name.
  assert yaml.safe_load(open(path))["distill"]["lambda"] == 2.5


def test_stage_overrides_and_command_line_order(tmp_path):
  path = _write(tmp_path, """
train: {epochs: 5, learning_rate: 0.1}
stages:
  student: {train: {epochs: 7}}
  teacher: {model: {backbone: light}}
""")
  assert config_lib.load_config(path, "rgb").train.epochs == 5
  assert config_lib.load_config(path, "student").train.epochs == 7
  # `flow` is an alias of `teacher`.
  flow = config_lib.load_config(path, "flow")
  assert flow.stage == "teacher" and flow.model.backbone == "light"
  # The command line wins over the file's stage section ...
  cfg = config_lib.load_config(path, "student", "train.epochs=9,train.learning_rate=0.05")
  assert cfg.train.epochs == 9 and cfg.train.learning_rate == 0.05
  # ... and can itself target a stage.
  cfg = config_lib.load_config(path, "student", "stages.student.train.epochs=11")
  assert cfg.train.epochs == 11
  assert config_lib.load_config(path, "rgb", "stages.student.train.epochs=11").train.epochs == 5


def test_override_forms(tmp_path):
  dotted = config_lib.parse_overrides("a.b=1,c=x,d.e=[1, 2],f=5e-4")
  assert dotted == {"a": {"b": 1}, "c": "x", "d": {"e": [1, 2]}, "f": "5e-4"}
  assert config_lib.parse_overrides("{train: {epochs: 3}}") == {"train": {"epochs": 3}}
  path = _write(tmp_path, "train:\n  epochs: 4\n", "o.yaml")
  assert config_lib.parse_overrides(path) == {"train": {"epochs": 4}}
  # YAML 1.1 reads 5e-4 as a string; float fields still accept it.
  cfg = config_lib.load_config(None, "rgb", "train.weight_decay=5e-4,train.decay_epochs=[3,6]")
  assert cfg.train.weight_decay == pytest.approx(5e-4)
  assert cfg.train.decay_epochs == [3, 6]


def test_unknown_key_names_key_and_file(tmp_path):
  path = _write(tmp_path, "train:\n  epoch: 3\n", "bad.yaml")
  with pytest.raises(config_lib.ConfigError, match=r"bad\.yaml.*unknown key 'train\.epoch'"):
    config_lib.load_config(path, "rgb")
  path = _write(tmp_path, "stages:\n  student:\n    distill: {lamda: 1}\n", "bad2.yaml")
  with pytest.raises(config_lib.ConfigError, match=r"bad2\.yaml.*'distill\.lamda'"):
    config_lib.load_config(path, "rgb")
  with pytest.raises(config_lib.ConfigError, match=r"--params_override.*'model\.widht'"):
    config_lib.load_config(None, "rgb", "model.widht=3")
  with pytest.raises(config_lib.ConfigError, match=r"'train\.epochs' must be int"):
    config_lib.load_config(None, "rgb", "train.epochs=abc")
  with pytest.raises(config_lib.ConfigError, match=r"unknown stage"):
    config_lib.load_config(None, "teachr")
  with pytest.raises(config_lib.ConfigError, match=r"does not exist"):
    config_lib.load_config(str(tmp_path / "missing.yaml"), "rgb")


@pytest.mark.parametrize("name", ["hmdb51.yaml", "hmdb51_paper.yaml", "synthetic.yaml"])
def test_shipped_configs_resolve_for_every_stage(name):
  path = os.path.join(REPO, "configs", name)
  for stage in config_lib.STAGES:
    cfg = config_lib.load_config(path, stage)
    assert cfg.stage == stage
  if name.startswith("hmdb51"):
    cfg = config_lib.load_config(path, "rgb")
    # The paper's protocol.
    assert (cfg.data.num_frames, cfg.data.crop_size) == (25, 224)
    assert cfg.model.backbone == "r3d18"
    assert (cfg.train.learning_rate, cfg.train.momentum) == (0.1, 0.9)
    assert cfg.train.weight_decay == pytest.approx(5e-4)


def test_bad_values_name_the_key():
  with pytest.raises(config_lib.ConfigError, match=r"'train\.lr_schedule' must be one of"):
    config_lib.load_config(None, "rgb", "train.lr_schedule=linear")
  with pytest.raises(config_lib.ConfigError, match=r"'distill\.lambda' must be >= 0"):
    config_lib.load_config(None, "student", "distill.lambda=-1")
  # Half-open ranges: the low end is allowed, the high end is not.
  assert config_lib.load_config(None, "rgb", "train.momentum=0.0").train.momentum == 0.0
  with pytest.raises(config_lib.ConfigError,
                     match=r"'train\.momentum' must be in \[0\.0, 1\.0\), got 1\.0"):
    config_lib.load_config(None, "rgb", "train.momentum=1.0")
  with pytest.raises(config_lib.ConfigError, match=r"'model\.dropout' must be in \[0\.0, 1\.0\)"):
    config_lib.load_config(None, "rgb", "model.dropout=-0.1")


def test_frame_stride_default_override_bound_and_run_dir(tmp_path):
  assert config_lib.load_config(None, "rgb").data.frame_stride == 1
  cfg = config_lib.load_config(None, "rgb", "data.frame_stride=3")
  assert cfg.data.frame_stride == 3
  with pytest.raises(config_lib.ConfigError, match=r"'data\.frame_stride' must be >= 1"):
    config_lib.load_config(None, "rgb", "data.frame_stride=0")
  assert run_dir.run_frame_stride(str(tmp_path)) == 1  # no config.yaml: 1
  config_lib.save_config(cfg, str(tmp_path / run_dir.CONFIG_FILE))
  assert run_dir.run_frame_stride(str(tmp_path)) == 3


def test_light_stem_choice_reaches_the_model():
  from tsnet_tf.training import stages  # pylint: disable=g-import-not-at-top
  cfg = config_lib.load_config(None, "rgb", "model.backbone=light,model.width=4,model.stem=3d,"
                               "data.num_frames=4,data.crop_size=16")
  model = stages.build_rgb(cfg, 3)
  assert tuple(model.get_layer("stem_conv").kernel_size) == (3, 3, 3)
  with pytest.raises(config_lib.ConfigError, match=r"'model\.stem' must be one of"):
    config_lib.load_config(None, "rgb", "model.stem=2d")


def test_config_differences_name_dotted_keys():
  a = config_lib.load_config(None, "rgb", "train.learning_rate=0.5")
  b = config_lib.load_config(None, "rgb", "train.learning_rate=0.375,model.width=8")
  assert config_lib.config_differences(a, a) == []
  assert config_lib.config_differences(a, b) == [("model.width", None, 8),
                                                  ("train.learning_rate", 0.5, 0.375)]
  c = config_lib.load_config(None, "teacher", "train.learning_rate=0.5")
  assert [k for k, _, _ in config_lib.config_differences(a, c)] == ["stage"]


def test_backbone_choices_match_the_builders():
  # config.py owns the lists (it does not import Keras); the builders use them.
  from tsnet_tf.models import backbones  # pylint: disable=g-import-not-at-top
  choices = config_lib._CHOICES  # pylint: disable=protected-access
  assert choices[("model", "backbone")] == config_lib.BACKBONES
  assert config_lib.R3D_DEPTHS == tuple(sorted(backbones.R3D_BLOCKS))


def test_fusion_key_choices_default_and_error():
  # config.py owns the rules (no Keras import); LateFusion uses them.
  assert config_lib._CHOICES[("model", "fusion")] == config_lib.FUSION_MODES  # pylint: disable=protected-access
  assert config_lib.load_config(None, "twostream").model.fusion == "mean"
  cfg = config_lib.load_config(None, "twostream", "stages.twostream.model.fusion=geometric")
  assert cfg.model.fusion == "geometric"
  for name in ("synthetic", "synthetic_table1", "table1", "hmdb51"):
    path = os.path.join(REPO, "configs", f"{name}.yaml")
    assert config_lib.load_config(path, "twostream").model.fusion == "mean"
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.load_config(None, "twostream", "model.fusion=max")
  assert str(e.value) == ("--params_override: 'model.fusion' must be one of "
                          "mean, geometric, got 'max'")


def test_flow_stages_need_two_frames():
  config_lib.load_config(None, "rgb", "data.num_frames=1")
  for stage in ("teacher", "student", "twostream"):
    with pytest.raises(config_lib.ConfigError, match="'data.num_frames' must be >= 2"):
      config_lib.load_config(None, stage, "data.num_frames=1")
