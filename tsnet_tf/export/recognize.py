"""Sliding-window action recognition over long videos and live streams.

  classifier = load_classifier(model="student.tflite")      # or server=, model_name=
  source = open_source("long.mp4")     # or http(s)://, rtsp://, /dev/video0, "-" (stdin)
  result = recognize(classifier, source, output_dir="out", annotate=True, timeline=True)
  result.segments   # [Segment(label, start, end, score), ...]

Windows. The clip is the artifact's own (`ClipSpec`: T frames `video_stride`
decoded frames apart, in the stored frame format it was trained on); nothing
here re-derives it. A window starting at decoded frame `s` is the clip of
frames `s, s + v, ..., s + (T - 1) v` (`v = spec.video_stride`), spanning
`span = (T - 1) v + 1` frames, `[s / fps, (s + span) / fps)` seconds. Windows
start every `hop` frames (default half the span, rounded to the converter's
stored stride); a file's last window is moved to end on its last frame when
frames are left over, and a file shorter than one clip gets one looped clip
(`ClipSpec.clip_of_video`).

Threads. A decoding thread reads frames, keeps the last `span` stored-format
frames in a ring buffer (memory does not grow with the stream) and puts each
window's clip on a bounded queue; the calling thread classifies them. From a
file the decoder waits for the classifier (every window is classified); from a
live source (a camera, rtsp, stdin, or a file read at its frame rate with
`realtime`) a full queue drops its oldest window (counted in
`Result.dropped`): labels stay current instead of lagging further behind.

Latency. A window's `latency_ms` is the time from the arrival of its last
frame (decoded, or released at its time for `realtime`) to its label: what
the recognition adds beyond the clip's own length.

Smoothing rule (the segment list). 1) The probabilities of each window are
averaged with those of its neighbours, a centred moving average over `smooth`
windows (fewer at the ends). 2) Each window is labelled with the top class of
its average, and owns the time closer to its centre than to its neighbours'
(the first window from its start, the last to its end). 3) Consecutive
windows with the same label are merged into a segment whose score is the mean
of their averaged top probabilities. 4) Segments shorter than `min_segment`
seconds are dropped, and neighbours of the same label that then touch are
joined. The segment list is built online (memory: the open segment and the
list).

Outputs under `output_dir` (any may be absent on request):
  windows.jsonl   one JSON object per classified window, flushed per line:
                  {"window", "start", "end", "start_frame", "end_frame",
                   "top": [{"label", "score"}, ...], "latency_ms"};
  segments.json   {"source", "fps", "frames", "windows", "dropped", "end",
                   "smoothing": {...}, "segments": [{"label", "start", "end",
                   "score"}]}, written when the run ends (Ctrl-C included);
  annotated.mp4   the input with the label and score drawn on every frame
                  (each frame shows the first window that ends at or after it),
                  same frame count;
  timeline.png    top class over time (windows) and the segments.
"""

import collections
import dataclasses
import json
import logging
import os
import queue
import sys
import threading
import time
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.data import video as video_lib
from tsnet_tf.export import predict as predict_lib
from tsnet_tf.export import serving
from tsnet_tf.utils import errors
from tsnet_tf.utils import io as io_utils

log = logging.getLogger(__name__)

WINDOWS_FILE = "windows.jsonl"
SEGMENTS_FILE = "segments.json"
ANNOTATED_FILE = "annotated.mp4"
TIMELINE_FILE = "timeline.png"

STDIN = "-"


class StreamError(errors.ResourceError, RuntimeError):
  """A source cannot be opened or read (names the source)."""


# ----------------------------------------------------------------------------
# classifiers: uint8 stored-format clips -> probabilities


class Classifier:
  """Stored-format clips -> class probabilities, for one model.

  Attributes:
    spec: the clip the model expects (`ClipSpec`).
    labels: class names in label order.
    kind: what runs it (`saved_model`, `keras`, `tflite`, `server`).
  """
  spec: clip_spec_lib.ClipSpec
  labels: List[str]
  kind: str

  def classify(self, clips: np.ndarray) -> np.ndarray:
    """uint8 `[B, T, h, w, 3]` stored-format clips -> float32 probabilities `[B, K]`."""
    raise NotImplementedError


class PredictorClassifier(Classifier):
  """A local artifact (`predict.load_predictor`): `ClipSpec.preprocess`, then the model."""

  def __init__(self, predictor: predict_lib.Predictor):
    self.predictor = predictor
    self.spec = predictor.spec
    self.labels = list(predictor.labels)
    self.kind = predictor.kind

  def classify(self, clips):
    return np.asarray(self.predictor.predict_clips(np.asarray(self.spec.preprocess(clips))))


