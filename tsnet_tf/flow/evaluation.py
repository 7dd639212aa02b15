"""Optical-flow evaluation: endpoint error and frame pairs with known flow.

numpy only (no TensorFlow, no OpenCV), so benchmarks run under any Keras
backend. Pairs obey OpenCV's convention `frame0(p) = frame1(p + flow(p))`:
frame 1 is a texture sampled on the pixel grid and frame 0 the same texture
sampled at the displaced positions `p + flow(p)`.

Textures:
* `Texture`: analytic (random plane waves plus soft-edged discs), sampled
  exactly at any position, so the ground truth has no interpolation error.
* `ImageTexture`: any grey image (blurred noise from `noise_image`, or a real
  video frame), sampled with Keys bicubic interpolation.

`make_stress_set` draws many random translations, rotations, zooms and smooth
fields on several textures, with the content outside frame 1 either present
(as in video: the scene goes on past the frame) or black (what
`cv2.remap`'s default constant border gives, a harder case).

Used by benchmarks/bench_flow.py and the tests.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

FLOW_KINDS = ("translation", "rotation", "zoom", "smooth")
TEXTURES = ("waves", "noise", "image")
BORDERS = ("scene", "black")


class Texture:
  """A random analytic grey-level texture in [0, 255].

  Args:
    rng: numpy Generator.
    num_waves: number of random plane waves.
    num_discs: number of soft-edged discs (edges like object boundaries).
    max_frequency: highest wave frequency in cycles per pixel; 0.2 keeps the
      texture well sampled at 1 px.
  """

  def __init__(self, rng, num_waves=48, num_discs=12, max_frequency=0.2,
               extent=256.0):
    angle = rng.uniform(0, 2 * np.pi, num_waves)
    freq = np.exp(rng.uniform(np.log(0.015), np.log(max_frequency), num_waves))
    self.k = np.stack([np.cos(angle), np.sin(angle)], -1) * freq[:, None]
    self.k *= 2 * np.pi
    self.phase = rng.uniform(0, 2 * np.pi, num_waves)
    # Low frequencies carry more energy, as in natural images.
    self.amp = (0.015 / freq) ** 0.5
    self.centres = rng.uniform(-0.1 * extent, 1.1 * extent, (num_discs, 2))
    self.radii = rng.uniform(0.04 * extent, 0.2 * extent, num_discs)
    self.disc_amp = rng.uniform(-1, 1, num_discs) * 1.5

  def __call__(self, x, y):
    """Texture values at float coordinates (any equal shapes) -> float32."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    value = np.zeros(x.shape)
    for (kx, ky), phase, amp in zip(self.k, self.phase, self.amp):
      value += amp * np.cos(kx * x + ky * y + phase)
    for (cx, cy), r, a in zip(self.centres, self.radii, self.disc_amp):
      dist = np.hypot(x - cx, y - cy)
      value += a / (1.0 + np.exp((dist - r) / 0.7))
    value = (value - value.mean()) / (value.std() + 1e-9)
    return np.clip(128.0 + 45.0 * value, 0.0, 255.0).astype(np.float32)


def flow_field(kind, height, width, magnitude, rng):
  """A smooth flow `[H, W, 2]` (x, y) whose largest displacement is `magnitude`.

  Args:
    kind: one of FLOW_KINDS.
    height: image height.
    width: image width.
    magnitude: maximum endpoint length in pixels.
    rng: numpy Generator.

  Returns:
    float32 `[H, W, 2]`.
  """
  y, x = np.mgrid[0:height, 0:width].astype(np.float64)
  cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
  if kind == "translation":
    angle = rng.uniform(0, 2 * np.pi)
    u = np.full_like(x, np.cos(angle))
    v = np.full_like(x, np.sin(angle))
  elif kind == "rotation":
    angle = 0.05 * rng.choice([-1.0, 1.0])
    c, s = np.cos(angle), np.sin(angle)
    u = c * (x - cx) - s * (y - cy) + cx - x
    v = s * (x - cx) + c * (y - cy) + cy - y
  elif kind == "zoom":
    u, v = x - cx, y - cy
    if rng.uniform() < 0.5:
      u, v = -u, -v
  elif kind == "smooth":
    u = np.zeros_like(x)
    v = np.zeros_like(x)
    for _ in range(4):
      kx, ky = rng.uniform(-1, 1, 2) * 2 * np.pi / max(height, width)
      phase = rng.uniform(0, 2 * np.pi, 2)
      a = rng.uniform(-1, 1, 2)
      u += a[0] * np.cos(kx * x + ky * y + phase[0])
      v += a[1] * np.sin(ky * x - kx * y + phase[1])
    u += rng.uniform(-1, 1)
    v += rng.uniform(-1, 1)
  else:
    raise ValueError(f"unknown flow kind {kind!r}; choose from {FLOW_KINDS}")
  peak = np.max(np.hypot(u, v))
  scale = magnitude / peak if peak > 0 else 0.0
  return np.stack([u * scale, v * scale], -1).astype(np.float32)


