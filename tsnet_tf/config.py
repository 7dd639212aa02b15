"""Experiment configs: YAML mapped onto nested dataclasses, with overrides.

One YAML file covers every training stage. Its top level has the sections
`data`, `model`, `train`, `distill` and `eval` (one dataclass each) and an
optional `stages` mapping whose entries override those sections for one stage:

  train: {epochs: 30, learning_rate: 0.1}
  stages:
    teacher: {model: {backbone: r3d18}}
    student: {train: {epochs: 40}}

A config is resolved for a stage in this order, later wins:
  dataclass defaults < file < file's `stages.<stage>` < `--params_override`.
Overrides are either `a.b=1,c.d=x` (values parsed as YAML scalars), a YAML
mapping string, or the path of a YAML file. Unknown keys and values of the
wrong type raise `ConfigError` naming the key and the file (or flag) they came
from. The number of classes and their names are not part of a config: they
come from the data directory's `labels.txt`.
"""

import copy
import dataclasses
import os
import typing
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from tsnet_tf.utils import errors
from tsnet_tf.utils.io import atomic_write

STAGES = ("teacher", "student", "rgb", "twostream")
# The choice lists of the model builders, defined here (this module loads no
# Keras, so tools can spell them in --help) and imported by the builders:
# backbones (`models.backbones.build_backbone`), R3D depths, late-fusion rules
# (`layers.LateFusion`, `build_two_stream`, `evaluate --fusion`).
BACKBONES = ("r3d18", "light")
R3D_DEPTHS = (10, 18, 34)
FUSION_MODES = ("mean", "geometric")
# Accepted spellings of a stage on the command line -> canonical name.
STAGE_ALIASES = {"flow": "teacher", "two_stream": "twostream"}


class ConfigError(errors.InputError, ValueError):
  """A config file or override is malformed: unknown key, bad type or value."""


def canonical_stage(stage: str) -> str:
  """Maps a stage name or alias (`flow` -> `teacher`) to its canonical name."""
  name = STAGE_ALIASES.get(stage, stage)
  if name not in STAGES:
    known = ", ".join(STAGES + tuple(STAGE_ALIASES))
    raise ConfigError(f"unknown stage {stage!r}; expected one of: {known}")
  return name


def _yaml_key(f: dataclasses.Field) -> str:
  # Lets a field whose natural name is a Python keyword (`lambda`) keep it in YAML.
  return f.metadata.get("yaml", f.name)


@dataclasses.dataclass
class DataConfig:
  """Input pipeline settings (`tsnet_tf.data.pipeline.make_dataset`).

  Attributes:
    num_frames: frames per clip, T.
    crop_size: square crop side S in pixels; clips are `[B, T, S, S, 3]`.
    batch_size: global training batch size (split over replicas).
    eval_batch_size: global batch size for validation and evaluation.
    validation_subset: subset used for per-epoch validation and best-model
      selection: `validation` (training groups held out by the converter,
      `hmdb51.carve_validation`), never `test`, whose accuracy is reported;
      `none` turns validation and best-model selection off.
    validation_clips: clips per video during validation (1 = centre clip).
    shuffle_seed: seed for shuffling, sampling and augmentation.
    random_flip: random horizontal flips in training. Turn off when a class
      is defined by a horizontal direction (the synthetic move_left /
      move_right / pan_* classes): a flip turns one class into another.
    frame_stride: step between the T frames of a clip (Model Garden's
      `temporal_stride`): 1 = consecutive frames; 2 or 3 cover a longer span
      and make per-step motion larger (the teacher's flow is then between
      frames `frame_stride` apart). Evaluation and export use the same stride.
    color_jitter: training: strength s of one random brightness, contrast and
      saturation change per RGB clip, each factor in [1 - s, 1 + s]; 0 = off.
      Makes clothes, skin and light say less about the class.
    background_mix: training: largest weight of a still frame of another clip
      of the batch blended into each RGB clip; 0 = off. Adds another person or
      room without adding motion, so who and where stop telling the class.
  """
  num_frames: int = 8
  crop_size: int = 64
  batch_size: int = 8
  eval_batch_size: int = 8
  validation_subset: str = "validation"
  validation_clips: int = 1
  shuffle_seed: int = 0
  random_flip: bool = True
  color_jitter: float = 0.0
  background_mix: float = 0.0
  frame_stride: int = 1


