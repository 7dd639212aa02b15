"""TV-L1 optical flow (Zach, Pock & Bischof 2007) written with `keras.ops`.

This module holds the whole TV-L1 computation of the teacher's first stage
(paper section 3.1, Eq. 1-6): greyscale conversion, intensity normalisation,
a coarse-to-fine pyramid, bilinear warping of the second frame with
`num_warps` re-linearisations per scale, and a fixed number of iterations of
the duality scheme per warp:

* thresholding step (Eq. 4): `v = u + clip(-rho / |grad I1|^2, -l*t, l*t) *
  grad I1`, which is the three-case formula written as one clip;
* primal step (Eq. 3): `u = v + theta * div(p)`;
* dual step (Eq. 5): `p = (p + tau/theta * grad u) / (1 + tau/theta |grad u|)`.

The dual step is Chambolle's (2004) fixed-point projection, the one OpenCV's
`DualTVL1OpticalFlow` uses. Chambolle proves convergence for tau <= 1/8 (the
bound the paper quotes for the 2-D case); tau = 0.25 is the largest step that
still converges in practice and is what OpenCV uses, so the `accurate` preset
keeps OpenCV's 0.25: it needs half the iterations for the same accuracy.

Conventions follow OpenCV so results are directly comparable with
`cv2.optflow.DualTVL1OpticalFlow.calc(frame0, frame1)`: flow in pixels,
channel 0 = x (right), channel 1 = y (down), `frame0(p) ~ frame1(p + flow(p))`,
centred image gradients with replicated borders, forward differences with
Neumann boundary for the flow and the matching (adjoint) backward divergence.

All loop counts are fixed Python integers, so the function has no
data-dependent control flow: it runs eagerly, under
`tf.function(jit_compile=True)` or `jax.jit`, inside a SavedModel, and
converts to TFLite (builtin ops plus a WHILE loop). It is differentiable with
respect to both frames and to the scalar parameters and difference kernels,
which may be tensors/variables (TVNet-style fine-tuning, see
`tsnet_tf.layers.TVL1Flow`).

TensorFlow is never imported at module level, so the function also runs under
`KERAS_BACKEND=jax` without TensorFlow installed.
"""

import collections
import math
import threading
from typing import Any, Dict, List, Tuple

import keras
from keras import ops

# Pyramid levels smaller than this (either side) are dropped unless a preset
# asks for more: a 2-pixel image has no texture left to match and the warp
# needs >= 2 pixels per axis.
MIN_LEVEL_SIZE = 4

# Named parameter sets. `accurate` keeps OpenCV's defaults where they exist
# (tau, lambda, theta, 5 scales, 5 warps, 5x5 median, bicubic warping) but
# replaces OpenCV's convergence test (up to 300 iterations per warp, stopped
# on epsilon) by a fixed count, and uses scale_step 0.5 (OpenCV: 0.8) so a
# 5-level pyramid reaches 1/16 resolution and sees motions of 12+ px. The
# counts were chosen with benchmarks/bench_flow.py (docs/flow.md has the
# numbers): 20 iterations per warp were as accurate as 40 on the synthetic
# set and on Middlebury Grove2, and bicubic warping (as OpenCV) took Grove2's
# EPE from 0.26 to 0.17 px.
#
# Three choices keep the coarse-to-fine scheme from diverging on large
# motions (the stress set of benchmarks/bench_flow.py, docs/flow.md):
# * `mask_outside`: no data term where p + u falls outside frame 1. With
#   replicated borders the warped image is constant there but its warped
#   gradient is not, so the linearised data term kept pushing the flow
#   outwards every warp (flows of 100+ px on a 112 px frame).
# * `antialias`: each pyramid level is Gaussian-blurred (sigma
#   0.6 * sqrt(1/step^2 - 1), as Sanchez et al.) before it is halved. Fine
#   texture otherwise aliases at coarse levels into patterns that move the
#   wrong way, and a coarse error larger than a level's capture range is
#   never undone by the finer levels.
# * `min_level_size` 12: no level under 12 px. A 7x7 level (112 px frames)
#   has no texture left, only the frame's edges, and its estimate was often
#   wrong by more than the finer levels can correct.
PRESETS: Dict[str, Dict[str, Any]] = {
    "accurate": dict(
        tau=0.25,
        lambda_=0.15,
        theta=0.3,
        num_scales=5,
        scale_step=0.5,
        num_warps=5,
        num_iters=20,
        median_size=5,
        finest_scale=0,
        normalize=True,
        interpolation="bicubic",
        mask_outside=True,
        antialias=True,
        min_level_size=12,
    ),
    # For training and serving: two warps, few iterations, and the finest
    # level solved at half resolution then upsampled (the flow is smooth).
    "fast": dict(
        tau=0.25,
        lambda_=0.15,
        theta=0.3,
        num_scales=4,
        scale_step=0.5,
        num_warps=2,
        num_iters=10,
        median_size=3,
        finest_scale=1,
        normalize=True,
        interpolation="bilinear",
        mask_outside=True,
        antialias=True,
        min_level_size=12,
    ),
}

