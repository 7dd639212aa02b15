"""TemporalDifference: what changed between consecutive frames, inside the RGB model."""

import keras
from keras import ops

MODES = ("differences", "frames_and_differences")


@keras.saving.register_keras_serializable(package="tsnet_tf")
class TemporalDifference(keras.layers.Layer):
  """Frame differences `x[t] - x[t-1]` of a clip, alone or beside the frames.

  A cheap motion signal for an RGB network (TSN's "RGB difference"): what is
  still, the person, the room, the clothes, cancels out, and what moves is
  left. It costs one subtraction per pixel, so a student that uses it still
  needs no optical flow at test time, and it sits inside the model: serving,
  TFLite and predict feed plain RGB frames as before.

  Modes:
    differences: `[B, T, H, W, C] -> [B, T-1, H, W, C]`.
    frames_and_differences: `[B, T, H, W, C] -> [B, T-1, H, W, 2C]`, the
      frames `x[1:]` and their differences `x[1:] - x[:-1]` stacked in channels.

  Input: float `[B, T, H, W, C]`, T >= 2 (static), any value range (the
  models apply it after their normalisation).
  """

  def __init__(self, mode: str = "differences", **kwargs):
    super().__init__(**kwargs)
    if mode not in MODES:
      raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    self.mode = mode
    self.input_spec = keras.layers.InputSpec(ndim=5)

  def build(self, input_shape):
    if input_shape[1] is not None and input_shape[1] < 2:
      raise ValueError(f"{type(self).__name__} needs at least 2 frames, got {input_shape[1]}")
    super().build(input_shape)

  def call(self, inputs):
    later = inputs[:, 1:]
    diff = later - inputs[:, :-1]
    if self.mode == "differences":
      return diff
    return ops.concatenate([later, diff], axis=-1)

  def compute_output_shape(self, input_shape):
    b, t, h, w, c = input_shape
    t = None if t is None else t - 1
    return (b, t, h, w, c if self.mode == "differences" else 2 * c)

  def get_config(self):
    return {**super().get_config(), "mode": self.mode}