class ServerClassifier(Classifier):
  """A model on TF-Serving (gRPC, or REST with `rest`), spec and labels from its metadata.

  `serving_default` samples its own centre clip from the frames it is sent, so
  each clip is sent as a run of `span` frames (each clip frame repeated
  `video_stride` times) whose centre clip is that clip.
  """

  def __init__(self, server: str, model_name: str, rest: bool = False,
               timeout: float = 60.0):
    self.kind = "server"
    self._server, self._name, self._rest, self._timeout = server, model_name, rest, timeout
    meta = serving.fetch_metadata(server, model_name, rest=rest, timeout=timeout)
    self.labels = list(meta["labels"])
    self.spec = meta["clip_spec"] or clip_spec_lib.ClipSpec(
        num_frames=int(meta["num_frames"]), crop_size=int(meta["crop_size"]),
        frame_stride=int(meta["frame_stride"]))

  def frames_for(self, clips: np.ndarray) -> np.ndarray:
    """uint8 `[B, span, h, w, 3]` whose served centre clips are `clips`."""
    span = (self.spec.num_frames - 1) * self.spec.video_stride + 1
    return np.repeat(clips, self.spec.video_stride, axis=1)[:, :span]

  def classify(self, clips):
    frames = serving.check_frames(self.frames_for(np.asarray(clips, np.uint8)))
    call = serving.predict_rest if self._rest else serving.predict_grpc
    probabilities, _ = call(self._server, self._name, frames, timeout=self._timeout)
    return probabilities


def load_classifier(model: Optional[str] = None, server: Optional[str] = None,
                    model_name: Optional[str] = None, rest: bool = False,
                    labels_path: Optional[str] = None, num_threads: Optional[int] = None,
                    frame_stride: Optional[int] = None) -> Classifier:
  """A `Classifier` for an artifact (`predict.load_predictor`) or a served model.

  Raises:
    ValueError: neither or both of `model` and `server`, or no `model_name`.
  """
  if bool(model) == bool(server):
    raise ValueError("give either --model or --server")
  if server:
    if not model_name:
      raise ValueError("--server needs --model_name")
    classifier = ServerClassifier(server, model_name, rest)
    if labels_path:
      classifier.labels = predict_lib.read_labels_flag(labels_path)
    if frame_stride:
      classifier.spec = classifier.spec.replace(frame_stride=int(frame_stride))
    return classifier
  return PredictorClassifier(predict_lib.load_predictor(
      model, labels_path, num_threads=num_threads, frame_stride=frame_stride))


# ----------------------------------------------------------------------------
# sources


class FrameSource:
  """Frames of a file, URL, device or stdin, in order.

  Attributes:
    name: the source as given.
    fps: frames per second (the container's, or `--stdin_fps`).
    live: frames come at their own pace (drop windows rather than lag).
    expected_frames: the header's frame count of a file, else 0.
    end_error: after `frames()` ends, why the stream ended early (a decode
      error met, or the read timeout), else None.
  """

  def __init__(self, name: str, fps: float, live: bool, expected_frames: int = 0):
    self.name, self.fps, self.live, self.expected_frames = name, fps, live, expected_frames
    self.end_error: Optional[str] = None

  def frames(self) -> Iterator[np.ndarray]:
    """Yields uint8 RGB `[H, W, 3]` frames."""
    raise NotImplementedError

  def close(self) -> None:
    pass


class _ReaderSource(FrameSource):
  """A file, URL or device through `video.VideoReader`."""

  def __init__(self, name, reader: video_lib.VideoReader, live: bool, realtime: bool):
    super().__init__(name, reader.fps, live or realtime, reader.header_frames)
    self._reader = reader
    self._realtime = realtime

  def frames(self):
    start = time.monotonic()
    try:
      for index, frame in enumerate(self._reader.frames()):
        if self._realtime and self.fps:
          delay = start + index / self.fps - time.monotonic()
          if delay > 0:
            time.sleep(delay)
        yield frame
    except video_lib.VideoDecodeError as e:
      if self._reader.num_decoded:  # e.g. a size change mid-stream: the frames so far stand
        self.end_error = e.reason
        return
      raise
    if self._reader.last_error:
      self.end_error = self._reader.last_error

  def close(self):
    self._reader.close()


class _RawSource(FrameSource):
  """Raw RGB24 frames of `width x height` read from a binary stream (stdin)."""

  def __init__(self, stream, width: int, height: int, fps: float):
    super().__init__(STDIN, fps, live=True)
    self._stream, self._width, self._height = stream, width, height

  def frames(self):
    size = self._width * self._height * 3
    while True:
      data = _read_exactly(self._stream, size)
      if len(data) < size:
        if data:
          self.end_error = f"last frame cut short ({len(data)} of {size} bytes)"
        return
      yield np.frombuffer(data, np.uint8).reshape(self._height, self._width, 3)


