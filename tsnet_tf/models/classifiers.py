"""Classifier builders: RGB network (baseline and student M3), teacher (M1 + M2),
two-stream late fusion. (Parameter / FLOP counting: `flops.py`.)

All classifiers take float32 RGB clips `[B, T, S, S, 3]` with values in
[0, 255], normalise inside themselves, and output logits `[B, num_classes]`
(no softmax). Their pooled feature is the output of the layer named
`"features"` (`[B, D]`), the F of Eq. 7.
"""

from typing import Any, Dict, Optional, Sequence

import keras
from keras import layers

from tsnet_tf.layers.flow_scaling import FlowScaling
from tsnet_tf.layers.late_fusion import LateFusion
from tsnet_tf.layers.temporal_difference import TemporalDifference
from tsnet_tf.layers.tvl1_flow import TVL1Flow
from tsnet_tf.models import backbones

# Kinetics-400 RGB statistics (torchvision's video models), for inputs in [0, 1].
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def video_normalization(mean: Sequence[float] = KINETICS_MEAN,
                        std: Sequence[float] = KINETICS_STD,
                        name: str = "normalize") -> layers.Rescaling:
  """A layer mapping pixels in [0, 255] to `(x / 255 - mean) / std` per channel.

  A built-in `Rescaling` (scale `1 / (255 std)`, offset `-mean / std`), so a
  saved RGB model needs no custom object to load, in Keras, TF Serving or
  TFLite. Input and output: float `[..., C]`, C = len(mean).
  """
  if len(mean) != len(std):
    raise ValueError(f"mean {mean} and std {std} differ in length")
  if min(std) <= 0:
    raise ValueError(f"std must be positive, got {std}")
  return layers.Rescaling(
      scale=[1.0 / (255.0 * s) for s in std],
      offset=[-m / s for m, s in zip(mean, std)], name=name)


def _resolve_width(backbone: str, width: Optional[int],
                   width_multiplier: float) -> float:
  """`width` (channels of the first stage) wins over `width_multiplier`."""
  if width is None:
    return width_multiplier
  base = (backbones.LIGHT_WIDTHS[0] if backbone.lower() == "light"
          else backbones.R3D_WIDTHS[0])
  if width <= 0:
    raise ValueError(f"width must be > 0 channels, got {width}")
  return width / base


def _head(features, num_classes, dropout_rate, weight_decay):
  x = layers.Dropout(dropout_rate, name="dropout")(features)
  regularizer = (keras.regularizers.L2(weight_decay / 2.0)
                 if weight_decay else None)
  # float32 logits so softmax/CE stay accurate under mixed precision.
  return layers.Dense(num_classes, kernel_regularizer=regularizer,
                      dtype="float32", name="logits")(x)


def _check_common(num_classes, num_frames, crop_size, min_frames=1):
  if num_classes < 1:
    raise ValueError(f"num_classes must be >= 1, got {num_classes}")
  if num_frames < min_frames:
    raise ValueError(f"num_frames must be >= {min_frames}, got {num_frames}")
  if crop_size < 8:
    raise ValueError(f"crop_size must be >= 8 pixels, got {crop_size}")


def build_rgb_model(num_classes: int,
                    num_frames: int,
                    crop_size: int,
                    backbone: str = "r3d18",
                    width_multiplier: float = 1.0,
                    width: Optional[int] = None,
                    dropout_rate: float = 0.5,
                    weight_decay: float = 0.0,
                    name: str = "rgb",
                    rgb_input: str = "frames",
                    **backbone_kwargs) -> keras.Model:
  """RGB clip classifier: the `rgb` baseline and the student (M3).

  Args:
    num_classes: K.
    num_frames: T.
    crop_size: S.
    backbone: "r3d18" or "light" (see `backbones.apply_backbone`).
    width_multiplier: channel multiplier of the backbone.
    width: channels of the first stage (R3D: 64, light: 16); if given,
      overrides `width_multiplier`.
    dropout_rate: dropout between "features" and the logits.
    weight_decay: L2 on kernels with gradient `weight_decay * w`; 0 to leave
      decay to the optimizer.
    name: model name (distinct names are needed to fuse two models).
    rgb_input: `frames` (the backbone sees the clip), `differences` or
      `frames_and_differences` (`layers.TemporalDifference` after the
      normalisation: the backbone sees T - 1 steps, as the teacher's flow).
    **backbone_kwargs: depth, blocks_per_stage, widths, feature_dim,
      stem_pool, forwarded to the backbone.

  Returns:
    Functional `keras.Model`: float32 `[B, T, S, S, 3]` in [0, 255] ->
    float32 logits `[B, K]`; layer "features" gives `[B, D]`.
  """
  _check_common(num_classes, num_frames, crop_size,
                min_frames=1 if rgb_input == "frames" else 2)
  clip = keras.Input((num_frames, crop_size, crop_size, 3), name="clip")
  x = video_normalization()(clip)
  if rgb_input != "frames":
    x = TemporalDifference(rgb_input, name="temporal_difference")(x)
  features = backbones.apply_backbone(
      x, backbone,
      width_multiplier=_resolve_width(backbone, width, width_multiplier),
      weight_decay=weight_decay, **backbone_kwargs)
  logits = _head(features, num_classes, dropout_rate, weight_decay)
  return keras.Model(clip, logits, name=name)


