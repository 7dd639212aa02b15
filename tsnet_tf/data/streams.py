"""Frames of a long video or a live stream, cut into the windows a model classifies.

  source = open_source("long.mp4")   # or http(s):// / rtsp:// URL, /dev/video0, "-" (stdin)
  slicer = WindowSlicer(spec, hop)   # spec: the artifact's `ClipSpec`
  for frame in source.frames():
    for clip in slicer.push(frame):  # a window that ends on this frame
      ...                            # clip.frames: uint8 [T, h, w, 3], stored format
  clips = slicer.finish()            # the tail, or one looped clip of a short source

Sources: a video file (`video.VideoReader`), a URL PyAV opens (http, https,
rtsp, ...), a V4L2 device (`/dev/videoN`, PyAV format `v4l2`) or raw RGB24
frames on stdin (`"-"`, size and frame rate given). A source is *live* when
frames come at their own pace (rtsp, devices, stdin, or a file released at its
frame rate with `realtime`): its consumer drops windows rather than lag.

Windows: the clip is the spec's own (T frames `video_stride` decoded frames
apart, in the stored frame format the model was trained on); nothing here
re-derives it. A window starting at decoded frame `s` is the clip of frames
`s, s + v, ..., s + (T - 1) v` (`v = spec.video_stride`), spanning
`span = (T - 1) v + 1` frames. Windows start every `hop` frames (default half
the span, rounded to the converter's stored stride); a finished source's last
window is moved to end on its last frame when frames are left over, and a
source shorter than one clip gives one looped clip (`ClipSpec.clip_of_video`).
Memory: the last `span` stored-format frames (a ring buffer).
"""

import collections
import dataclasses
import sys
import time
from typing import Callable, Deque, Iterator, List, Optional, Tuple

import numpy as np

from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.data import video as video_lib

STDIN = "-"


class FrameSource:
  """Frames of a file, URL, device or stdin, in order.

  Attributes:
    name: the source as given.
    fps: frames per second (the container's, or `--stdin_fps`).
    live: frames come at their own pace (drop windows rather than lag).
    expected_frames: the header's frame count of a file, else 0.
    end_error: after `frames()` ends, why the stream ended early (a decode
      error met, or the read timeout), else None.
    stalled: `frames()` ended because no data came within the read timeout
      (`end_error` says for how long).
  """

  def __init__(self, name: str, fps: float, live: bool, expected_frames: int = 0):
    self.name, self.fps, self.live, self.expected_frames = name, fps, live, expected_frames
    self.end_error: Optional[str] = None
    self.stalled = False

  def frames(self) -> Iterator[np.ndarray]:
    """Yields uint8 RGB `[H, W, 3]` frames."""
    raise NotImplementedError

  def close(self) -> None:
    pass


class _ReaderSource(FrameSource):
  """A file, URL or device through `video.VideoReader`."""

  def __init__(self, name, reader: video_lib.VideoReader, live: bool, realtime: bool,
               timeout: Optional[float] = None):
    super().__init__(name, reader.fps, live or realtime, reader.header_frames)
    self._reader = reader
    self._realtime = realtime
    self._timeout = timeout

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
    if self._reader.last_error == video_lib.READ_TIMEOUT:
      self.stalled = True
      self.end_error = f"no data for {self._timeout:g} s"
    elif self._reader.last_error:
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


# RTSP media over the RTSP TCP connection (RFC 2326 10.12) unless asked otherwise: no
# packet is lost (a lost UDP packet smears the frames up to the next key frame, which
# the model then classifies), and it passes NAT and firewalls. FFmpeg's own default
# tries UDP first and falls back to TCP only after a refusal or a timeout.
RTSP_TRANSPORTS = ("tcp", "udp", "auto")


def open_source(video: str, stdin_size: Optional[str] = None, stdin_fps: Optional[float] = None,
                timeout: float = 10.0, realtime: bool = False, live: Optional[bool] = None,
                stdin=None, rtsp_transport: str = "tcp") -> FrameSource:
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
    rtsp_transport: how an `rtsp://` source carries its media: `tcp` (default,
      interleaved on the RTSP connection), `udp`, or `auto` (FFmpeg's default:
      UDP, then TCP).

  Raises:
    ValueError: stdin without size or fps, an unknown `rtsp_transport`.
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
  if rtsp_transport not in RTSP_TRANSPORTS:
    raise ValueError(f"--rtsp_transport must be one of {', '.join(RTSP_TRANSPORTS)}, got "
                     f"{rtsp_transport!r}")
  if is_device(video):
    # FFmpeg reads a device only when told its input format (V4L2 on Linux).
    reader = video_lib.VideoReader(video, av_format="v4l2", timeout=timeout)
    default_live = True
  elif video_lib.is_stream_url(video):
    options = None
    if video.lower().startswith("rtsp://") and rtsp_transport != "auto":
      options = {"rtsp_transport": rtsp_transport}
    reader = video_lib.VideoReader(video, options=options, timeout=timeout)
    default_live = not video.lower().startswith(("http://", "https://"))
  else:
    reader = video_lib.VideoReader(video)
    default_live = False
  if not reader.fps:
    reader.close()
    raise video_lib.VideoDecodeError(video, "the stream gives no frame rate")
  return _ReaderSource(video, reader, default_live if live is None else live, realtime, timeout)


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
    self.span = spec.video_span
    self.hop = default_hop(spec) if hop is None else round_hop(spec, hop)
    self._convert = convert or (lambda f: spec.stored_frames_of(f[None])[0])
    # stored frames at decoded positions 0, stored_stride, ...: the last span's worth
    self._ring: Deque[Tuple[int, np.ndarray]] = collections.deque(
        maxlen=spec.stored_span)
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
  return round_hop(spec, max(1, spec.video_span // 2))
