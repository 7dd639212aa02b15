"""Synthetic HMDB51-format videos: classes by motion, or by appearance x motion.

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
scale with the frame size.

Output layout (HMDB51's, see `tsnet_tf.data.hmdb51`):
  <out>/videos/<class>/<name>.avi
  <out>/splits/<class>_test_split{1,2,3}.txt
  <out>/manifest.json     per-video ground truth (class, fps, frames, motion)

Everything is deterministic for a given seed: each video draws from its own
`np.random.SeedSequence([seed, class index, video index])`, so the bytes do not
depend on the number of workers or on which other videos are generated.
"""

import concurrent.futures
import dataclasses
import json
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tsnet_tf.data import hmdb51
from tsnet_tf.data import video as video_lib
from tsnet_tf.utils import io as io_utils

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

BROKEN_KINDS = ("empty", "truncated", "garbage")
DEFAULT_FPS = (25.0, 30000 / 1001, 30.0)

# Reference frame size for motion magnitudes (HMDB51's 320x240).
_REF_HEIGHT, _REF_WIDTH = 240, 320
_SPEED_RANGE = (1.0, 4.0)  # px/frame at the reference size
_RADIUS_RANGE = (0.12, 0.26)  # object radius, fraction of min(H, W)
_ZOOM_RADIUS_RANGE = (0.07, 0.32)
_JITTER_AMPLITUDE = 1.0  # px at the reference size
_NOISE_SIGMA = (1.0, 4.0)  # grey levels


@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """One generated video.

  Attributes:
    path: file path, relative to the output directory.
    class_name: its class (folder) name.
    num_frames, fps, height, width: as written.
    motion: ground truth: kind ("move", "rotate", "zoom", "pan"), and the
      per-frame speed (`speed_px`: px/frame of the moving content at the rim
      for rotate/zoom) plus kind-specific values.
    broken: "" for a good video, else one of BROKEN_KINDS.
  """
  path: str
  class_name: str
  num_frames: int
  fps: float
  height: int
  width: int
  motion: Dict[str, float]
  broken: str = ""


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
  """What `generate_dataset` wrote.

  Attributes:
    output_dir: the dataset root.
    classes: class names in label order (sorted).
    videos: every file written, good and broken, in (class, index) order.
    split_counts: {split: {class: {"train": n, "test": n, "unused": n}}}.
  """
  output_dir: str
  classes: Tuple[str, ...]
  videos: Tuple[VideoRecord, ...]
  split_counts: Dict[int, Dict[str, Dict[str, int]]]

  @property
  def broken(self) -> Tuple[VideoRecord, ...]:
    return tuple(v for v in self.videos if v.broken)

  def to_json(self) -> dict:
    return {
        "classes": list(self.classes),
        "videos": [dataclasses.asdict(v) for v in self.videos],
        "split_counts": {str(k): v for k, v in self.split_counts.items()},
    }


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
  import colorsys  # pylint: disable=g-import-not-at-top
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


def parse_broken(spec: str) -> Tuple[str, ...]:
  """`"empty,garbage"` -> ("empty", "garbage"); `"4"` -> 4 kinds cycling BROKEN_KINDS."""
  spec = (spec or "").strip()
  if not spec:
    return ()
  if spec.isdigit():
    return tuple(BROKEN_KINDS[i % len(BROKEN_KINDS)] for i in range(int(spec)))
  kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
  bad = [k for k in kinds if k not in BROKEN_KINDS]
  if bad:
    raise ValueError(f"--broken: unknown kind(s) {bad}; use a count or a comma list of "
                     f"{', '.join(BROKEN_KINDS)}")
  return kinds