def _read_exactly(stream, size: int) -> bytes:
  chunks, got = [], 0
  while got < size:
    chunk = stream.read(size - got)
    if not chunk:
      break
    chunks.append(chunk)
    got += len(chunk)
  return b"".join(chunks)


def parse_size(text: str) -> Tuple[int, int]:
  """`"WxH"` -> (width, height); raises ValueError naming `--stdin_size`."""
  try:
    width, height = (int(v) for v in str(text).lower().split("x"))
  except ValueError:
    raise ValueError(f"--stdin_size must be WxH (e.g. 320x240), got {text!r}") from None
  if width < 1 or height < 1:
    raise ValueError(f"--stdin_size must be positive, got {text!r}")
  return width, height


def is_device(path: str) -> bool:
  return str(path).startswith("/dev/video")


def open_source(video: str, stdin_size: Optional[str] = None, stdin_fps: Optional[float] = None,
                timeout: float = 10.0, realtime: bool = False, live: Optional[bool] = None,
                stdin=None) -> FrameSource:
  """Opens a video file, an http(s)/rtsp URL, a V4L2 device or stdin (`"-"`).

  Args:
    video: the source.
    stdin_size: `"WxH"` of raw RGB24 frames on stdin (required for `"-"`).
    stdin_fps: their frame rate (required for `"-"`).
    timeout: seconds a URL or device may take to open or to deliver data.
    realtime: release a file's frames at its frame rate, as a camera would
      (live behaviour on a file: benchmarks, demos).
    live: drop windows rather than lag; default: True for rtsp, devices and
      stdin, False for files and http(s) downloads.
    stdin: binary stream to read for `"-"` (default `sys.stdin.buffer`).

  Raises:
    ValueError: stdin without size or fps.
    video.VideoDecodeError: the source cannot be opened (names it).
  """
  if video == STDIN:
    if not stdin_size or not stdin_fps:
      raise ValueError("--video=- (raw RGB frames on stdin) needs --stdin_size=WxH and "
                       "--stdin_fps")
    if stdin_fps <= 0:
      raise ValueError(f"--stdin_fps must be positive, got {stdin_fps}")
    width, height = parse_size(stdin_size)
    return _RawSource(stdin if stdin is not None else sys.stdin.buffer, width, height,
                      float(stdin_fps))
  if is_device(video):
    reader = video_lib.VideoReader(video, av_format="v4l2", timeout=timeout)
    default_live = True
  elif video_lib.is_stream_url(video):
    reader = video_lib.VideoReader(video, timeout=timeout)
    default_live = not video.lower().startswith(("http://", "https://"))
  else:
    reader = video_lib.VideoReader(video)
    default_live = False
  if not reader.fps:
    reader.close()
    raise video_lib.VideoDecodeError(video, "the stream gives no frame rate")
  return _ReaderSource(video, reader, default_live if live is None else live, realtime)


# ----------------------------------------------------------------------------
# windows


@dataclasses.dataclass
class Clip:
  """One window's clip, as the decoder hands it to the classifier.

  Attributes:
    index: window number (0, 1, ...; dropped windows keep theirs).
    start_frame, end_frame: decoded frames `[start_frame, end_frame)` it spans.
    frames: uint8 `[T, h, w, 3]`, stored format.
    arrival: `time.monotonic()` when its last frame arrived.
  """
  index: int
  start_frame: int
  end_frame: int
  frames: np.ndarray
  arrival: float