@dataclasses.dataclass
class FlowConfig:
  """The teacher's in-graph TV-L1 layer (M1) and flow normalisation.

  Attributes:
    preset: `tsnet_tf.flow.tvl1` preset, `accurate` or `fast`.
    overrides: TV-L1 parameters overriding the preset (e.g. `{warps: 2}`).
    bound: flows are clipped to [-bound, bound] pixels and divided by `bound`
      before entering the flow network (M2).
    source: where the teacher stage's training steps get their flow: `graph`
      (TV-L1 on each clip, in the step) or `stored` (the flow stored in the
      TFRecords by `prepare_hmdb51.py --flow_preset`, whose preset, bound and
      stride must match). Either way the saved teacher is the same model, RGB
      clips in, TV-L1 in the graph.
    subtract_median: subtract each frame's median flow before the bound (the
      camera's own motion on a moving camera; `layers.FlowScaling`).
  """
  preset: str = "fast"
  overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)
  bound: float = 20.0
  source: str = "graph"
  subtract_median: bool = False


@dataclasses.dataclass
class ModelConfig:
  """Classifier architecture (see `tsnet_tf.models`).

  Attributes:
    backbone: `r3d18` (the paper's 3D ResNet, Hara et al.) or `light`.
    depth: R3D depth (10, 18 or 34); ignored by `light`.
    width: channels of the first stage; null = the backbone's own (R3D: 64,
      light: 16).
    feature_dim: if set, the pooled feature is linearly projected to this
      size (the "features" layer that Eq. 7 compares).
    dropout: dropout rate between "features" and the logits.
    stem: `light` only: `2plus1d` (spatial then temporal conv) or `3d` (one
      3x3x3 conv, velocity-tuned filters on the pixels).
    fusion: `twostream` stage only: the late-fusion rule
      (`tsnet_tf.models.LateFusion`), `mean` of the streams' softmax (the
      classic rule) or `geometric` (normalised product: a stream sure that
      a class is wrong vetoes it).
    flow: the teacher's flow layer settings.
    rgb_input: what the rgb and student networks see of their RGB clip:
      `frames`, `differences` (x[t] - x[t-1], `layers.TemporalDifference`:
      what moves, without the still person and room) or
      `frames_and_differences` (both, in channels). Computed inside the
      model, so serving still takes RGB frames and no flow is needed.
  """
  backbone: str = "r3d18"
  depth: int = 18
  width: Optional[int] = None
  feature_dim: Optional[int] = None
  dropout: float = 0.0
  stem: str = "2plus1d"
  rgb_input: str = "frames"
  fusion: str = "mean"
  flow: FlowConfig = dataclasses.field(default_factory=FlowConfig)