# The behaviour before the three robustness fixes above, for comparisons
# (benchmarks/bench_flow.py's `--legacy`): `tvl1(a, b, **LEGACY)`.
LEGACY: Dict[str, Any] = dict(mask_outside=False, antialias=False,
                              min_level_size=MIN_LEVEL_SIZE)

# Parameters that may be tensors (and so trainable); the others must be
# Python numbers because they fix shapes or loop counts.
TENSOR_PARAMS = ("tau", "lambda_", "theta", "gradient_kernel",
                 "forward_kernel", "divergence_kernel")
_OPTIONAL_PARAMS = {
    # Kernels default to the fixed finite differences below (exact, and
    # cheaper than weighted taps); pass arrays to make them learnable.
    # gradient_kernel [2, 3]: taps on (i-1, i, i+1) for x (row 0) and y.
    "gradient_kernel": None,
    # forward_kernel [2, 2]: taps on (i, i+1); default (-1, 1).
    "forward_kernel": None,
    # divergence_kernel [2, 2]: taps on (i, i-1); default (1, -1).
    "divergence_kernel": None,
}
DEFAULT_GRADIENT_KERNEL = ((-0.5, 0.0, 0.5), (-0.5, 0.0, 0.5))
DEFAULT_FORWARD_KERNEL = ((-1.0, 1.0), (-1.0, 1.0))
DEFAULT_DIVERGENCE_KERNEL = ((1.0, -1.0), (1.0, -1.0))

_EPS = 1e-12


def resolve_params(preset: str = "accurate", **overrides) -> Dict[str, Any]:
  """Returns the full parameter dict of `preset` with `overrides` applied.

  Args:
    preset: a key of `PRESETS`.
    **overrides: any preset parameter, or an optional kernel
      (`gradient_kernel`, `forward_kernel`, `divergence_kernel`). `lambda`
      is accepted as an alias of `lambda_`.

  Returns:
    A new dict with every parameter.

  Raises:
    ValueError: unknown preset, unknown parameter, or a value out of range.
  """
  if preset not in PRESETS:
    raise ValueError(
        f"tvl1: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
  params = dict(PRESETS[preset])
  params.update(_OPTIONAL_PARAMS)
  if "lambda" in overrides:
    overrides["lambda_"] = overrides.pop("lambda")
  unknown = sorted(set(overrides) - set(params))
  if unknown:
    raise ValueError(f"tvl1: unknown parameter(s) {unknown}; known: "
                     f"{sorted(params)}")
  params.update(overrides)
  for name in ("num_scales", "num_warps"):
    if int(params[name]) != params[name] or params[name] < 1:
      raise ValueError(f"tvl1: {name} must be an integer >= 1, got "
                       f"{params[name]!r}")
  if int(params["num_iters"]) != params["num_iters"] or params["num_iters"] < 0:
    raise ValueError(f"tvl1: num_iters must be an integer >= 0, got "
                     f"{params['num_iters']!r}")
  if not 0.0 < float(params["scale_step"]) < 1.0:
    raise ValueError(f"tvl1: scale_step must be in (0, 1), got "
                     f"{params['scale_step']!r}")
  if params["interpolation"] not in ("bilinear", "bicubic"):
    raise ValueError(f"tvl1: interpolation must be 'bilinear' or 'bicubic', "
                     f"got {params['interpolation']!r}")
  if params["median_size"] not in (0, 1, 3, 5):
    raise ValueError(f"tvl1: median_size must be 0, 1 (off), 3 or 5, got "
                     f"{params['median_size']!r}")
  if (int(params["min_level_size"]) != params["min_level_size"]
      or params["min_level_size"] < 2):
    raise ValueError(f"tvl1: min_level_size must be an integer >= 2, got "
                     f"{params['min_level_size']!r}")
  if not 0 <= int(params["finest_scale"]) < int(params["num_scales"]):
    raise ValueError(f"tvl1: finest_scale must be in [0, num_scales), got "
                     f"{params['finest_scale']!r}")
  return params


def pyramid_sizes(height: int, width: int, num_scales: int,
                  scale_step: float,
                  min_size: int = MIN_LEVEL_SIZE) -> List[Tuple[int, int]]:
  """Static image sizes of the pyramid, finest first.

  Each level is the previous one scaled by `scale_step` and rounded, as
  OpenCV does; levels with a side under `MIN_LEVEL_SIZE` are dropped.

  Args:
    height: finest height in pixels.
    width: finest width in pixels.
    num_scales: wanted number of levels.
    scale_step: ratio between consecutive levels, in (0, 1).

  Returns:
    A list of (height, width) int tuples, at least one.
  """
  sizes = [(int(height), int(width))]
  for _ in range(1, num_scales):
    h, w = sizes[-1]
    h, w = int(round(h * scale_step)), int(round(w * scale_step))
    if min(h, w) < min_size:
      break
    sizes.append((h, w))
  return sizes


def rgb_to_grey(frames):
  """ITU-R 601 luma, the weights of OpenCV's `COLOR_RGB2GRAY`.

  Args:
    frames: float `[B, H, W, C]`, C = 1 (returned as is) or 3 (RGB).

  Returns:
    float32 `[B, H, W]`.
  """
  if frames.shape[-1] == 1:
    return frames[..., 0]
  weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=frames.dtype)
  return ops.sum(frames * weights, axis=-1)