class WindowSlicer:
  """Decoded frames in, window clips out; holds the last `span` stored frames.

    slicer = WindowSlicer(spec, hop)
    for i, frame in enumerate(frames):
      for clip in slicer.push(frame):  # a window that ends on this frame
        ...
    clips = slicer.finish()  # a last window ending on the last frame, if any left

  Windows start at frames 0, hop, 2 hop, ... (hop: a multiple of the stored stride).
  """

  def __init__(self, spec: clip_spec_lib.ClipSpec, hop: Optional[int] = None,
               convert: Optional[Callable[[np.ndarray], np.ndarray]] = None):
    self.spec = spec
    self.stored_stride = spec.stored_frames.stride
    self.video_stride = spec.video_stride
    self.span = (spec.num_frames - 1) * self.video_stride + 1
    self.hop = default_hop(spec) if hop is None else round_hop(spec, hop)
    self._convert = convert or (lambda f: spec.stored_frames_of(f[None])[0])
    # stored frames at decoded positions 0, stored_stride, ...: the last span's worth
    self._ring: Deque[Tuple[int, np.ndarray]] = collections.deque(
        maxlen=(spec.num_frames - 1) * spec.frame_stride + 1)
    self._head: List[np.ndarray] = []  # raw first frames, for a source shorter than a clip
    self.num_frames = 0
    self.next_index = 0
    self._last_end = 0

  def _clip_from(self, start: int) -> np.ndarray:
    first = self._ring[0][0]
    rel = (start - first) // self.stored_stride
    positions = rel + np.arange(self.spec.num_frames) * self.spec.frame_stride
    return np.stack([self._ring[int(p)][1] for p in positions])

  def push(self, frame: np.ndarray, arrival: Optional[float] = None) -> List[Clip]:
    """Adds decoded frame number `num_frames`; returns the window(s) ending on it."""
    position = self.num_frames
    self.num_frames += 1
    if len(self._head) < self.span and position < self.span:
      self._head.append(frame)
    if position % self.stored_stride:
      return []
    self._ring.append((position, self._convert(frame)))
    start = position - (self.span - 1)
    if start < 0 or start % self.hop:
      return []
    return [self._emit(start, arrival)]

  def _emit(self, start: int, arrival: Optional[float]) -> Clip:
    clip = Clip(self.next_index, start, start + self.span, self._clip_from(start),
                time.monotonic() if arrival is None else arrival)
    self.next_index += 1
    self._last_end = start + self.span
    if self._head and self.num_frames > self.span:
      self._head = []
    return clip

  def finish(self) -> List[Clip]:
    """The closing window of a finished source: the last frames, if no window covered them.

    A source shorter than one clip gives one clip of all its frames, looped
    as `ClipSpec.clip_of_video` loops a short video.
    """
    if not self.num_frames:
      return []
    if self.num_frames < self.span:
      frames = self.spec.clip_of_video(np.stack(self._head))[0]
      clip = Clip(self.next_index, 0, self.num_frames, frames, time.monotonic())
      self.next_index += 1
      self._last_end = self.num_frames
      return [clip]
    last = (self.num_frames - 1) // self.stored_stride * self.stored_stride
    start = last - (self.span - 1)
    if last + 1 <= self._last_end or start < 0:
      return []
    return [self._emit(start, time.monotonic())]


def round_hop(spec: clip_spec_lib.ClipSpec, hop: int) -> int:
  """`hop` (decoded frames) rounded to a multiple of the stored stride, at least one."""
  stride = spec.stored_frames.stride
  return max(stride, int(round(int(hop) / stride)) * stride)


