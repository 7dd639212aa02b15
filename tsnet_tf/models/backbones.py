"""3D CNN backbones: R3D (Hara et al. 3D ResNet) and a light (2+1)D network.

Every backbone maps a clip `[B, T, H, W, C]` (C = 3 for RGB, 2 for flow) to a
pooled feature `[B, D]`. The last layer of the pooled path is named
`"features"` (after the optional projection), which is the tensor the Eq. 7
distillation loss compares (docs/design.md).

Two entry points:
  * `apply_backbone(inputs, name, ...)` adds the backbone's layers to a
    functional graph in place, so the classifier stays a flat functional model
    whose `get_layer("features")` works directly;
  * `build_backbone(name, input_channels, ...)` wraps the same layers in a
    standalone `keras.Model` (for inspection, counting, reuse).
"""

from typing import Optional, Sequence

import keras
from keras import layers

from tsnet_tf import config
from tsnet_tf.layers.frame_conv import FrameConv2D

# Blocks per stage of the 3D ResNet with basic blocks, by depth (Hara et al.);
# the depths are `config.R3D_DEPTHS`.
R3D_BLOCKS = dict(zip(config.R3D_DEPTHS, ((1, 1, 1, 1), (2, 2, 2, 2), (3, 4, 6, 3))))
R3D_WIDTHS = (64, 128, 256, 512)

LIGHT_WIDTHS = (16, 32, 64, 128)
LIGHT_BLOCKS = (1, 1, 1, 1)

# PyTorch's BatchNorm defaults (momentum 0.1 there is 0.9 here): moving statistics
# that follow the batch statistics fast enough for short runs on small data.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def _conv_initializer():
  # Kaiming normal with fan_out, as torchvision's video ResNets.
  return keras.initializers.VarianceScaling(
      scale=2.0, mode="fan_out", distribution="untruncated_normal")


def _scaled(width: int, width_multiplier: float) -> int:
  return max(1, int(round(width * width_multiplier)))


