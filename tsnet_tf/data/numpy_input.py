"""Input without TensorFlow: clips as numpy batches in a `keras.utils.PyDataset`.

For the JAX and PyTorch backends where TensorFlow is not installed (the lent
GPU machine has JAX and no TensorFlow). Where TensorFlow exists, the tf.data
pipeline (`pipeline.make_dataset`, reading the TFRecords) is the source for
every backend; this module gives the same clips from the videos themselves:

- `VideoClips`: HMDB51-layout videos decoded with PyAV, keeping only each
  clip's frames (`video.read_selection`: evaluation clips through the clip
  contract's `ClipSpec.read_clip`, training clips at `sampling`'s random
  start), so memory depends on the clips, not on the videos' length; and the
  geometry of
  `preprocessing` (training: scale-jittered random square window, resize,
  flip; evaluation: centre square of side min(H, W), resize), in numpy. The
  resize is bilinear with half-pixel centres and no antialiasing, like
  `tf.image.resize(..., antialias=False)` (tests check they agree).
- `GeneratedClips`: random textures translating at a per-class velocity, for
  benchmarks and tests that need no files.

Batches are `(clips float32 [B, T, S, S, 3] in [0, 255], labels int32 [B])`,
the contract of the tf.data pipeline. Nothing here imports TensorFlow.
"""

import math
import os
from typing import List, Optional, Sequence, Tuple

import keras
import numpy as np

from tsnet_tf.data import clip_spec
from tsnet_tf.data import hmdb51
from tsnet_tf.data import sampling

DEFAULT_SCALE_RANGE = (0.8, 1.0)  # as preprocessing.DEFAULT_SCALE_RANGE


def _axis_taps(in_size: int, out_size: int):
  """Source rows (low, high) and weights of a half-pixel bilinear resize axis."""
  src = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
  low = np.floor(src)
  frac = (src - low).astype(np.float32)
  high = np.clip(low + 1, 0, in_size - 1).astype(np.int64)
  low = np.clip(low, 0, in_size - 1).astype(np.int64)
  return low, high, frac


def resize_bilinear(frames: np.ndarray, size: int) -> np.ndarray:
  """Resizes `[..., h, w, C]` frames to `[..., size, size, C]` float32.

  Half-pixel centres, no antialiasing: `tf.image.resize(method="bilinear",
  antialias=False)`. A frame already `size` x `size` is only cast.
  """
  frames = np.asarray(frames)
  h, w = frames.shape[-3], frames.shape[-2]
  if h == size and w == size:
    return frames.astype(np.float32)
  y0, y1, fy = _axis_taps(h, size)
  x0, x1, fx = _axis_taps(w, size)
  frames = frames.astype(np.float32)
  rows = (frames[..., y0, :, :] * (1.0 - fy)[:, None, None]
          + frames[..., y1, :, :] * fy[:, None, None])
  return rows[..., x0, :] * (1.0 - fx)[:, None] + rows[..., x1, :] * fx[:, None]


def centre_window(height: int, width: int) -> Tuple[int, int, int, int]:
  """`(y, x, side, side)`: the centred square of side min(height, width)."""
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side, side


def random_window(height: int, width: int, rng: np.random.Generator,
                  scale_range: Sequence[float] = DEFAULT_SCALE_RANGE
                  ) -> Tuple[int, int, int, int]:
  """A random square window (the distribution of `preprocessing.random_crop_window`)."""
  lo, hi = float(scale_range[0]), float(scale_range[1])
  if not 0.0 < lo <= hi <= 1.0:
    raise ValueError(f"scale_range must satisfy 0 < min <= max <= 1, got {scale_range!r}")
  short = min(height, width)
  scale = lo if lo == hi else rng.uniform(lo, hi)
  side = int(np.clip(round(scale * short), 1, short))
  y = int(rng.integers(0, height - side + 1))
  x = int(rng.integers(0, width - side + 1))
  return y, x, side, side


def crop_and_resize(frames: np.ndarray, window: Sequence[int], size: int) -> np.ndarray:
  """float32 `[T, size, size, C]` from the `(y, x, h, w)` window of `[T, H, W, C]`."""
  y, x, h, w = window
  return resize_bilinear(frames[:, y:y + h, x:x + w], size)


def train_clip(frames: np.ndarray, num_frames: int, crop_size: int,
               rng: np.random.Generator, frame_stride: int = 1,
               scale_range: Sequence[float] = DEFAULT_SCALE_RANGE,
               flip: bool = True) -> np.ndarray:
  """One training clip of a decoded video `[N, H, W, 3]`: float32 `[T, S, S, 3]`."""
  idx = sampling.train_indices_np(frames.shape[0], num_frames, rng, stride=frame_stride)
  return _augment(frames[idx], crop_size, rng, scale_range, flip)