def default_hop(spec: clip_spec_lib.ClipSpec) -> int:
  """Half a clip's span, in decoded frames."""
  span = (spec.num_frames - 1) * spec.video_stride + 1
  return round_hop(spec, max(1, span // 2))


# ----------------------------------------------------------------------------
# smoothing and segments


@dataclasses.dataclass
class Segment:
  label: str
  start: float
  end: float
  score: float
  num_windows: int = 1

  def to_dict(self) -> Dict:
    return {"label": self.label, "start": round(self.start, 4), "end": round(self.end, 4),
            "score": round(self.score, 4)}


class SegmentBuilder:
  """The module doc's smoothing rule, online: windows in, segments out.

    builder = SegmentBuilder(labels, smooth=3, min_segment=1.0)
    for start, end, probabilities in windows:
      builder.add(start, end, probabilities)
    segments = builder.finish()
  """

  def __init__(self, labels: Sequence[str], smooth: int = 3, min_segment: float = 0.0):
    if smooth < 1:
      raise ValueError(f"smooth must be >= 1 window, got {smooth}")
    self.labels = list(labels)
    self.smooth = int(smooth)
    self.min_segment = float(min_segment)
    self._half = self.smooth // 2
    # Windows not yet averaged: (start, end, probabilities); the average of
    # window i needs windows i - half .. i + half.
    self._pending: Deque[Tuple[float, float, np.ndarray]] = collections.deque()
    self._history: Deque[np.ndarray] = collections.deque(maxlen=self._half)
    self._prev: Optional[Tuple[float, float, int, float]] = None  # start, end, cls, score
    self._cursor = 0.0  # where the previous window's time begins
    self._open: Optional[Segment] = None
    self.segments: List[Segment] = []

  def add(self, start: float, end: float, probabilities: np.ndarray) -> None:
    self._pending.append((start, end, np.asarray(probabilities, np.float64)))
    if len(self._pending) > self._half:
      self._average_next(final=False)

  def _average_next(self, final: bool) -> None:
    start, end, probs = self._pending[0]
    ahead = [p for _, _, p in list(self._pending)[1:self._half + 1]]
    mean = np.mean([*self._history, probs, *ahead], axis=0)
    self._history.append(probs)
    self._pending.popleft()
    cls = int(np.argmax(mean))
    self._place(start, end, cls, float(mean[cls]), last=final and not self._pending)

  def _place(self, start, end, cls, score, last) -> None:
    """Gives the previous window the time up to the midpoint of the two centres."""
    if self._prev is None:
      self._cursor = start
    else:
      p_start, p_end, p_cls, p_score = self._prev
      boundary = ((p_start + p_end) / 2 + (start + end) / 2) / 2
      boundary = max(self._cursor, min(p_end, boundary))
      self._extend(p_cls, self._cursor, boundary, p_score)
      self._cursor = boundary
    self._prev = (start, end, cls, score)
    if last:
      self._extend(cls, self._cursor, max(end, self._cursor), score)

  def _extend(self, cls, start, end, score) -> None:
    label = self.labels[cls]
    if self._open is not None and self._open.label == label:
      seg = self._open
      seg.score = (seg.score * seg.num_windows + score) / (seg.num_windows + 1)
      seg.num_windows += 1
      seg.end = end
      return
    self._close()
    self._open = Segment(label, start, end, score)

  def _close(self) -> None:
    seg, self._open = self._open, None
    if seg is None or seg.end - seg.start < self.min_segment:
      return
    if self.segments and self.segments[-1].label == seg.label:
      prev = self.segments[-1]
      total = prev.num_windows + seg.num_windows
      prev.score = (prev.score * prev.num_windows + seg.score * seg.num_windows) / total
      prev.num_windows, prev.end = total, seg.end
      return
    self.segments.append(seg)

  def finish(self) -> List[Segment]:
    while self._pending:
      self._average_next(final=True)
    self._close()
    return self.segments


def segments_of(windows: Sequence[Tuple[float, float, np.ndarray]], labels: Sequence[str],
                smooth: int = 3, min_segment: float = 0.0) -> List[Segment]:
  """`SegmentBuilder` over a list of `(start_s, end_s, probabilities [K])` windows."""
  builder = SegmentBuilder(labels, smooth, min_segment)
  for start, end, probs in windows:
    builder.add(start, end, probs)
  return builder.finish()


# ----------------------------------------------------------------------------
# annotation, timeline


def draw_label(frame: np.ndarray, text: str) -> np.ndarray:
  """uint8 `[H, W, 3]` with `text` on a dark band at its top (PIL)."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  image = Image.fromarray(frame)
  draw = ImageDraw.Draw(image)
  box = draw.textbbox((3, 2), text)
  draw.rectangle((0, 0, frame.shape[1], box[3] + 2), fill=(0, 0, 0))
  draw.text((3, 2), text, fill=(255, 255, 255))
  return np.asarray(image)


class AnnotatedWriter:
  """Writes frames with their labels drawn to an MP4 (H.264 where available), atomically.

  Frames wait (`add`) until a window that ends at or after them is labelled
  (`label_until`); at most `max_pending` wait (the oldest then take the last
  label), so memory stays bounded on a stream.
  """

  def __init__(self, path: str, fps: float, max_pending: int):
    self.path = path
    self.fps = fps
    self.max_pending = max(1, max_pending)
    self._pending: Deque[Tuple[int, np.ndarray]] = collections.deque()
    self._lock = threading.Lock()
    self._encode_lock = threading.Lock()  # the decoder (overflow) and the labeller both write
    self._closed = False
    self._text = ""
    self.num_written = 0
    self._atomic = io_utils.atomic_write(path)
    self._tmp = self._atomic.__enter__()
    import av  # pylint: disable=g-import-not-at-top
    self._container = av.open(self._tmp, mode="w", format="mp4")
    self._stream = None
    self._codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"

  def add(self, index: int, frame: np.ndarray) -> None:
    with self._lock:
      self._pending.append((index, frame))
      overflow = len(self._pending) > self.max_pending
    if overflow:
      self._write_until(self._pending[0][0] + 1)

  def label_until(self, end_frame: int, text: str) -> None:
    """Frames before `end_frame` get `text`."""
    self._text = text
    self._write_until(end_frame)

  def _write_until(self, end_frame: int) -> None:
    with self._encode_lock:
      while not self._closed:
        with self._lock:
          if not self._pending or self._pending[0][0] >= end_frame:
            return
          _, frame = self._pending.popleft()
        self._encode(draw_label(frame, self._text) if self._text else frame)

  def _encode(self, rgb: np.ndarray) -> None:
    import av  # pylint: disable=g-import-not-at-top
    import fractions  # pylint: disable=g-import-not-at-top
    rgb = rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2]  # 4:2:0 wants even sizes
    if self._stream is None:
      rate = fractions.Fraction(self.fps).limit_denominator(1001)
      self._stream = self._container.add_stream(self._codec, rate=rate)
      self._stream.width, self._stream.height = rgb.shape[1], rgb.shape[0]
      self._stream.pix_fmt = "yuv420p"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    self._container.mux(self._stream.encode(frame))
    self.num_written += 1

  def close(self) -> None:
    """Writes the frames still waiting (last label) and completes the file (once)."""
    if self._closed:
      return
    self._write_until(sys.maxsize)
    self._closed = True
    try:
      if self._stream is not None:
        self._container.mux(self._stream.encode(None))
      self._container.close()
    except BaseException:
      self._atomic.__exit__(*sys.exc_info())
      raise
    if self.num_written:
      self._atomic.__exit__(None, None, None)
    else:  # no frame: no file
      self._atomic.__exit__(ValueError, ValueError("no frames"), None)


def write_timeline(path: str, windows_path: str, labels: Sequence[str],
                   segments: Sequence[Segment]) -> None:
  """timeline.png: each window's top class over time (read back from windows.jsonl), and
  the smoothed segments below, one row per class."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  row = {name: i for i, name in enumerate(labels)}
  colours = plt.get_cmap("tab10")
  fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 1.5 + 0.45 * len(labels)),
                                    gridspec_kw={"height_ratios": [len(labels), 1.2]})
  end = 0.0
  with open(windows_path, encoding="utf-8") as f:
    for line in f:
      w = json.loads(line)
      name = w["top"][0]["label"]
      r = row.get(name, 0)
      top.plot([w["start"], w["end"]], [r, r], color=colours(r % 10), linewidth=6,
               alpha=0.25 + 0.75 * w["top"][0]["score"], solid_capstyle="butt")
      end = max(end, w["end"])
  top.set_yticks(range(len(labels)), labels)
  top.set_ylim(-0.7, len(labels) - 0.3)
  top.invert_yaxis()
  top.set_title("top class per window (opacity: probability)")
  for seg in segments:
    r = row.get(seg.label, 0)
    bottom.broken_barh([(seg.start, seg.end - seg.start)], (0, 1), color=colours(r % 10))
    bottom.text((seg.start + seg.end) / 2, 0.5, seg.label, ha="center", va="center",
                fontsize=7, clip_on=True)
    end = max(end, seg.end)
  bottom.set_yticks([])
  bottom.set_xlabel("time (s)")
  bottom.set_title("segments (smoothed)")
  bottom.set_xlim(0, max(end, 1e-3))
  fig.tight_layout()
  with io_utils.atomic_write(path) as tmp:
    fig.savefig(tmp, dpi=100, format="png")
  plt.close(fig)