def normalize_pair(image0, image1):
  """Stretches both images jointly to [0, 255] (per pair), as Sanchez et al.

  lambda weighs the data term against the smoothness term in intensity
  units, so stretching makes one lambda fit dark and bright videos alike.
  A constant pair is left unchanged.

  Args:
    image0: float32 `[B, H, W]`.
    image1: float32 `[B, H, W]`.

  Returns:
    The two images, same shapes.
  """
  both = ops.stack([image0, image1], axis=1)
  low = ops.min(both, axis=(1, 2, 3), keepdims=True)[:, 0]
  high = ops.max(both, axis=(1, 2, 3), keepdims=True)[:, 0]
  span = high - low
  scale = ops.where(span > 0, 255.0 / ops.maximum(span, _EPS), 1.0)
  offset = ops.where(span > 0, low, 0.0)
  return (image0 - offset) * scale, (image1 - offset) * scale


def resize(images, size: Tuple[int, int]):
  """Bilinear resize of `[..., H, W]` stacks (half-pixel centres, like cv2).

  Args:
    images: float32 `[N, B, H, W]` or `[B, H, W]`.
    size: target (height, width).

  Returns:
    float32 with the last two axes of `size`.
  """
  # The batch axis may be unknown (None) in a symbolic call: let reshape
  # infer it.
  lead = tuple(-1 if d is None else d for d in images.shape[:-2])
  flat = ops.reshape(images, (-1,) + tuple(images.shape[-2:]) + (1,))
  out = ops.image.resize(flat, size, interpolation="bilinear",
                         antialias=False, data_format="channels_last")
  return ops.reshape(out, lead + tuple(size))


def _antialias_sigma(scale_step: float) -> float:
  """Blur before downscaling by `scale_step` (Sanchez et al., IPOL 2013)."""
  return 0.6 * math.sqrt(1.0 / scale_step ** 2 - 1.0)


def _blur_radius(sigma: float) -> int:
  return max(1, int(math.ceil(2.0 * sigma)))


def gaussian_blur(images, sigma: float):
  """Separable Gaussian blur, taps to 2 sigma, borders replicated.

  Args:
    images: float32 `[B, H, W]`.
    sigma: standard deviation in pixels, > 0.

  Returns:
    float32 `[B, H, W]`.
  """
  radius = _blur_radius(sigma)
  taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
  taps = [t / sum(taps) for t in taps]
  for axis in (1, 2):
    n = images.shape[axis]
    padded = _pad_edge(images, axis, radius, radius)
    out = None
    for k, t in enumerate(taps):
      term = t * _slice(padded, axis, k, k + n)
      out = term if out is None else out + term
    images = out
  return images


def _pad_edge(x, axis: int, before: int, after: int):
  """Replicates the border `before`/`after` times along `axis` (cv2 REPLICATE)."""
  n = x.shape[axis]
  parts = []
  if before:
    first = ops.take(x, [0], axis=axis)
    parts.append(ops.concatenate([first] * before, axis=axis))
  parts.append(x)
  if after:
    last = ops.take(x, [n - 1], axis=axis)
    parts.append(ops.concatenate([last] * after, axis=axis))
  return ops.concatenate(parts, axis=axis) if len(parts) > 1 else x


def _slice(x, axis: int, start: int, stop: int):
  index = [slice(None)] * len(x.shape)
  index[axis] = slice(start, stop)
  return x[tuple(index)]


def centered_gradient(image, kernel=None):
  """Central differences with replicated borders (OpenCV `centeredGradient`).

  Args:
    image: float32 `[B, H, W]`.
    kernel: optional `[2, 3]` taps on (i-1, i, i+1) for x and y; default
      `DEFAULT_GRADIENT_KERNEL`.

  Returns:
    float32 `[2, B, H, W]`: d/dx, d/dy.
  """
  grads = []
  for row, axis in enumerate((2, 1)):
    n = image.shape[axis]
    padded = _pad_edge(image, axis, 1, 1)
    prev = _slice(padded, axis, 0, n)
    here = _slice(padded, axis, 1, n + 1)
    nxt = _slice(padded, axis, 2, n + 2)
    if kernel is None:
      grads.append(0.5 * (nxt - prev))
    else:
      grads.append(kernel[row][0] * prev + kernel[row][1] * here
                   + kernel[row][2] * nxt)
  return ops.stack(grads, axis=0)


