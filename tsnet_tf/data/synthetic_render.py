"""The synthetic videos' renderer: classes by motion, or by appearance x motion.

Each video shows one textured object over a textured background. Textures,
colours, the object's shape, size and position, the camera jitter and the sensor
noise are drawn from one class-independent distribution; the class decides only
how things move:

  move_{left,right,up,down}   the object translates; the background is still.
  rotate_{cw,ccw}             the object spins in place (as seen on screen).
  zoom_{in,out}               the object grows / shrinks (comes closer / recedes).
  pan_{left,right,up,down}    the camera pans while tracking the object: the
                              background moves the opposite way (camera turns
                              left -> scene moves right), the object stays.

With `appearances` (e.g. red, green, blue), each class is an appearance x
motion pair, e.g. `red_move_left`: the object's colours come from the
appearance's hue family, everything else as above. A single frame then tells
the appearance but not the direction, and optical flow tells the direction but
not the colour, as in HMDB51, where RGB and flow are each partly right and
their fusion beats both.

The scene lives on a torus (the background tiles, the object wraps around the
frame edges), so the object's position in any single frame, the first included,
is uniform whatever the class. Motion speeds are 1-4 px/frame at 320x240 and
scale with the frame size. `render_video` draws one video's frames (numpy);
`synthetic.py` writes them as an HMDB51-format dataset.
"""

import colorsys
import dataclasses
import math
from typing import Dict, Optional, Tuple

import numpy as np

# Selection order for `num_classes`: the first N are used. Label order is then
# sorted by name, as in HMDB51.
MOTION_CLASSES = (
    "move_left", "move_right", "move_up", "move_down",
    "rotate_cw", "rotate_ccw", "zoom_in", "zoom_out",
    "pan_left", "pan_right", "pan_up", "pan_down",
)

# Object hue families (HSV hue in [0, 1)) for appearance x motion classes.
APPEARANCES = {"red": 0.0, "yellow": 1 / 6, "green": 1 / 3, "cyan": 1 / 2, "blue": 2 / 3,
               "purple": 5 / 6}
_HUE_JITTER = 0.04

# Unit image-space directions (x right, y down) of the moving content.
_DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


# Reference frame size for motion magnitudes (HMDB51's 320x240).
_REF_HEIGHT, _REF_WIDTH = 240, 320
_SPEED_RANGE = (1.0, 4.0)  # px/frame at the reference size
_RADIUS_RANGE = (0.12, 0.26)  # object radius, fraction of min(H, W)
_ZOOM_RADIUS_RANGE = (0.07, 0.32)
_JITTER_AMPLITUDE = 1.0  # px at the reference size
_NOISE_SIGMA = (1.0, 4.0)  # grey levels


# ----------------------------------------------------------------------------
# Appearance: periodic textures (tile seamlessly, so the scene is a torus).


def split_class(class_name: str) -> Tuple[Optional[str], str]:
  """`red_move_left` -> ("red", "move_left"); `move_left` -> (None, "move_left").

  Raises:
    ValueError: neither a motion class nor an appearance x motion class.
  """
  head, _, rest = class_name.partition("_")
  if head in APPEARANCES and rest in MOTION_CLASSES:
    return head, rest
  if class_name in MOTION_CLASSES:
    return None, class_name
  raise ValueError(f"unknown class {class_name!r}: a motion class ({', '.join(MOTION_CLASSES)}) "
                   f"or <appearance>_<motion> with an appearance in {', '.join(APPEARANCES)}")


def appearance_colours(rng: np.random.Generator, appearance: str) -> np.ndarray:
  """Two RGB colours of the appearance's hue family (saturated, light and dark).

  Returns:
    float32 `[2, 3]`, values in [0, 255].
  """
  hue = APPEARANCES[appearance]
  colours = []
  for value in (rng.uniform(0.75, 1.0), rng.uniform(0.3, 0.55)):
    h = (hue + rng.uniform(-_HUE_JITTER, _HUE_JITTER)) % 1.0
    colours.append(colorsys.hsv_to_rgb(h, rng.uniform(0.65, 0.95), value))
  return np.asarray(colours, np.float32) * 255.0