# ----------------------------------------------------------------------------
# the run


@dataclasses.dataclass
class Window:
  """One classified window."""
  index: int
  start_frame: int
  end_frame: int
  start: float
  end: float
  top: List[Tuple[str, float]]
  probabilities: np.ndarray
  latency_ms: float

  def to_dict(self) -> Dict:
    return {"window": self.index, "start": round(self.start, 4), "end": round(self.end, 4),
            "start_frame": self.start_frame, "end_frame": self.end_frame,
            "top": [{"label": n, "score": round(p, 4)} for n, p in self.top],
            "latency_ms": round(self.latency_ms, 2)}

  def line(self) -> str:
    tops = "  ".join(f"{n} {p:.2f}" for n, p in self.top)
    return f"[{self.start:8.2f}s - {self.end:8.2f}s] {tops}"


@dataclasses.dataclass
class Result:
  """What a run did.

  Attributes:
    frames: frames decoded.
    windows: windows classified.
    dropped: windows dropped (live source, classifier too slow).
    end: how it ended, one line (`end of stream`, `stalled: ...`,
      `stream ended early: ...`, `interrupted`).
    segments: the smoothed segment list.
    latencies_ms: each classified window's latency.
    elapsed_s: wall seconds from the first frame to the end.
    fps: the source's frame rate.
    outputs: {kind: path} of the files written.
  """
  frames: int
  windows: int
  dropped: int
  end: str
  segments: List[Segment]
  latencies_ms: List[float]
  elapsed_s: float
  fps: float
  outputs: Dict[str, str]
  interrupted: bool = False

  @property
  def realtime_factor(self) -> float:
    """Video seconds processed per wall second."""
    return (self.frames / self.fps) / self.elapsed_s if self.elapsed_s and self.fps else 0.0

  def summary(self, source: str) -> str:
    line = (f"{source}: {self.end} after {self.frames} frames ({self.frames / self.fps:.1f} s "
            f"of video in {self.elapsed_s:.1f} s, {self.realtime_factor:.1f}x real time): "
            f"{self.windows} windows, {self.dropped} dropped, {len(self.segments)} segments")
    if self.latencies_ms:
      line += (f", latency median {np.median(self.latencies_ms):.0f} ms, "
               f"p95 {np.percentile(self.latencies_ms, 95):.0f} ms")
    return line