def forward_gradient(u, kernel=None):
  """Forward differences, zero on the last row/column (Neumann boundary).

  Args:
    u: float32 `[2, B, H, W]` flow components.
    kernel: optional `[2, 2]` taps on (i, i+1) for x and y; default (-1, 1).

  Returns:
    (u_x, u_y), each float32 `[2, B, H, W]`.
  """
  out = []
  for row, axis in enumerate((3, 2)):
    n = u.shape[axis]
    here = _slice(u, axis, 0, n - 1)
    nxt = _slice(u, axis, 1, n)
    if kernel is None:
      diff = nxt - here
    else:
      diff = kernel[row][0] * here + kernel[row][1] * nxt
    out.append(ops.concatenate([diff, ops.zeros_like(_slice(u, axis, 0, 1))],
                               axis=axis))
  return tuple(out)


def divergence(p_x, p_y, kernel=None):
  """Backward-difference divergence, the negative adjoint of `forward_gradient`.

  `p[-1] := 0` outside the image; with the dual variables zero on the last
  column/row (which the dual step keeps) this equals OpenCV's `divergence`.

  Args:
    p_x: float32 `[2, B, H, W]` x components of the dual fields.
    p_y: float32 `[2, B, H, W]` y components.
    kernel: optional `[2, 2]` taps on (i, i-1) for x and y; default (1, -1).

  Returns:
    float32 `[2, B, H, W]`.
  """
  total = None
  for row, (p, axis) in enumerate(((p_x, 3), (p_y, 2))):
    n = p.shape[axis]
    prev = ops.concatenate(
        [ops.zeros_like(_slice(p, axis, 0, 1)), _slice(p, axis, 0, n - 1)],
        axis=axis)
    if kernel is None:
      div = p - prev
    else:
      div = kernel[row][0] * p + kernel[row][1] * prev
    total = div if total is None else total + div
  return total


def warp(images, flow):
  """Bilinear sampling of `images` at `p + flow(p)`, borders replicated.

  Written with `ops.take` on the flattened batch (no tensorflow-addons), so
  it runs on every backend and converts to TFLite as GATHER.

  Args:
    images: float32 `[B, H, W, K]` (K stacked channels warped together).
    flow: float32 `[2, B, H, W]` displacement in pixels (x, y).

  Returns:
    float32 `[B, H, W, K]`.
  """
  batch, height, width, channels = images.shape
  if batch is None:
    batch = ops.shape(images)[0]
  grid_y = ops.arange(height, dtype="float32")[:, None]
  grid_x = ops.arange(width, dtype="float32")[None, :]
  x = ops.clip(grid_x + flow[0], 0.0, width - 1.0)
  y = ops.clip(grid_y + flow[1], 0.0, height - 1.0)
  # Left/top neighbour capped at size-2 so the right/bottom one stays inside;
  # at x == width-1 the weight of the right neighbour is then exactly 1.
  x0 = ops.minimum(ops.floor(x), max(width - 2, 0))
  y0 = ops.minimum(ops.floor(y), max(height - 2, 0))
  wx = ops.expand_dims(x - x0, -1)
  wy = ops.expand_dims(y - y0, -1)
  x0 = ops.cast(x0, "int32")
  y0 = ops.cast(y0, "int32")
  dx = 1 if width > 1 else 0
  dy = width if height > 1 else 0
  base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width),
                     (-1, 1, 1))
  top_left = base + y0 * width + x0
  flat = ops.reshape(images, (-1, channels))
  # Gradients need not flow into the integer indices: they are piecewise
  # constant; the bilinear weights carry the derivative w.r.t. the flow.
  v00 = ops.take(flat, top_left, axis=0)
  v01 = ops.take(flat, top_left + dx, axis=0)
  v10 = ops.take(flat, top_left + dy, axis=0)
  v11 = ops.take(flat, top_left + dy + dx, axis=0)
  top = v00 + wx * (v01 - v00)
  bottom = v10 + wx * (v11 - v10)
  return top + wy * (bottom - top)


# Keys' cubic convolution coefficient of OpenCV's INTER_CUBIC.
_CUBIC_A = -0.75


