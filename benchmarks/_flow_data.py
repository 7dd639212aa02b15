"""Synthetic frame pairs with exactly known optical flow (numpy only).

The texture is an analytic function (random sinusoids plus soft-edged
discs), so the first frame is sampled exactly at the displaced positions
`p + flow(p)` and the pair obeys OpenCV's convention
`frame0(p) = frame1(p + flow(p))` with no interpolation error in the ground
truth. Used by benchmarks/bench_flow.py and by tests/flow.
"""

import numpy as np

FLOW_KINDS = ("translation", "rotation", "zoom", "smooth")


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


def make_batch(size=112, num_pairs=24, max_magnitude=12.0, seed=0,
               channels=3):
  """`num_pairs` pairs cycling through FLOW_KINDS, magnitudes 1..max px.

  Args:
    size: height and width.
    num_pairs: batch size (24 = the pairs of a 25-frame clip).
    max_magnitude: largest displacement of the batch, pixels.
    seed: random seed.
    channels: 1 (grey) or 3 (grey repeated as RGB).

  Returns:
    (frame0, frame1, flow): float32 `[N, S, S, C]` x2 with integer values
    in [0, 255] and
    `[N, S, S, 2]`.
  """
  rng = np.random.default_rng(seed)
  magnitudes = np.linspace(1.0, max_magnitude, num_pairs)
  rng.shuffle(magnitudes)
  f0, f1, flows = [], [], []
  for i in range(num_pairs):
    flow = flow_field(FLOW_KINDS[i % len(FLOW_KINDS)], size, size,
                      magnitudes[i], rng)
    a, b = make_pair(flow, rng)
    f0.append(a)
    f1.append(b)
    flows.append(flow)
  # Rounded to 8-bit levels like decoded video (and because OpenCV treats
  # float input as [0, 1] and uint8 as [0, 255]).
  f0 = np.repeat(np.round(np.stack(f0))[..., None], channels, -1)
  f1 = np.repeat(np.round(np.stack(f1))[..., None], channels, -1)
  return f0, f1, np.stack(flows)


def endpoint_error(flow, truth, valid=None):
  """Mean endpoint error in pixels over `valid` pixels (all when None)."""
  err = np.hypot(flow[..., 0] - truth[..., 0], flow[..., 1] - truth[..., 1])
  if valid is not None:
    err = err[valid]
  return float(np.mean(err))