@dataclasses.dataclass
class TrainConfig:
  """Optimisation (SGD + momentum, decoupled weight decay, warm-up + decay).

  Attributes:
    epochs: training epochs.
    steps_per_epoch: batches per epoch; null = training videos // batch_size,
      raised to reach `min_steps`.
    min_steps: a floor on the training budget in steps (0 = none): when
      `epochs` epochs of the training set are fewer steps, each epoch gets
      ceil(min_steps / epochs) steps (several passes over the videos), so a
      15-video set trains as long as a 100-video one with the same config.
      The schedule's epochs (warm-up, decay, MSE warm-up) keep their meaning.
    early_stopping_patience: stop when the validation accuracy has not
      improved for this many epochs, and end with the weights of the best
      epoch (model.keras = best.keras); 0 = off. Needs a validation subset.
    validation_steps: validation batches per epoch; null = the whole subset.
    learning_rate: peak learning rate, reached at the end of warm-up.
    momentum: SGD momentum.
    nesterov: Nesterov momentum.
    weight_decay: weight decay coefficient, applied as `weight_decay_mode`.
    weight_decay_mode: `l2` (default; as PyTorch's SGD that the paper's
      R3D-18 protocol used): an L2 penalty on conv/dense kernels whose
      gradient is `weight_decay * w`, so it goes through the momentum buffer.
      `decoupled`: Keras' optimizer decay, after each step
      `w -= learning_rate * weight_decay * w` outside the momentum buffer
      (biases and BatchNorm parameters excluded).
    lr_schedule: `cosine`, `step` or `constant` (after warm-up).
    warmup_epochs: linear warm-up from 0 to `learning_rate` (may be fractional).
    decay_epochs: `step` schedule: epochs at which the rate is multiplied by
      `decay_rate`.
    decay_rate: `step` schedule factor.
    min_lr_ratio: `cosine` schedule: final rate / peak rate.
    seed: seed for weight initialisation and dropout.
    micro_batch_size: clips per forward/backward pass; null = the whole
      `data.batch_size`. When smaller it must divide `data.batch_size`: the
      gradients of `data.batch_size / micro_batch_size` micro-batches are
      averaged before each optimizer step (Keras' `gradient_accumulation_steps`),
      so the effective batch and the learning rate schedule stay those of
      `data.batch_size` while memory is that of the micro-batch (BatchNorm's
      statistics are the micro-batch's). Global, like `data.batch_size`.
    mixed_precision: `auto` (default: on when training on a GPU or TPU, off on
      CPU), true or false: train under the `mixed_float16` policy (GPU, with
      loss scaling) or `mixed_bfloat16` (elsewhere); variables stay float32.
    steps_per_execution: batches per compiled call (speed on accelerators).
    run_eagerly: run the train/test steps eagerly, without tf.function
      (debugging; for a handful of steps it also skips the tracing cost).
  """
  epochs: int = 10
  steps_per_epoch: Optional[int] = None
  min_steps: int = 0
  early_stopping_patience: int = 0
  validation_steps: Optional[int] = None
  learning_rate: float = 0.1
  momentum: float = 0.9
  nesterov: bool = False
  weight_decay: float = 5e-4
  weight_decay_mode: str = "l2"
  lr_schedule: str = "cosine"
  warmup_epochs: float = 1.0
  decay_epochs: List[int] = dataclasses.field(default_factory=list)
  decay_rate: float = 0.1
  min_lr_ratio: float = 0.0
  seed: int = 0
  micro_batch_size: Optional[int] = None
  mixed_precision: Any = "auto"  # true, false or "auto" (checked in _check_values)
  steps_per_execution: int = 1
  run_eagerly: bool = False


@dataclasses.dataclass
class DistillConfig:
  """Eq. 7: L = CE(P_rgb, T) + lambda * ||F_rgb - F_of||^2 (student stage).

  Attributes:
    lambda_: weight of the feature MSE term (`lambda` in YAML).
    mse_warmup_epochs: first epochs trained on the MSE term alone (the paper
      trains the early part of the student on MSE first); 0 = none.
    feature_layer: name of the layer whose output is F (both networks).
    projection: `auto` maps student features to the teacher's channels with a
      trained linear map only when their sizes differ; `always` uses one even
      when they agree (a FitNets-style regressor: the student's features need
      only contain the teacher's, linearly, not equal them, which leaves room
      for what the teacher does not see, e.g. appearance).
    confidence_weighting: weight each clip's MSE by the teacher's softmax
      probability of the true class, so a clip the teacher gets wrong pulls
      the student less.
    logit_weight: weight of a soft-logit term added to Eq. 7 (not in the
      paper): T^2 * KL(teacher's softmax(logits / T) || the student's); 0 = off.
    temperature: T of that term.
    lambda_schedule: `constant` keeps lambda for every epoch (the paper);
      `cosine` decays it from lambda after the warm-up to 0 at the last epoch
      (half a cosine), so the teacher shapes the student's features early and
      the student ends on its own cross-entropy.
  """
  lambda_: float = dataclasses.field(default=1.0, metadata={"yaml": "lambda"})
  mse_warmup_epochs: int = 0
  feature_layer: str = "features"
  projection: str = "auto"
  confidence_weighting: bool = False
  logit_weight: float = 0.0
  temperature: float = 4.0
  lambda_schedule: str = "constant"


