"""Tests of tsnet_tf/flow/tvl1.py against known motion, numpy and OpenCV."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.flow import evaluation
from tsnet_tf.flow import tvl1
# The package attribute `tvl1` is the function; reach the module this way.
tvl1_lib = importlib.import_module("tsnet_tf.flow.tvl1")

SIZE = 48
# Accuracy tests: the accurate preset's math, fewer iterations so a small
# graph runs in about a second without XLA.
SMALL = dict(num_scales=4, num_iters=20, median_size=3)
# Plumbing tests: as cheap as possible.
TINY = dict(num_scales=2, num_warps=1, num_iters=3, median_size=3)


def _pair(flow, seed=0):
  rng = np.random.default_rng(seed)
  f0, f1 = evaluation.make_pair(flow, rng)
  return np.round(f0), np.round(f1)


def _translation(dx, dy, size=SIZE):
  flow = np.zeros((size, size, 2), np.float32)
  flow[..., 0], flow[..., 1] = dx, dy
  return flow


def _interior(a, margin=10):
  # Where frame0 maps outside frame1 the flow is unobservable; judge the
  # rest.
  return a[..., margin:-margin, margin:-margin, :]


CASES = {
    "zero": _translation(0, 0),
    "integer_3_0": _translation(3, 0),
    "integer_0_-5": _translation(0, -5),
    "integer_8_-8": _translation(8, -8),
    "subpixel_0.5_1.25": _translation(0.5, 1.25),
    "subpixel_-2.75_6.5": _translation(-2.75, 6.5),
    "rotation": evaluation.flow_field("rotation", SIZE, SIZE, 4.0,
                                      np.random.default_rng(1)),
}


@pytest.fixture(scope="module")
def solved():
  """All cases as one batch, solved once."""
  pairs = [_pair(flow, seed) for seed, flow in enumerate(CASES.values())]
  f0 = np.stack([p[0] for p in pairs])[..., None]
  f1 = np.stack([p[1] for p in pairs])[..., None]
  flow = tf.function(lambda a, b: tvl1(a, b, **SMALL))(f0, f1).numpy()
  return dict(zip(CASES, flow)), f0, f1


@pytest.mark.parametrize("name", list(CASES))
def test_known_motion_is_recovered(solved, name):
  flows, _, _ = solved
  truth = CASES[name]
  err = evaluation.endpoint_error(_interior(flows[name][None]),
                                  _interior(truth[None]))
  # OpenCV's own EPE on these cases is 0.03-0.25 px (0.25 on integer_0_-5);
  # a method that misses the motion errs by pixels.
  tol = 0.05 if name == "zero" else 0.4
  assert err < tol, f"{name}: EPE {err:.3f} px"


def test_convention_matches_opencv(solved):
  cv2 = pytest.importorskip("cv2")
  flows, f0, f1 = solved
  name = "subpixel_-2.75_6.5"
  i = list(CASES).index(name)
  ref = cv2.optflow.DualTVL1OpticalFlow_create().calc(
      f0[i, ..., 0].astype(np.uint8), f1[i, ..., 0].astype(np.uint8), None)
  ours = flows[name]
  # Same sign and units as OpenCV's flow, and as close to the truth.
  diff = evaluation.endpoint_error(_interior(ours[None]), _interior(ref[None]))
  assert diff < 0.3, f"mean |ours - opencv| = {diff:.3f} px"
  truth = CASES[name]
  ours_err = evaluation.endpoint_error(_interior(ours[None]),
                                       _interior(truth[None]))
  cv_err = evaluation.endpoint_error(_interior(ref[None]),
                                     _interior(truth[None]))
  assert ours_err <= 1.1 * cv_err + 0.05


def test_rgb_equals_grey_input():
  f0, f1 = _pair(_translation(2, 1, 32))
  grey = tvl1(f0[None, ..., None], f1[None, ..., None], **TINY)
  rgb = tvl1(np.repeat(f0[None, ..., None], 3, -1),
             np.repeat(f1[None, ..., None], 3, -1), **TINY)
  np.testing.assert_allclose(rgb, grey, atol=1e-3)


def test_jit_compile_matches_graph_and_fast_preset_runs():
  f0, f1 = _pair(_translation(1.5, -1, 32))
  args = (f0[None, ..., None], f1[None, ..., None])
  graph = tf.function(lambda a, b: tvl1(a, b, "fast", **TINY))(*args)
  xla = tf.function(lambda a, b: tvl1(a, b, "fast", **TINY),
                    jit_compile=True)(*args)
  assert xla.shape == (1, 32, 32, 2) and xla.dtype == tf.float32
  np.testing.assert_allclose(xla, graph, atol=1e-3)
  assert np.abs(graph.numpy()).max() > 0.3


def test_gradients_are_finite_and_nonzero():
  f0, f1 = _pair(_translation(1, 0.5, 24))
  f0 = tf.constant(f0[None, ..., None])
  f1 = tf.constant(f1[None, ..., None])
  lam = tf.Variable(0.15)
  with tf.GradientTape() as tape:
    tape.watch([f0, f1])
    flow = tvl1(f0, f1, lambda_=lam, **TINY)
    loss = tf.reduce_sum(flow ** 2)
  grads = tape.gradient(loss, [f0, f1, lam])
  for g in grads:
    assert g is not None
    assert np.all(np.isfinite(g.numpy()))
    assert np.abs(g.numpy()).max() > 0


def test_default_kernels_match_weighted_kernels():
  f0, f1 = _pair(_translation(1, 2, 24))
  args = (f0[None, ..., None], f1[None, ..., None])
  plain = tvl1(*args, **TINY)
  weighted = tvl1(
      *args, gradient_kernel=tf.constant(tvl1_lib.DEFAULT_GRADIENT_KERNEL),
      forward_kernel=tf.constant(tvl1_lib.DEFAULT_FORWARD_KERNEL),
      divergence_kernel=tf.constant(tvl1_lib.DEFAULT_DIVERGENCE_KERNEL),
      **TINY)
  np.testing.assert_allclose(weighted, plain, atol=1e-4)


def test_warp_matches_opencv_remap():
  cv2 = pytest.importorskip("cv2")
  rng = np.random.default_rng(0)
  image = rng.uniform(0, 255, (20, 24)).astype(np.float32)
  flow = rng.uniform(-4, 4, (20, 24, 2)).astype(np.float32)
  y, x = np.mgrid[0:20, 0:24].astype(np.float32)
  ref = cv2.remap(image, x + flow[..., 0], y + flow[..., 1],
                  cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
  ours = tvl1_lib.warp(tf.constant(image[None, ..., None]),
                       tf.constant(np.moveaxis(flow, -1, 0)[:, None]))
  # cv2.remap uses 5-bit fixed-point weights: agreement to ~1/32 of a step.
  np.testing.assert_allclose(ours.numpy()[0, ..., 0], ref, atol=0.05 * 255)
  assert np.mean(np.abs(ours.numpy()[0, ..., 0] - ref)) < 1.0


def test_bicubic_warp_matches_opencv_remap():
  cv2 = pytest.importorskip("cv2")
  rng = np.random.default_rng(1)
  image = rng.uniform(0, 255, (20, 24)).astype(np.float32)
  flow = rng.uniform(-4, 4, (20, 24, 2)).astype(np.float32)
  y, x = np.mgrid[0:20, 0:24].astype(np.float32)
  # Sample inside the image: OpenCV replicates the border per tap, we clamp
  # the coordinate first; the two differ only outside.
  map_x = np.clip(x + flow[..., 0], 0, 23)
  map_y = np.clip(y + flow[..., 1], 0, 19)
  ref = cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC,
                  borderMode=cv2.BORDER_REPLICATE)
  ours = tvl1_lib.warp_bicubic(
      tf.constant(image[None, ..., None]),
      tf.constant(np.stack([map_x - x, map_y - y])[:, None]))
  # cv2.remap quantises the sub-pixel offset to 1/32.
  assert np.mean(np.abs(ours.numpy()[0, ..., 0] - ref)) < 1.5
  np.testing.assert_allclose(ours.numpy()[0, ..., 0], ref, atol=0.06 * 255)
  # Integer offsets reproduce the pixels exactly.
  shifted = tvl1_lib.warp_bicubic(tf.constant(image[None, ..., None]),
                                  tf.ones((2, 1, 20, 24)))
  np.testing.assert_allclose(shifted.numpy()[0, :-1, :-1, 0], image[1:, 1:],
                             atol=1e-3)


def test_centered_gradient_matches_numpy():
  rng = np.random.default_rng(0)
  image = rng.uniform(0, 255, (2, 7, 9)).astype(np.float32)
  padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
  dx = 0.5 * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
  dy = 0.5 * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
  ours = tvl1_lib.centered_gradient(tf.constant(image)).numpy()
  np.testing.assert_allclose(ours[0], dx, atol=1e-4)
  np.testing.assert_allclose(ours[1], dy, atol=1e-4)


def test_divergence_is_negative_adjoint_of_forward_gradient():
  rng = np.random.default_rng(0)
  u = rng.normal(size=(2, 1, 6, 7)).astype(np.float32)
  p_x = rng.normal(size=u.shape).astype(np.float32)
  p_y = rng.normal(size=u.shape).astype(np.float32)
  p_x[..., -1] = 0  # the dual step keeps p zero where grad u is zero
  p_y[..., -1, :] = 0
  u_x, u_y = tvl1_lib.forward_gradient(tf.constant(u))
  div = tvl1_lib.divergence(tf.constant(p_x), tf.constant(p_y))
  lhs = np.sum(u_x.numpy() * p_x + u_y.numpy() * p_y)
  rhs = -np.sum(u * div.numpy())
  np.testing.assert_allclose(lhs, rhs, rtol=1e-4)
  assert np.all(u_x.numpy()[..., -1] == 0)


@pytest.mark.parametrize("n", [9, 25])
def test_median_network_selects_median(n):
  rng = np.random.default_rng(n)
  network = tvl1_lib._median_network(n)
  for _ in range(100):
    values = list(rng.permutation(n))
    for i, j in network:
      values[i], values[j] = min(values[i], values[j]), max(values[i],
                                                            values[j])
    assert values[n // 2] == (n - 1) // 2


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_matches_opencv(size):
  cv2 = pytest.importorskip("cv2")
  rng = np.random.default_rng(size)
  flow = rng.normal(size=(2, 1, 12, 13)).astype(np.float32)
  ours = tvl1_lib.median_filter(tf.constant(flow), size).numpy()
  for c in range(2):
    np.testing.assert_allclose(ours[c, 0], cv2.medianBlur(flow[c, 0], size),
                               atol=1e-6)


def test_pyramid_sizes_round_and_stop():
  assert tvl1_lib.pyramid_sizes(112, 112, 5, 0.5) == [
      (112, 112), (56, 56), (28, 28), (14, 14), (7, 7)]
  assert tvl1_lib.pyramid_sizes(32, 40, 5, 0.5) == [
      (32, 40), (16, 20), (8, 10), (4, 5)]
  # The presets' 12 px floor: no 7x7 level for 112x112 frames.
  assert tvl1_lib.pyramid_sizes(112, 112, 5, 0.5, 12) == [
      (112, 112), (56, 56), (28, 28), (14, 14)]


def test_presets_and_overrides():
  assert set(tvl1_lib.PRESETS) == {"accurate", "fast"}
  acc = tvl1_lib.resolve_params("accurate")
  assert (acc["tau"], acc["lambda_"], acc["theta"]) == (0.25, 0.15, 0.3)
  assert acc["num_scales"] == 5 and acc["num_warps"] == 5
  for preset in ("accurate", "fast"):
    robust = tvl1_lib.resolve_params(preset)
    assert robust["mask_outside"] and robust["antialias"]
    assert robust["min_level_size"] == 12
  with pytest.raises(ValueError, match="min_level_size"):
    tvl1_lib.resolve_params("fast", min_level_size=1)
  assert tvl1_lib.resolve_params("fast", **{"lambda": 0.2})["lambda_"] == 0.2
  with pytest.raises(ValueError, match="unknown preset"):
    tvl1_lib.resolve_params("precise")
  with pytest.raises(ValueError, match="unknown parameter"):
    tvl1_lib.resolve_params("fast", num_iter=3)
  with pytest.raises(ValueError, match="median_size"):
    tvl1_lib.resolve_params("fast", median_size=4)
  with pytest.raises(ValueError, match="finest_scale"):
    tvl1_lib.resolve_params("fast", finest_scale=9)


@pytest.mark.parametrize("f0,f1,error,match", [
    (np.zeros((8, 8, 1), np.float32), np.zeros((8, 8, 1), np.float32),
     ValueError, "frame0 must be \\[B, H, W, C\\]"),
    (np.zeros((1, 8, 8, 1), np.float32), np.zeros((1, 8, 9, 1), np.float32),
     ValueError, "shapes differ"),
    (np.zeros((1, 8, 8, 2), np.float32), np.zeros((1, 8, 8, 2), np.float32),
     ValueError, "1 or 3 channels"),
    (np.zeros((1, 8, 8, 1), np.uint8), np.zeros((1, 8, 8, 1), np.uint8),
     TypeError, "must be a float tensor"),
])
def test_bad_input_raises_clear_error(f0, f1, error, match):
  with pytest.raises(error, match=match):
    tvl1(f0, f1, **TINY)


def test_concrete_calls_compile_once_per_shape_and_match_op_by_op():
  tvl1_lib.clear_compiled()
  f0, f1 = _pair(_translation(1.5, -1, 32))
  a, b = f0[None, ..., None], f1[None, ..., None]
  first = tvl1(a, b, "fast", **TINY)
  again = tvl1(a, b, "fast", **TINY)
  assert len(tvl1_lib._COMPILED) == 1
  eager = tvl1(a, b, "fast", jit_compile=False, **TINY)
  assert len(tvl1_lib._COMPILED) == 1
  np.testing.assert_allclose(first, eager, atol=1e-3)
  np.testing.assert_array_equal(first, again)
  assert np.abs(np.asarray(first)).max() > 0.3
  # Another shape or other overrides: one more compiled function each.
  tvl1(np.repeat(a, 2, 0), np.repeat(b, 2, 0), "fast", **TINY)
  tvl1(a, b, "fast", **dict(TINY, num_iters=2))
  assert len(tvl1_lib._COMPILED) == 3
  tvl1_lib.clear_compiled()
  assert not tvl1_lib._COMPILED


def test_traced_calls_and_tensor_parameters_are_not_compiled_apart():
  tvl1_lib.clear_compiled()
  f0, f1 = _pair(_translation(1, 0, 24))
  a, b = f0[None, ..., None], f1[None, ..., None]
  # Inside a trace the caller's compilation covers tvl1: nothing nested.
  tf.function(lambda x, y: tvl1(x, y, "fast", **TINY))(a, b)
  # Variables (trainable parameters) run op by op.
  tvl1(a, b, "fast", lambda_=tf.Variable(0.15), **TINY)
  assert not tvl1_lib._COMPILED