def _cubic_weights(t):
  """Keys cubic weights of taps -1, 0, 1, 2 for fractional offsets `t`."""
  a = _CUBIC_A
  w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
  w1 = ((a + 2) * t - (a + 3)) * t * t + 1
  s = 1 - t
  w2 = ((a + 2) * s - (a + 3)) * s * s + 1
  return [w0, w1, w2, 1.0 - w0 - w1 - w2]


def warp_bicubic(images, flow):
  """Bicubic (Keys, a = -0.75, as cv2.INTER_CUBIC) sampling at `p + flow(p)`.

  Sharper than bilinear: bilinear interpolation low-passes the warped image
  by an amount that depends on the sub-pixel offset, which biases the
  linearised data term on fine texture. Borders are replicated.

  Args:
    images: float32 `[B, H, W, K]`.
    flow: float32 `[2, B, H, W]` displacement in pixels (x, y).

  Returns:
    float32 `[B, H, W, K]`.
  """
  batch, height, width, channels = images.shape
  if batch is None:
    batch = ops.shape(images)[0]
  grid_y = ops.arange(height, dtype="float32")[:, None]
  grid_x = ops.arange(width, dtype="float32")[None, :]
  x = ops.clip(grid_x + flow[0], 0.0, width - 1.0)
  y = ops.clip(grid_y + flow[1], 0.0, height - 1.0)
  x0, y0 = ops.floor(x), ops.floor(y)
  wx = [ops.expand_dims(w, -1) for w in _cubic_weights(x - x0)]
  wy = [ops.expand_dims(w, -1) for w in _cubic_weights(y - y0)]
  x0 = ops.cast(x0, "int32")
  y0 = ops.cast(y0, "int32")
  base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width),
                     (-1, 1, 1))
  cols = [ops.clip(x0 + k, 0, width - 1) for k in (-1, 0, 1, 2)]
  flat = ops.reshape(images, (-1, channels))
  out = None
  for dy, w_row in zip((-1, 0, 1, 2), wy):
    row = base + ops.clip(y0 + dy, 0, height - 1) * width
    line = None
    for col, w_col in zip(cols, wx):
      term = w_col * ops.take(flat, row + col, axis=0)
      line = term if line is None else line + term
    out = w_row * line if out is None else out + w_row * line
  return out