@dataclasses.dataclass
class EvalConfig:
  """Evaluation (`tools/evaluate.py`).

  Attributes:
    num_clips: clips per test video; the video's prediction is the mean of
      the clips' softmax.
    subset: subset evaluated.
  """
  num_clips: int = 10
  subset: str = "test"


@dataclasses.dataclass
class ExperimentConfig:
  """Every section, plus per-stage overrides (unresolved) or the stage (resolved)."""
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  stage: Optional[str] = None
  stages: Dict[str, Any] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------
# dict <-> dataclass


def _type_name(tp) -> str:
  return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp, where: str, source: str) -> Any:
  """Checks `value` against the annotation `tp`; converts the few safe cases."""
  origin = typing.get_origin(tp)
  if origin is typing.Union:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if value is None:
      return None
    return _coerce(value, args[0], where, source)
  if dataclasses.is_dataclass(tp):
    if not isinstance(value, Mapping):
      raise ConfigError(f"{source}: '{where}' must be a mapping, got {value!r}")
    return _from_dict(tp, value, where, source)
  if origin in (list, List):
    if not isinstance(value, (list, tuple)):
      raise ConfigError(f"{source}: '{where}' must be a list, got {value!r}")
    (item_tp,) = typing.get_args(tp) or (Any,)
    return [_coerce(v, item_tp, f"{where}[{i}]", source) for i, v in enumerate(value)]
  if origin in (dict, Dict):
    if not isinstance(value, Mapping):
      raise ConfigError(f"{source}: '{where}' must be a mapping, got {value!r}")
    return dict(copy.deepcopy(value))
  if tp is Any:
    return value
  if tp is bool:
    if isinstance(value, bool):
      return value
  elif tp is int:
    if isinstance(value, int) and not isinstance(value, bool):
      return value
  elif tp is float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
    if isinstance(value, str):
      # PyYAML (YAML 1.1) reads `5e-4` as a string; accept any float literal.
      try:
        return float(value)
      except ValueError:
        pass
  elif tp is str:
    if isinstance(value, str):
      return value
  if value is None:
    raise ConfigError(f"{source}: '{where}' may not be null")
  raise ConfigError(
      f"{source}: '{where}' must be {_type_name(tp)}, got {value!r}")


def _from_dict(cls, d: Mapping[str, Any], prefix: str, source: str):
  hints = typing.get_type_hints(cls)
  fields = {_yaml_key(f): f for f in dataclasses.fields(cls)}
  kwargs = {}
  for key, value in d.items():
    where = f"{prefix}.{key}" if prefix else str(key)
    if key not in fields:
      known = ", ".join(sorted(fields))
      raise ConfigError(
          f"{source}: unknown key '{where}' (known keys"
          f"{' in ' + repr(prefix) if prefix else ''}: {known})")
    f = fields[key]
    kwargs[f.name] = _coerce(value, hints[f.name], where, source)
  return cls(**kwargs)