def make_pair(flow, rng, texture=None):
  """Frames `(frame0, frame1)` float32 `[H, W]` with `frame0(p) = frame1(p + flow(p))`.

  Args:
    flow: float32 `[H, W, 2]`.
    rng: numpy Generator (for the texture when `texture` is None).
    texture: optional `Texture`.
  """
  height, width = flow.shape[:2]
  texture = texture or Texture(rng, extent=float(max(height, width)))
  y, x = np.mgrid[0:height, 0:width].astype(np.float64)
  frame1 = texture(x, y)
  frame0 = texture(x + flow[..., 0], y + flow[..., 1])
  return frame0, frame1


def endpoint_error(flow, truth, valid=None):
  """Mean endpoint error in pixels over `valid` pixels (all when None).

  Args:
    flow: float `[..., H, W, 2]` estimate.
    truth: float, same shape, ground truth.
    valid: optional bool mask broadcastable to `[..., H, W]`.

  Returns:
    float, the mean over every pair and pixel given.
  """
  err = np.hypot(flow[..., 0] - truth[..., 0], flow[..., 1] - truth[..., 1])
  if valid is not None:
    err = err[valid]
  return float(np.mean(err))


def endpoint_errors(flow, truth):
  """Per-pair mean endpoint errors of `[N, H, W, 2]` batches -> float64 `[N]`."""
  err = np.hypot(flow[..., 0] - truth[..., 0], flow[..., 1] - truth[..., 1])
  return err.reshape(len(err), -1).mean(axis=1)


def _keys_weights(t):
  """Keys cubic weights of taps -1, 0, 1, 2 for offsets `t` in [0, 1).

  a = -0.5 (Catmull-Rom), the one value that reproduces quadratics, so the
  samples (the ground truth's frame 0) carry the least interpolation error.
  """
  a = -0.5
  t1 = t + 1.0
  w0 = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a
  w1 = ((a + 2) * t - (a + 3)) * t * t + 1
  s = 1.0 - t
  w2 = ((a + 2) * s - (a + 3)) * s * s + 1
  return (w0, w1, w2, 1.0 - w0 - w1 - w2)


class ImageTexture:
  """A grey image seen as a texture: bicubic (Catmull-Rom) samples.

  Position (0, 0) is pixel (`offset_y`, `offset_x`) of `image`, so a frame
  can be cut from the middle of a larger image and its displaced copy still
  sees real content past the frame's edges. Outside the image the border
  is replicated.

  Args:
    image: float `[H, W]` grey levels in [0, 255].
    offset_x: column of `image` that position x = 0 samples.
    offset_y: row of `image` that position y = 0 samples.
  """

  def __init__(self, image, offset_x=0, offset_y=0):
    self.image = np.asarray(image, np.float64)
    self.offset_x = float(offset_x)
    self.offset_y = float(offset_y)

  def __call__(self, x, y):
    """Bicubic samples at float coordinates (equal shapes) -> float32."""
    height, width = self.image.shape
    x = np.asarray(x, np.float64) + self.offset_x
    y = np.asarray(y, np.float64) + self.offset_y
    x0, y0 = np.floor(x), np.floor(y)
    wx, wy = _keys_weights(x - x0), _keys_weights(y - y0)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros(x.shape)
    for i, w_row in zip(range(-1, 3), wy):
      rows = np.clip(y0 + i, 0, height - 1)
      for j, w_col in zip(range(-1, 3), wx):
        cols = np.clip(x0 + j, 0, width - 1)
        out += w_row * w_col * self.image[rows, cols]
    return np.clip(out, 0.0, 255.0).astype(np.float32)


def _gaussian_blur(image, sigma):
  """Separable Gaussian blur, taps to 3 sigma, reflected borders (numpy, float64).

  Not `tvl1.gaussian_blur` (taps to 2 sigma, replicated borders, float32):
  the stress textures are defined by this one, and the two differ by up to
  ~2 grey levels inside the image and ~50 at its borders.
  """
  radius = max(1, int(np.ceil(3 * sigma)))
  taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  taps /= taps.sum()
  for axis in (0, 1):
    padded = np.pad(image, [(radius, radius) if a == axis else (0, 0)
                            for a in (0, 1)], mode="reflect")
    n = image.shape[axis]
    image = sum(t * np.take(padded, np.arange(k, k + n), axis=axis)
                for k, t in enumerate(taps))
  return image