class _Decoder(threading.Thread):
  """Reads the source, slices windows, puts them on the queue (drops when live)."""

  def __init__(self, source: FrameSource, slicer: WindowSlicer, out: "queue.Queue",
               annotator: Optional[AnnotatedWriter]):
    super().__init__(name="recognize-decoder", daemon=True)
    self.source, self.slicer, self.out, self.annotator = source, slicer, out, annotator
    self.stop = threading.Event()
    self.dropped = 0
    self.error: Optional[BaseException] = None
    self.last_frame_time = time.monotonic()
    self.first_frame_time: Optional[float] = None
    self.done = threading.Event()

  def _put(self, clip: Clip) -> None:
    if not self.source.live:
      while not self.stop.is_set():
        try:
          self.out.put(clip, timeout=0.1)
          self.last_frame_time = time.monotonic()  # waiting on the classifier is no stall
          return
        except queue.Full:
          continue
      return
    while True:
      try:
        self.out.put_nowait(clip)
        return
      except queue.Full:
        try:
          self.out.get_nowait()  # the oldest window: labels stay current
          self.dropped += 1
        except queue.Empty:
          pass

  def run(self):
    try:
      for frame in self.source.frames():
        now = time.monotonic()
        if self.first_frame_time is None:
          self.first_frame_time = now
        self.last_frame_time = now
        if self.stop.is_set():
          break
        if self.annotator is not None:
          self.annotator.add(self.slicer.num_frames, frame)
        for clip in self.slicer.push(frame, now):
          self._put(clip)
      if not self.stop.is_set():
        for clip in self.slicer.finish():
          self._put(clip)
    except BaseException as e:  # pylint: disable=broad-except
      self.error = e
    finally:
      self.done.set()
      if self.stop.is_set():
        self._put_end()
      else:  # the end of a stream drops no window, live or not
        while not self.stop.is_set():
          try:
            self.out.put(None, timeout=0.1)
            break
          except queue.Full:
            continue

  def _put_end(self):
    while True:
      try:
        self.out.put_nowait(None)
        return
      except queue.Full:
        try:
          self.out.get_nowait()
          self.dropped += 1
        except queue.Empty:
          pass