def video_name(class_name: str, index: int, rng: np.random.Generator) -> str:
  """An HMDB51-style name: <source>_<class>_<body>_<camera>_<people>_<view>_<quality>_<clip>.avi.

  The tags are drawn at random except the camera-motion tag, which is `cm` for
  pan classes (as HMDB51 tags camera motion) and `nm` otherwise.
  """
  body = rng.choice(["f", "u", "h"])
  view = rng.choice(["fr", "ba", "le", "ri"])
  quality = rng.choice(["goo", "med"])
  camera = "cm" if split_class(class_name)[1].startswith("pan_") else "nm"
  return (f"Synth{index:04d}_{class_name}_{body}_{camera}_np1_{view}_{quality}_0.avi")


def partition(names: Sequence[str], rng: np.random.Generator,
              never_unused: Sequence[str] = ()) -> List[hmdb51.SplitEntry]:
  """Assigns split ids to one class's videos: 70/30 train/test, a few unused.

  Like HMDB51 (which lists more videos than the 70 + 30 it uses), 1 in 20
  videos (rounded down) is marked unused (id 0); of the rest, round(70 %) are
  training (1) and the others testing (2). Names in `never_unused` are always
  used (broken files must reach the converter).

  Returns:
    SplitEntry list in the order of `names`.
  """
  n = len(names)
  order = list(rng.permutation(n))
  keep = set(never_unused)
  num_unused = n // 20
  unused = [i for i in order if names[i] not in keep][:num_unused]
  used = [i for i in order if i not in unused]
  num_train = int(math.floor(0.7 * len(used) + 0.5))
  ids = {i: hmdb51.UNUSED for i in unused}
  ids.update({i: hmdb51.TRAIN for i in used[:num_train]})
  ids.update({i: hmdb51.TEST for i in used[num_train:]})
  return [hmdb51.SplitEntry(names[i], ids[i]) for i in range(n)]


