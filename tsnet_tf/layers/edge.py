"""The layers of the TFLite-friendly twin of a 3D CNN (`export.edge.edge_model`).

3D convolutions and pools as 2D ops that all have int8 TFLite kernels:
`EdgeConv3D` (temporal taps stacked into channels, one Conv2D per output
frame), `EdgeMaxPooling3D` / `EdgeAveragePooling3D` (spatial then temporal 2D
pools), `EdgeGlobalAveragePooling3D` (reshape + mean) and
`EdgeFoldedBatchNorm` (the identity left where a BatchNormalization was folded
into its convolution). See `tsnet_tf/export/edge.py` for the conversion.
"""

import keras
from keras import ops

from tsnet_tf.layers.frame_conv import fold_time
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