def _augment(clip: np.ndarray, crop_size: int, rng: np.random.Generator,
             scale_range: Sequence[float], flip: bool) -> np.ndarray:
  """`train_clip`'s geometry on the clip's frames `[T, H, W, 3]` (rng after sampling)."""
  window = random_window(clip.shape[1], clip.shape[2], rng, scale_range)
  y, x, h, w = window
  clip = clip[:, y:y + h, x:x + w]
  if flip and rng.uniform() < 0.5:
    clip = clip[:, :, ::-1]
  return resize_bilinear(clip, crop_size)


def eval_clips(frames: np.ndarray, num_frames: int, crop_size: int, num_clips: int = 1,
               frame_stride: int = 1) -> np.ndarray:
  """The evaluation clips of a decoded video: float32 `[K, T, S, S, 3]`."""
  return _crop_clips(sampling.sample_eval_clips(frames, num_frames, num_clips,
                                                stride=frame_stride), crop_size)


def _crop_clips(clips: np.ndarray, crop_size: int) -> np.ndarray:
  """Centre square of each clip `[K, T, H, W, 3]`, resized: float32 `[K, T, S, S, 3]`."""
  window = centre_window(clips.shape[2], clips.shape[3])
  return np.stack([crop_and_resize(c, window, crop_size) for c in clips])


def read_train_clip(path: str, num_frames: int, crop_size: int, rng_seed,
                    frame_stride: int = 1,
                    scale_range: Sequence[float] = DEFAULT_SCALE_RANGE,
                    flip: bool = True) -> np.ndarray:
  """`train_clip(read_video(path), ..., np.random.default_rng(rng_seed), ...)`,
  decoding and keeping only the clip's frames: float32 `[T, S, S, 3]`."""
  # PyAV only where videos are read: generated clips need no `av` (the GPU
  # machine's image has none).
  from tsnet_tf.data import video as video_lib  # pylint: disable=g-import-not-at-top
  # The selector may be asked twice (read_selection), so each call starts
  # from the seed; the rng then continues as train_clip's after its sampling.
  start = lambda n: sampling.train_indices_np(n, num_frames, np.random.default_rng(rng_seed),
                                              stride=frame_stride)
  read = video_lib.read_selection(path, start)
  rng = np.random.default_rng(rng_seed)
  sampling.train_indices_np(read.num_frames, num_frames, rng, stride=frame_stride)
  return _augment(read.frames, crop_size, rng, scale_range, flip)


def read_eval_clips(path: str, num_frames: int, crop_size: int, num_clips: int = 1,
                    frame_stride: int = 1) -> np.ndarray:
  """`eval_clips(read_video(path), ...)` through the clip contract's
  `ClipSpec.read_clip`, keeping only the clips' frames: float32 `[K, T, S, S, 3]`."""
  spec = clip_spec.ClipSpec(num_frames=num_frames, crop_size=crop_size,
                            frame_stride=frame_stride)
  return _crop_clips(spec.read_clip(path, num_clips), crop_size)


def hmdb51_videos(video_dir: str, split_dir: str, split: int = 1, subset: str = "train",
                  class_names: Optional[Sequence[str]] = None
                  ) -> Tuple[List[Tuple[str, int]], List[str]]:
  """`([(path, label), ...], class_names)` of one split's subset, HMDB51 layout.

  Classes are the class folders of `video_dir` in sorted order (the label
  order of the converter) unless `class_names` is given.
  """
  names = list(class_names) if class_names else hmdb51.list_class_dirs(video_dir)
  splits = hmdb51.read_splits(split_dir, names, splits=[split])
  subset_id = hmdb51.SUBSET_IDS[subset]
  videos = []
  for label, name in enumerate(names):
    for entry in splits[split][name]:
      if entry.subset_id == subset_id:
        videos.append((os.path.join(video_dir, name, entry.video), label))
  return videos, names


