"""Video file I/O: the one module that opens, decodes and encodes video files (PyAV).

Everything else in the project sees videos as uint8 RGB arrays `[T, H, W, 3]`.

  frames = read_video("clap/x.avi")           # uint8 [T, H, W, 3], RGB
  info = probe_video("clap/x.avi")            # VideoInfo(fps, num_frames, height, width)
  clip = read_frames("clap/x.avi", [3, 4, 5])  # uint8 [3, H, W, 3]: only what is needed
  write_video("y.avi", frames, fps=30)        # AVI, MPEG-4 Part 2 (DivX/XviD-like)

Unreadable files (missing, empty, garbage, truncated before the first frame,
zero frames) raise `VideoDecodeError`, a `ValueError` that names the file. A
file truncated mid-stream still yields the frames before the cut.
"""

import dataclasses
import fractions
import itertools
import os
from typing import Callable, Iterable, Optional, Sequence, Set, Tuple, Union

import av
import numpy as np

from tsnet_tf.utils import io as io_utils

# Largest time-base denominator MPEG-4 Part 2 accepts (16-bit field), so
# 29.97 = 30000/1001 fits but arbitrary floats are rounded to a nearby fraction.
_MAX_RATE_DENOMINATOR = 1001


class VideoDecodeError(ValueError):
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
    num_frames: frame count from the container header, or from decoding when
      the header has none. For a file truncated after writing its header this is
      the header's count, which can exceed what `read_video` returns.
    height: frame height in pixels.
    width: frame width in pixels.
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


def _walk_frames(path: str, visit: Callable[[int, "av.VideoFrame"], bool]
                 ) -> Tuple[int, Optional[str]]:
  """Decodes `path`'s frames in order, calling `visit(index, frame)` on each.

  Stops when `visit` returns False or the stream ends (or breaks: the frames
  before the break are visited).

  Returns:
    (frames visited, the last decode error or None).
  """
  container, stream = _open(path)
  count, last_error = 0, None
  try:
    gen = _iter_frames(container, stream)
    while True:
      try:
        frame = next(gen)
      except StopIteration as stop:
        last_error = stop.value
        break
      go_on = visit(count, frame)
      count += 1
      if not go_on:
        break
  finally:
    container.close()
  return count, last_error


def read_video(path: Union[str, os.PathLike], max_frames: Optional[int] = None) -> np.ndarray:
  """Decodes a video file into RGB frames.

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
  frames = []

  def keep(_, frame):
    frames.append(frame.to_ndarray(format="rgb24"))
    return max_frames is None or len(frames) < max_frames

  _, last_error = _walk_frames(path, keep)
  if not frames:
    reason = "no decodable frames"
    if last_error:
      reason += f" (last error: {last_error})"
    raise VideoDecodeError(path, reason)
  shapes = {f.shape for f in frames}
  if len(shapes) != 1:
    raise VideoDecodeError(path, f"frame size changes within the stream: {sorted(shapes)}")
  return np.stack(frames)


def probe_video(path: Union[str, os.PathLike]) -> VideoInfo:
  """Reads a video's frame rate, frame count and size without decoding it all.

  Uses the container metadata and decodes only the first frame (to prove the
  file is decodable and to get the true frame size). When the container has no
  frame count, counts frames by decoding.

  Args:
    path: video file.

  Returns:
    `VideoInfo(fps, num_frames, height, width)`.

  Raises:
    VideoDecodeError: as `read_video`.
  """
  path = os.fspath(path)
  container, stream = _open(path)
  try:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    gen = _iter_frames(container, stream)
    first = next(gen, None)
    if first is None:
      raise VideoDecodeError(path, "no decodable frames")
    num_frames = int(stream.frames or 0)
    if num_frames <= 0:
      num_frames = 1 + sum(1 for _ in gen)
    if not rate:
      raise VideoDecodeError(path, "container gives no frame rate")
    return VideoInfo(fps=float(rate), num_frames=num_frames,
                     height=int(first.height), width=int(first.width))
  finally:
    container.close()


def count_frames(path: Union[str, os.PathLike]) -> int:
  """Frames `read_video` would return, counted by demuxing only (no decoding).

  Counts the packets `read_video` decodes (corrupt packets, which it drops, are
  not counted). Exact for ordinary streams (one frame per packet); a decoder
  that drops or adds frames makes it an estimate, which `read_frames` checks.

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