# Keys with a closed set of values; checked when a config is built.
_CHOICES = {
    ("model", "backbone"): BACKBONES,
    ("data", "validation_subset"): ("train", "validation", "test", "none"),
    ("model", "flow", "preset"): ("fast", "accurate"),
    ("model", "flow", "source"): ("graph", "stored"),
    ("model", "stem"): ("2plus1d", "3d"),
    ("model", "rgb_input"): ("frames", "differences", "frames_and_differences"),
    ("model", "fusion"): FUSION_MODES,
    ("train", "lr_schedule"): ("cosine", "step", "constant"),
    ("train", "weight_decay_mode"): ("l2", "decoupled"),
    ("eval", "subset"): ("train", "validation", "test"),
    ("distill", "projection"): ("auto", "always"),
    ("distill", "lambda_schedule"): ("constant", "cosine"),
}
# (low, high): keys that must be >= low, or lie in [low, high) when high is set.
_BOUNDS = {
    ("data", "num_frames"): (1, None), ("data", "crop_size"): (8, None),
    ("data", "batch_size"): (1, None), ("data", "eval_batch_size"): (1, None),
    ("data", "validation_clips"): (1, None), ("data", "frame_stride"): (1, None),
    ("data", "color_jitter"): (0.0, 1.0), ("data", "background_mix"): (0.0, 1.0),
    ("train", "epochs"): (0, None), ("train", "steps_per_epoch"): (1, None),
    ("train", "min_steps"): (0, None), ("train", "early_stopping_patience"): (0, None),
    ("train", "validation_steps"): (1, None), ("train", "learning_rate"): (0.0, None),
    ("train", "weight_decay"): (0.0, None), ("train", "warmup_epochs"): (0.0, None),
    ("train", "steps_per_execution"): (1, None), ("distill", "lambda_"): (0.0, None),
    ("distill", "mse_warmup_epochs"): (0, None), ("distill", "logit_weight"): (0.0, None),
    ("distill", "temperature"): (0.01, None), ("eval", "num_clips"): (1, None),
    ("model", "width"): (1, None), ("model", "feature_dim"): (1, None),
    ("train", "micro_batch_size"): (1, None),
    ("train", "decay_rate"): (0.0, None), ("train", "min_lr_ratio"): (0.0, None),
    # [low, high): what Keras' SGD and Dropout accept.
    ("train", "momentum"): (0.0, 1.0), ("model", "dropout"): (0.0, 1.0),
}
# Stages whose graph computes optical flow, which needs two frames.
_FLOW_STAGES = ("teacher", "student", "twostream")


def _check_values(cfg: ExperimentConfig, source: str) -> None:
  for path, choices in _CHOICES.items():
    value = cfg
    for p in path:
      value = getattr(value, p)
    if value not in choices:
      raise ConfigError(
          f"{source}: '{'.'.join(path)}' must be one of {', '.join(choices)}, got {value!r}")
  for (section_name, name), (low, high) in _BOUNDS.items():
    section = getattr(cfg, section_name)
    value = getattr(section, name)
    if value is None or (not value < low if high is None else low <= value < high):
      continue
    key = _yaml_key(next(f for f in dataclasses.fields(section) if f.name == name))
    bound = f">= {low}" if high is None else f"in [{low}, {high})"
    raise ConfigError(f"{source}: '{section_name}.{key}' must be {bound}, got {value!r}")
  if cfg.model.backbone == "r3d18" and cfg.model.depth not in R3D_DEPTHS:
    raise ConfigError(f"{source}: 'model.depth' must be one of "
                      f"{', '.join(map(str, R3D_DEPTHS))} for backbone r3d18, "
                      f"got {cfg.model.depth!r}")
  if cfg.train.mixed_precision not in (True, False, "auto"):
    raise ConfigError(f"{source}: 'train.mixed_precision' must be true, false or auto, "
                      f"got {cfg.train.mixed_precision!r}")
  micro = cfg.train.micro_batch_size
  if micro is not None and cfg.data.batch_size % micro:
    raise ConfigError(f"{source}: 'train.micro_batch_size' ({micro}) must divide "
                      f"'data.batch_size' ({cfg.data.batch_size}): the optimizer steps once "
                      "per data.batch_size clips")
  if cfg.model.flow.bound <= 0:
    raise ConfigError(f"{source}: 'model.flow.bound' must be > 0 pixels, "
                      f"got {cfg.model.flow.bound!r}")
  if cfg.stage in _FLOW_STAGES and cfg.data.num_frames < 2:
    raise ConfigError(f"{source}: 'data.num_frames' must be >= 2 for the {cfg.stage} stage "
                      f"(its optical flow is between two frames), got {cfg.data.num_frames!r}")


