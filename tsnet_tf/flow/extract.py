"""TV-L1 flow extraction for a video dataset (what denseflow does, in-graph).

Every video under a directory (any tree: flat, or HMDB51's class folders),
or listed in a file, becomes one output folder of the same relative path
(without extension) holding, in the MMAction2/TSN `rawframes` layout:

  img_00001.jpg ...     the T RGB frames (`save_frames`, default on),
  flow_x_00001.jpg ...  T-1 horizontal flows from frame t to t+1,
  flow_y_00001.jpg ...  T-1 vertical flows,

each flow clipped to +-`bound` px and mapped linearly to 0-255 as denseflow
does (`round(255 * (f + bound) / (2 * bound))`, so 128 = no motion); or, with
`fmt="flo"`, `flow_00001.flo` ... in Middlebury's float format, unclipped.

Flow is `tsnet_tf.flow.tvl1` on batches of `batch_size` consecutive frame
pairs (compiled once per frame size; on the GPU when the backend has one).
Each video is written into a temporary folder beside its final place and
renamed when complete, so a killed run leaves no half-written video and a new
run skips the finished ones (`resume`). A video that cannot be decoded is
named in one line, counted and skipped.
"""

import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg",
                    ".mpeg", ".flv", ".wmv", ".3gp")
FORMATS = ("rawframes", "flo")
# Summary written into the output directory after each run.
SUMMARY_FILE = "extract_summary.json"


@dataclasses.dataclass(frozen=True)
class Video:
  """One input video and where its output goes.

  Attributes:
    path: the video file.
    name: output folder relative to the output directory (the video's path
      relative to the input directory, extension dropped).
  """
  path: str
  name: str


@dataclasses.dataclass
class Options:
  """How flow is extracted.

  Attributes:
    preset: `tvl1` preset, "accurate" or "fast".
    bound: flow clipped to +-bound px before the 0-255 mapping (rawframes).
    fmt: "rawframes" (JPEG, MMAction2/TSN) or "flo" (float, Middlebury).
    batch_size: frame pairs per `tvl1` call (the last batch is padded, so
      every call of a frame size has one shape and compiles once).
    new_short: resize frames so the shorter side is this many pixels before
      the flow (0 keeps the decoded size), as MMAction2's `--new-short`.
    save_frames: also write the RGB frames (`img_%05d.jpg`, rawframes only).
    jpeg_quality: JPEG quality of every written image.
    num_writers: threads encoding and writing images while flow computes.
    overrides: extra `tvl1` parameters.
  """
  preset: str = "accurate"
  bound: float = 20.0
  fmt: str = "rawframes"
  batch_size: int = 16
  new_short: int = 0
  save_frames: bool = True
  jpeg_quality: int = 95
  num_writers: int = 2
  overrides: Dict[str, object] = dataclasses.field(default_factory=dict)

  def check(self) -> None:
    """Raises ValueError naming the first bad option."""
    if self.fmt not in FORMATS:
      raise ValueError(f"format must be one of {FORMATS}, got {self.fmt!r}")
    if not self.bound > 0:
      raise ValueError(f"bound must be > 0 px, got {self.bound}")
    if self.batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
    if self.new_short < 0 or self.new_short == 1:
      raise ValueError(f"new_short must be 0 (keep) or >= 2, got "
                       f"{self.new_short}")
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f"jpeg_quality must be in [1, 100], got "
                       f"{self.jpeg_quality}")
    from tsnet_tf.flow.tvl1 import resolve_params  # pylint: disable=g-import-not-at-top
    resolve_params(self.preset, **self.overrides)


@dataclasses.dataclass
class Summary:
  """What a run did.

  Attributes:
    done: output names written by this run.
    skipped: output names already complete (not redone).
    failed: output name -> reason, for videos that could not be extracted.
    num_flows: flow fields computed by this run.
    flow_seconds: wall time spent in `tvl1` (compute only).
    seconds: wall time of the run.
  """
  done: List[str] = dataclasses.field(default_factory=list)
  skipped: List[str] = dataclasses.field(default_factory=list)
  failed: Dict[str, str] = dataclasses.field(default_factory=dict)
  num_flows: int = 0
  flow_seconds: float = 0.0
  seconds: float = 0.0


def _strip_ext(path: str) -> str:
  return os.path.splitext(path)[0]


