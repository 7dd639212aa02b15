"""Video file I/O: the one module that opens, decodes and encodes video files (PyAV).

Everything else in the project sees videos as uint8 RGB arrays `[T, H, W, 3]`.

  info = probe_video("clap/x.avi")            # VideoInfo(fps, num_frames, height, width)
  clip = read_frames("clap/x.avi", [3, 4, 5])  # uint8 [3, H, W, 3]: only what is needed
  for frame in iter_frames("clap/x.avi"):     # uint8 [H, W, 3], one at a time
    ...
  frames = read_video("clap/x.avi")           # uint8 [T, H, W, 3], all in memory
  write_video("y.avi", frames, fps=30)        # AVI, MPEG-4 Part 2 (DivX/XviD-like)

Every reader streams: memory holds the frames asked for, never the whole video
(except `read_video`, which asks for all). `VideoReader` is the one decoding
loop; `read_selection` / `read_frames` keep a clip's frames, `iter_frames`
hands out every frame in order.

Frames come out as a player shows them: a rotation in the container's display
matrix (phone footage filmed upright: an mp4 whose frames are stored landscape
with a 90 degree track matrix) is applied to every frame, and the sizes
`probe_video` reports are those of the rotated frames (`display_rgb`).

Unreadable files (missing, empty, garbage, truncated before the first frame,
zero frames) raise `VideoDecodeError`, a `ValueError` that names the file. A
file truncated mid-stream still yields the frames before the cut.
"""

import dataclasses
import fractions
import itertools
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import av
import numpy as np
from PIL import Image

from tsnet_tf.utils import errors
from tsnet_tf.utils import io as io_utils

# Largest time-base denominator MPEG-4 Part 2 accepts (16-bit field), so
# 29.97 = 30000/1001 fits but arbitrary floats are rounded to a nearby fraction.
_MAX_RATE_DENOMINATOR = 1001