def build_teacher(num_classes: int,
                  num_frames: int,
                  crop_size: int,
                  backbone: str = "r3d18",
                  flow_preset: str = "fast",
                  flow_overrides: Optional[Dict[str, Any]] = None,
                  flow_bound: float = 20.0,
                  flow_subtract_median: bool = False,
                  width_multiplier: float = 1.0,
                  width: Optional[int] = None,
                  dropout_rate: float = 0.5,
                  weight_decay: float = 0.0,
                  name: str = "flow",
                  **backbone_kwargs) -> keras.Model:
  """Teacher (M1 + M2), also the `flow` baseline: RGB clip -> TV-L1 -> 3D CNN.

  The flow is computed inside the graph on the same (augmented) clip the
  student sees; nothing is stored on disk.

  Args:
    num_classes, num_frames, crop_size: K, T (>= 2), S.
    backbone, width_multiplier, width, dropout_rate, weight_decay,
      **backbone_kwargs: as `build_rgb_model`; the backbone sees 2 channels
      and T - 1 frames.
    flow_preset: `tsnet_tf.layers.TVL1Flow` preset ("fast" or "accurate").
    flow_overrides: TV-L1 parameter overrides passed to the layer.
    flow_bound: flows are clipped to [-bound, bound] pixels, then / bound.
    flow_subtract_median: subtract each frame's median flow first (camera
      motion; `FlowScaling`).
    name: model name.

  Returns:
    Functional `keras.Model`: float32 `[B, T, S, S, 3]` in [0, 255] ->
    float32 logits `[B, K]`; layer "flow" outputs `[B, T-1, S, S, 2]` pixels,
    layer "features" `[B, D]`.
  """
  _check_common(num_classes, num_frames, crop_size, min_frames=2)

  clip = keras.Input((num_frames, crop_size, crop_size, 3), name="clip")
  # TV-L1 in float32 even under a mixed precision policy: its iterations
  # accumulate small updates that float16 would lose.
  flow = TVL1Flow(preset=flow_preset, dtype="float32", name="flow",
                  **dict(flow_overrides or {}))(clip)
  x = FlowScaling(flow_bound, subtract_median=flow_subtract_median, name="flow_scaling")(flow)
  features = backbones.apply_backbone(
      x, backbone,
      width_multiplier=_resolve_width(backbone, width, width_multiplier),
      weight_decay=weight_decay, **backbone_kwargs)
  logits = _head(features, num_classes, dropout_rate, weight_decay)
  return keras.Model(clip, logits, name=name)


def build_two_stream(rgb_model: keras.Model, flow_model: keras.Model,
                     name: str = "twostream", fusion: str = "mean") -> keras.Model:
  """Late fusion of two classifiers' softmax probabilities (`LateFusion`).

  Args:
    rgb_model: classifier on RGB clips (e.g. `build_rgb_model`).
    flow_model: classifier on the same clips (e.g. `build_teacher`).
    name: model name.
    fusion: `LateFusion` mode, one of `config.FUSION_MODES`: "mean" (the classic
      rule) or "geometric".

  Returns:
    `keras.Model`: float32 `[B, T, S, S, 3]` in [0, 255] -> float32 `[B, K]`
    log-probabilities of the fused distribution ("mean":
    `log((softmax(rgb) + softmax(flow)) / 2)`; "geometric":
    `log_softmax((log_softmax(rgb) + log_softmax(flow)) / 2)`); these are
    logits in the softmax sense (softmax gives back the fused distribution).
    The two models are nested with their weights shared, under their own
    names.

  Raises:
    ValueError: equal model names, different inputs or class counts, or an
      unknown `fusion`.
  """
  if rgb_model.name == flow_model.name:
    raise ValueError(
        f"both models are named {rgb_model.name!r}; give them distinct names")
  rgb_shape = tuple(rgb_model.input_shape[1:])
  flow_shape = tuple(flow_model.input_shape[1:])
  if rgb_shape != flow_shape:
    raise ValueError(
        f"input shapes differ: rgb {rgb_shape} vs flow {flow_shape}")
  if rgb_model.output_shape[-1] != flow_model.output_shape[-1]:
    raise ValueError(
        f"class counts differ: rgb {rgb_model.output_shape[-1]} vs flow "
        f"{flow_model.output_shape[-1]}")
  clip = keras.Input(rgb_shape, name="clip")
  fused = LateFusion(mode=fusion, name="late_fusion")(
      [rgb_model(clip), flow_model(clip)])
  return keras.Model(clip, fused, name=name)


def feature_and_logits(model: keras.Model,
                       feature_layer: str = "features") -> keras.Model:
  """A model with outputs `(features [B, D], logits [B, K])`, sharing weights.

  Raises:
    ValueError: if `model` has no layer named `feature_layer`.
  """
  try:
    features = model.get_layer(feature_layer).output
  except ValueError as e:
    raise ValueError(
        f"model {model.name!r} has no layer named {feature_layer!r}; "
        "build it with tsnet_tf.models builders") from e
  inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
  return keras.Model(inputs, [features, model.outputs[0]],
                     name=f"{model.name}_features_logits")