def find_videos(video_dir: str, list_file: Optional[str] = None
                ) -> List[Video]:
  """The videos to extract, sorted by output name.

  Args:
    video_dir: root directory. Without `list_file`, every file under it
      (recursively) with an extension in `VIDEO_EXTENSIONS`: a flat folder,
      HMDB51's `class/video.avi` tree, Kinetics' `split/class/video.mp4`.
    list_file: optional text file, one video per line (first
      whitespace-separated token, so MMAction2 `path label` lists work),
      relative to `video_dir` or absolute; blank lines and `#` comments are
      skipped.

  Returns:
    `Video`s; names keep the relative folders.

  Raises:
    ValueError: `video_dir` or `list_file` missing, a listed path outside
      `video_dir` given as relative with `..`, or two videos mapping to one
      output name.
  """
  if not os.path.isdir(video_dir):
    raise ValueError(f"--video_dir: {video_dir!r} is not a directory")
  videos = []
  if list_file:
    if not os.path.isfile(list_file):
      raise ValueError(f"--list_file: {list_file!r} does not exist")
    with open(list_file) as f:
      for number, line in enumerate(f, 1):
        line = line.strip()
        if not line or line.startswith("#"):
          continue
        entry = line.split()[0]
        path = entry if os.path.isabs(entry) else os.path.join(video_dir,
                                                               entry)
        rel = os.path.relpath(path, video_dir)
        if rel.startswith(".."):
          rel = os.path.basename(path)
        videos.append(Video(path, _strip_ext(rel)))
  else:
    for root, dirs, files in os.walk(video_dir):
      dirs.sort()
      for name in sorted(files):
        if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith("."):
          path = os.path.join(root, name)
          videos.append(Video(path, _strip_ext(os.path.relpath(path,
                                                               video_dir))))
  seen = {}
  for video in videos:
    if video.name in seen:
      raise ValueError(f"{video.path!r} and {seen[video.name]!r} would both "
                       f"write {video.name!r}")
    seen[video.name] = video.path
  return sorted(videos, key=lambda v: v.name)


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


def video_flow(frames: np.ndarray, preset: str = "accurate",
               batch_size: int = 16, **overrides) -> Iterable[np.ndarray]:
  """TV-L1 flow between consecutive frames, one batch at a time.

  Args:
    frames: uint8 or float `[T, H, W, C]`, T >= 2, values in [0, 255].
    preset: `tvl1` preset.
    batch_size: pairs per call; the last batch is padded with copies of its
      last pair (and the padding dropped) so every call has one shape.
    **overrides: `tvl1` parameters.

  Yields:
    float32 `[n, H, W, 2]` flows of pairs (t, t+1), in order, T-1 in all.
  """
  from tsnet_tf.flow.tvl1 import tvl1  # pylint: disable=g-import-not-at-top
  num_pairs = len(frames) - 1
  for start in range(0, num_pairs, batch_size):
    index = np.minimum(np.arange(start, start + batch_size), num_pairs - 1)
    first = np.asarray(frames[index], np.float32)
    second = np.asarray(frames[index + 1], np.float32)
    flow = np.asarray(tvl1(first, second, preset, **overrides))
    yield flow[:min(batch_size, num_pairs - start)]


def _write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(image).save(path, quality=quality)


def _write_flo(path: str, flow: np.ndarray) -> None:
  from tsnet_tf.flow.flo import write_flo  # pylint: disable=g-import-not-at-top
  write_flo(path, flow)


def _stale_temps(parent: str, base: str) -> List[str]:
  prefix = f".{base}.tmp-"
  if not os.path.isdir(parent):
    return []
  return [os.path.join(parent, n) for n in os.listdir(parent)
          if n.startswith(prefix)]


FlowFn = Callable[[np.ndarray], Iterable[np.ndarray]]


