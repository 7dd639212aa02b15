"""`TVL1Flow`: the teacher's M1 stage, TV-L1 optical flow of a clip as a layer."""

from typing import Any, Dict

import keras
from keras import ops

# `from ... import` reaches the module: the package attribute `tvl1` is the
# function (the public contract), which shadows the submodule.
from tsnet_tf.flow.tvl1 import DEFAULT_DIVERGENCE_KERNEL
from tsnet_tf.flow.tvl1 import DEFAULT_FORWARD_KERNEL
from tsnet_tf.flow.tvl1 import DEFAULT_GRADIENT_KERNEL
from tsnet_tf.flow.tvl1 import PRESETS
from tsnet_tf.flow.tvl1 import resolve_params
from tsnet_tf.flow.tvl1 import tvl1
from tsnet_tf.flow.tvl1 import tvl1_flops

_SCALARS = ("tau", "lambda_", "theta")
_KERNELS = {
    "gradient_kernel": DEFAULT_GRADIENT_KERNEL,
    "forward_kernel": DEFAULT_FORWARD_KERNEL,
    "divergence_kernel": DEFAULT_DIVERGENCE_KERNEL,
}


@keras.saving.register_keras_serializable(package="tsnet_tf")
class TVL1Flow(keras.layers.Layer):
  """TV-L1 optical flow between consecutive frames of a clip.

  All T-1 frame pairs of every clip go through `tsnet_tf.flow.tvl1` as one
  batch of `B * (T-1)` pairs.

  Compilation: in a model, Keras compiles the layer with the model. Called
  eagerly on arrays outside a model, the layer gets `tvl1`'s compiled path
  (XLA / `jax.jit`, cached per clip shape), so a one-off
  `TVL1Flow("fast")(clip)` is as fast as inside a model after the first
  call. A learnable layer called eagerly runs op by op (its parameters are
  variables); compile it by putting it in a model or under
  `tf.function`/`jax.jit`.

  With `learnable=True` (TVNet-style, Fan et al. 2018), tau, lambda, theta
  and the gradient, forward-difference and divergence kernels become
  trainable weights initialised to the TV-L1 values, so the flow stage can
  be fine-tuned end to end. With `learnable=False` (default) the layer has
  no weights.

  Args:
    preset: `"accurate"` or `"fast"`, see `tsnet_tf.flow.PRESETS`.
    learnable: make tau, lambda, theta and the kernels trainable.
    **kwargs: TV-L1 parameter overrides (`num_iters`, `num_warps`,
      `median_size`, ...: any key of the preset) and the usual Layer kwargs
      (`name`, `dtype`, `trainable`).

  Input: float `[B, T, H, W, C]` clip, C = 1 or 3, values in [0, 255],
    T >= 2, static H and W.
  Output: float32 `[B, T-1, H, W, 2]`; entry t is the flow from frame t to
    frame t+1 in pixels (x, y), OpenCV convention.
  """

  def __init__(self, preset: str = "accurate", learnable: bool = False,
               **kwargs):
    overrides = {k: kwargs.pop(k) for k in list(kwargs)
                 if k in PRESETS.get(preset, {}) or k == "lambda"}
    super().__init__(**kwargs)
    # Validates preset and overrides now rather than at the first call.
    self._params = resolve_params(preset, **overrides)
    self.preset = preset
    self.learnable = bool(learnable)
    self.overrides = {("lambda_" if k == "lambda" else k): v
                      for k, v in overrides.items()}
    # Filled by build() when learnable: tvl1 takes these variables in place
    # of the preset's numbers.
    self._learned: Dict[str, Any] = {}

  def build(self, input_shape):
    if self.learnable:
      for name in _SCALARS:
        self._learned[name] = self.add_weight(
            name=name, shape=(),
            initializer=keras.initializers.Constant(float(self._params[name])),
            constraint=keras.constraints.NonNeg(), dtype="float32")
      for name, value in _KERNELS.items():
        self._learned[name] = self.add_weight(
            name=name, shape=(len(value), len(value[0])),
            initializer=keras.initializers.Constant(value), dtype="float32")
    self.built = True

  def _check(self, shape, dtype):
    name = self.name
    if len(shape) != 5:
      raise ValueError(f"{name}: input must be a clip [B, T, H, W, C], got "
                       f"shape {tuple(shape)} (rank {len(shape)})")
    if shape[1] is not None and shape[1] < 2:
      raise ValueError(f"{name}: a clip needs T >= 2 frames for flow, got "
                       f"T={shape[1]} (shape {tuple(shape)})")
    if shape[-1] not in (1, 3):
      raise ValueError(f"{name}: input must have 1 or 3 channels, got shape "
                       f"{tuple(shape)}")
    if None in tuple(shape[1:4]):
      raise ValueError(f"{name}: T, H and W must be static, got shape "
                       f"{tuple(shape)}")
    if dtype is not None and not keras.backend.is_float_dtype(
        keras.backend.standardize_dtype(dtype)):
      raise TypeError(f"{name}: input must be float with values in [0, 255]"
                      f", got dtype {dtype}; cast uint8 frames first")

  def call(self, clip):
    self._check(tuple(clip.shape), clip.dtype)
    _, steps, height, width, channels = clip.shape
    clip = ops.cast(clip, "float32")
    # Pairs (t, t+1) of every clip, flattened to one batch.
    first = ops.reshape(clip[:, :-1], (-1, height, width, channels))
    second = ops.reshape(clip[:, 1:], (-1, height, width, channels))
    params = dict(self.overrides)
    params.update(self._learned)
    flow = tvl1(first, second, self.preset, **params)
    return ops.reshape(flow, (-1, steps - 1, height, width, 2))

  def compute_output_shape(self, input_shape):
    self._check(tuple(input_shape), None)
    b, t, h, w, _ = input_shape
    return (b, t - 1, h, w, 2)

  def compute_output_spec(self, clip):
    self._check(tuple(clip.shape), clip.dtype)
    return keras.KerasTensor(self.compute_output_shape(clip.shape),
                             dtype="float32")

  def compute_flops(self, input_shape) -> int:
    """Approximate operations of one call for one clip (batch excluded).

    Args:
      input_shape: `(B, T, H, W, C)` or `(T, H, W, C)` with static T, H, W.
    """
    steps, height, width = tuple(input_shape)[-4:-1]
    return (steps - 1) * tvl1_flops(height, width, self.preset,
                                    **self.overrides)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(preset=self.preset, learnable=self.learnable)
    config.update(self.overrides)
    return config