def _median_network(n: int) -> List[Tuple[int, int]]:
  """Compare-exchange pairs that leave the median of n values at index n//2.

  Batcher's odd-even merge sort on the next power of two (the padding
  entries act as +inf and never move), pruned backwards to the comparators
  the median depends on: 5x5 needs far fewer than a full sort.
  """
  size = 1 << max(1, (n - 1).bit_length())
  pairs = []

  def merge(lo, length, step):
    double = step * 2
    if double < length:
      merge(lo, length, double)
      merge(lo + step, length, double)
      for i in range(lo + step, lo + length - step, double):
        pairs.append((i, i + step))
    else:
      pairs.append((lo, lo + step))

  def sort(lo, length):
    if length > 1:
      half = length // 2
      sort(lo, half)
      sort(lo + half, half)
      merge(lo, length, 1)

  sort(0, size)
  pairs = [(i, j) for i, j in pairs if j < n]
  needed = {n // 2}
  kept = []
  for i, j in reversed(pairs):
    if i in needed or j in needed:
      kept.append((i, j))
      needed.update((i, j))
  return kept[::-1]


def median_filter(flow, size: int):
  """Median over a `size` x `size` window, borders replicated (cv2.medianBlur).

  A pruned min/max sorting network: elementwise ops only, which XLA fuses
  into one pass and TFLite converts as MINIMUM/MAXIMUM.

  Args:
    flow: float32 `[2, B, H, W]`.
    size: odd window size; <= 1 returns `flow` unchanged.

  Returns:
    float32 `[2, B, H, W]`.
  """
  if size <= 1:
    return flow
  r = size // 2
  height, width = flow.shape[2], flow.shape[3]
  padded = _pad_edge(_pad_edge(flow, 2, r, r), 3, r, r)
  values = [padded[:, :, i:i + height, j:j + width]
            for i in range(size) for j in range(size)]
  for i, j in _median_network(len(values)):
    values[i], values[j] = (ops.minimum(values[i], values[j]),
                            ops.maximum(values[i], values[j]))
  return values[len(values) // 2]


def _fixed_loop(num_iters: int, body, state):
  """Runs `state = body(state)` exactly `num_iters` times as one graph loop.

  On TensorFlow `maximum_iterations` is what lets XLA compute gradients
  through the loop (fixed-size accumulators); `ops.fori_loop` omits it.
  Each iteration needs the previous one's state, so running one at a time
  (`parallel_iterations=1`) loses nothing. (It does not stop the Grappler
  crash in the student's train step; tsnet_tf/utils/tf_graph.py does.)
  """
  if num_iters == 0:
    return state
  if keras.backend.backend() == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.while_loop(lambda *s: True, lambda *s: body(*s), state,
                         maximum_iterations=num_iters, parallel_iterations=1)
  return ops.fori_loop(0, num_iters, lambda _, s: body(*s), state)


def _inside_mask(flow):
  """1.0 where `p + flow(p)` lies inside the image, else 0.0; `[B, H, W]`."""
  height, width = flow.shape[2], flow.shape[3]
  grid_y = ops.arange(height, dtype="float32")[:, None]
  grid_x = ops.arange(width, dtype="float32")[None, :]
  x = grid_x + flow[0]
  y = grid_y + flow[1]
  inside = ((x >= 0.0) & (x <= width - 1.0) & (y >= 0.0)
            & (y <= height - 1.0))
  return ops.cast(inside, flow.dtype)


def _solve_level(image0, image1, flow, params):
  """`num_warps` x `num_iters` TV-L1 iterations at one pyramid level.

  Args:
    image0: float32 `[B, H, W]`.
    image1: float32 `[B, H, W]`.
    flow: float32 `[2, B, H, W]` initial flow at this level.
    params: resolved parameters.

  Returns:
    float32 `[2, B, H, W]` refined flow.
  """
  tau, lam, theta = params["tau"], params["lambda_"], params["theta"]
  fwd_k, div_k = params["forward_kernel"], params["divergence_kernel"]
  l_t = lam * theta
  taut = tau / theta
  grad1 = centered_gradient(image1, params["gradient_kernel"])
  # Warp I1 and its gradient together: one set of gathers for 3 channels.
  stack1 = ops.stack([image1, grad1[0], grad1[1]], axis=-1)
  num_iters, median_size = params["num_iters"], params["median_size"]
  warp_fn = warp_bicubic if params["interpolation"] == "bicubic" else warp

  def iteration(u, p_x, p_y, grad, rho_c, inv_grad_sq):
    rho = rho_c + ops.sum(grad * u, axis=0)
    step = ops.clip(-rho * inv_grad_sq, -l_t, l_t)
    v = u + step * grad
    u = v + theta * divergence(p_x, p_y, div_k)
    u_x, u_y = forward_gradient(u, fwd_k)
    norm = ops.sqrt(ops.square(u_x) + ops.square(u_y) + _EPS)
    denom = 1.0 + taut * norm
    return u, (p_x + taut * u_x) / denom, (p_y + taut * u_y) / denom

  def one_warp(flow, p_x, p_y):
    warped = warp_fn(stack1, flow)
    grad = ops.stack([warped[..., 1], warped[..., 2]], axis=0)
    # rho(u) = rho_c + grad . u; the constant part is fixed for this warp.
    rho_c = warped[..., 0] - ops.sum(grad * flow, axis=0) - image0
    if params["mask_outside"]:
      # Past frame 1's edge the warped image is the replicated border,
      # constant in u, so its linearisation is wrong: no data term there
      # (v = u), the smoothness term alone fills those pixels in.
      inside = _inside_mask(flow)
      grad = grad * inside
      rho_c = rho_c * inside
    grad_sq = ops.sum(ops.square(grad), axis=0)
    inv_grad_sq = 1.0 / ops.maximum(grad_sq, _EPS)
    flow, p_x, p_y = _fixed_loop(
        num_iters,
        lambda u, px, py: iteration(u, px, py, grad, rho_c, inv_grad_sq),
        (flow, p_x, p_y))
    return median_filter(flow, median_size), p_x, p_y

  # The warps are a graph loop too, not unrolled: 5x smaller graph, and
  # XLA compile time grows with graph size.
  state = (flow, ops.zeros_like(flow), ops.zeros_like(flow))
  flow, _, _ = _fixed_loop(params["num_warps"], one_warp, state)
  return flow


def _rescale_flow(flow, size: Tuple[int, int]):
  """Resizes a `[2, B, h, w]` flow to `size` and scales its pixel units."""
  height, width = flow.shape[2], flow.shape[3]
  out = resize(flow, size)
  scale = ops.convert_to_tensor(
      [size[1] / width, size[0] / height], dtype=flow.dtype)
  return out * ops.reshape(scale, (2, 1, 1, 1))


# Approximate elementwise operations per pixel, counted from the code above
# (each add, multiply, compare, sqrt or gathered value counts 1).
_OPS_PER_ITERATION = 52
# 4 (bilinear) or 16 (bicubic) gathers x 3 channels, weights, rho_c, |grad|^2
_OPS_PER_WARP = {"bilinear": 55, "bicubic": 130}
_OPS_MASK = 12  # inside test and masking of grad and rho_c, per warp
_OPS_PER_LEVEL = 20  # pyramid resize, centred gradient, flow upsampling
_OPS_GREY = 8  # greyscale and normalisation at full resolution


def tvl1_flops(height: int, width: int, preset: str = "accurate",
               **overrides) -> int:
  """Approximate operation count of one `tvl1` call on one frame pair.

  An estimate from the per-pixel operation counts of each step (duality
  iteration, warp, median network, pyramid), for model cost tables; it is
  what the algorithm computes, not a measurement.

  Args:
    height: frame height.
    width: frame width.
    preset: preset name.
    **overrides: parameter overrides, as for `tvl1`.

  Returns:
    int operations for one pair (batch of one).
  """
  params = resolve_params(preset, **overrides)
  sizes = pyramid_sizes(height, width, params["num_scales"],
                        params["scale_step"], params["min_level_size"])
  finest = min(int(params["finest_scale"]), len(sizes) - 1)
  size = params["median_size"]
  median = 4 * len(_median_network(size * size)) if size > 1 else 0
  per_warp = (_OPS_PER_WARP[params["interpolation"]] + median
              + params["num_iters"] * _OPS_PER_ITERATION
              + (_OPS_MASK if params["mask_outside"] else 0))
  total = _OPS_GREY * height * width
  if params["antialias"]:
    # Both images of every level but the coarsest, separable, mul + add.
    radius = _blur_radius(_antialias_sigma(params["scale_step"]))
    for h, w in sizes[:-1]:
      total += 2 * h * w * 2 * 2 * (2 * radius + 1)
  for h, w in sizes[finest:]:
    total += h * w * (_OPS_PER_LEVEL + params["num_warps"] * per_warp)
  return int(total)


def check_frames(frame0, frame1, name: str = "tvl1"):
  """Raises ValueError/TypeError unless both are float `[B, H, W, 1|3]` alike."""
  for label, frame in (("frame0", frame0), ("frame1", frame1)):
    if len(frame.shape) != 4:
      raise ValueError(f"{name}: {label} must be [B, H, W, C], got shape "
                       f"{tuple(frame.shape)}")
    if frame.shape[-1] not in (1, 3):
      raise ValueError(f"{name}: {label} must have 1 or 3 channels, got "
                       f"shape {tuple(frame.shape)}")
    if None in tuple(frame.shape[1:3]):
      raise ValueError(f"{name}: {label} needs a static height and width, "
                       f"got shape {tuple(frame.shape)}")
    if min(frame.shape[1:3]) < 2:
      raise ValueError(f"{name}: {label} must be at least 2x2 pixels, got "
                       f"shape {tuple(frame.shape)}")
    if not keras.backend.is_float_dtype(keras.backend.standardize_dtype(
        frame.dtype)):
      raise TypeError(f"{name}: {label} must be a float tensor with values "
                      f"in [0, 255], got dtype {frame.dtype}")
  if tuple(frame0.shape[1:]) != tuple(frame1.shape[1:]):
    raise ValueError(f"{name}: frame0 and frame1 shapes differ: "
                     f"{tuple(frame0.shape)} vs {tuple(frame1.shape)}")


def tvl1(frame0, frame1, preset: str = "accurate", jit_compile: bool = True,
         **overrides):
  """TV-L1 optical flow from `frame0` to `frame1` (OpenCV's convention).

  Called on concrete values (eager TensorFlow, numpy, JAX arrays outside a
  trace), the function compiles itself: XLA through
  `tf.function(jit_compile=True)` on TensorFlow, `jax.jit` on JAX, one
  compiled function per frame shape, preset and overrides, kept in a
  process-wide cache of `_CACHE_SIZE` entries (`clear_compiled()` empties
  it). The first call of a shape pays the compile time (seconds to a minute
  on CPU); later calls run 7-15x faster than op by op. Inside a
  `tf.function`, `jax.jit` or a Keras model the surrounding trace is
  compiled as a whole, so the function just adds its ops to it. Tensor
  parameters (variables, as `TVL1Flow(learnable=True)` passes) and other
  backends run op by op.

  Args:
    frame0: float `[B, H, W, C]`, C = 1 (grey) or 3 (RGB), values in
      [0, 255]; H and W static.
    frame1: float, same shape as `frame0`.
    preset: `"accurate"` or `"fast"` (see `PRESETS`).
    jit_compile: False runs op by op even on concrete inputs (debugging,
      or a one-off call on a shape not seen again).
    **overrides: any preset parameter (`tau`, `lambda_`, `theta`,
      `num_scales`, `scale_step`, `num_warps`, `num_iters`, `median_size`,
      `finest_scale`, `normalize`, `interpolation`, `mask_outside`,
      `antialias`, `min_level_size`) and the optional kernels
      (`gradient_kernel` [2, 3], `forward_kernel` [2, 2],
      `divergence_kernel` [2, 2]). `tau`, `lambda_`, `theta` and the kernels
      may be tensors or variables.

  Returns:
    float32 `[B, H, W, 2]` flow in pixels, channel 0 = x (right), 1 = y
    (down), such that `frame0(p) ~ frame1(p + flow(p))`.

  Raises:
    ValueError, TypeError: bad shapes, dtype or parameters.
  """
  params = resolve_params(preset, **overrides)
  frame0 = ops.convert_to_tensor(frame0)
  frame1 = ops.convert_to_tensor(frame1)
  check_frames(frame0, frame1)
  frame0 = ops.cast(frame0, "float32")
  frame1 = ops.cast(frame1, "float32")
  if jit_compile:
    compiled = _compiled_for(frame0, frame1, params)
    if compiled is not None:
      return compiled(frame0, frame1)
  return _tvl1_graph(frame0, frame1, params)


# Compiled functions by (backend, shapes, parameters), least recently used
# first. Bounded: a tool that sees many frame sizes must not hold every
# compiled program.
_CACHE_SIZE = 16
_COMPILED: "collections.OrderedDict[Any, Any]" = collections.OrderedDict()
_COMPILED_LOCK = threading.Lock()


def clear_compiled() -> None:
  """Drops every compiled function `tvl1` keeps (frees their memory)."""
  with _COMPILED_LOCK:
    _COMPILED.clear()


def _freeze(value):
  """A hashable copy of a parameter value, or raises TypeError (a tensor)."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (tuple, list)):
    return tuple(_freeze(v) for v in value)
  if type(value).__module__ == "numpy":
    if getattr(value, "ndim", 0) == 0:
      return value.item()
    return _freeze(value.tolist())
  raise TypeError(f"not a constant: {type(value).__name__}")


def _is_concrete(tensor) -> bool:
  """True for values (not symbols of a trace) of the current backend."""
  backend = keras.backend.backend()
  if backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.executing_eagerly() and hasattr(tensor, "numpy")
  if backend == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    return not isinstance(tensor, jax.core.Tracer)
  return False


def _compiled_for(frame0, frame1, params):
  """The cached compiled `(frame0, frame1) -> flow`, or None to run op by op."""
  backend = keras.backend.backend()
  if backend not in ("tensorflow", "jax"):
    return None
  if not (_is_concrete(frame0) and _is_concrete(frame1)):
    return None
  try:
    frozen = tuple(sorted((k, _freeze(v)) for k, v in params.items()))
  except TypeError:
    return None
  key = (backend, tuple(frame0.shape), tuple(frame1.shape), frozen)
  with _COMPILED_LOCK:
    fn = _COMPILED.get(key)
    if fn is not None:
      _COMPILED.move_to_end(key)
      return fn
  fixed = dict(params)
  if backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    # A concrete function per shape, traced here once: tf.function's
    # retracing check would otherwise warn when a tool compiles many shapes.
    spec = tf.TensorSpec(frame0.shape, "float32")
    fn = tf.function(lambda a, b: _tvl1_graph(a, b, fixed), jit_compile=True,
                     autograph=False).get_concrete_function(spec, spec)
  else:
    import jax  # pylint: disable=g-import-not-at-top
    fn = jax.jit(lambda a, b: _tvl1_graph(a, b, fixed))
  with _COMPILED_LOCK:
    _COMPILED[key] = fn
    while len(_COMPILED) > _CACHE_SIZE:
      _COMPILED.popitem(last=False)
  return fn


def _tvl1_graph(frame0, frame1, params):
  """The TV-L1 computation on checked float32 frames (see `tvl1`)."""
  image0, image1 = rgb_to_grey(frame0), rgb_to_grey(frame1)
  if params["normalize"]:
    image0, image1 = normalize_pair(image0, image1)
  height, width = image0.shape[1], image0.shape[2]
  sizes = pyramid_sizes(height, width, params["num_scales"],
                        params["scale_step"], params["min_level_size"])
  levels = [(image0, image1)]
  for size in sizes[1:]:
    # Each level from the previous one, as OpenCV builds its pyramid.
    prev = levels[-1]
    if params["antialias"]:
      sigma = _antialias_sigma(params["scale_step"])
      prev = (gaussian_blur(prev[0], sigma), gaussian_blur(prev[1], sigma))
    levels.append((resize(prev[0], size), resize(prev[1], size)))
  finest = min(int(params["finest_scale"]), len(sizes) - 1)
  coarsest = levels[-1][0]
  flow = ops.zeros_like(ops.stack([coarsest, coarsest], axis=0))
  for level in range(len(sizes) - 1, finest - 1, -1):
    if level != len(sizes) - 1:
      flow = _rescale_flow(flow, sizes[level])
    flow = _solve_level(levels[level][0], levels[level][1], flow, params)
  if finest > 0:
    flow = _rescale_flow(flow, sizes[0])
  return ops.transpose(flow, (1, 2, 3, 0))
