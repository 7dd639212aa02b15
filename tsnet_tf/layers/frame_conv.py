"""FrameConv2D: one 2D convolution applied to every frame of a clip."""

import keras
from keras import ops


def fold_time(x):
  """`[B, T, H, W, C]` -> `[B*T, H, W, C]` (T, H, W, C static)."""
  return ops.reshape(x, (-1,) + tuple(x.shape[2:]))


def unfold_time(x, t: int):
  """`[B*T, H, W, C]` -> `[B, T, H, W, C]`."""
  return ops.reshape(x, (-1, t) + tuple(x.shape[1:]))


@keras.saving.register_keras_serializable(package="tsnet_tf")
class FrameConv2D(keras.layers.Conv2D):
  """`TimeDistributed(Conv2D(...))` as one batched Conv2D over all frames.

  `[B, T, H, W, C] -> [B*T, H, W, C] -> Conv2D -> [B, T, H', W', F]`. Same
  constructor arguments, weights (kernel `[kh, kw, C, F]`) and function as the
  wrapped `Conv2D`; `channels_last` only.

  Why not `TimeDistributed`: Keras 3 unrolls a static time axis into T
  convolutions and a stack, so the graph has T times the ops. Folding time
  into the batch makes one larger convolution: the light backbone's training
  step on 8 clips of 8 x 64 x 64 takes 217 ms instead of 299 ms on 2 CPU cores
  (benchmarks/bench_frame_conv.py; 1.8x on a GPU with JAX), and its TFLite
  flatbuffer has one CONV_2D per layer instead of T.

  Input: float `[B, T, H, W, C]` with static T, H, W, C.
  Output: float `[B, T, H', W', filters]`.
  """

  def __init__(self, filters, kernel_size, **kwargs):
    if kwargs.get("data_format", "channels_last") not in (None, "channels_last"):
      raise ValueError(f"{type(self).__name__} supports data_format='channels_last' only")
    super().__init__(filters, kernel_size, **kwargs)
    self.input_spec = keras.layers.InputSpec(ndim=5)

  def build(self, input_shape):
    super().build((None,) + tuple(input_shape[2:]))
    self.input_spec = keras.layers.InputSpec(ndim=5, axes={-1: input_shape[-1]})

  def call(self, inputs, mask=None):  # pylint: disable=unused-argument
    # `mask` only because a cloned TimeDistributed graph node passes it.
    y = super().call(fold_time(inputs))
    return unfold_time(y, inputs.shape[1])

  def compute_output_shape(self, input_shape):
    if len(input_shape) == 4:  # Conv2D.build asks for one frame's shape
      return super().compute_output_shape(input_shape)
    frame = super().compute_output_shape((None,) + tuple(input_shape[2:]))
    return (input_shape[0], input_shape[1]) + tuple(frame[1:])