class VideoClips(keras.utils.PyDataset):
  """Batches of clips decoded from video files (PyAV), without TensorFlow.

  Training: the videos in a new random order each epoch, one random clip per
  visit (random window, flip), `len(videos) // batch_size` batches. Evaluation:
  `num_clips` centre-cropped clips per video in order, the last batch partial.

  Args:
    videos: `[(path, label), ...]`, e.g. from `hmdb51_videos`.
    batch_size: clips per batch.
    num_frames: T.
    crop_size: S.
    training: augment and shuffle (True) or evaluation clips (False).
    num_clips: evaluation clips per video.
    frame_stride: step between the T frames of a clip.
    scale_range: training window side as a fraction of the short side.
    flip: random horizontal flips in training.
    seed: makes the clips and order deterministic.
    **kwargs: `keras.utils.PyDataset` options (`workers`,
      `use_multiprocessing`, `max_queue_size`).
  """
  def __init__(self, videos: Sequence[Tuple[str, int]], batch_size: int, num_frames: int,
               crop_size: int, training: bool = True, num_clips: int = 1,
               frame_stride: int = 1,
               scale_range: Sequence[float] = DEFAULT_SCALE_RANGE, flip: bool = True,
               seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    if not videos:
      raise ValueError("videos is empty")
    for name, value in (("batch_size", batch_size), ("num_frames", num_frames),
                        ("crop_size", crop_size), ("num_clips", num_clips),
                        ("frame_stride", frame_stride)):
      if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if training and len(videos) < batch_size:
      raise ValueError(f"{len(videos)} videos do not fill one batch of {batch_size}")
    self.videos = list(videos)
    self.batch_size = int(batch_size)
    self.num_frames = int(num_frames)
    self.crop_size = int(crop_size)
    self.training = bool(training)
    self.num_clips = int(num_clips)
    self.frame_stride = int(frame_stride)
    self.scale_range = tuple(scale_range)
    self.flip = bool(flip)
    self.seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
    self._epoch = 0
    self._order = self._shuffled(0)

  def _shuffled(self, epoch: int) -> np.ndarray:
    if not self.training:
      return np.arange(len(self.videos))
    return np.random.default_rng([self.seed, epoch]).permutation(len(self.videos))

  def __len__(self) -> int:
    if self.training:
      return len(self.videos) // self.batch_size
    return math.ceil(len(self.videos) * self.num_clips / self.batch_size)

  def __getitem__(self, index: int):
    if not 0 <= index < len(self):
      raise IndexError(f"batch {index} of {len(self)}")
    if self.training:
      clips, labels = [], []
      for position in range(index * self.batch_size, (index + 1) * self.batch_size):
        path, label = self.videos[self._order[position]]
        clips.append(read_train_clip(path, self.num_frames, self.crop_size,
                                     [self.seed, self._epoch, position], self.frame_stride,
                                     self.scale_range, self.flip))
        labels.append(label)
      return np.stack(clips), np.asarray(labels, np.int32)
    first = index * self.batch_size
    last = min(first + self.batch_size, len(self.videos) * self.num_clips)
    clips, labels = [], []
    for video_index in range(first // self.num_clips, (last - 1) // self.num_clips + 1):
      path, label = self.videos[video_index]
      ks = [k for k in range(self.num_clips)
            if first <= video_index * self.num_clips + k < last]
      all_clips = read_eval_clips(path, self.num_frames, self.crop_size, self.num_clips,
                                  self.frame_stride)
      clips.extend(all_clips[ks])
      labels.extend([label] * len(ks))
    return np.stack(clips), np.asarray(labels, np.int32)

  def on_epoch_end(self):
    self._epoch += 1
    self._order = self._shuffled(self._epoch)


def generated_clips(batch_size: int, num_frames: int, size: int, num_classes: int,
                    seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """One batch of moving-texture clips: `(float32 [B, T, S, S, 3], int32 [B])`.

  Clip b has label `b % num_classes`; its frames are one random texture
  translated by a whole-pixel velocity of its class (class c moves by
  `(dy, dx) = (c // 3 - 1, c % 3 - 1)`, cycling through the 9 directions),
  wrapping at the border, so TV-L1 flow is meaningful.
  """
  rng = np.random.default_rng(seed)
  labels = (np.arange(batch_size) % num_classes).astype(np.int32)
  clips = np.empty((batch_size, num_frames, size, size, 3), np.float32)
  # Smooth texture: coarse noise upsampled, so the flow has gradients to use.
  coarse = max(2, size // 8)
  for b in range(batch_size):
    texture = resize_bilinear(rng.uniform(0, 255, (coarse, coarse, 3)), size)
    direction = int(labels[b]) % 9
    dy, dx = direction // 3 - 1, direction % 3 - 1
    for t in range(num_frames):
      clips[b, t] = np.roll(texture, (t * dy, t * dx), axis=(0, 1))
  return clips, labels


class GeneratedClips(keras.utils.PyDataset):
  """`num_batches` batches of `generated_clips` (batch i uses seed `seed + i`)."""

  def __init__(self, num_batches: int, batch_size: int, num_frames: int, size: int,
               num_classes: int, seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    self._num_batches = int(num_batches)
    self.batch_size = int(batch_size)
    self.num_frames = int(num_frames)
    self.size = int(size)
    self.num_classes = int(num_classes)
    self.seed = int(seed)

  def __len__(self) -> int:
    return self._num_batches

  def __getitem__(self, index: int):
    if not 0 <= index < self._num_batches:
      raise IndexError(f"batch {index} of {self._num_batches}")
    return generated_clips(self.batch_size, self.num_frames, self.size, self.num_classes,
                           self.seed + index)
