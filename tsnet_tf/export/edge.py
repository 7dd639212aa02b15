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
conversion-time artefact; it is never the model users train or load.
"""

import keras
import numpy as np
from keras import ops

from tsnet_tf.layers.frame_conv import fold_time
from tsnet_tf.layers.frame_conv import FrameConv2D
from tsnet_tf.layers.frame_conv import unfold_time


def _same_pad(size: int, kernel: int, stride: int):
  """TF `same` padding of one dimension: (before, after, output size)."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2, out


def _temporal_windows(x, kernel: int, stride: int, padding: str):
  """Stacks the temporal taps of a 1D sliding window into the channel axis.

  Args:
    x: float `[B, T, H, W, C]` with static T and C.
    kernel: temporal window length.
    stride: temporal stride.
    padding: `valid` or `same` (zeros).

  Returns:
    `[B, T_out, H, W, kernel * C]`; channel block `k` holds tap `k`.
  """
  t = x.shape[1]
  if padding == "same":
    before, after, t_out = _same_pad(t, kernel, stride)
    if before or after:
      x = ops.pad(x, [[0, 0], [before, after], [0, 0], [0, 0], [0, 0]])
  else:
    t_out = (t - kernel) // stride + 1
  if kernel == 1 and stride == 1:
    return x
  taps = [x[:, k:k + stride * (t_out - 1) + 1:stride] for k in range(kernel)]
  return taps[0] if kernel == 1 else ops.concatenate(taps, axis=-1)


@keras.saving.register_keras_serializable(package="tsnet_tf")
class EdgeConv3D(keras.layers.Conv3D):
  """`keras.layers.Conv3D` computed with one 2D convolution per output frame.

  Same config and weights as `Conv3D` (a drop-in twin); only `call` differs.
  Supports `channels_last`, groups = 1 and dilation 1 (what `edge_model`
  checks before swapping a layer in).

  Input: float32 `[B, T, H, W, C]`, static T, H, W, C.
  Output: float32 `[B, T', H', W', filters]`, as `Conv3D`.
  """

  def call(self, inputs):
    kt, kh, kw = self.kernel_size
    st, sh, sw = self.strides
    c = inputs.shape[-1]
    if (kh, kw, sh, sw) == (1, 1, 1, 1):
      return self._temporal_call(inputs)
    x = _temporal_windows(inputs, kt, st, self.padding)
    t_out = x.shape[1]
    # [kt, kh, kw, C, O] -> [kh, kw, kt*C, O], tap-major like the stacked input.
    kernel = ops.reshape(ops.transpose(self.kernel, (1, 2, 0, 3, 4)),
                         (kh, kw, kt * c, self.filters))
    y = ops.conv(fold_time(x), kernel, strides=(sh, sw), padding=self.padding)
    y = unfold_time(y, t_out)
    return self._finish(y)

  def _temporal_call(self, inputs):
    """A `kt x 1 x 1` convolution as one `(kt, 1)` Conv2D over `[B, T, H*W, C]`.

    Exact (the spatial kernel and strides are 1, so `same` pads only time),
    and one op instead of pad + `kt` slices + concat: the int8 flatbuffer of
    the light (2+1)D backbone is mostly fixed per-op and per-tensor overhead,
    which this halves.
    """
    _, t, h, w, c = inputs.shape
    x = ops.reshape(inputs, (-1, t, h * w, c))
    kernel = ops.reshape(self.kernel, (self.kernel_size[0], 1, c, self.filters))
    y = ops.conv(x, kernel, strides=(self.strides[0], 1), padding=self.padding)
    return self._finish(ops.reshape(y, (-1, y.shape[1], h, w, self.filters)))

  def _finish(self, y):
    if self.use_bias:
      y = y + self.bias
    if self.activation is not None:
      y = self.activation(y)
    return y


def _separable_pool(x, pool_size, strides, padding, pool_fn):
  """A 3D pool as a spatial 2D pool followed by a temporal 2D pool."""
  pt, ph, pw = pool_size
  st, sh, sw = strides
  t = x.shape[1]
  if (ph, pw, sh, sw) != (1, 1, 1, 1):
    x = unfold_time(pool_fn(fold_time(x), (ph, pw), (sh, sw), padding), t)
  if (pt, st) != (1, 1):
    _, h, w, c = x.shape[1:]
    y = pool_fn(ops.reshape(x, (-1, t, h * w, c)), (pt, 1), (st, 1), padding)
    x = ops.reshape(y, (-1, y.shape[1], h, w, c))
  return x


@keras.saving.register_keras_serializable(package="tsnet_tf")
class EdgeMaxPooling3D(keras.layers.MaxPooling3D):
  """`keras.layers.MaxPooling3D` as two 2D max pools (`channels_last`).

  Input: float32 `[B, T, H, W, C]` (static T, H, W, C); output as MaxPooling3D.
  """

  def call(self, inputs):
    return _separable_pool(inputs, self.pool_size, self.strides, self.padding,
                           ops.max_pool)


@keras.saving.register_keras_serializable(package="tsnet_tf")
class EdgeAveragePooling3D(keras.layers.AveragePooling3D):
  """`keras.layers.AveragePooling3D` as two 2D average pools (`channels_last`).

  Input: float32 `[B, T, H, W, C]` (static T, H, W, C); output as
  AveragePooling3D.
  """

  def call(self, inputs):
    return _separable_pool(inputs, self.pool_size, self.strides, self.padding,
                           ops.average_pool)


@keras.saving.register_keras_serializable(package="tsnet_tf")
class EdgeGlobalAveragePooling3D(keras.layers.GlobalAveragePooling3D):
  """`GlobalAveragePooling3D` as reshape + a mean over one axis.

  Input: float32 `[B, T, H, W, C]`; output `[B, C]` (or `[B, 1, 1, 1, C]`
  with `keepdims`).
  """

  def call(self, inputs):
    c = inputs.shape[-1]
    y = ops.mean(ops.reshape(inputs, (-1, inputs.shape[1] * inputs.shape[2] *
                                      inputs.shape[3], c)), axis=1)
    return ops.reshape(y, (-1, 1, 1, 1, c)) if self.keepdims else y


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


@keras.saving.register_keras_serializable(package="tsnet_tf")
class EdgeFoldedBatchNorm(keras.layers.Layer):
  """Where a BatchNormalization was before `edge_model` folded it into its conv.

  Input and output: any tensor, unchanged.
  """

  def call(self, inputs, training=None, mask=None):  # pylint: disable=unused-argument
    # The arguments of the BatchNormalization call the cloned graph replays.
    return inputs

  def compute_output_shape(self, input_shape):
    return input_shape


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
