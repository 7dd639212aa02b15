"""A TFLite-friendly twin of a 3D CNN: 3D convolutions and pools as 2D ops.

TFLite's `CONV_3D` kernel is float32-only (so neither int8 nor dynamic-range
quantisation shrinks or speeds it) and `MaxPool3D`/`AvgPool3D` are not
builtins at all. `edge_model(model)` clones a functional Keras model, replacing

  Conv3D        -> EdgeConv3D: the `kt` temporal taps are stacked into channels
                   and one Conv2D runs on every output frame (exact: the kernel
                   `[kt, kh, kw, C, O]` is reshaped to `[kh, kw, kt*C, O]`);
                   a `kt x 1 x 1` kernel is one `(kt, 1)` Conv2D over
                   `[B, T, H*W, C]`;
  TimeDistributed(Conv2D) -> FrameConv2D (tsnet_tf.layers): time folded into
                   the batch, one Conv2D for all frames (Keras 3's
                   TimeDistributed unrolls a static time axis into T
                   convolutions and a stack: T times the ops and tensors, and
                   a small network's int8 file is then mostly that per-op
                   overhead; our backbones use FrameConv2D directly, this is
                   for models built with TimeDistributed);
  MaxPooling3D  -> EdgeMaxPooling3D: spatial 2D pool, then temporal 2D pool;
  AveragePooling3D -> EdgeAveragePooling3D: same (separable, exact for
                   `valid` and for TF's `same`, which excludes padding);
  GlobalAveragePooling3D -> EdgeGlobalAveragePooling3D: reshape + 1-axis mean;

and folds every inference-mode BatchNormalization that is the only consumer of
a convolution into that convolution's kernel and bias (the BN becomes an
Identity): TFLite folds BN only when it directly follows a conv op, and the
reshapes above stand between them; an unfolded BN is a MUL and an ADD per
layer, which int8 pays with requantisation. Weights are copied (or folded), so
the twin computes the same function (up to float rounding) with ops that all
have int8 TFLite kernels. The twin is a
conversion-time artefact; it is never the model users train or load. Its
layers are `tsnet_tf/layers/edge.py`'s.
"""

import keras
import numpy as np

from tsnet_tf.layers.edge import EdgeAveragePooling3D
from tsnet_tf.layers.edge import EdgeConv3D
from tsnet_tf.layers.edge import EdgeFoldedBatchNorm
from tsnet_tf.layers.edge import EdgeGlobalAveragePooling3D
from tsnet_tf.layers.edge import EdgeMaxPooling3D
from tsnet_tf.layers.frame_conv import FrameConv2D


def _swappable(layer) -> bool:
  cfg = layer.get_config()
  if cfg.get("data_format", "channels_last") != "channels_last":
    return False
  if type(layer) is keras.layers.Conv3D:  # pylint: disable=unidiomatic-typecheck
    return (tuple(cfg["dilation_rate"]) == (1, 1, 1) and cfg.get("groups", 1) == 1
            and cfg["padding"] in ("same", "valid"))
  return True


_TWINS = {
    keras.layers.Conv3D: EdgeConv3D,
    keras.layers.MaxPooling3D: EdgeMaxPooling3D,
    keras.layers.AveragePooling3D: EdgeAveragePooling3D,
    keras.layers.GlobalAveragePooling3D: EdgeGlobalAveragePooling3D,
}


def _is_frame_conv(layer) -> bool:
  # pylint: disable=unidiomatic-typecheck
  return (type(layer) is keras.layers.TimeDistributed
          and type(layer.layer) is keras.layers.Conv2D
          and layer.layer.get_config().get("data_format") in (None, "channels_last"))


def _clone_layer(layer):
  if _is_frame_conv(layer):
    config = layer.layer.get_config()
    config["name"] = layer.name
    return FrameConv2D.from_config(config)
  twin = _TWINS.get(type(layer))
  if twin is not None and _swappable(layer):
    return twin.from_config(layer.get_config())
  return layer.__class__.from_config(layer.get_config())


def _is_linear_conv(layer) -> bool:
  # pylint: disable=unidiomatic-typecheck
  conv = layer.layer if _is_frame_conv(layer) else layer
  if type(conv) not in (keras.layers.Conv2D, keras.layers.Conv3D, FrameConv2D):
    return False
  return conv.get_config().get("activation") in (None, "linear")


