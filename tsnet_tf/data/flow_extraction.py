"""TV-L1 flow extraction for a video dataset (what denseflow does, in-graph): dataset I/O.

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

Everything streams, so memory depends on the batch, not on the video's
length: frames are decoded one at a time (`video.iter_frames`) and resized
as they arrive, a batch's flow is computed as soon as its frames are there
(the last frame of a batch is the first of the next), and images go to a
pool of writer threads through a bounded queue (a slow disk makes decoding
wait instead of piling up frames). Large frames get fewer pairs per call
(`Options.max_batch_pixels`), since one `tvl1` call holds a few hundred
bytes per pixel of the batch.

Each video is written into a temporary folder beside its final place and
renamed when complete, so a killed run leaves no half-written video and a new
run skips the finished ones (`resume`). A video that cannot be decoded is
named in one line, counted and skipped; a failure to write the outputs (disk
full, folder not writable) stops the run (`OutputError`).

The TFRecords' stored flow (`encode_video_flow`, called by the converter
`tfrecords.write_shard` with `--flow_preset`) is computed here too, from a
record's stored frames; `stored_flow.py` is its reader side.
"""

import collections.abc
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
import tqdm

from tsnet_tf.data import video as video_lib
from tsnet_tf.flow import batching
from tsnet_tf.flow import flo
from tsnet_tf.flow import quantize
from tsnet_tf.flow.tvl1 import resolve_params
from tsnet_tf.utils import errors
from tsnet_tf.utils import io as io_utils

FORMATS = ("rawframes", "flo")
# Summary written into the output directory after each run.
SUMMARY_FILE = "extract_summary.json"


class OutputError(errors.ResourceError, OSError):
  """The outputs cannot be written (disk full, read-only folder): every video would fail."""