def from_dict(d: Optional[Mapping[str, Any]], source: str = "<dict>") -> ExperimentConfig:
  """Builds an `ExperimentConfig` from a nested mapping (YAML keys).

  Args:
    d: nested mapping; missing keys keep their defaults. None = all defaults.
    source: where `d` came from (a file name), quoted in errors.

  Raises:
    ConfigError: unknown key or wrong value type, naming the key and `source`.
  """
  if d is None:
    d = {}
  if not isinstance(d, Mapping):
    raise ConfigError(f"{source}: a config must be a YAML mapping, got {type(d).__name__}")
  cfg = _from_dict(ExperimentConfig, d, "", source)
  _check_values(cfg, source)
  for stage, section in cfg.stages.items():
    if stage not in STAGES:
      raise ConfigError(
          f"{source}: unknown stage 'stages.{stage}' (known: {', '.join(STAGES)})")
    if "stages" in (section or {}) or "stage" in (section or {}):
      raise ConfigError(f"{source}: 'stages.{stage}' may not contain stages")
    # Validates the stage's keys now so a typo fails before any training starts.
    from_dict(section, f"{source} (stages.{stage})")
  return cfg


def to_dict(cfg: Any) -> Dict[str, Any]:
  """Dataclass -> nested dict with YAML keys (inverse of `from_dict`)."""
  out = {}
  for f in dataclasses.fields(cfg):
    value = getattr(cfg, f.name)
    if dataclasses.is_dataclass(value):
      value = to_dict(value)
    out[_yaml_key(f)] = copy.deepcopy(value)
  return out


def to_yaml(cfg: ExperimentConfig) -> str:
  return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
  out = {}
  for key, value in d.items():
    if isinstance(value, Mapping) and value:
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def config_differences(a: ExperimentConfig, b: ExperimentConfig) -> List[Tuple[str, Any, Any]]:
  """`(dotted key, value in a, value in b)` for every key where `a` and `b` differ.

  Compared as their YAML forms (what `save_config` writes), sorted by key; a
  key missing on one side has the value None there.
  """
  fa = _flatten(yaml.safe_load(to_yaml(a)))
  fb = _flatten(yaml.safe_load(to_yaml(b)))
  return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def save_config(cfg: ExperimentConfig, path: str) -> None:
  """Writes `cfg` as YAML, atomically."""
  with atomic_write(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(to_yaml(cfg))


# ----------------------------------------------------------------------------
# files and overrides


def _deep_merge(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
  out = copy.deepcopy(base)
  for key, value in update.items():
    if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
      out[key] = _deep_merge(out[key], value)
    else:
      out[key] = copy.deepcopy(value)
  return out


def read_yaml(path: str) -> Dict[str, Any]:
  """Reads a YAML mapping; errors name the file."""
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} does not exist")
  try:
    with open(path, "r", encoding="utf-8") as f:
      d = yaml.safe_load(f)
  except yaml.YAMLError as e:
    raise ConfigError(f"{path}: not valid YAML: {e}") from e
  if d is None:
    return {}
  if not isinstance(d, dict):
    raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(d).__name__}")
  return d


def _split_top_level(text: str) -> List[str]:
  # Splits on commas outside brackets so `a.b=[1,2],c=3` keeps its list.
  parts, depth, cur = [], 0, []
  for ch in text:
    if ch in "[{(":
      depth += 1
    elif ch in "]})":
      depth -= 1
    if ch == "," and depth == 0:
      parts.append("".join(cur))
      cur = []
    else:
      cur.append(ch)
  parts.append("".join(cur))
  return [p.strip() for p in parts if p.strip()]