def _conv_bn(x, filters, kernel_size, strides, name, regularizer, relu=True):
  """Conv (no bias) -> BatchNorm -> optional ReLU, on `[B, T, H, W, C]`.

  A kernel with no temporal extent (1 x k x k, temporal stride 1) runs as a
  2D convolution over all frames at once (`FrameConv2D`): the same function
  and weights count, but TF's CPU kernel for the input gradient of a strided
  Conv3D is ~20x slower than Conv2D's, which made the light backbone's
  training step 20x its forward pass.
  """
  kernel_size = _triple(kernel_size)
  strides = _triple(strides)
  conv_kwargs = dict(padding="same", use_bias=False,
                     kernel_initializer=_conv_initializer(),
                     kernel_regularizer=regularizer)
  if kernel_size[0] == 1 and strides[0] == 1:
    conv = FrameConv2D(filters, kernel_size[1:], strides=strides[1:],
                       name=f"{name}_conv", **conv_kwargs)
  else:
    conv = layers.Conv3D(filters, kernel_size, strides=strides,
                         name=f"{name}_conv", **conv_kwargs)
  x = conv(x)
  x = layers.BatchNormalization(
      momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
  if relu:
    x = layers.ReLU(name=f"{name}_relu")(x)
  return x


def _triple(value):
  if isinstance(value, int):
    return (value,) * 3
  return tuple(value)


def _shortcut(x, filters, strides, name, regularizer):
  """Identity, or a strided 1x1x1 projection when the shape changes (type B)."""
  if _triple(strides) == (1, 1, 1) and x.shape[-1] == filters:
    return x
  return _conv_bn(x, filters, 1, strides, name, regularizer, relu=False)


def _r3d_basic_block(x, filters, strides, name, regularizer):
  """Basic residual block: two 3x3x3 convolutions and a shortcut."""
  shortcut = _shortcut(x, filters, strides, f"{name}_down", regularizer)
  y = _conv_bn(x, filters, 3, strides, f"{name}_a", regularizer)
  y = _conv_bn(y, filters, 3, 1, f"{name}_b", regularizer, relu=False)
  y = layers.Add(name=f"{name}_add")([shortcut, y])
  return layers.ReLU(name=f"{name}_out")(y)


def _r3d_trunk(x, width_multiplier, depth, blocks_per_stage, stem_pool,
               regularizer, prefix):
  """R3D trunk: 3x7x7 stem, 4 stages of basic blocks; returns the last map."""
  if blocks_per_stage is None:
    if depth not in R3D_BLOCKS:
      raise ValueError(
          f"r3d depth must be one of {sorted(R3D_BLOCKS)}, got {depth!r} "
          "(or pass blocks_per_stage explicitly)")
    blocks_per_stage = R3D_BLOCKS[depth]
  if len(blocks_per_stage) != 4 or min(blocks_per_stage) < 1:
    raise ValueError(
        f"blocks_per_stage must be 4 positive ints, got {blocks_per_stage!r}")
  x = _conv_bn(x, _scaled(64, width_multiplier), (3, 7, 7), (1, 2, 2),
               f"{prefix}stem", regularizer)
  if stem_pool:
    x = layers.MaxPooling3D(3, strides=2, padding="same",
                            name=f"{prefix}stem_pool")(x)
  for stage, (width, blocks) in enumerate(zip(R3D_WIDTHS, blocks_per_stage)):
    filters = _scaled(width, width_multiplier)
    for block in range(blocks):
      # Stages 2-4 halve time and space in their first block (torchvision r3d_18).
      strides = (2, 2, 2) if stage > 0 and block == 0 else (1, 1, 1)
      x = _r3d_basic_block(x, filters, strides,
                           f"{prefix}stage{stage + 1}_block{block + 1}",
                           regularizer)
  return x


def _light_block(x, filters, strides, name, regularizer):
  """(2+1)D residual block: 1x3x3 spatial then 3x1x1 temporal convolution."""
  ts, hs, ws = strides
  shortcut = _shortcut(x, filters, strides, f"{name}_down", regularizer)
  y = _conv_bn(x, filters, (1, 3, 3), (1, hs, ws), f"{name}_spatial",
               regularizer)
  y = _conv_bn(y, filters, (3, 1, 1), (ts, 1, 1), f"{name}_temporal",
               regularizer, relu=False)
  y = layers.Add(name=f"{name}_add")([shortcut, y])
  return layers.ReLU(name=f"{name}_out")(y)


LIGHT_STEMS = ("2plus1d", "3d")


def _light_trunk(x, width_multiplier, blocks_per_stage, widths, regularizer,
                 prefix, stem_type="2plus1d"):
  """Light trunk: a stem and 4 stages of (2+1)D residual blocks."""
  blocks_per_stage = tuple(blocks_per_stage or LIGHT_BLOCKS)
  widths = tuple(widths or LIGHT_WIDTHS)
  if len(blocks_per_stage) != len(widths) or min(blocks_per_stage) < 1:
    raise ValueError(
        f"blocks_per_stage {blocks_per_stage!r} must be positive and match "
        f"widths {widths!r}")
  stem = _scaled(widths[0], width_multiplier)
  if stem_type == "3d":
    # One 3x3x3 conv on the pixels: it can be a spatio-temporally oriented
    # (velocity-tuned) filter, which a spatial conv, ReLU, then temporal conv
    # cannot; small sub-pixel motions are visible only at full resolution.
    x = _conv_bn(x, stem, (3, 3, 3), (1, 2, 2), f"{prefix}stem", regularizer)
  elif stem_type == "2plus1d":
    # A temporal conv already in the stem: motion needs time mixing early.
    x = _conv_bn(x, stem, (1, 3, 3), (1, 2, 2), f"{prefix}stem_spatial",
                 regularizer)
    x = _conv_bn(x, stem, (3, 1, 1), (1, 1, 1), f"{prefix}stem_temporal",
                 regularizer)
  else:
    raise ValueError(f"unknown light stem {stem_type!r}; expected one of {LIGHT_STEMS}")
  for stage, (width, blocks) in enumerate(zip(widths, blocks_per_stage)):
    filters = _scaled(width, width_multiplier)
    for block in range(blocks):
      if block > 0 or stage == 0:
        strides = (1, 1, 1)
      elif stage == 1:
        strides = (1, 2, 2)  # keep full time resolution one stage longer
      else:
        strides = (2, 2, 2)
      x = _light_block(x, filters, strides,
                       f"{prefix}stage{stage + 1}_block{block + 1}",
                       regularizer)
  return x


def apply_backbone(inputs,
                   name: str = "r3d18",
                   width_multiplier: float = 1.0,
                   depth: int = 18,
                   blocks_per_stage: Optional[Sequence[int]] = None,
                   widths: Optional[Sequence[int]] = None,
                   feature_dim: Optional[int] = None,
                   stem_pool: bool = False,
                   stem: str = "2plus1d",
                   weight_decay: float = 0.0,
                   prefix: str = ""):
  """Adds a backbone to a functional graph; returns its pooled features.

  Args:
    inputs: KerasTensor `[B, T, H, W, C]`, float.
    name: "r3d18" (3D ResNet with basic blocks; `depth` picks 10/18/34) or
      "light" ((2+1)D residual network for CPU and edge).
    width_multiplier: scales every stage's channel count.
    depth: R3D depth, one of 10, 18, 34 (ignored by "light").
    blocks_per_stage: explicit blocks per stage; overrides `depth`.
    widths: "light" only: channels per stage before `width_multiplier`
      (default 16, 32, 64, 128).
    feature_dim: if set, a linear Dense projection of the pooled vector to
      this size becomes the "features" layer; otherwise the global average
      pool itself is "features".
    stem_pool: R3D only: 3x3x3 max-pool after the stem (Hara et al.'s
      variant; torchvision's r3d_18 has none).
    stem: "light" only: "2plus1d" (1x3x3 stride-2 conv, then 3x1x1) or "3d"
      (one 3x3x3 conv, spatial stride 2).
    weight_decay: L2 on conv/dense kernels, as `weight_decay / 2 * ||w||^2` so
      the gradient is `weight_decay * w` (PyTorch's SGD convention). 0 = none.
    prefix: prepended to every layer name (to place two backbones in one
      graph).

  Returns:
    KerasTensor `[B, D]` produced by the layer named `prefix + "features"`;
    D = 512 * width_multiplier for R3D, 128 * width_multiplier for "light",
    or `feature_dim`.
  """
  if len(inputs.shape) != 5:
    raise ValueError(
        f"backbone input must be [B, T, H, W, C], got shape {inputs.shape}")
  if width_multiplier <= 0:
    raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
  regularizer = (keras.regularizers.L2(weight_decay / 2.0)
                 if weight_decay else None)
  key = name.lower()
  if key in ("r3d18", "r3d", "r3d10", "r3d34"):
    if key in ("r3d10", "r3d34") and blocks_per_stage is None:
      depth = int(key[3:])
    x = _r3d_trunk(inputs, width_multiplier, depth, blocks_per_stage,
                   stem_pool, regularizer, prefix)
  elif key == "light":
    x = _light_trunk(inputs, width_multiplier, blocks_per_stage, widths,
                     regularizer, prefix, stem)
  else:
    raise ValueError(
        f"unknown backbone {name!r}; expected one of {config.BACKBONES} "
        "(or r3d10, r3d34)")
  if feature_dim:
    x = layers.GlobalAveragePooling3D(name=f"{prefix}pool")(x)
    return layers.Dense(feature_dim, kernel_regularizer=regularizer,
                        name=f"{prefix}features")(x)
  return layers.GlobalAveragePooling3D(name=f"{prefix}features")(x)


def build_backbone(name: str = "r3d18",
                   input_channels: int = 3,
                   num_frames: Optional[int] = None,
                   input_size: Optional[int] = None,
                   **kwargs) -> keras.Model:
  """Builds a standalone backbone model.

  Args:
    name: backbone name, see `apply_backbone`.
    input_channels: C, 3 for RGB and 2 for flow.
    num_frames: T, or None for any.
    input_size: H = W, or None for any.
    **kwargs: forwarded to `apply_backbone` (width_multiplier, depth,
      blocks_per_stage, widths, feature_dim, stem_pool, weight_decay).

  Returns:
    `keras.Model` mapping float32 `[B, T, H, W, C]` to float32 `[B, D]`; its
    last layer is named "features".
  """
  inputs = keras.Input((num_frames, input_size, input_size, input_channels),
                       name="clip")
  features = apply_backbone(inputs, name, **kwargs)
  return keras.Model(inputs, features, name=f"{name}_backbone")


def feature_size(model: keras.Model, layer_name: str = "features") -> int:
  """Returns D of the model's `[B, D]` feature layer."""
  return int(model.get_layer(layer_name).output.shape[-1])