def extract_video(video: Video, output_dir: str, options: Options,
                  executor: concurrent.futures.Executor,
                  read_video: Optional[Callable[[str], np.ndarray]] = None,
                  flow_fn: Optional[FlowFn] = None) -> Tuple[int, float]:
  """Extracts one video into `output_dir/video.name`, atomically.

  Args:
    video: the input and its output name.
    output_dir: root of the outputs.
    options: `Options`.
    executor: runs the image writes.
    read_video: decoder, `path -> uint8 [T, H, W, 3]`; default
      `tsnet_tf.data.video.read_frames` of every frame, each resized as it is
      decoded.
    flow_fn: `uint8 [T, H, W, 3] -> iterable of float32 [n, H, W, 2]`
      batches, T-1 flows in order; default `video_flow` with `options`
      (another solver, e.g. OpenCV's, for a like-for-like benchmark).

  Returns:
    (number of flows written, seconds spent computing flow).

  Raises:
    ValueError: the video cannot be decoded (`VideoDecodeError`) or has
      fewer than 2 frames. Nothing is left in `output_dir` then.
  """
  final = os.path.join(output_dir, video.name)
  parent, base = os.path.split(final)
  os.makedirs(parent, exist_ok=True)
  # A temporary folder of ours left by a killed run: ours to remove.
  for stale in _stale_temps(parent, base):
    shutil.rmtree(stale, ignore_errors=True)
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  if read_video is None:
    # Each frame scaled down as it is decoded: a long full-HD video holds its
    # frames at the flow's size, not at its own.
    from tsnet_tf.data import video as video_lib  # pylint: disable=g-import-not-at-top
    frames = video_lib.read_frames(
        video.path, np.arange,
        transform=lambda f: tfrecords.resize_frames(f[None], options.new_short)[0])
  else:
    frames = tfrecords.resize_frames(read_video(video.path), options.new_short)
  if len(frames) < 2:
    raise ValueError(f"cannot extract flow from {video.path!r}: it has "
                     f"{len(frames)} frame, flow needs at least 2")
  tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
  try:
    writes = []
    quality = options.jpeg_quality
    if options.fmt == "rawframes" and options.save_frames:
      for t, frame in enumerate(frames, 1):
        writes.append(executor.submit(
            _write_jpeg, os.path.join(tmp, f"img_{t:05d}.jpg"), frame,
            quality))
    index = 0
    flow_seconds = 0.0
    start = time.perf_counter()
    if flow_fn is None:
      batches = video_flow(frames, options.preset, options.batch_size,
                           **options.overrides)
    else:
      batches = flow_fn(frames)
    for flows in batches:
      flow_seconds += time.perf_counter() - start
      for flow in flows:
        index += 1
        if options.fmt == "flo":
          writes.append(executor.submit(
              _write_flo, os.path.join(tmp, f"flow_{index:05d}.flo"), flow))
        else:
          image = flow_to_uint8(flow, options.bound)
          for axis, name in ((0, "x"), (1, "y")):
            writes.append(executor.submit(
                _write_jpeg, os.path.join(tmp, f"flow_{name}_{index:05d}.jpg"),
                np.ascontiguousarray(image[..., axis]), quality))
      start = time.perf_counter()
    for future in writes:
      future.result()
    if os.path.exists(final):
      raise FileExistsError(f"{final!r} appeared while extracting; not "
                            "replaced")
    os.replace(tmp, final)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return index, flow_seconds


def extract_all(videos: Sequence[Video], output_dir: str, options: Options,
                progress: bool = True,
                log: Callable[[str], None] = print,
                read_video: Optional[Callable[[str], np.ndarray]] = None,
                flow_fn: Optional[FlowFn] = None) -> Summary:
  """Extracts every video not already complete in `output_dir`.

  Args:
    videos: from `find_videos`.
    output_dir: root of the outputs (created).
    options: `Options` (checked first).
    progress: show a tqdm progress bar (videos, flows/s).
    log: where the one-line messages go (skipped unreadable videos).
    read_video: decoder override, see `extract_video`.
    flow_fn: flow override, see `extract_video`.

  Returns:
    `Summary`; also written to `output_dir/extract_summary.json`.

  Raises:
    ValueError: bad options.
  """
  options.check()
  os.makedirs(output_dir, exist_ok=True)
  summary = Summary()
  start = time.perf_counter()
  todo = []
  for video in videos:
    if os.path.isdir(os.path.join(output_dir, video.name)):
      summary.skipped.append(video.name)
    else:
      todo.append(video)
  bar = None
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=len(todo), unit="video", dynamic_ncols=True)
  with concurrent.futures.ThreadPoolExecutor(
      max(1, options.num_writers)) as executor:
    for video in todo:
      try:
        count, seconds = extract_video(video, output_dir, options, executor,
                                       read_video, flow_fn)
      except (ValueError, OSError) as e:
        summary.failed[video.name] = str(e)
        message = f"skipped {video.path}: {e}"
        if bar is not None:
          bar.write(message)
        else:
          log(message)
      else:
        summary.done.append(video.name)
        summary.num_flows += count
        summary.flow_seconds += seconds
      if bar is not None:
        bar.update(1)
        if summary.flow_seconds:
          bar.set_postfix(flows_per_s=f"{summary.num_flows / summary.flow_seconds:.1f}")
  if bar is not None:
    bar.close()
  summary.seconds = time.perf_counter() - start
  _write_summary(output_dir, summary, options)
  return summary


def _write_summary(output_dir: str, summary: Summary, options: Options):
  import json  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import io as io_utils  # pylint: disable=g-import-not-at-top
  record = dataclasses.asdict(summary)
  record["options"] = dataclasses.asdict(options)
  with io_utils.atomic_write(os.path.join(output_dir, SUMMARY_FILE)) as tmp:
    with open(tmp, "w") as f:
      json.dump(record, f, indent=1, default=str)