def parse_overrides(text: Optional[str], source: str = "--params_override") -> Dict[str, Any]:
  """Parses an override into a nested dict.

  Args:
    text: `a.b=1,c=x` (dotted keys, YAML scalar values, lists in brackets), a
      YAML mapping (`{train: {epochs: 2}}` or multi-line), or a YAML file path.
      Empty or None -> {}.
    source: name quoted in errors.

  Returns:
    Nested dict, e.g. {"a": {"b": 1}, "c": "x"}.
  """
  if not text or not text.strip():
    return {}
  text = text.strip()
  if os.path.isfile(text):
    return read_yaml(text)
  if text.endswith((".yaml", ".yml")):
    raise ConfigError(f"{source}: override file {text!r} does not exist")
  looks_dotted = "=" in text and not text.lstrip().startswith("{") and (
      ":" not in text.split("=", 1)[0])
  if not looks_dotted:
    try:
      d = yaml.safe_load(text)
    except yaml.YAMLError as e:
      raise ConfigError(f"{source}: not `a.b=v,...` nor valid YAML: {e}") from e
    if not isinstance(d, dict):
      raise ConfigError(
          f"{source}: expected `a.b=v,...`, a YAML mapping or a YAML file, got {text!r}")
    return d
  out: Dict[str, Any] = {}
  for item in _split_top_level(text):
    if "=" not in item:
      raise ConfigError(f"{source}: {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not k for k in key.split(".")):
      raise ConfigError(f"{source}: bad key {key!r} in {item!r}")
    try:
      value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
      raise ConfigError(f"{source}: bad value for {key!r}: {e}") from e
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
      node = node.setdefault(p, {})
      if not isinstance(node, dict):
        raise ConfigError(f"{source}: {key!r} conflicts with another override")
    node[parts[-1]] = value
  return out


def resolve(raw: Mapping[str, Any], stage: Optional[str], overrides: Mapping[str, Any] = None,
            source: str = "<dict>",
            override_source: str = "--params_override") -> ExperimentConfig:
  """Resolves a raw config mapping for `stage`.

  Order (later wins): defaults < `raw` < `raw['stages'][stage]` < `overrides`.
  Overrides may themselves set `stages.<stage>.*`; those apply too.

  Args:
    raw: the file's mapping.
    stage: stage name or alias; None keeps `stages` unresolved.
    overrides: parsed overrides (see `parse_overrides`).
    source: file name, for errors.
    override_source: name of the overrides, for errors.
  """
  overrides = dict(overrides or {})
  from_dict(raw, source)  # Errors name the file, not the merged result.
  from_dict(overrides, override_source)
  merged = _deep_merge(dict(raw), overrides)
  if stage is None:
    return from_dict(merged, source)
  stage = canonical_stage(stage)
  stage_section = (merged.get("stages") or {}).get(stage) or {}
  base = {k: v for k, v in merged.items() if k not in ("stages", "stage")}
  plain_overrides = {k: v for k, v in overrides.items() if k not in ("stages", "stage")}
  resolved = _deep_merge(_deep_merge(base, stage_section), plain_overrides)
  resolved["stage"] = stage
  # Checks that need the stage (flow needs two frames) can fail only here, on the merged values.
  return from_dict(resolved, f"{source} with {override_source}" if overrides else source)


def load_config(path: Optional[str] = None, stage: Optional[str] = None,
                params_override: Optional[str] = None) -> ExperimentConfig:
  """Reads a YAML config file and resolves it for `stage`.

  Args:
    path: YAML file; None = defaults only.
    stage: `teacher` (alias `flow`), `student`, `rgb`, `twostream` or None.
    params_override: see `parse_overrides`.

  Raises:
    ConfigError: missing file, bad YAML, unknown key or bad value; the message
      names the key and the file or flag it came from.
  """
  raw = read_yaml(path) if path else {}
  overrides = parse_overrides(params_override)
  return resolve(raw, stage, overrides, source=path or "<defaults>")


def accumulation_steps(train_cfg: "TrainConfig", batch_size: int) -> int:
  """Micro-batches per optimizer step: `batch_size / train.micro_batch_size` (1: none)."""
  micro = train_cfg.micro_batch_size
  return 1 if not micro or micro >= batch_size else batch_size // micro


def backbone_kwargs(cfg: "ExperimentConfig") -> Dict[str, Any]:
  """The backbone arguments of `tsnet_tf.models` builders that `cfg.model` sets.

  The one translation from config to builder arguments (the trainer and
  benchmarks/bench_train.py both build models from it); weight decay is an L2
  kernel regularizer only in `l2` mode.
  """
  m = cfg.model
  kwargs: Dict[str, Any] = dict(backbone=m.backbone, dropout_rate=m.dropout)
  if m.backbone == "r3d18":
    kwargs["depth"] = m.depth
  else:
    kwargs["stem"] = m.stem
  if m.width is not None:
    kwargs["width"] = m.width
  if m.feature_dim is not None:
    kwargs["feature_dim"] = m.feature_dim
  kwargs["weight_decay"] = (cfg.train.weight_decay
                            if cfg.train.weight_decay_mode == "l2" else 0.0)
  return kwargs
