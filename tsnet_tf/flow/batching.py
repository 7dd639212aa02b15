"""TV-L1 over a video's frame pairs, a fixed-shape batch of pairs per call.

`video_flow` streams consecutive pairs (t, t+1) from an iterator of frames;
`flow_pairs` takes the pairs (i, i + stride) of an indexable sequence. Each
`tvl1` call of a frame size has one shape (the last batch is padded), so it
compiles once, and large frames get fewer pairs per call (`pairs_per_call`).
"""

from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence

import numpy as np

from tsnet_tf.flow.tvl1 import tvl1

# Pixels of the frame pairs in one `tvl1` call (Options.max_batch_pixels):
# 2^23 ~ 4 full-HD pairs. One call holds a few hundred bytes per pixel of its
# batch: at 1920x1080 on CPU a fresh process peaked at 2.33 GB (fast) and
# 3.82 GB (accurate) for 4 pairs, 6.25 and 11.57 GB for 16
# (`benchmarks/bench_video_memory.py --parts=tvl1`, docs/flow.md). 320x240
# and 455x256 frames keep 16 pairs.
DEFAULT_MAX_BATCH_PIXELS = 1 << 23


def pairs_per_call(batch_size: int, max_batch_pixels: int, height: int,
                   width: int) -> int:
  """Frame pairs per `tvl1` call for `height` x `width` frames.

  `min(batch_size, max_batch_pixels // (height * width))`, at least 1;
  `batch_size` when `max_batch_pixels` is 0 (no limit).
  """
  if max_batch_pixels <= 0:
    return batch_size
  return max(1, min(batch_size, max_batch_pixels // max(1, height * width)))


def video_flow(frames: Iterable[np.ndarray], preset: str = "accurate",
               batch_size: int = 16, max_batch_pixels: int = 0,
               **overrides) -> Iterator[np.ndarray]:
  """TV-L1 flow between consecutive frames, streamed one batch at a time.

  `frames` is consumed lazily: a batch's flow is computed (and yielded) as
  soon as its frames have arrived, and at most one batch of frames plus one
  is held, whatever the video's length.

  Args:
    frames: uint8 or float frames `[H, W, C]`, values in [0, 255]: an
      iterator (e.g. `video.iter_frames`) or an array `[T, H, W, C]`.
    preset: `tvl1` preset.
    batch_size: pairs per call; the last batch is padded with copies of its
      last pair (and the padding dropped) so every call has one shape.
    max_batch_pixels: caps the pairs per call for large frames
      (`pairs_per_call`); 0 = `batch_size` pairs whatever the size.
    **overrides: `tvl1` parameters.

  Yields:
    float32 `[n, H, W, 2]` flows of pairs (t, t+1), in order, T-1 in all
    (none when T < 2).
  """
  frames = iter(frames)
  window = [next(frames, None)]
  if window[0] is None:
    return
  height, width = np.shape(window[0])[:2]
  batch = pairs_per_call(batch_size, max_batch_pixels, height, width)
  for frame in frames:
    window.append(frame)
    if len(window) == batch + 1:
      yield _batch_flow(window, batch, preset, overrides)
      window = window[-1:]  # the last frame is the next batch's first
  if len(window) > 1:
    yield _batch_flow(window, batch, preset, overrides)


def _batch_flow(window: List[np.ndarray], batch: int, preset: str,
                overrides) -> np.ndarray:
  """Flow of the n = len(window) - 1 consecutive pairs, padded to `batch`."""
  num_pairs = len(window) - 1
  index = np.minimum(np.arange(batch), num_pairs - 1)
  stacked = np.asarray(window, np.float32)
  flow = np.asarray(tvl1(stacked[index], stacked[index + 1], preset, **overrides))
  return flow[:num_pairs]


def flow_pairs(frames: Sequence[np.ndarray], stride: int, preset: str,
               batch_size: int = 16,
               max_batch_pixels: Optional[int] = None,
               overrides: Optional[Mapping[str, Any]] = None):
  """TV-L1 flow from frame i to frame i + stride, for every i < N - stride.

  Args:
    frames: N frames `[H, W, C]`, values in [0, 255]: an array `[N, H, W, C]`
      or any sequence with `len` and indexing (e.g. `StoredFrames`, which
      decodes on access). Only the frames of one call are held as float32,
      so memory does not grow with the video's length.
    stride: frames between the two frames of a pair, >= 1.
    preset: `tvl1` preset.
    batch_size: pairs per `tvl1` call (the last call is padded, so every call
      of a frame size has one shape and compiles once).
    max_batch_pixels: fewer pairs per call for large frames
      (`pairs_per_call`); None = `DEFAULT_MAX_BATCH_PIXELS`.
    overrides: extra `tvl1` parameters.

  Yields:
    float32 `[n, H, W, 2]` flows in px, in order, max(N - stride, 0) in all.
  """
  num = len(frames) - int(stride)
  if num <= 0:
    return
  if max_batch_pixels is None:
    max_batch_pixels = DEFAULT_MAX_BATCH_PIXELS
  height, width = np.shape(frames[0])[:2]
  batch = pairs_per_call(batch_size, max_batch_pixels, height, width)
  stack = lambda index: np.stack([np.asarray(frames[int(i)], np.float32) for i in index])
  for begin in range(0, num, batch):
    first = np.minimum(np.arange(begin, begin + batch), num - 1)
    flow = np.asarray(tvl1(stack(first), stack(first + stride), preset,
                           **dict(overrides or {})))
    yield flow[:min(batch, num - begin)]
