"""Tests of tsnet_tf/flow/visualize.py (Middlebury colour wheel)."""

import numpy as np
import pytest

from tsnet_tf.flow import flow_to_rgb
from tsnet_tf.flow.visualize import color_wheel
from tsnet_tf.flow.visualize import triplets_figure


def _rgb(u, v, max_flow=1.0):
  return flow_to_rgb(np.array([[[u, v]]], np.float32), max_flow=max_flow)[0, 0]


def test_wheel_has_middlebury_segments():
  wheel = color_wheel()
  assert wheel.shape == (55, 3)
  np.testing.assert_array_equal(wheel[0], [255, 0, 0])     # red
  np.testing.assert_array_equal(wheel[15], [255, 255, 0])  # yellow
  np.testing.assert_array_equal(wheel[21], [0, 255, 0])    # green
  np.testing.assert_array_equal(wheel[25], [0, 255, 255])  # cyan
  np.testing.assert_array_equal(wheel[36], [0, 0, 255])    # blue
  np.testing.assert_array_equal(wheel[49], [255, 0, 255])  # magenta


def test_directions_follow_middlebury_code():
  # Values of Middlebury's computeColor (flowToColor) at unit magnitude.
  # Hand-computed: angle atan2(-v, -u) / pi on the 55-colour wheel.
  np.testing.assert_allclose(_rgb(1, 0), [255, 0, 0], atol=1)      # right
  np.testing.assert_allclose(_rgb(-1, 0), [0, 209, 255], atol=1)   # left
  np.testing.assert_allclose(_rgb(0, 1), [255, 230, 0], atol=1)    # down
  np.testing.assert_allclose(_rgb(0, -1), [88, 0, 255], atol=1)    # up


def test_zero_is_white_and_saturation_grows_with_magnitude():
  np.testing.assert_array_equal(_rgb(0, 0), [255, 255, 255])
  half, full = _rgb(0.5, 0), _rgb(1.0, 0)
  assert half[1] > full[1]  # less saturated: more green in the red
  np.testing.assert_array_equal(_rgb(5, 0, max_flow=1.0), full)


def test_unknown_is_black_and_shapes():
  flow = np.zeros((2, 4, 5, 2), np.float32)
  flow[0, 1, 1] = [1e10, 0]
  flow[1, 2, 2] = [np.nan, 0]
  flow[1, 0, 0] = [3, 4]
  rgb = flow_to_rgb(flow)
  assert rgb.shape == (2, 4, 5, 3) and rgb.dtype == np.uint8
  np.testing.assert_array_equal(rgb[0, 1, 1], [0, 0, 0])
  np.testing.assert_array_equal(rgb[1, 2, 2], [0, 0, 0])
  with pytest.raises(ValueError, match=r"\[\.\.\., H, W, 2\]"):
    flow_to_rgb(np.zeros((4, 5, 3)))


def test_pick_triplets_spreads_rows_over_the_video():
  from tsnet_tf.flow.visualize import pick_triplets  # pylint: disable=g-import-not-at-top
  # Hand-computed: starts linspace(0, n - 1 - 2s, rows), rounded.
  assert pick_triplets(10, 3, 1) == [0, 4, 7]
  assert pick_triplets(10, 2, 2) == [0, 5]
  assert pick_triplets(3, 1, 1) == [0]
  with pytest.raises(ValueError, match="needs at least 5"):
    pick_triplets(4, 1, 2)


def test_flow_figure_draws_one_row_per_triplet():
  from tsnet_tf.flow.visualize import flow_figure  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
  one = flow_figure(frames, rows=1, preset="fast")
  two = flow_figure(frames, rows=2, preset="fast")
  assert one.dtype == np.uint8 and one.ndim == 3 and one.shape[-1] == 3
  # Five panels side by side; a second row makes it taller, not wider.
  assert one.shape[1] > 2 * one.shape[0] and two.shape[1] == one.shape[1]
  assert two.shape[0] > 1.5 * one.shape[0]


def test_negative_max_flow_is_refused_not_drawn_saturated():
  # Clamped to 1e-6, it would draw every flow fully saturated.
  with pytest.raises(ValueError, match="max_flow must be >= 0"):
    _rgb(0.1, 0, max_flow=-5.0)
  with pytest.raises(ValueError, match="max_flow"):
    triplets_figure(np.zeros((1, 3, 8, 8, 3), np.uint8), [0], max_flow=-5.0)
  np.testing.assert_array_equal(_rgb(0, 0, max_flow=0.0), [255, 255, 255])