def _write_broken(path: str, kind: str, rng: np.random.Generator, frames: np.ndarray,
                  fps: float) -> None:
  """Writes a broken file of `kind` at `path`."""
  if kind == "empty":
    with io_utils.atomic_write(path) as tmp:
      open(tmp, "wb").close()
  elif kind == "garbage":
    with io_utils.atomic_write(path) as tmp, open(tmp, "wb") as f:
      f.write(rng.bytes(int(rng.integers(2_000, 20_000))))
  elif kind == "truncated":
    # A real video cut mid-stream: headers intact, frame data stops about half way.
    video_lib.write_video(path, frames, fps)
    with open(path, "rb") as f:
      data = f.read()
    start, end = data.find(b"movi"), data.rfind(b"idx1")
    if not 0 < start < end:
      raise RuntimeError(f"{path}: unexpected AVI layout, cannot truncate")
    with io_utils.atomic_write(path) as tmp, open(tmp, "wb") as f:
      f.write(data[: start + (end - start) // 2])
  else:
    raise ValueError(f"unknown broken kind {kind!r}")


@dataclasses.dataclass(frozen=True)
class _Job:
  class_index: int
  class_name: str
  index: int
  broken: str


def _make_one(job: _Job, root: str, seed: int, height: int, width: int,
              seconds: Tuple[float, float], fps_choices: Sequence[float]) -> VideoRecord:
  rng = np.random.default_rng(np.random.SeedSequence([seed, job.class_index, job.index]))
  name = video_name(job.class_name, job.index, rng)
  fps = float(fps_choices[int(rng.integers(len(fps_choices)))])
  num_frames = max(2, int(round(rng.uniform(*seconds) * fps)))
  frames, motion = render_video(job.class_name, rng, num_frames, height, width)
  rel = os.path.join("videos", job.class_name, name)
  path = os.path.join(root, rel)
  if job.broken:
    _write_broken(path, job.broken, rng, frames, fps)
  else:
    video_lib.write_video(path, frames, fps)
  return VideoRecord(path=rel, class_name=job.class_name, num_frames=num_frames, fps=fps,
                     height=height, width=width, motion=motion, broken=job.broken)


MANIFEST = io_utils.MANIFEST
_GENERATOR = "tsnet_tf.data.synthetic"


def _owned_files(manifest: dict) -> List[str]:
  """The files a dataset's manifest says this module wrote (besides the manifest)."""
  return ([v["path"] for v in manifest["videos"]]
          + [os.path.join("splits", hmdb51.split_file_name(c, k))
             for c in manifest["classes"] for k in hmdb51.SPLITS])


def check_replaceable(output_dir: str) -> None:
  """Checks that `output_dir` holds only a dataset this module wrote.

  `--overwrite` replaces such a directory; anything else in it (a user's
  files, another dataset) makes it refuse, so it deletes only what it wrote
  (`io_utils.check_replaceable`).

  Raises:
    FileExistsError: naming the directory and what is not ours.
  """
  io_utils.check_replaceable(output_dir, _GENERATOR, "make_synthetic", _owned_files)


def generate_dataset(output_dir: str, num_classes: int = 4, videos_per_class: int = 10,
                     seed: int = 0, height: int = 240, width: int = 320,
                     min_seconds: float = 1.0, max_seconds: float = 3.0,
                     fps: Sequence[float] = DEFAULT_FPS, broken: Sequence[str] = (),
                     overwrite: bool = False, num_workers: int = 1,
                     progress: Optional[Callable[[int], None]] = None,
                     appearances: Sequence[str] = ()) -> SyntheticSummary:
  """Writes a synthetic HMDB51-format dataset (videos, split files, manifest).

  The whole directory is built under a temporary name and renamed when complete.

  Args:
    output_dir: dataset root to create.
    num_classes: how many of MOTION_CLASSES (the first N) to use.
    videos_per_class: good videos per class (>= 2, so both subsets are non-empty).
    seed: the seed; same arguments and seed give the same bytes.
    height, width: frame size, even, >= 16.
    min_seconds, max_seconds: video duration range.
    fps: frame rates to draw from (one per video).
    broken: kinds from BROKEN_KINDS; each adds one broken file, assigned to the
      classes in turn, listed in the split files as training or testing.
    overwrite: replace an existing `output_dir` that holds only a dataset
      written here (`check_replaceable`).
    num_workers: threads rendering/encoding videos in parallel (does not change
      the output).
    progress: called with 1 after each file is written (e.g. tqdm's `update`).
    appearances: names from APPEARANCES; if given, the classes are every
      appearance x motion pair (`red_move_left`, ...) of the first
      `num_classes` motions.

  Returns:
    SyntheticSummary.

  Raises:
    ValueError: a bad argument (named as the tool's flag).
    FileExistsError: `output_dir` exists and `overwrite` is False, or it holds
      anything this function did not write.
  """
  if not 1 <= num_classes <= len(MOTION_CLASSES):
    raise ValueError(f"--num_classes must be in [1, {len(MOTION_CLASSES)}] (the motion classes "
                     f"defined: {', '.join(MOTION_CLASSES)}), got {num_classes}")
  if videos_per_class < 2:
    raise ValueError(f"--videos_per_class must be >= 2, got {videos_per_class}")
  if height < 16 or width < 16 or height % 2 or width % 2:
    raise ValueError(f"--height and --width must be even and >= 16, got {height}x{width}")
  if not 0 < min_seconds <= max_seconds:
    raise ValueError(f"need 0 < --min_seconds <= --max_seconds, got {min_seconds}, {max_seconds}")
  fps = tuple(float(f) for f in fps)
  if not fps or any(not 1 <= f <= 120 for f in fps):
    raise ValueError(f"--fps values must be in [1, 120], got {fps}")
  bad = [k for k in broken if k not in BROKEN_KINDS]
  if bad:
    raise ValueError(f"--broken: unknown kind(s) {bad}; known: {BROKEN_KINDS}")
  if num_workers < 1:
    raise ValueError(f"--num_workers must be >= 1, got {num_workers}")
  output_dir = os.fspath(output_dir)
  if os.path.exists(output_dir) and not overwrite:
    raise FileExistsError(f"--output_dir {output_dir!r} already exists; pass --overwrite "
                          f"to replace it")
  if os.path.exists(output_dir):
    check_replaceable(output_dir)

  bad = [a for a in appearances if a not in APPEARANCES]
  if bad or len(set(appearances)) != len(appearances):
    raise ValueError(f"--appearances must be distinct names from {', '.join(APPEARANCES)}, "
                     f"got {', '.join(appearances)}")
  chosen = MOTION_CLASSES[:num_classes]
  if appearances:
    chosen = tuple(f"{a}_{m}" for a in appearances for m in chosen)
  num_classes = len(chosen)
  jobs = []
  for ci, cls in enumerate(chosen):
    kinds = [k for j, k in enumerate(broken) if j % num_classes == ci]
    for vi in range(videos_per_class + len(kinds)):
      kind = kinds[vi - videos_per_class] if vi >= videos_per_class else ""
      jobs.append(_Job(ci, cls, vi, kind))

  with io_utils.atomic_dir(output_dir, overwrite=overwrite) as root:
    for cls in chosen:
      os.makedirs(os.path.join(root, "videos", cls))

    def run(job):
      record = _make_one(job, root, seed, height, width, (min_seconds, max_seconds), fps)
      if progress is not None:
        progress(1)
      return record

    if num_workers == 1:
      records = [run(j) for j in jobs]
    else:
      with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        records = list(pool.map(run, jobs))

    split_counts = {}
    os.makedirs(os.path.join(root, "splits"))
    for split in hmdb51.SPLITS:
      split_counts[split] = {}
      for ci, cls in enumerate(chosen):
        recs = [r for r in records if r.class_name == cls]
        names = [os.path.basename(r.path) for r in recs]
        rng = np.random.default_rng(np.random.SeedSequence([seed, ci, 1_000_000 + split]))
        entries = partition(names, rng, never_unused=[os.path.basename(r.path)
                                                      for r in recs if r.broken])
        path = os.path.join(root, "splits", hmdb51.split_file_name(cls, split))
        with open(path, "w", encoding="utf-8") as f:
          f.write(hmdb51.format_split_lines(entries))
        ids = [e.subset_id for e in entries]
        split_counts[split][cls] = {"train": ids.count(hmdb51.TRAIN),
                                    "test": ids.count(hmdb51.TEST),
                                    "unused": ids.count(hmdb51.UNUSED)}
    summary = SyntheticSummary(output_dir=output_dir, classes=tuple(sorted(chosen)),
                               videos=tuple(records), split_counts=split_counts)
    manifest = dict(summary.to_json(), seed=seed, generator=_GENERATOR,
                    appearances=list(appearances))
    with open(os.path.join(root, MANIFEST), "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=1)
  return summary


def format_summary(summary: SyntheticSummary) -> str:
  """A human-readable report: classes, counts per split, broken files."""
  good = [v for v in summary.videos if not v.broken]
  frames = [v.num_frames for v in good]
  lines = [
      f"wrote {len(summary.videos)} files to {summary.output_dir}: {len(good)} videos "
      f"({len(summary.classes)} classes, {min(frames)}-{max(frames)} frames, "
      f"{good[0].width}x{good[0].height}), {len(summary.broken)} broken",
      "classes (label order): " + ", ".join(summary.classes),
  ]
  for split, per_class in summary.split_counts.items():
    totals = {k: sum(c[k] for c in per_class.values()) for k in ("train", "test", "unused")}
    lines.append(f"split {split}: train {totals['train']}, test {totals['test']}, "
                 f"unused {totals['unused']}")
  if summary.broken:
    lines.append("broken files (listed in the split files):")
    lines.extend(f"  {v.broken:9s} {v.path}" for v in summary.broken)
  return "\n".join(lines)