def periodic_texture(rng: np.random.Generator, height: int, width: int,
                     colours: Optional[np.ndarray] = None) -> np.ndarray:
  """A random colour texture that tiles seamlessly.

  Two colours blended by a 1/f^beta noise field (random beta: blotchy to fine),
  modulated by a finer luminance noise so that every region has texture for
  motion to be seen against. `colours` (float32 `[2, 3]`) fixes the two
  colours; by default they are drawn uniformly.

  Returns:
    float32 `[height, width, 3]`, values in [0, 255].
  """
  fy = np.fft.fftfreq(height)[:, None]
  fx = np.fft.rfftfreq(width)[None, :]
  # Anisotropy and slope are random so textures vary (streaky, blotchy, fine).
  aniso = rng.uniform(0.5, 2.0)
  f = np.sqrt((fx * aniso) ** 2 + (fy / aniso) ** 2)
  f[0, 0] = 1.0

  def field(beta, cutoff):
    spec = np.fft.rfft2(rng.standard_normal((height, width)).astype(np.float32))
    spec *= (f + cutoff) ** (-beta / 2)
    spec[0, 0] = 0.0
    out = np.fft.irfft2(spec, s=(height, width)).astype(np.float32)
    return out / (out.std() + 1e-6)

  blend = 1.0 / (1.0 + np.exp(-1.5 * field(rng.uniform(2.0, 3.5), 0.01)))
  detail = field(rng.uniform(0.5, 1.5), 0.05)
  drawn = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
  colours = drawn if colours is None else np.asarray(colours, np.float32)
  tex = colours[0] + blend[..., None] * (colours[1] - colours[0])
  tex *= (1.0 + rng.uniform(0.08, 0.2) * detail)[..., None]
  return np.clip(tex, 0, 255)


