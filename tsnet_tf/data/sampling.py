"""Temporal sampling: the one place that decides which frame indices a clip uses.

A clip is `num_frames` frames taken `stride` apart, starting at `start`:
`start, start + stride, ..., start + (num_frames - 1) * stride`, each taken
modulo the number of available frames, so a video shorter than the clip's span
is looped (0, 1, .., n-1, 0, 1, ..).

Frames are consecutive (stride 1 by default) because the teacher computes TV-L1
flow between adjacent frames of the clip (paper, section 3); random, sorted but
non-adjacent frames would make that flow meaningless.

- Training (`train_indices`): one clip at a uniformly random start in
  `[0, n - span]` (start 0 and looping when `n < span`).
- Evaluation (`eval_indices`): `num_clips` clips whose starts are the centres of
  `num_clips` equal parts of `[0, n - span]`, so one clip is the centre clip and
  K clips cover the video uniformly.

TF versions run inside the tf.data graph (and in a SavedModel); numpy twins
(`*_np`) serve tools that hold a decoded video array (`sample_eval_clips`).
Both compute the same integers; tests check they agree.
"""

from __future__ import annotations

from typing import Union

import numpy as np

try:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
except ImportError:  # the numpy twins also serve TF-free input (numpy_input.py)
  tf = None

IntLike = Union[int, "tf.Tensor"]


def _check_static(num_frames: int, stride: int, num_clips: int = 1) -> None:
  if int(num_frames) < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  if int(stride) < 1:
    raise ValueError(f"stride must be >= 1, got {stride}")
  if int(num_clips) < 1:
    raise ValueError(f"num_clips must be >= 1, got {num_clips}")


def _clip_from_start(start: tf.Tensor, n: tf.Tensor, num_frames: int, stride: int) -> tf.Tensor:
  """int32 [..., T] indices `(start + t * stride) mod n` for `start` of shape [...]."""
  offsets = tf.range(num_frames, dtype=tf.int32) * stride
  return tf.math.floormod(tf.expand_dims(start, -1) + offsets, n)


def train_indices(num_available: IntLike, num_frames: int, seed: tf.Tensor,
                  stride: int = 1) -> tf.Tensor:
  """Frame indices of one training clip at a random start.

  Args:
    num_available: number of frames in the video (int or int scalar tensor, >= 1).
    num_frames: clip length T (Python int).
    seed: int32/int64 tensor of shape [2], a stateless-random seed; the same seed
      gives the same clip.
    stride: frame step inside the clip.

  Returns:
    int32 tensor [T], values in [0, num_available).
  """
  _check_static(num_frames, stride)
  n = tf.maximum(tf.cast(num_available, tf.int32), 1)
  span = (num_frames - 1) * stride + 1
  max_start = tf.maximum(n - span, 0)
  # maxval is exclusive; stateless_uniform needs maxval > minval.
  start = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=max_start + 1,
                                      dtype=tf.int32)
  return _clip_from_start(start, n, num_frames, stride)


def eval_starts_np(num_available: int, num_frames: int, num_clips: int, stride: int = 1) -> np.ndarray:
  """int64 [K] starts of the evaluation clips (see module doc)."""
  _check_static(num_frames, stride, num_clips)
  n = max(int(num_available), 1)
  span = (num_frames - 1) * stride + 1
  free = max(n - span, 0)
  k = np.arange(num_clips, dtype=np.int64)
  return (free * (2 * k + 1)) // (2 * num_clips)


def eval_indices(num_available: IntLike, num_frames: int, num_clips: int = 1,
                 stride: int = 1) -> tf.Tensor:
  """Frame indices of `num_clips` evaluation clips spread uniformly over the video.

  Args:
    num_available: number of frames in the video (int or int scalar tensor, >= 1).
    num_frames: clip length T.
    num_clips: K, clips per video.
    stride: frame step inside a clip.

  Returns:
    int32 tensor [K, T], values in [0, num_available). Deterministic.
  """
  _check_static(num_frames, stride, num_clips)
  n = tf.maximum(tf.cast(num_available, tf.int32), 1)
  span = (num_frames - 1) * stride + 1
  free = tf.maximum(n - span, 0)
  k = tf.range(num_clips, dtype=tf.int32)
  # Same integer formula as eval_starts_np; int64 keeps free * (2K) exact.
  starts = (tf.cast(free, tf.int64) * tf.cast(2 * k + 1, tf.int64)) // (2 * num_clips)
  return _clip_from_start(tf.cast(starts, tf.int32), n, num_frames, stride)


def eval_indices_np(num_available: int, num_frames: int, num_clips: int = 1,
                    stride: int = 1) -> np.ndarray:
  """Numpy twin of `eval_indices`: int64 [K, T]."""
  n = max(int(num_available), 1)
  starts = eval_starts_np(n, num_frames, num_clips, stride)
  offsets = np.arange(num_frames, dtype=np.int64) * stride
  return (starts[:, None] + offsets[None, :]) % n


def train_indices_np(num_available: int, num_frames: int, rng: np.random.Generator,
                     stride: int = 1) -> np.ndarray:
  """Numpy twin of `train_indices` (same distribution, numpy randomness): int64 [T]."""
  _check_static(num_frames, stride)
  n = max(int(num_available), 1)
  span = (num_frames - 1) * stride + 1
  start = int(rng.integers(0, max(n - span, 0) + 1))
  return (start + np.arange(num_frames, dtype=np.int64) * stride) % n


def sample_eval_clips(frames: np.ndarray, num_frames: int, num_clips: int = 1,
                      stride: int = 1) -> np.ndarray:
  """The evaluation clips of a decoded video, for tools that hold frames in memory.

  Args:
    frames: array [N, H, W, C] (any dtype), N >= 1, e.g. from `video.read_video`.
    num_frames: clip length T.
    num_clips: K.
    stride: frame step inside a clip.

  Returns:
    array [K, T, H, W, C] of the same dtype (videos shorter than T are looped).
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[0] < 1:
    raise ValueError(f"frames must be [N>=1, H, W, C], got shape {frames.shape}")
  return frames[eval_indices_np(frames.shape[0], num_frames, num_clips, stride)]