def _foldable_batch_norms(model: keras.Model):
  """`{id(conv): bn}` for BatchNormalizations on the channel axis whose input is
  a linear convolution used nowhere else (both called once)."""
  pairs = {}
  for layer in _graph_layers(model):
    if type(layer) is not keras.layers.BatchNormalization:  # pylint: disable=unidiomatic-typecheck
      continue
    nodes = layer._inbound_nodes  # pylint: disable=protected-access
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
      continue
    x = nodes[0].input_tensors[0]
    if layer.axis not in (-1, len(x.shape) - 1):
      continue
    conv = x._keras_history.operation  # pylint: disable=protected-access
    if (_is_linear_conv(conv) and len(conv._inbound_nodes) == 1  # pylint: disable=protected-access
        and len(conv._outbound_nodes) == 1):  # pylint: disable=protected-access
      pairs[id(conv)] = layer
  return pairs


def _folded_weights(conv, bn):
  """Kernel and bias of `conv` followed by inference-mode `bn`, as one conv."""
  conv = conv.layer if _is_frame_conv(conv) else conv
  kernel = np.asarray(conv.kernel)
  bias = np.asarray(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1], kernel.dtype)
  var = np.asarray(bn.moving_variance)
  gamma = np.asarray(bn.gamma) if bn.scale else np.ones_like(var)
  beta = np.asarray(bn.beta) if bn.center else np.zeros_like(var)
  scale = gamma / np.sqrt(var + bn.epsilon)
  return [kernel * scale, (bias - np.asarray(bn.moving_mean)) * scale + beta]


def _graph_layers(model: keras.Model):
  """The layers of `model`'s graph, nested models' layers in place of them.

  Input layers are left out: they hold no weights, and `clone_model` renames
  an unnamed one.
  """
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from _graph_layers(layer)
    elif not isinstance(layer, keras.layers.InputLayer):
      yield layer


def edge_model(model: keras.Model) -> keras.Model:
  """Returns the TFLite-friendly twin of a functional/sequential Keras model.

  Nested functional and sequential models are cloned recursively. Layers that
  are not swapped (including custom layers that hold Conv3D sublayers) are
  re-created from their config; weights are then copied layer by layer (a
  folded BatchNormalization's into its convolution), so the twin computes the
  same function as `model` in inference mode.

  Args:
    model: a built functional or sequential Keras model with static input
      shape `[B, T, H, W, C]`.

  Returns:
    A new `keras.Model` with the same inputs, outputs, layer names and weights.
  """
  folds = _foldable_batch_norms(model)
  folded_bns = {id(bn) for bn in folds.values()}

  def clone(layer):
    if id(layer) in folded_bns:
      return EdgeFoldedBatchNorm(name=layer.name)
    twin_layer = _clone_layer(layer)
    if id(layer) in folds and not twin_layer.use_bias:
      config = twin_layer.get_config()
      config["use_bias"] = True
      twin_layer = type(twin_layer).from_config(config)
    return twin_layer

  twin = keras.models.clone_model(model, clone_function=clone, recursive=True)
  originals, twins = list(_graph_layers(model)), list(_graph_layers(twin))
  if len(originals) != len(twins):
    raise ValueError(f"edge twin has {len(twins)} layers, the model {len(originals)}")
  for old, new in zip(originals, twins):
    if old.name != new.name:
      raise ValueError(f"edge twin layer order differs: {old.name!r} vs {new.name!r}")
    if id(old) in folds:
      new.set_weights(_folded_weights(old, folds[id(old)]))
    elif id(old) not in folded_bns:
      new.set_weights(old.get_weights())
  return twin


def count_swapped(model: keras.Model) -> int:
  """Number of Edge* and FrameConv2D layers in `model` (nested models included)."""
  n = 0
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if isinstance(layer, tuple(_TWINS.values()) + (FrameConv2D,)):
      n += 1
  return n


def unswapped_3d_layers(model: keras.Model):
  """Layers left TFLite-unfriendly after `edge_model` (3D ops, per-frame unrolling)."""
  names = []
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if type(layer) in _TWINS or _is_frame_conv(layer):
      names.append(layer.name)
  return names