class _PeriodicSampler:
  """Bilinear samples of a square periodic texture at arbitrary float coords."""

  def __init__(self, tex: np.ndarray):
    """tex: float32 `[S, S, C]`, tiling seamlessly."""
    self.size = tex.shape[0]
    # One extra row and column (wrapped) so the +1 neighbours need no modulo,
    # and a flat view so each corner is a single `take`.
    self._flat = np.pad(tex, ((0, 1), (0, 1), (0, 0)), mode="wrap").reshape(-1, tex.shape[2])

  def __call__(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """ys, xs: float arrays `[N]` (any values, wrapped modulo S) -> float32 `[N, C]`."""
    size, flat = self.size, self._flat
    y0 = np.floor(ys)
    x0 = np.floor(xs)
    wy = (ys - y0)[:, None]
    wx = (xs - x0)[:, None]
    idx = (y0.astype(np.int64) % size) * (size + 1) + (x0.astype(np.int64) % size)
    top = np.take(flat, idx, axis=0)
    top += (np.take(flat, idx + 1, axis=0) - top) * wx
    bottom = np.take(flat, idx + size + 1, axis=0)
    bottom += (np.take(flat, idx + size + 2, axis=0) - bottom) * wx
    return top + (bottom - top) * wy


class _Torus:
  """A periodic image, read back translated by sub-pixel amounts, cheaply.

  Tiling the image 2x2 once makes every wrapped window a plain slice (a view).
  """

  def __init__(self, image: np.ndarray):
    self.height, self.width = image.shape[:2]
    self._tiled = np.tile(image, (2, 2, 1))

  def window(self, y: int, x: int) -> np.ndarray:
    """The `[H, W, C]` view whose top-left is image pixel (y, x), wrapped."""
    y %= self.height
    x %= self.width
    return self._tiled[y:y + self.height, x:x + self.width]

  def shifted(self, dy: float, dx: float) -> np.ndarray:
    """The image translated by (dy, dx) px, bilinear: out(p) = image(p - d)."""
    iy, ix = math.floor(-dy), math.floor(-dx)
    fy, fx = -dy - iy, -dx - ix
    y, x = iy % self.height, ix % self.width
    g = self._tiled[y:y + self.height + 1, x:x + self.width + 1]
    rows = g[:, :-1] + (g[:, 1:] - g[:, :-1]) * np.float32(fx)
    return rows[:-1] + (rows[1:] - rows[:-1]) * np.float32(fy)


# ----------------------------------------------------------------------------
# Motion: per-frame scene state for each class.


@dataclasses.dataclass(frozen=True)
class _Trajectory:
  """Per-frame scene state, each an array of length T (pixels, radians)."""
  obj_x: np.ndarray
  obj_y: np.ndarray
  angle: np.ndarray
  radius: np.ndarray
  bg_x: np.ndarray
  bg_y: np.ndarray
  motion: Dict[str, float]


def _trajectory(class_name: str, rng: np.random.Generator, num_frames: int,
                height: int, width: int) -> _Trajectory:
  """Draws the class-independent scene and applies the class's motion."""
  t = np.arange(num_frames, dtype=np.float64)
  scale = math.sqrt(height * width / (_REF_HEIGHT * _REF_WIDTH))
  short = min(height, width)
  speed = rng.uniform(*_SPEED_RANGE) * scale
  # Class-independent draws first, in a fixed order, so that appearance and
  # placement statistics are identical across classes.
  x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
  angle0 = rng.uniform(0, 2 * math.pi)
  radius0 = rng.uniform(*_RADIUS_RANGE) * short
  kind, _, arg = class_name.partition("_")
  ones = np.ones_like(t)
  obj_x, obj_y = x0 * ones, y0 * ones
  angle, radius = angle0 * ones, radius0 * ones
  bg_x, bg_y = np.zeros_like(t), np.zeros_like(t)
  motion = {"speed_px": speed}
  if kind == "move":
    dx, dy = _DIRECTIONS[arg]
    obj_x, obj_y = x0 + dx * speed * t, y0 + dy * speed * t
  elif kind == "pan":
    # The camera turns `arg`: the background moves the other way on screen.
    dx, dy = _DIRECTIONS[arg]
    bg_x, bg_y = -dx * speed * t, -dy * speed * t
  elif kind == "rotate":
    omega = speed / radius0  # rad/frame; rim speed = `speed`
    sign = 1.0 if arg == "cw" else -1.0  # +angle is clockwise with y down
    angle = angle0 + sign * omega * t
    motion["omega_rad"] = sign * omega
  elif kind == "zoom":
    lo, hi = (f * short for f in _ZOOM_RADIUS_RANGE)
    # Log-radius rate giving `speed` px/frame at the mid radius, capped so the
    # whole video stays within [lo, hi].
    rate = speed / math.sqrt(lo * hi)
    rate = min(rate, math.log(hi / lo) / max(num_frames - 1, 1))
    span = rate * (num_frames - 1)
    start = rng.uniform(math.log(lo), max(math.log(hi) - span, math.log(lo)))
    log_r = start + rate * t
    if arg == "out":
      log_r = log_r[::-1]
    radius = np.exp(log_r)
    motion["log_radius_rate"] = rate if arg == "in" else -rate
    motion["speed_px"] = rate * math.sqrt(lo * hi)
  else:
    raise ValueError(f"unknown motion class {class_name!r}")
  # Small smooth camera shake, the same for background and object.
  jitter = _JITTER_AMPLITUDE * scale
  jx = np.zeros_like(t)
  jy = np.zeros_like(t)
  for _ in range(2):
    period = rng.uniform(15, 50)
    jx += rng.uniform(0, jitter / 2) * np.sin(2 * math.pi * t / period + rng.uniform(0, 6.3))
    jy += rng.uniform(0, jitter / 2) * np.sin(2 * math.pi * t / period + rng.uniform(0, 6.3))
  return _Trajectory(obj_x=obj_x + jx, obj_y=obj_y + jy, angle=angle, radius=radius,
                     bg_x=bg_x + jx, bg_y=bg_y + jy, motion=motion)


def _shape_mask(u: np.ndarray, v: np.ndarray, radius: float, aspect: float,
                power: int) -> np.ndarray:
  """Soft (1 px antialiased) mask of a superellipse in object coordinates.

  `power` 2 gives an ellipse, 4 a rounded rectangle.
  """
  nu = u * np.float32(1.0 / radius)
  nv = v * np.float32(1.0 / (radius * aspect))
  nu *= nu
  nv *= nv
  if power == 4:
    nu *= nu
    nv *= nv
    norm = np.sqrt(np.sqrt(nu + nv))
  elif power == 2:
    norm = np.sqrt(nu + nv)
  else:
    raise ValueError(f"power must be 2 or 4, got {power}")
  edge_px = (1.0 - norm) * np.float32(radius * min(aspect, 1.0)) + np.float32(0.5)
  return np.clip(edge_px, 0.0, 1.0, out=edge_px)


def _wrapped_runs(start: int, length: int, period: int):
  """Splits [start, start + length) modulo `period` into contiguous runs.

  Yields (offset in the run's source, start in [0, period), run length); at
  most two runs when length <= period.
  """
  pos = start % period
  done = 0
  while done < length:
    n = min(length - done, period - pos)
    yield done, pos, n
    done += n
    pos = 0


def _get_box(frame: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
  """Copy of the `size`x`size` box at (y, x) of a periodic frame (wraps edges)."""
  box = np.empty((size, size) + frame.shape[2:], frame.dtype)
  for oy, fy, ny in _wrapped_runs(y, size, frame.shape[0]):
    for ox, fx, nx in _wrapped_runs(x, size, frame.shape[1]):
      box[oy:oy + ny, ox:ox + nx] = frame[fy:fy + ny, fx:fx + nx]
  return box


def _set_box(frame: np.ndarray, y: int, x: int, box: np.ndarray) -> None:
  """Writes `box` back where `_get_box` read it."""
  size = box.shape[0]
  for oy, fy, ny in _wrapped_runs(y, size, frame.shape[0]):
    for ox, fx, nx in _wrapped_runs(x, size, frame.shape[1]):
      frame[fy:fy + ny, fx:fx + nx] = box[oy:oy + ny, ox:ox + nx]


def render_video(class_name: str, rng: np.random.Generator, num_frames: int, height: int,
                 width: int) -> Tuple[np.ndarray, Dict[str, float]]:
  """Renders one synthetic video.

  Args:
    class_name: one of MOTION_CLASSES, or `<appearance>_<motion>` (APPEARANCES).
    rng: the video's own generator; every random choice comes from it.
    num_frames: T >= 2.
    height, width: frame size (even, >= 16).

  Returns:
    (frames uint8 `[T, height, width, 3]` RGB, motion ground truth dict).
  """
  appearance, motion_class = split_class(class_name)
  traj = _trajectory(motion_class, rng, num_frames, height, width)
  background = periodic_texture(rng, height, width)
  tex_size = 2 ** math.ceil(math.log2(max(16, 2 * max(height, width) * _ZOOM_RADIUS_RANGE[1])))
  colours = appearance_colours(rng, appearance) if appearance else None
  obj_tex = _PeriodicSampler(periodic_texture(rng, tex_size, tex_size, colours))
  aspect = rng.uniform(0.6, 1.0)
  power = int(rng.choice([2, 4]))
  noise_sigma = rng.uniform(*_NOISE_SIGMA)
  ref_radius = float(traj.radius[0])

  # Box around the object: big enough for any rotation, never wider than the
  # frame (so wrapped indices never collide).
  max_r = float(traj.radius.max())
  reach = max_r * (math.sqrt(2) if power == 4 else 1.0)  # rounded squares reach the corners
  half = min(int(math.ceil(reach)) + 2, (min(height, width) - 1) // 2)
  offs = np.arange(-half, half + 1, dtype=np.float32)
  background = _Torus(background)
  # Sensor noise: windows at random offsets into one periodic noise field; as
  # good as fresh noise per frame (no coherent motion), at a fraction of the cost.
  noise = _Torus(rng.standard_normal((height, width, 3), dtype=np.float32) * noise_sigma)
  noise_offsets = rng.integers(0, max(height, width), size=(num_frames, 2))
  frames = np.empty((num_frames, height, width, 3), np.uint8)
  for i in range(num_frames):
    frame = background.shifted(traj.bg_y[i], traj.bg_x[i])
    cx, cy = traj.obj_x[i], traj.obj_y[i]
    icx, icy = math.floor(cx), math.floor(cy)
    # Pixel offsets from the (sub-pixel) object centre.
    dx = (offs + np.float32(icx - cx))[None, :]
    dy = (offs + np.float32(icy - cy))[:, None]
    cos, sin = np.float32(math.cos(traj.angle[i])), np.float32(math.sin(traj.angle[i]))
    # Object coordinates: undo the rotation (clockwise on screen for +angle).
    u = cos * dx + sin * dy
    v = cos * dy - sin * dx
    r = float(traj.radius[i])
    mask = _shape_mask(u, v, r, aspect, power)
    # Texture scales with the object, so zooming looks like approaching.
    k = np.float32(ref_radius / r)
    obj = obj_tex((v * k).ravel(), (u * k).ravel()).reshape(mask.shape + (3,))
    box = _get_box(frame, icy - half, icx - half, 2 * half + 1)
    box += (obj - box) * mask[..., None]
    _set_box(frame, icy - half, icx - half, box)
    frame += noise.window(*noise_offsets[i])
    np.clip(frame, 0, 255, out=frame)
    frames[i] = np.rint(frame, out=frame)
  return frames, dict(traj.motion)


# ----------------------------------------------------------------------------
# Dataset: names, splits, broken files.