def noise_image(rng, height, width, sigma):
  """Gaussian-blurred white noise, mean 128, std 50, clipped to [0, 255].

  Fine, unstructured texture (sigma about 1 px) is the hardest for a coarse
  pyramid: it aliases when downsampled.
  """
  noise = _gaussian_blur(rng.uniform(0, 255, (height, width)), sigma)
  noise = (noise - noise.mean()) / (noise.std() + 1e-9)
  return np.clip(128.0 + 50.0 * noise, 0.0, 255.0)


def make_stress_set(height: int, width: int, num_pairs: int,
                    max_magnitude: float = 16.0, seed: int = 0,
                    textures: Sequence[str] = ("waves", "noise"),
                    borders: Sequence[str] = BORDERS,
                    images: Optional[Sequence[np.ndarray]] = None
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[str]]:
  """Random motions of every kind on several textures and border rules.

  Pair i has flow kind `FLOW_KINDS[i % 4]`, texture
  `textures[(i // 4) % len(textures)]` and border
  `borders[(i // (4 * len(textures))) % len(borders)]`, so any 8 *
  len(textures) consecutive pairs cover every combination; the largest
  displacement of each pair is uniform in [1, max_magnitude] px.

  Args:
    height: frame height.
    width: frame width.
    num_pairs: number of pairs.
    max_magnitude: largest displacement, pixels.
    seed: random seed.
    textures: names from `TEXTURES`: `waves` (analytic `Texture`), `noise`
      (blurred noise, sigma 0.7-3 px), `image` (a random crop of one of
      `images`).
    borders: names from `BORDERS`: `scene` (frame 0 sees texture past frame
      1's edges) or `black` (positions outside frame 1 are 0).
    images: grey float `[H', W']` images for the `image` texture, each at
      least (height + 40) x (width + 40).

  Returns:
    (frame0, frame1, flow, names): float32 `[N, H, W, 1]` x2 with integer
    values in [0, 255], float32 `[N, H, W, 2]`, and one description per
    pair (e.g. "zoom 12.3px noise black").

  Raises:
    ValueError: unknown texture or border, or `image` without `images`.
  """
  for name in textures:
    if name not in TEXTURES:
      raise ValueError(f"make_stress_set: unknown texture {name!r}; choose "
                       f"from {TEXTURES}")
    if name == "image" and not images:
      raise ValueError("make_stress_set: texture 'image' needs `images`")
  for name in borders:
    if name not in BORDERS:
      raise ValueError(f"make_stress_set: unknown border {name!r}; choose "
                       f"from {BORDERS}")
  rng = np.random.default_rng(seed)
  margin = 20
  y, x = np.mgrid[0:height, 0:width].astype(np.float64)
  f0, f1, flows, names = [], [], [], []
  for i in range(num_pairs):
    kind = FLOW_KINDS[i % len(FLOW_KINDS)]
    texture_name = textures[(i // len(FLOW_KINDS)) % len(textures)]
    border = borders[(i // (len(FLOW_KINDS) * len(textures))) % len(borders)]
    magnitude = float(rng.uniform(1.0, max_magnitude))
    flow = flow_field(kind, height, width, magnitude, rng)
    if texture_name == "waves":
      texture = Texture(rng, extent=float(max(height, width)))
    else:
      if texture_name == "noise":
        image = noise_image(rng, height + 2 * margin, width + 2 * margin,
                            rng.uniform(0.7, 3.0))
      else:
        image = images[int(rng.integers(len(images)))]
        if (image.shape[0] < height + 2 * margin
            or image.shape[1] < width + 2 * margin):
          raise ValueError(
              f"make_stress_set: images must be at least {height + 2 * margin}"
              f"x{width + 2 * margin}, got {image.shape}")
      oy = int(rng.integers(margin, image.shape[0] - height - margin + 1))
      ox = int(rng.integers(margin, image.shape[1] - width - margin + 1))
      texture = ImageTexture(image, ox, oy)
    xs, ys = x + flow[..., 0], y + flow[..., 1]
    a = texture(xs, ys)
    if border == "black":
      outside = (xs < 0) | (xs > width - 1) | (ys < 0) | (ys > height - 1)
      a = np.where(outside, 0.0, a)
    f0.append(a)
    f1.append(texture(x, y))
    flows.append(flow)
    names.append(f"{kind} {magnitude:.1f}px {texture_name} {border}")
  f0 = np.round(np.stack(f0))[..., None].astype(np.float32)
  f1 = np.round(np.stack(f1))[..., None].astype(np.float32)
  return f0, f1, np.stack(flows), names


def load_opencv(threads: int = 2):
  """The `cv2` module when it has the reference DualTVL1 (`cv2.optflow`), else None.

  OpenCV is a benchmark and test reference only (never a runtime dependency):
  benchmarks call this and skip their OpenCV rows on None.
  """
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  if not hasattr(cv2, "optflow"):
    return None
  cv2.setNumThreads(threads)
  return cv2