class VideoDecodeError(errors.ResourceError, ValueError):
  """A video file cannot be decoded into at least one frame.

  Attributes:
    path: the file, as given.
    reason: what is wrong, in words.
  """

  def __init__(self, path, reason: str):
    self.path = os.fspath(path)
    self.reason = reason
    super().__init__(f"cannot decode video {self.path!r}: {reason}")

  def __reduce__(self):
    # Default exception pickling would call cls(message) and lose `reason`;
    # needed when errors cross process boundaries (multiprocessing pools).
    return (type(self), (self.path, self.reason))


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What a container says about its first video stream.

  Attributes:
    fps: frames per second (float, e.g. 29.97).
    num_frames: frame count from the container header, or counted by
      demuxing (`count_frames`) when the header has none. For a file
      truncated after writing its header this is the header's count, which
      can exceed what `read_video` returns.
    height: frame height in pixels, as displayed (rotation applied).
    width: frame width in pixels, as displayed.
  """
  fps: float
  num_frames: int
  height: int
  width: int


def _check_file(path: str) -> None:
  if not os.path.exists(path):
    raise VideoDecodeError(path, "file does not exist")
  if not os.path.isfile(path):
    raise VideoDecodeError(path, "not a regular file")
  if os.path.getsize(path) == 0:
    raise VideoDecodeError(path, "file is empty (0 bytes)")


def _open(path: str):
  """Opens `path` for reading; returns (container, first video stream)."""
  _check_file(path)
  try:
    container = av.open(path, mode="r")
  except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
    raise VideoDecodeError(path, f"not a readable video container ({e})") from e
  if not container.streams.video:
    container.close()
    raise VideoDecodeError(path, "container has no video stream")
  return container, container.streams.video[0]


def is_stream_url(path: str) -> bool:
  """True for a network source PyAV opens by URL (http, https, rtsp, rtmp, udp, tcp)."""
  return str(path).lower().startswith(("http://", "https://", "rtsp://", "rtmp://", "udp://",
                                       "tcp://"))


def _open_stream(path: str, av_format: Optional[str], options: Optional[Dict[str, str]],
                 timeout: Optional[float]):
  """Opens a URL or device (`av_format`, e.g. `v4l2`); returns (container, stream).

  `timeout` (seconds) bounds opening and every read: a stalled stream ends
  (PyAV's interrupt callback) instead of blocking forever.
  """
  try:
    container = av.open(path, mode="r", format=av_format, options=dict(options or {}),
                        timeout=timeout)
  except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
    raise VideoDecodeError(path, f"cannot open the stream ({e})") from e
  if not container.streams.video:
    container.close()
    raise VideoDecodeError(path, "stream has no video")
  return container, container.streams.video[0]


# `last_error` of a URL or device read that `timeout` cut: PyAV's interrupt callback
# makes FFmpeg return AVERROR_EXIT ("Immediate exit requested"), which says nothing
# of why to a user.
READ_TIMEOUT = "read timeout (no data within the reader's timeout)"


def _iter_frames(container, stream):
  """Yields decoded `av.VideoFrame`s, skipping corrupt or undecodable packets.

  A damaged packet (e.g. the last one of a truncated file) must not discard the
  frames decoded before it, so errors are collected, not raised. Returns (via
  StopIteration.value) the last decode error message, or None.
  """
  last_error = None
  try:
    packets = container.demux(stream)
    while True:
      try:
        packet = next(packets)
      except StopIteration:
        break
      except av.ExitError:  # the interrupt callback of `timeout`: no data came
        last_error = READ_TIMEOUT
        break
      except av.FFmpegError as e:  # demuxer gives up: the stream ends here
        last_error = str(e)
        break
      if packet.is_corrupt:
        # The demuxer flags a packet cut short by truncation; decoding it gives
        # a half-grey concealed frame, which is worse than no frame.
        last_error = f"corrupt packet at pts {packet.pts}"
        continue
      try:
        for frame in packet.decode():
          if frame.is_corrupt:
            last_error = f"corrupt frame at pts {frame.pts}"
            continue
          yield frame
      except av.FFmpegError as e:
        last_error = str(e)
  except av.FFmpegError as e:
    last_error = str(e)
  return last_error


def _quarter_turns(frame) -> int:
  """Counterclockwise quarter turns that show `frame` as a player does (0..3).

  FFmpeg exports the container's display matrix (the mp4 `tkhd` matrix) as
  frame side data; PyAV's `frame.rotation` is its angle in degrees
  counterclockwise (`av_display_rotation_get`). An upright phone video stored
  landscape has the matrix a=0, b=1, c=-1, d=0, which maps the stored pixel
  (x, y) to (-y, x): the top-left corner goes to the top-right, a clockwise
  quarter turn, and PyAV reads -90; ffmpeg's autorotate then inserts
  `transpose=clock`. `np.rot90(image, k)` turns an image (rows downwards)
  counterclockwise by k quarter turns, so k = rotation / 90. Phones write only
  multiples of 90 degrees; another angle is rounded to the nearest one.
  A mirroring matrix is not undone (PyAV reports only its rotation part).
  """
  return int(round(frame.rotation / 90.0)) % 4


def display_size(frame) -> Tuple[int, int]:
  """(height, width) of a PyAV frame as a player shows it (rotation applied)."""
  height, width = int(frame.height), int(frame.width)
  return (width, height) if _quarter_turns(frame) % 2 else (height, width)


def display_rgb(frame) -> np.ndarray:
  """A PyAV frame as uint8 RGB `[H, W, 3]`, turned as a player shows it.

  The one conversion from decoded frame to array: every reader of this module
  goes through it, so the rotation reaches every tool.
  """
  rgb = frame.to_ndarray(format="rgb24")
  turns = _quarter_turns(frame)
  # rot90 is a strided view; callers (PIL, JPEG encoders) want C order.
  return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class VideoReader:
  """Streams one video's frames in order, one at a time.

  Memory holds the decoder's few frames and the one being handed out, whatever
  the video's length or resolution:

    with VideoReader("x.avi") as reader:
      print(reader.fps, reader.header_frames)
      for frame in reader.frames(transform=half, step=2):  # uint8 [h, w, 3]
        ...
      print(reader.num_decoded)  # every frame decoded, kept or not

  Frames are turned as the container's display matrix says (`display_rgb`).

  A URL (`is_stream_url`: http(s), rtsp, ...) or a device opened with
  `av_format` (e.g. `VideoReader("/dev/video0", av_format="v4l2")`) streams the
  same way; `timeout` (seconds) bounds its opening and each read.

  A reader is read once. Opening raises `VideoDecodeError` for a missing,
  empty or non-video file; reading raises it when the stream yields no frame
  or its frame size changes. Frames before a damaged packet are kept (a file
  truncated mid-stream yields the frames before the cut).

  Attributes:
    path: the file, as a str.
    fps: the container's frame rate (average, guessed, then base rate), 0.0
      when it gives none.
    header_frames: the frame count the container header lists, 0 when it has
      none (MKV, WebM). A truncated file can list more than it decodes.
    header_size: (height, width) the stream header lists, as stored (the
      display rotation not applied); (0, 0) when it lists none.
    num_decoded: frames decoded so far.
    last_error: the last decode error met so far (skipped packet), or None.
  """

  def __init__(self, path: Union[str, os.PathLike], av_format: Optional[str] = None,
               options: Optional[Dict[str, str]] = None, timeout: Optional[float] = None):
    self.path = os.fspath(path)
    if av_format or is_stream_url(self.path):  # a URL or a device: no file to check
      self._container, self._stream = _open_stream(self.path, av_format, options, timeout)
    else:
      self._container, self._stream = _open(self.path)
    rate = (self._stream.average_rate or self._stream.guessed_rate
            or self._stream.base_rate)
    self.fps = float(rate) if rate else 0.0
    self.header_frames = int(self._stream.frames or 0)
    context = self._stream.codec_context
    self.header_size = (int(context.height or 0), int(context.width or 0))
    self.num_decoded = 0
    self.last_error: Optional[str] = None
    self._started = False

  def __enter__(self) -> "VideoReader":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    self._container.close()

  def no_frames_error(self) -> VideoDecodeError:
    reason = "no decodable frames"
    if self.last_error:
      reason += f" (last error: {self.last_error})"
    return VideoDecodeError(self.path, reason)

  def decoded(self) -> Iterator["av.VideoFrame"]:
    """Yields the PyAV frames in order (not converted to RGB: cheap to skip).

    They are as stored, not yet turned: convert them with `display_rgb` and
    size them with `display_size`.

    Raises:
      VideoDecodeError: the frame size changes, or (once the stream ends) no
        frame decoded.
      RuntimeError: the reader was already read.
    """
    if self._started:
      raise RuntimeError(f"{self.path}: a VideoReader is read once")
    self._started = True
    frames = _iter_frames(self._container, self._stream)
    shape = None
    while True:
      try:
        frame = next(frames)
      except StopIteration as stop:
        self.last_error = stop.value
        break
      size = display_size(frame) + (3,)
      if shape is None:
        shape = size
      elif size != shape:
        raise VideoDecodeError(self.path, "frame size changes within the stream: "
                               f"{sorted({shape, size})}")
      self.num_decoded += 1
      yield frame
    if not self.num_decoded:
      raise self.no_frames_error()

  def frames(self, transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
             step: int = 1) -> Iterator[np.ndarray]:
    """Yields frames 0, step, 2 * step, ... as uint8 RGB `[H, W, 3]`.

    Every frame is decoded (compressed frames depend on earlier ones); only
    the yielded ones are converted to RGB.

    Args:
      transform: `uint8 [H, W, 3] -> uint8 [h, w, 3]`, applied to each yielded
        frame as it is decoded (e.g. `resize_frame`).
      step: yield one frame in `step` (>= 1).

    Raises:
      VideoDecodeError: as `decoded`.
    """
    if step < 1:
      raise ValueError(f"step must be >= 1, got {step}")
    for index, frame in enumerate(self.decoded()):
      if index % step == 0:
        rgb = display_rgb(frame)
        yield rgb if transform is None else transform(rgb)


def iter_frames(path: Union[str, os.PathLike],
                transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                step: int = 1) -> Iterator[np.ndarray]:
  """`VideoReader(path).frames(transform, step)`, closing the file when done.

  A generator: the file is opened at the first `next` (a `VideoDecodeError`
  for an unreadable file is raised there), and closed when the generator ends
  or is closed / dropped.
  """
  with VideoReader(path) as reader:
    yield from reader.frames(transform, step)


def read_video(path: Union[str, os.PathLike], max_frames: Optional[int] = None) -> np.ndarray:
  """Decodes a video file into RGB frames, all in memory.

  For clips, `read_frames`; for a whole long video, `iter_frames`, which hold
  only what is needed.

  Args:
    path: video file (any container/codec FFmpeg reads; HMDB51 uses AVI/XviD).
    max_frames: if given (> 0), stop after this many frames.

  Returns:
    uint8 array `[T, H, W, 3]`, RGB, `T >= 1` (`T <= max_frames`).

  Raises:
    VideoDecodeError: the file is missing, empty, not a video, or yields no
      frame. A file truncated mid-stream returns the frames decoded before the cut.
    ValueError: `max_frames` is not positive.
  """
  path = os.fspath(path)
  if max_frames is not None and max_frames <= 0:
    raise ValueError(f"max_frames must be positive, got {max_frames}")
  with VideoReader(path) as reader:
    return np.stack(list(itertools.islice(reader.frames(), max_frames)))


def probe_video(path: Union[str, os.PathLike]) -> VideoInfo:
  """Reads a video's frame rate, frame count and size without decoding it all.

  Uses the container metadata and decodes only the first frame (to prove the
  file is decodable and to get the true frame size, as displayed: a video
  with a 90 degree display matrix reports its frames' turned size). When the header has no
  frame count (MKV, WebM), the packets are counted (`count_frames`: demuxing,
  no decoding).

  Args:
    path: video file.

  Returns:
    `VideoInfo(fps, num_frames, height, width)`.

  Raises:
    VideoDecodeError: as `read_video`, or the container gives no frame rate.
  """
  path = os.fspath(path)
  with VideoReader(path) as reader:
    first = next(reader.decoded())  # raises VideoDecodeError when there is none
    if not reader.fps:
      raise VideoDecodeError(path, "container gives no frame rate")
    num_frames = reader.header_frames or max(1, count_frames(path))
    height, width = display_size(first)
    return VideoInfo(fps=reader.fps, num_frames=num_frames, height=height, width=width)


def count_frames(path: Union[str, os.PathLike]) -> int:
  """Frames `read_video` would return, counted by demuxing only (no decoding).

  Counts the packets `read_video` decodes (corrupt packets, which it drops, are
  not counted). Exact for ordinary streams (one frame per packet); a decoder
  that drops frames makes it an estimate, which `read_frames` checks. Reads the
  whole file but decodes nothing, a small fraction of decoding's time.

  Args:
    path: video file.

  Returns:
    int >= 0 (0: the stream holds no intact packet).

  Raises:
    VideoDecodeError: the file is missing, empty or not a video container.
  """
  path = os.fspath(path)
  container, stream = _open(path)
  count = 0
  try:
    for packet in container.demux(stream):
      if packet.size and not packet.is_corrupt:
        count += 1
  except av.FFmpegError:
    pass  # the demuxer gives up where read_video's decoding stops too
  finally:
    container.close()
  return count


class FrameCountError(ValueError):
  """Raised by a frame selector: a video of this many frames is too short for it.

  `read_selection` first asks a selector with the demuxed frame count
  (`count_frames`); on this error, and only this one, it decodes the video to
  know the exact count and asks again (a decoder may produce more frames than
  intact packets). Any other exception from a selector propagates at once.
  """


@dataclasses.dataclass(frozen=True)
class Selection:
  """Frames read by `read_selection`.

  Attributes:
    frames: uint8 `indices.shape + [h, w, 3]`, transformed.
    indices: int64, the frame indices read (the selector's last answer).
    num_frames: the video's decodable frame count when it was decoded to the
      end (a selector function was given); None for fixed indices, where
      decoding stops after the last index needed.
  """
  frames: np.ndarray
  indices: np.ndarray
  num_frames: Optional[int]


def _as_indices(path: str, chosen) -> np.ndarray:
  idx = np.asarray(chosen, dtype=np.int64)
  if not idx.size:
    raise ValueError(f"{path}: no frame indices to read")
  if (idx < 0).any():
    raise ValueError(f"{path}: frame index {int(idx[idx < 0][0])} is negative")
  return idx


def _decode_selected(path: str, wanted: Set[int],
                     transform: Optional[Callable[[np.ndarray], np.ndarray]],
                     stop_after: Optional[int]) -> Tuple[Dict[int, np.ndarray], int]:
  """Decodes `path` in order, converting only the `wanted` indices to RGB.

  Returns:
    ({index: transformed uint8 frame}, frames decoded). Decoding stops after
    frame `stop_after` when given, else at the end of the stream.
  """
  kept = {}
  with VideoReader(path) as reader:
    for index, frame in enumerate(reader.decoded()):
      if index in wanted:
        rgb = display_rgb(frame)
        kept[index] = rgb if transform is None else transform(rgb)
      if stop_after is not None and index >= stop_after:
        break
    return kept, reader.num_decoded


Selector = Callable[[int], Union[Sequence[int], np.ndarray]]


def read_selection(path: Union[str, os.PathLike],
                   indices: Union[Sequence[int], np.ndarray, Selector],
                   transform: Optional[Callable[[np.ndarray], np.ndarray]] = None
                   ) -> Selection:
  """Decodes only the frames a clip needs, transforming each as it arrives.

  Equal to `transform` applied to each frame of `read_video(path)[indices]`,
  but memory holds the decoder's few frames and the selected, transformed ones,
  never the whole video: peak memory depends on the clip, not on the video's
  length or resolution. Frames are decoded in order (compressed frames depend
  on earlier ones); only the selected ones are converted to RGB.

  With fixed `indices`, one decoding pass that stops after the last index
  needed. With a selector `num_frames -> indices` (e.g.
  `ClipSpec.video_indices`), the frame count must be known before decoding:
  it comes from `count_frames` (demuxing only, no decoding),
  then one decoding pass keeps the selected frames and counts the decoded
  ones. Where the two counts differ (a damaged file, a decoder dropping
  frames), the selector is asked again with the decoded count, and only the
  frames it then needs that were not kept are decoded in a second pass, so
  the result is always `read_video`'s.

  Args:
    path: video file.
    indices: int array of frame indices >= 0 (any shape, repeats allowed), or
      a selector `num_frames -> int array`. A selector may be called twice
      (demuxed, then decoded count; the last answer is read); its exceptions
      propagate, except `FrameCountError` on the demuxed count, which is
      checked against the decoded count first.
    transform: `uint8 [H, W, 3] -> uint8 [h, w, 3]`, applied once per distinct
      selected frame, right after decoding (e.g. a resize).

  Returns:
    `Selection(frames, indices, num_frames)`; frames are uint8
    `indices.shape + [h, w, 3]`.

  Raises:
    VideoDecodeError: as `read_video`.
    ValueError: no index, a negative one, or one past the video's decodable
      frames.
  """
  path = os.fspath(path)
  select = indices if callable(indices) else None
  if select is None:
    idx = _as_indices(path, indices)
    kept, decoded = _decode_selected(path, set(idx.ravel().tolist()), transform,
                                     stop_after=int(idx.max()))
    num_frames = None
  else:
    estimate = count_frames(path)
    idx = None
    if estimate:
      try:
        idx = _as_indices(path, select(estimate))
      except FrameCountError:
        idx = None  # the demuxed count may be low: decode to know
    wanted = set() if idx is None else set(idx.ravel().tolist())
    kept, decoded = _decode_selected(path, wanted, transform, stop_after=None)
    num_frames = decoded
    if idx is None or decoded != estimate:
      idx = _as_indices(path, select(decoded))
      missing = {i for i in idx.ravel().tolist() if i < decoded} - kept.keys()
      if missing:
        more, _ = _decode_selected(path, missing, transform, stop_after=max(missing))
        kept.update(more)
  bad = idx[idx >= decoded]
  if bad.size:
    raise ValueError(f"{path}: frame index {int(bad[0])} is outside the video's "
                     f"{decoded} decodable frames")
  unique, inverse = np.unique(idx, return_inverse=True)
  frames = np.stack([kept[int(i)] for i in unique])[inverse.reshape(idx.shape)]
  return Selection(frames=frames, indices=idx, num_frames=num_frames)


def read_frames(path: Union[str, os.PathLike],
                indices: Union[Sequence[int], np.ndarray, Selector],
                transform: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
  """`read_selection(path, indices, transform).frames`: uint8 `indices.shape + [h, w, 3]`."""
  return read_selection(path, indices, transform).frames


def short_side_size(height: int, width: int, short_side: int):
  """(height, width) after scaling the short side to `short_side` (0: unchanged)."""
  if short_side <= 0 or min(height, width) == short_side:
    return height, width
  scale = short_side / min(height, width)
  if height <= width:
    return short_side, max(1, int(round(width * scale)))
  return max(1, int(round(height * scale))), short_side


def resize_frame(frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
  """Resizes one frame with PIL's bilinear filter (antialiased when shrinking).

  The one frame resize of the project's converters and tools (the TFRecords'
  stored frames, extract_flow's `new_short`, the footage set, visualize_flow).

  Args:
    frame: uint8 `[H, W, C]`.
    size: `(height, width)` wanted.

  Returns:
    uint8 `[height, width, C]`; `frame` itself when it already has that size.
  """
  height, width = int(size[0]), int(size[1])
  if frame.shape[:2] == (height, width):
    return frame
  return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg",
                    ".flv", ".wmv", ".3gp")


def is_video_file_name(name: str) -> bool:
  """A video file's name: an extension in `VIDEO_EXTENSIONS` (any case), not hidden.

  Hidden names (a leading dot, e.g. a tool's temporary output) are skipped, by
  `find_video_files` here and for URIs by `remote.find_videos`.
  """
  return name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith(".")


def find_video_files(video_dir: Union[str, os.PathLike]) -> List[str]:
  """Paths of the video files under `video_dir`, recursively, sorted.

  A video file has an extension in `VIDEO_EXTENSIONS` (any case); hidden files
  and folders (a leading dot, e.g. a tool's temporary output) are skipped.
  An empty list when `video_dir` is not a directory: callers name the flag.
  """
  found = []
  for root, dirs, files in os.walk(os.fspath(video_dir)):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    found += [os.path.join(root, f) for f in files if is_video_file_name(f)]
  return sorted(found)


def write_video(path: Union[str, os.PathLike], frames: Union[np.ndarray, Iterable[np.ndarray]],
                fps: Union[float, fractions.Fraction], codec: str = "mpeg4",
                quality: int = 4) -> None:
  """Encodes RGB frames into an AVI file, atomically.

  The default codec, `mpeg4` (MPEG-4 Part 2, FourCC FMP4), is the family of
  HMDB51's DivX/XviD files, decodable by FFmpeg, OpenCV and browsers' players.
  Encoding is single-threaded so the same frames give the same bytes.

  Args:
    path: output `.avi` file; written to a temporary name, renamed when complete.
    frames: uint8 `[T, H, W, 3]` RGB, `T >= 1`, H and W even (4:2:0 chroma);
      or an iterator of uint8 `[H, W, 3]` frames, encoded as they come (a
      video too long to hold in memory).
    fps: frame rate, e.g. 25, 30 or 30000/1001.
    codec: FFmpeg encoder name.
    quality: fixed quantiser for `mpeg4` (1 best .. 31 worst); 4 keeps the
      fine texture that motion estimation relies on.

  Raises:
    ValueError: bad frames (dtype, shape, odd size), fps or codec.
  """
  path = os.fspath(path)
  rest = None
  if isinstance(frames, (np.ndarray, list, tuple)):
    frames = np.asarray(frames)
  else:  # an iterator: check its first frame like an array, the others as they come
    rest = iter(frames)
    first = next(rest, None)
    frames = np.zeros((0, 2, 2, 3), np.uint8) if first is None else np.asarray(first)[None]
  if frames.dtype != np.uint8:
    raise ValueError(f"write_video({path!r}): frames must be uint8, got {frames.dtype}")
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
    raise ValueError(
        f"write_video({path!r}): frames must be [T>=1, H, W, 3], got shape {frames.shape}")
  _, height, width, _ = frames.shape
  if height % 2 or width % 2:
    raise ValueError(
        f"write_video({path!r}): height and width must be even for 4:2:0 video, "
        f"got {height}x{width}")
  rate = fractions.Fraction(fps).limit_denominator(_MAX_RATE_DENOMINATOR)
  if rate <= 0:
    raise ValueError(f"write_video({path!r}): fps must be positive, got {fps}")
  if codec not in av.codecs_available:
    raise ValueError(f"write_video({path!r}): unknown codec {codec!r}")
  with io_utils.atomic_write(path) as tmp:
    with av.open(tmp, mode="w", format="avi") as container:
      stream = container.add_stream(codec, rate=rate)
      stream.width = width
      stream.height = height
      stream.pix_fmt = "yuv420p"
      stream.thread_count = 1
      if codec == "mpeg4":
        stream.codec_context.qscale = quality
      for rgb in frames if rest is None else itertools.chain(frames, rest):
        if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
          raise ValueError(f"write_video({path!r}): frame of {rgb.dtype} {rgb.shape} in a "
                           f"uint8 {height}x{width} video")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        container.mux(stream.encode(frame))
      container.mux(stream.encode(None))