class _Status:
  """tqdm bar for files, a one-line status for live sources (stderr)."""

  def __init__(self, source: FrameSource, slicer: WindowSlicer, enabled: bool):
    self.enabled = enabled
    self._bar = None
    self._last = 0.0
    self._live = source.live or not source.expected_frames
    if enabled and not self._live:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      total = max(1, (source.expected_frames - slicer.span) // slicer.hop + 2)
      self._bar = tqdm(total=total, unit="win", file=sys.stderr, dynamic_ncols=True,
                       leave=False)

  def write(self, text: str, stream) -> None:
    if self._bar is not None and stream is sys.stdout:
      self._bar.write(text, file=stream)
    else:
      print(text, file=stream, flush=True)

  def update(self, window: Window, frames: int, dropped: int, elapsed: float, fps: float):
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.update(1)
      return
    now = time.monotonic()
    if now - self._last < 0.5:
      return
    self._last = now
    top = f"{window.top[0][0]} {window.top[0][1]:.2f}" if window.top else ""
    sys.stderr.write(f"\r{frames / fps if fps else 0:7.1f}s  {frames} frames  "
                     f"{window.index + 1} windows  {dropped} dropped  "
                     f"latency {window.latency_ms:5.0f} ms  {top}\x1b[K")
    sys.stderr.flush()

  def close(self):
    if self._bar is not None:
      self._bar.close()
    elif self.enabled and self._last:
      sys.stderr.write("\n")


def recognize(classifier: Classifier, source: FrameSource, output_dir: Optional[str] = None,
              hop: Optional[int] = None, top_k: int = 5, smooth: int = 3,
              min_segment: Optional[float] = None, annotate: bool = False,
              timeline: bool = False, queue_size: int = 2, stall_timeout: float = 10.0,
              print_windows: bool = True, progress: bool = True,
              on_window: Optional[Callable[[Window], None]] = None) -> Result:
  """Slides the classifier's clip over the source; see the module doc.

  Args:
    classifier: a `Classifier` (`load_classifier`).
    source: a `FrameSource` (`open_source`); closed when done.
    output_dir: where windows.jsonl, segments.json (and annotated.mp4,
      timeline.png on request) go; None writes nothing.
    hop: decoded frames between window starts (default: half a clip).
    top_k: classes per window.
    smooth: windows in the moving average of the smoothing rule.
    min_segment: shortest segment kept, seconds (default: one clip's span).
    annotate, timeline: also write annotated.mp4 / timeline.png.
    queue_size: windows waiting for the classifier (then a live source drops).
    stall_timeout: seconds without a frame before the stream counts as stalled.
    print_windows: print each window's line on stdout.
    progress: tqdm bar (files) or status line (streams) on stderr.
    on_window: called with each classified `Window`.

  Returns:
    A `Result`. Ctrl-C during the run ends it with `end="interrupted"` and
    `interrupted=True`, outputs closed and complete.

  Raises:
    video.VideoDecodeError: the source yields no frame.
  """
  if top_k < 1:
    raise ValueError(f"--top_k must be >= 1, got {top_k}")
  if hop is not None and hop < 1:
    raise ValueError(f"--hop must be >= 1 frame, got {hop}")
  spec = classifier.spec
  fps = source.fps
  slicer = WindowSlicer(spec, hop)
  min_segment = slicer.span / fps if min_segment is None else float(min_segment)
  builder = SegmentBuilder(classifier.labels, smooth, min_segment)
  outputs: Dict[str, str] = {}
  jsonl = annotator = None
  if output_dir:
    os.makedirs(output_dir, exist_ok=True)
    outputs["windows"] = os.path.join(output_dir, WINDOWS_FILE)
    # Written in place, line by line, so another program can follow it live.
    jsonl = open(outputs["windows"], "w", encoding="utf-8")  # pylint: disable=consider-using-with
    if annotate:
      outputs["annotated"] = os.path.join(output_dir, ANNOTATED_FILE)
      annotator = AnnotatedWriter(outputs["annotated"], fps,
                                  max_pending=slicer.span + (queue_size + 2) * slicer.hop)
  windows_q: "queue.Queue" = queue.Queue(maxsize=max(1, queue_size))
  decoder = _Decoder(source, slicer, windows_q, annotator)
  status = _Status(source, slicer, progress)
  latencies: List[float] = []
  num_windows = 0
  end = "end of stream"
  interrupted = False
  started = time.monotonic()
  decoder.start()
  try:
    while True:
      try:
        clip = windows_q.get(timeout=0.2)
      except queue.Empty:
        idle = time.monotonic() - decoder.last_frame_time
        if not decoder.done.is_set() and idle > stall_timeout:
          end = f"stalled: no frame for {idle:.0f} s"
          break
        continue
      if clip is None:
        break
      probs = np.asarray(classifier.classify(clip.frames[None]))[0]
      window = Window(clip.index, clip.start_frame, clip.end_frame, clip.start_frame / fps,
                      clip.end_frame / fps, predict_lib.top_k(probs, classifier.labels, top_k),
                      probs, (time.monotonic() - clip.arrival) * 1000.0)
      num_windows += 1
      latencies.append(window.latency_ms)
      builder.add(window.start, window.end, probs)
      if jsonl is not None:
        jsonl.write(json.dumps(window.to_dict()) + "\n")
        jsonl.flush()
      if annotator is not None:
        annotator.label_until(window.end_frame, f"{window.top[0][0]} {window.top[0][1]:.2f}")
      if print_windows:
        status.write(window.line(), sys.stdout)
      status.update(window, slicer.num_frames, decoder.dropped, time.monotonic() - started, fps)
      if on_window is not None:
        on_window(window)
  except KeyboardInterrupt:
    end, interrupted = "interrupted", True
  finally:
    decoder.stop.set()
    status.close()
  decoder.join(timeout=0.1 if end.startswith("stalled") else 2.0)  # a stalled read never returns
  if decoder.error is not None and not interrupted:
    error = decoder.error
    if isinstance(error, video_lib.VideoDecodeError) and not slicer.num_frames:
      _close_outputs(jsonl, annotator)
      raise error
    end = f"stream failed: {error}"
  elif end == "end of stream" and source.end_error:
    end = f"stream ended early ({source.end_error})"
  elapsed = time.monotonic() - (decoder.first_frame_time or started)
  if decoder.done.is_set():  # else a stalled read still holds it (a daemon thread)
    source.close()
  segments = builder.finish()
  result = Result(frames=slicer.num_frames, windows=num_windows, dropped=decoder.dropped,
                  end=end, segments=segments, latencies_ms=latencies, elapsed_s=elapsed,
                  fps=fps, outputs=outputs, interrupted=interrupted)
  _close_outputs(jsonl, annotator)
  if output_dir:
    outputs["segments"] = os.path.join(output_dir, SEGMENTS_FILE)
    with io_utils.atomic_write(outputs["segments"]) as tmp, open(tmp, "w",
                                                                encoding="utf-8") as f:
      json.dump({"source": source.name, "fps": fps, "frames": result.frames,
                 "windows": num_windows, "dropped": result.dropped, "end": end,
                 "clip": spec.to_dict(), "hop_frames": slicer.hop,
                 "smoothing": {"moving_average_windows": builder.smooth,
                               "min_segment_s": round(min_segment, 4)},
                 "segments": [s.to_dict() for s in segments]}, f, indent=1)
    if timeline:
      outputs["timeline"] = os.path.join(output_dir, TIMELINE_FILE)
      write_timeline(outputs["timeline"], outputs["windows"], classifier.labels, segments)
  if annotator is not None and not annotator.num_written:
    outputs.pop("annotated", None)
  return result


def _close_outputs(jsonl, annotator) -> None:
  if jsonl is not None and not jsonl.closed:
    jsonl.close()
  if annotator is not None:
    annotator.close()
