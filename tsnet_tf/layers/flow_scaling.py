"""`FlowScaling`: the teacher's flow input, clipped and scaled to [-1, 1]."""

import keras
from keras import layers
from keras import ops


@keras.saving.register_keras_serializable(package="tsnet_tf")
class FlowScaling(layers.Layer):
  """Clips flow to [-bound, bound] pixels and divides by `bound`.

  Input: float `[..., 2]` flow in pixels; output: the same shape in [-1, 1].
  Large displacements are rare and mostly TV-L1 failures; clipping keeps them
  from dominating the first layer (as the usual 20-pixel clip for 224 crops).
  """

  def __init__(self, bound: float = 20.0, **kwargs):
    super().__init__(**kwargs)
    if bound <= 0:
      raise ValueError(f"flow bound must be > 0 pixels, got {bound}")
    self.bound = float(bound)

  def call(self, inputs):
    inputs = ops.cast(inputs, self.compute_dtype)
    return ops.clip(inputs, -self.bound, self.bound) / self.bound

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(bound=self.bound)
    return config