@contextlib.contextmanager
def _writing(path: str):
  """An OSError inside becomes an `OutputError` naming `path` (the user's, not a
  temporary name)."""
  try:
    yield
  except OutputError:
    raise
  except OSError as e:
    raise OutputError(f"cannot write {path!r}: {e.strerror or e}") from e


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
    max_batch_pixels: fewer pairs per call for large frames:
      `min(batch_size, max_batch_pixels // (H * W))`, at least 1, so one
      call's memory stays bounded (`batching.DEFAULT_MAX_BATCH_PIXELS`: 4 full-HD
      pairs); 0 = no limit.
    new_short: resize frames so the shorter side is this many pixels before
      the flow (0 keeps the decoded size), as MMAction2's `--new-short`.
    save_frames: also write the RGB frames (`img_%05d.jpg`, rawframes only).
    jpeg_quality: JPEG quality of every written image.
    num_writers: threads encoding and writing images while flow computes
      (at most `max(2 * num_writers, 3 * pairs per call)` images wait for
      them).
    overrides: extra `tvl1` parameters.
  """
  preset: str = "accurate"
  bound: float = 20.0
  fmt: str = "rawframes"
  batch_size: int = 16
  max_batch_pixels: int = batching.DEFAULT_MAX_BATCH_PIXELS
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
    if self.max_batch_pixels < 0:
      raise ValueError(f"max_batch_pixels must be >= 0 (0: no limit), got "
                       f"{self.max_batch_pixels}")
    if self.new_short < 0 or self.new_short == 1:
      raise ValueError(f"new_short must be 0 (keep) or >= 2, got "
                       f"{self.new_short}")
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f"jpeg_quality must be in [1, 100], got "
                       f"{self.jpeg_quality}")
    if self.num_writers < 1:
      raise ValueError(f"num_writers must be >= 1, got {self.num_writers}")
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
    video_dir: root directory. Without `list_file`, every video file under
      it (`video.find_video_files`: recursively, an extension in
      `video.VIDEO_EXTENSIONS`, hidden names skipped): a flat folder,
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
    with open(list_file, "rb") as f:
      data = f.read()
    try:
      text = data.decode("utf-8")
    except UnicodeDecodeError as e:
      line = data.count(b"\n", 0, e.start) + 1
      raise ValueError(f"--list_file {list_file!r}: line {line} (byte {e.start}) is not "
                       f"UTF-8 ({e.reason}: {data[e.start:e.end]!r})") from e
    for line in text.splitlines():
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
    videos = [Video(path, _strip_ext(os.path.relpath(path, video_dir)))
              for path in video_lib.find_video_files(video_dir)]
  seen = {}
  for video in videos:
    if video.name in seen:
      raise ValueError(f"{video.path!r} and {seen[video.name]!r} would both "
                       f"write {video.name!r}")
    seen[video.name] = video.path
  return sorted(videos, key=lambda v: v.name)


def _write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
  Image.fromarray(image).save(path, quality=quality)


def _write_flo(path: str, flow: np.ndarray) -> None:
  flo.write_flo(path, flow)


def _stale_temps(parent: str, base: str) -> List[str]:
  prefix = f".{base}.tmp-"
  if not os.path.isdir(parent):
    return []
  return [os.path.join(parent, n) for n in os.listdir(parent)
          if n.startswith(prefix)]


# `frames -> flow batches`: an iterator of uint8 [H, W, 3] frames to an
# iterable of float32 [n, H, W, 2] batches, T-1 flows in order. It should pull
# frames only as it needs them (as `video_flow` does) to keep memory bounded.
FlowFn = Callable[[Iterator[np.ndarray]], Iterable[np.ndarray]]
# `path -> frames`: an iterable of uint8 [H, W, 3] frames (an array
# [T, H, W, 3] is one), best a generator that decodes as it goes.
ReadFn = Callable[[str], Iterable[np.ndarray]]


def _write_output(output: str, fn, *args) -> None:
  """`fn(*args)`, a write into the temporary folder of `output`; OSError -> OutputError.

  Raised here, in the writer thread, the error is an `OutputError` wherever it
  surfaces (a later `submit`, inside the frame generator, or `wait`), so a full
  disk is never mistaken for an unreadable input video.
  """
  with _writing(output):
    fn(*args)


class _Writes:
  """Image writes in flight on an executor, at most `limit` at once.

  When the disk is slower than the flow, `submit` waits for the oldest write
  (back-pressure) instead of queueing images without bound. A failed write
  raises at a later `submit` or at `wait`.
  """

  def __init__(self, executor: concurrent.futures.Executor, limit: int, output: str):
    self.limit = max(1, limit)
    self._executor = executor
    self._pending = collections.deque()
    self._output = output

  def submit(self, fn, *args) -> None:
    while len(self._pending) >= self.limit:
      self._pending.popleft().result()
    self._pending.append(self._executor.submit(_write_output, self._output, fn, *args))

  def wait(self) -> None:
    while self._pending:
      self._pending.popleft().result()

  def cancel(self) -> None:
    """Drops the writes not started and waits for the running ones."""
    for future in self._pending:
      future.cancel()
    concurrent.futures.wait(self._pending)
    self._pending.clear()


def extract_video(video: Video, output_dir: str, options: Options,
                  executor: concurrent.futures.Executor,
                  read_video: Optional[ReadFn] = None,
                  flow_fn: Optional[FlowFn] = None,
                  on_flows: Optional[Callable[[int], None]] = None
                  ) -> Tuple[int, float]:
  """Extracts one video into `output_dir/video.name`, atomically, streaming.

  Frames are decoded, resized (`new_short`), written and paired one batch at
  a time: memory holds about one batch of frames and flows and the bounded
  queue of images waiting for a writer, whatever the video's length.

  Args:
    video: the input and its output name.
    output_dir: root of the outputs.
    options: `Options`.
    executor: runs the image writes.
    read_video: decoder, `path -> iterable of uint8 [H, W, 3]` frames;
      default `tsnet_tf.data.video.iter_frames` (one frame at a time).
    flow_fn: `iterator of uint8 [H, W, 3] frames -> iterable of float32
      [n, H, W, 2]` batches, T-1 flows in order; default `video_flow` with
      `options` (another solver, e.g. OpenCV's, for a like-for-like
      benchmark).
    on_flows: called with the number of flows of each batch once computed
      (progress).

  Returns:
    (number of flows written, seconds spent computing flow, decoding and
    writing excluded).

  Raises:
    ValueError: the video cannot be decoded (`VideoDecodeError`) or has
      fewer than 2 frames. Nothing is left in `output_dir` then.
    OSError: the video cannot be read.
    OutputError: the output cannot be written (disk full, folder not
      writable); the temporary folder is removed.
  """
  final = os.path.join(output_dir, video.name)
  parent, base = os.path.split(final)
  with _writing(final):
    os.makedirs(parent, exist_ok=True)
    # A temporary folder of ours left by a killed run: ours to remove.
    for stale in _stale_temps(parent, base):
      shutil.rmtree(stale, ignore_errors=True)
  resize = lambda frame: video_lib.resize_frame(
      np.asarray(frame), video_lib.short_side_size(*np.shape(frame)[:2], options.new_short))
  if read_video is None:
    # Each frame scaled down as it is decoded: a full-HD video holds its
    # frames at the flow's size, one batch of them at a time.
    source = video_lib.iter_frames(video.path, resize)
  else:
    source = map(resize, read_video(video.path))
  quality = options.jpeg_quality
  save_frames = options.fmt == "rawframes" and options.save_frames
  num_frames = 0
  other_seconds = 0.0  # decoding, resizing and waiting for writers
  with _writing(final):
    tmp = io_utils.make_temp_dir(parent, base)
  writes = _Writes(executor, 2 * options.num_writers, final)

  def frames():
    """The frames, each handed to the writers first."""
    nonlocal num_frames, other_seconds
    while True:
      start = time.perf_counter()
      frame = next(source, None)
      if frame is not None:
        if not num_frames:
          batch = batching.pairs_per_call(options.batch_size, options.max_batch_pixels,
                                 *frame.shape[:2])
          writes.limit = max(2 * options.num_writers, 3 * batch)
        num_frames += 1
        if save_frames:
          writes.submit(_write_jpeg, os.path.join(tmp, f"img_{num_frames:05d}.jpg"),
                        frame, quality)
      other_seconds += time.perf_counter() - start
      if frame is None:
        return
      yield frame

  try:
    if flow_fn is None:
      batches = batching.video_flow(frames(), options.preset, options.batch_size,
                           options.max_batch_pixels, **options.overrides)
    else:
      batches = flow_fn(frames())
    index = 0
    flow_seconds = 0.0
    batches = iter(batches)
    while True:
      start, other_before = time.perf_counter(), other_seconds
      flows = next(batches, None)
      flow_seconds += time.perf_counter() - start - (other_seconds - other_before)
      if flows is None:
        break
      for flow in flows:
        index += 1
        if options.fmt == "flo":
          writes.submit(_write_flo, os.path.join(tmp, f"flow_{index:05d}.flo"), flow)
        else:
          image = quantize.flow_to_uint8(flow, options.bound)
          for axis, name in ((0, "x"), (1, "y")):
            writes.submit(_write_jpeg, os.path.join(tmp, f"flow_{name}_{index:05d}.jpg"),
                          np.ascontiguousarray(image[..., axis]), quality)
      if on_flows is not None:
        on_flows(len(flows))
    if num_frames < 2:
      raise ValueError(f"cannot extract flow from {video.path!r}: it has "
                       f"{num_frames} frame, flow needs at least 2")
    if index != num_frames - 1:
      raise RuntimeError(f"{video.path}: the flow function gave {index} flows for "
                         f"{num_frames} frames")
    writes.wait()
    if os.path.exists(final):
      raise FileExistsError(f"{final!r} appeared while extracting; not "
                            "replaced")
    with _writing(final):
      os.replace(tmp, final)
  except BaseException:
    writes.cancel()
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  finally:
    if hasattr(source, "close"):
      source.close()  # the decoder's file, now rather than when collected
  return index, flow_seconds


def _expected_flows(path: str) -> int:
  """Flows of a video by its container header (0 when unknown): no decoding."""
  try:
    with video_lib.VideoReader(path) as reader:
      return max(0, reader.header_frames - 1)
  except (ValueError, OSError):
    return 0


def pending_videos(videos: Sequence[Video], output_dir: str, summary: Summary) -> List[Video]:
  """The videos still to extract: a finished one (its folder, written atomically, exists)
  is listed in `summary.skipped` instead (resume, whatever the engine)."""
  todo = []
  for video in videos:
    if os.path.isdir(os.path.join(output_dir, video.name)):
      summary.skipped.append(video.name)
    else:
      todo.append(video)
  return todo


def extract_all(videos: Sequence[Video], output_dir: str, options: Options,
                progress: bool = True,
                log: Callable[[str], None] = print,
                read_video: Optional[ReadFn] = None,
                flow_fn: Optional[FlowFn] = None) -> Summary:
  """Extracts every video not already complete in `output_dir`.

  Args:
    videos: from `find_videos`.
    output_dir: root of the outputs (created).
    options: `Options` (checked first).
    progress: show a tqdm progress bar counting flows, with the videos
      done, failures and flows/s beside it. Its total is estimated as the
      run goes: the flows done, the current video's frame count from its
      container header (no decoding), and the mean header count for each
      video to come.
    log: where the one-line messages go (skipped unreadable videos).
    read_video: decoder override, see `extract_video`.
    flow_fn: flow override, see `extract_video`.

  Returns:
    `Summary`; also written to `output_dir/extract_summary.json`.

  Raises:
    ValueError: bad options.
    OutputError: an output cannot be written (disk full, folder not
      writable): the run stops there (the videos finished stay, the one
      being written is removed). Unreadable input videos are skipped instead.
  """
  options.check()
  os.makedirs(output_dir, exist_ok=True)
  summary = Summary()
  start = time.perf_counter()
  todo = pending_videos(videos, output_dir, summary)
  bar = None
  if progress:
    bar = tqdm.tqdm(total=0, unit="flow", dynamic_ncols=True)
  finished_flows, headers = 0, []
  with concurrent.futures.ThreadPoolExecutor(
      max(1, options.num_writers)) as executor:
    for number, video in enumerate(todo):
      flows_seen = 0
      if bar is not None:
        # Total: the flows of the videos done, this video's header count, and
        # the mean header count for each video to come (no upfront scan).
        headers.append(_expected_flows(video.path))
        to_come = len(todo) - number - 1
        bar.total = (finished_flows + headers[-1]
                     + round(to_come * sum(headers) / len(headers)))
        bar.refresh()

      def on_flows(count):
        nonlocal flows_seen
        flows_seen += count
        if bar is not None:
          bar.update(count)

      try:
        count, seconds = extract_video(video, output_dir, options, executor,
                                       read_video, flow_fn, on_flows)
      except OutputError:
        raise  # The disk or folder, not this video: the next ones would fail too.
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
      finished_flows += flows_seen
      if bar is not None:
        postfix = {"videos": f"{number + 1}/{len(todo)}"}
        if summary.failed:
          postfix["failed"] = len(summary.failed)
        if summary.flow_seconds:
          postfix["flows/s"] = f"{summary.num_flows / summary.flow_seconds:.1f}"
        bar.set_postfix(postfix)
  if bar is not None:
    bar.total = finished_flows
    bar.close()
  summary.seconds = time.perf_counter() - start
  _write_summary(output_dir, summary, options)
  return summary


def _write_summary(output_dir: str, summary: Summary, options: Options):
  record = dataclasses.asdict(summary)
  record["options"] = dataclasses.asdict(options)
  path = os.path.join(output_dir, SUMMARY_FILE)
  with _writing(path), io_utils.atomic_write(path) as tmp:
    with open(tmp, "w") as f:
      json.dump(record, f, indent=1, default=str)


# ---------------------------------------------------------------------------
# The TFRecords' stored flow (converter side; `stored_flow.py` reads it).


def _grey_jpeg(image: np.ndarray, quality: int) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image, mode="L").save(buf, format="JPEG", quality=quality)
  return buf.getvalue()


class StoredFrames(collections.abc.Sequence):
  """A video's stored JPEG frames, decoded on access as the input pipeline does.

  `frames[i]` is uint8 `[H, W, 3]` (`tf.io.decode_jpeg`); nothing is kept, so
  a long video never sits decoded in memory (a pair's frames are decoded per
  `tvl1` call, each frame about twice).
  """

  def __init__(self, frames_jpeg: Sequence[bytes]):
    self._jpegs = frames_jpeg

  def __len__(self) -> int:
    return len(self._jpegs)

  def __getitem__(self, index):
    # TensorFlow's JPEG decoder, the one the input pipeline uses; imported here so
    # the rawframes extractor above runs under any Keras backend without it.
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.decode_jpeg(self._jpegs[index], channels=3).numpy()


def encode_video_flow(frames_jpeg: Sequence[bytes], stride: int, preset: str, bound: float,
                      jpeg_quality: int, batch_size: int = 16,
                      overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """One video's stored flow, from its stored frames (what the record holds).

  Frames are decoded a call's worth at a time (`StoredFrames`), so memory holds
  the record's JPEGs, never the decoded video.

  Args:
    frames_jpeg: the video's stored JPEG frames (`tfrecords.encode_video`).
    stride: flow from frame i to i + stride.
    preset: `tvl1` preset.
    bound: quantisation bound in px (`flow_to_uint8`).
    jpeg_quality: quality of the grey flow JPEGs.
    batch_size: pairs per `tvl1` call.
    overrides: extra `tvl1` parameters.

  Returns:
    The `flow` argument of `schema.make_sequence_example`: `x`, `y` (lists
    of grey JPEG bytes, max(N - stride, 0) each), `stride`, `bound`, `preset`.
  """
  xs: List[bytes] = []
  ys: List[bytes] = []
  for flow in batching.flow_pairs(StoredFrames(frames_jpeg), stride, preset, batch_size,
                         overrides=overrides):
    for q in quantize.flow_to_uint8(flow, bound):
      xs.append(_grey_jpeg(q[..., 0], jpeg_quality))
      ys.append(_grey_jpeg(q[..., 1], jpeg_quality))
  return {"x": xs, "y": ys, "stride": int(stride), "bound": float(bound), "preset": preset}