def _decode_selected(path: str, wanted: Set[int],
                     transform: Optional[Callable[[np.ndarray], np.ndarray]]):
  """Decodes every frame of `path`, converting only the `wanted` indices to RGB.

  Returns:
    ({index: transformed uint8 frame}, number of frames decoded, last decode
    error or None, set of decoded frame shapes `(H, W, 3)`).
  """
  kept, shapes = {}, set()

  def select(index, frame):
    shapes.add((int(frame.height), int(frame.width), 3))
    if index in wanted:
      rgb = frame.to_ndarray(format="rgb24")
      kept[index] = rgb if transform is None else transform(rgb)
    return True

  count, last_error = _walk_frames(path, select)
  return kept, count, last_error, shapes


def read_frames(path: Union[str, os.PathLike],
                indices: Union[Sequence[int], np.ndarray, Callable[[int], np.ndarray]],
                transform: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
  """Decodes only the frames a clip needs, transforming each as it arrives.

  Equal to `transform` applied to each frame of `read_video(path)[indices]`,
  but memory holds the decoder's few frames and the selected, transformed ones,
  never the whole video: peak memory depends on the clip, not on the video's
  length or resolution. Every frame is still decoded (compressed frames depend
  on earlier ones, and the count must be exact); only the selected ones are
  converted to RGB.

  The frame count comes from `count_frames` (demuxing, no decoding) and is
  checked against the frames actually decoded; when they differ (a damaged
  file, a decoder that drops frames), `indices` is re-evaluated with the
  decoded count and the file decoded again, so the result is always
  `read_video`'s.

  Args:
    path: video file.
    indices: int array of frame indices (any shape, repeats allowed), or a
      function `num_frames -> int array` choosing them from the video's length
      (e.g. `ClipSpec.video_indices`). It may be called twice (estimated,
      then decoded count); the last call's indices are the ones read. A
      ValueError from it (e.g. video too short) propagates once the count is
      exact.
    transform: `uint8 [H, W, 3] -> uint8 [h, w, 3]`, applied once per distinct
      selected frame, right after decoding (e.g. the clip spec's resize).

  Returns:
    uint8 array `indices.shape + [h, w, 3]`.

  Raises:
    VideoDecodeError: as `read_video`.
    ValueError: no index, or an index outside `[0, frames decoded)`.
  """
  path = os.fspath(path)
  select = indices if callable(indices) else (lambda n: indices)

  def choose(n):
    chosen = np.asarray(select(n), dtype=np.int64)
    if not chosen.size:
      raise ValueError(f"{path}: no frame indices to read")
    return chosen

  num_frames = count_frames(path)
  try:
    idx = choose(num_frames) if num_frames else None
  except ValueError:
    idx = None  # perhaps only the estimated count is wrong: decode to know it
  wanted = set() if idx is None else set(idx.ravel().tolist())
  kept, decoded, last_error, shapes = _decode_selected(path, wanted, transform)
  if decoded and (idx is None or decoded != num_frames):
    idx = choose(decoded)
    if decoded != num_frames:
      kept, decoded, last_error, shapes = _decode_selected(
          path, set(idx.ravel().tolist()), transform)
  if not decoded:
    reason = "no decodable frames"
    if last_error:
      reason += f" (last error: {last_error})"
    raise VideoDecodeError(path, reason)
  if len(shapes) != 1:
    raise VideoDecodeError(path, f"frame size changes within the stream: {sorted(shapes)}")
  bad = idx[(idx < 0) | (idx >= decoded)]
  if bad.size:
    raise ValueError(f"{path}: frame index {int(bad[0])} is outside the video's "
                     f"{decoded} decodable frames")
  unique, inverse = np.unique(idx, return_inverse=True)
  return np.stack([kept[int(i)] for i in unique])[inverse.reshape(idx.shape)]


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
