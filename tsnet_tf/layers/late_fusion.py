"""`LateFusion`: the two-stream model's (and `evaluate --fuse`'s) fusion of class scores."""

import math

import keras
from keras import layers
from keras import ops

from tsnet_tf import config


@keras.saving.register_keras_serializable(package="tsnet_tf")
class LateFusion(layers.Layer):
  """Fuses the class distributions of N classifiers; returns log-probabilities.

  Input: a list of N float `[B, K]` logits (any float dtype; computed in
  float32). Output: float32 `[B, K]` log-probabilities, so `exp` sums to one
  and `softmax(output)` is the fused distribution itself: argmax,
  cross-entropy and the serving graph's softmax all work unchanged.

  Modes:
    mean: `log(mean_i softmax(l_i))`, the arithmetic mean of the streams'
      probabilities (the classic two-stream rule). A stream that is
      confident carries the average, even when it is confidently wrong.
    geometric: `log_softmax(mean_i log_softmax(l_i))`, the normalised
      geometric mean (a product of experts). A class gets mass only if every
      stream gives it some, so a stream sure that a class is wrong vetoes it
      (e.g. flow ruling out the motion direction RGB guessed).

  Args:
    mode: one of `tsnet_tf.config.FUSION_MODES`.
    **kwargs: `keras.layers.Layer` arguments (name, ...).

  Raises:
    ValueError: an unknown `mode`.
  """

  def __init__(self, mode: str = "mean", **kwargs):
    super().__init__(**kwargs)
    if mode not in config.FUSION_MODES:
      raise ValueError(
          f"unknown fusion mode {mode!r}; expected one of: {', '.join(config.FUSION_MODES)}")
    self.mode = mode

  def call(self, inputs):
    log_probs = ops.stack(
        [ops.log_softmax(ops.cast(x, "float32"), axis=-1) for x in inputs],
        axis=0)
    if self.mode == "geometric":
      return ops.log_softmax(ops.mean(log_probs, axis=0), axis=-1)
    # log(mean p) = logsumexp(log p) - log N, stable for confident streams.
    return ops.logsumexp(log_probs, axis=0) - math.log(len(inputs))

  def compute_output_shape(self, input_shape):
    return input_shape[0]

  def get_config(self):
    config = super().get_config()
    config.update(mode=self.mode)
    return config
