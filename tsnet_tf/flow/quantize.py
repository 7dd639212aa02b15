"""The 8-bit quantisation of optical flow (denseflow's), for images and records.

One owner for both sides: the dataset writers (`data/flow_extraction.py`:
rawframes JPEGs, the TFRecords' stored flow) quantise with `flow_to_uint8`;
the readers (`data/stored_flow.py` in tf.data, tests) dequantise with
`uint8_to_flow` / `uint8_to_flow_tf`.
"""

import numpy as np


def flow_to_uint8(flow: np.ndarray, bound: float) -> np.ndarray:
  """denseflow's quantisation: clip to +-bound, map linearly to 0..255.

  Args:
    flow: float `[..., 2]` in px.
    bound: clip value in px, > 0.

  Returns:
    uint8, same shape; 0 px -> 128, -bound -> 0, +bound -> 255.
  """
  scaled = 255.0 * (np.clip(flow, -bound, bound) + bound) / (2.0 * bound)
  return np.round(scaled).astype(np.uint8)


def uint8_to_flow(image: np.ndarray, bound: float) -> np.ndarray:
  """Inverse of `flow_to_uint8` (to within bound/255 px): float32 px."""
  return (image.astype(np.float32) * (2.0 * bound / 255.0)
          - bound).astype(np.float32)


def uint8_to_flow_tf(image, bound):
  """`uint8_to_flow` in the TF graph (the tf.data pipeline's stored flow).

  Args:
    image: uint8 or float tensor of quantised values in [0, 255] (a float
      input may be a bilinear resize of the uint8 values: the map is linear).
    bound: the quantisation's bound in px (float or float scalar tensor).

  Returns:
    float32 tensor, same shape, px.
  """
  # TensorFlow only when the graph version is called: the writers and the
  # numpy readers import this module without it (JAX/PyTorch backends).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  bound = tf.cast(bound, tf.float32)
  return tf.cast(image, tf.float32) * (2.0 * bound / 255.0) - bound
