"""`FlowScaling`: the teacher's flow input, clipped and scaled to [-1, 1]."""

import keras
from keras import layers
from keras import ops


@keras.saving.register_keras_serializable(package="tsnet_tf")
class FlowScaling(layers.Layer):
  """Clips flow to [-bound, bound] pixels and divides by `bound`.

  Input: float `[B, T, H, W, 2]` flow in pixels; output: the same shape in
  [-1, 1]. Large displacements are rare and mostly TV-L1 failures; clipping
  keeps them from dominating the first layer (as the usual 20-pixel clip for
  224 crops).

  With `subtract_median`, each frame's median flow (per component, over the
  frame) is subtracted first: the motion most of the frame shares, which on a
  hand-held, head-worn or panning camera is the camera's own (as in dense
  trajectories' camera-motion removal). Only what moves against the scene is
  left; a still camera's median is ~0, so its flow is unchanged.
  """

  def __init__(self, bound: float = 20.0, subtract_median: bool = False, **kwargs):
    super().__init__(**kwargs)
    if bound <= 0:
      raise ValueError(f"flow bound must be > 0 pixels, got {bound}")
    self.bound = float(bound)
    self.subtract_median = bool(subtract_median)

  def call(self, inputs):
    inputs = ops.cast(inputs, self.compute_dtype)
    if self.subtract_median:
      inputs = inputs - ops.median(inputs, axis=(-3, -2), keepdims=True)
    return ops.clip(inputs, -self.bound, self.bound) / self.bound

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(bound=self.bound, subtract_median=self.subtract_median)
    return config
