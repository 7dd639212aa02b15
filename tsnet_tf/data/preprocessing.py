"""Spatial preprocessing of clips: crop windows, crop + resize, flip. Pure TF ops.

Clips are `[T, H, W, C]` or `[B, T, H, W, C]`, uint8 or float, any H and W.
Outputs are float32 in the input's value range ([0, 255] for frames): models
normalise inside themselves (docs/design.md), so nothing here rescales values.

Geometry:
- Evaluation (`eval_preprocess`): the centred square of side min(H, W), resized
  to `crop_size` x `crop_size`. This is "resize the short side to `crop_size`,
  then centre crop", done in the cheaper order (only the kept pixels are
  resized) and without rounding the long side, so the aspect ratio is exact.
  Used by the tf.data eval pipeline, the SavedModel serving graph and
  tools/predict.py, so all three see identical pixels.
- Training (`train_preprocess`): a square window whose side is a uniformly
  random fraction in `scale_range` of the short side (scale jitter), at a
  uniformly random position, resized to `crop_size`; then a horizontal flip with
  probability 1/2. One window and one flip per clip: all frames move together,
  so the motion between frames is unchanged. With frames of short side 240 and
  `scale_range=(224/240, 224/240)` this is the paper's plain random 224 crop.

Windows are int32 `[4]` = `(y, x, h, w)` in input pixels, the layout of
`tf.io.decode_and_crop_jpeg`'s `crop_window`, so the tf.data pipeline can decode
only the window of each JPEG and then call `crop_and_resize` on the result.
"""

from typing import Sequence, Tuple

import tensorflow as tf

DEFAULT_SCALE_RANGE = (0.8, 1.0)


def centre_crop_window(height, width) -> tf.Tensor:
  """The centred square of side min(height, width).

  Args:
    height, width: int or int scalar tensors, frame size.

  Returns:
    int32 [4] window `(y, x, size, size)`.
  """
  h = tf.cast(height, tf.int32)
  w = tf.cast(width, tf.int32)
  size = tf.minimum(h, w)
  return tf.stack([(h - size) // 2, (w - size) // 2, size, size])


def random_crop_window(height, width, seed: tf.Tensor,
                       scale_range: Sequence[float] = DEFAULT_SCALE_RANGE) -> tf.Tensor:
  """A random square window for training (scale jitter + random position).

  Args:
    height, width: int or int scalar tensors, frame size.
    seed: int32/int64 [2] stateless-random seed.
    scale_range: (min, max) side of the window as a fraction of min(height, width),
      0 < min <= max <= 1.

  Returns:
    int32 [4] window `(y, x, side, side)` inside the frame, side >= 1.
  """
  lo, hi = _check_scale_range(scale_range)
  h = tf.cast(height, tf.int32)
  w = tf.cast(width, tf.int32)
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
  short = tf.minimum(h, w)
  if lo == hi:
    scale = tf.constant(lo, tf.float32)
  else:
    scale = tf.random.stateless_uniform([], seed=seeds[0], minval=lo, maxval=hi)
  side = tf.cast(tf.round(scale * tf.cast(short, tf.float32)), tf.int32)
  side = tf.clip_by_value(side, 1, short)
  y = tf.random.stateless_uniform([], seed=seeds[1], minval=0, maxval=h - side + 1,
                                  dtype=tf.int32)
  x = tf.random.stateless_uniform([], seed=seeds[2], minval=0, maxval=w - side + 1,
                                  dtype=tf.int32)
  return tf.stack([y, x, side, side])


def _check_scale_range(scale_range: Sequence[float]) -> Tuple[float, float]:
  if len(scale_range) != 2:
    raise ValueError(f"scale_range must be (min, max), got {scale_range!r}")
  lo, hi = float(scale_range[0]), float(scale_range[1])
  if not 0.0 < lo <= hi <= 1.0:
    raise ValueError(f"scale_range must satisfy 0 < min <= max <= 1, got {scale_range!r}")
  return lo, hi


def _as_images(clip: tf.Tensor):
  """Flattens leading dims: [..., H, W, C] -> ([N, H, W, C], leading shape)."""
  clip = tf.convert_to_tensor(clip)
  rank = clip.shape.rank
  if rank not in (4, 5):
    raise ValueError(f"clip must be [T, H, W, C] or [B, T, H, W, C], got shape {clip.shape}")
  shape = tf.shape(clip)
  lead = shape[:rank - 3]
  images = tf.reshape(clip, tf.concat([[-1], shape[rank - 3:]], axis=0))
  return images, lead


def crop_and_resize(clip: tf.Tensor, window: tf.Tensor, crop_size: int,
                    tflite_compatible: bool = True) -> tf.Tensor:
  """Crops the same window from every frame and resizes it (bilinear).

  Args:
    clip: [T, H, W, C] or [B, T, H, W, C], uint8 or float.
    window: int32 [4] `(y, x, h, w)` inside the frame; pass `(0, 0, H, W)` for a
      clip that is already cropped (e.g. by `tf.io.decode_and_crop_jpeg`).
    crop_size: output side S.
    tflite_compatible: cast to float32 before resizing (TFLite's RESIZE_BILINEAR
      takes float only); False resizes integer frames directly, which is the
      same result ~25% cheaper on CPU (training pipelines).

  Returns:
    float32 [T, S, S, C] or [B, T, S, S, C].
  """
  clip = tf.convert_to_tensor(clip)
  rank = clip.shape.rank
  images, lead = _as_images(clip)
  window = tf.cast(window, tf.int32)
  images = tf.slice(images, tf.stack([0, window[0], window[1], 0]),
                    tf.stack([-1, window[2], window[3], -1]))
  # Bilinear without antialiasing: the TFLite builtin RESIZE_BILINEAR (the
  # serving graph uses this function too), and crops shrink by < 2x in practice.
  if tflite_compatible:
    images = tf.cast(images, tf.float32)
  # Resizing uint8 directly (float32 out) skips a cast pass over the window.
  images = tf.image.resize(images, [crop_size, crop_size], method="bilinear", antialias=False)
  images = tf.cast(images, tf.float32)
  channels = clip.shape[-1] if clip.shape[-1] is not None else tf.shape(clip)[-1]
  out = tf.reshape(images, tf.concat([lead, [crop_size, crop_size, channels]], axis=0))
  if rank == 5:
    out.set_shape([clip.shape[0], clip.shape[1], crop_size, crop_size, clip.shape[-1]])
  else:
    out.set_shape([clip.shape[0], crop_size, crop_size, clip.shape[-1]])
  return out


def random_flip(clip: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Mirrors all frames of a clip left-right with probability 1/2.

  Args:
    clip: [T, H, W, C] (one decision for the whole clip).
    seed: int32/int64 [2] stateless-random seed.

  Returns:
    The clip, same shape and dtype.
  """
  return tf.cond(flip_decision(seed), lambda: tf.reverse(clip, axis=[-2]), lambda: clip)


def flip_decision(seed: tf.Tensor) -> tf.Tensor:
  """bool scalar: whether `random_flip` with this seed mirrors the clip.

  For data that must follow the frames' flip (stored flow, whose x component
  also changes sign).
  """
  return tf.random.stateless_uniform([], seed=seed) < 0.5


def train_preprocess(clip: tf.Tensor, crop_size: int, seed: tf.Tensor,
                     scale_range: Sequence[float] = DEFAULT_SCALE_RANGE,
                     flip: bool = True) -> tf.Tensor:
  """Training augmentation of one clip: random scale-jittered crop, resize, flip.

  Args:
    clip: [T, H, W, C] uint8 or float (one clip; map over a batch).
    crop_size: output side S.
    seed: int32/int64 [2] stateless-random seed; same seed, same crop and flip.
    scale_range: window side as a fraction of the short side, see module doc.
    flip: whether to flip left-right with probability 1/2.

  Returns:
    float32 [T, S, S, C].
  """
  clip = tf.convert_to_tensor(clip)
  if clip.shape.rank != 4:
    raise ValueError(f"train_preprocess takes one clip [T, H, W, C], got shape {clip.shape}")
  window_seed, flip_seed = train_window_and_flip_seeds(seed)
  shape = tf.shape(clip)
  window = random_crop_window(shape[1], shape[2], window_seed, scale_range)
  clip = tf.slice(clip, tf.stack([0, window[0], window[1], 0]),
                  tf.stack([-1, window[2], window[3], -1]))
  if flip:  # on the small integer window, before resize and cast: cheaper, same result
    clip = random_flip(clip, flip_seed)
  return resize_window(clip, crop_size)


def resize_window(window_frames: tf.Tensor, crop_size: int) -> tf.Tensor:
  """Resizes already-cropped frames to the output size, skipping an identity resize.

  Args:
    window_frames: [T, h, w, C] uint8 or float, the crop window of each frame
      (e.g. from `tf.io.decode_and_crop_jpeg`).
    crop_size: output side S.

  Returns:
    float32 [T, S, S, C]. When h = w = S (no scale jitter) the frames are only
    cast: a bilinear resize to the same size would cost about as much as
    decoding the JPEGs.
  """
  shape = tf.shape(window_frames)
  out = tf.cond(
      tf.logical_and(tf.equal(shape[1], crop_size), tf.equal(shape[2], crop_size)),
      lambda: tf.cast(window_frames, tf.float32),
      lambda: crop_and_resize(window_frames, tf.stack([0, 0, shape[1], shape[2]]), crop_size,
                              tflite_compatible=False))
  return tf.ensure_shape(out, [window_frames.shape[0], crop_size, crop_size,
                               window_frames.shape[-1]])


def train_window_and_flip_seeds(seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Splits a clip seed exactly as `train_preprocess` does: (window_seed, flip_seed).

  The tf.data pipeline decodes only the crop window, so it draws the window
  before decoding; using this split it gets the same window and flip as
  `train_preprocess` would on the fully decoded clip with the same seed.
  """
  window_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2))
  return window_seed, flip_seed


def short_side_size(height, width, short_side: int):
  """(height, width) int32 scalars after scaling the short side to `short_side`.

  The same arithmetic as `video.short_side_size` (float64, round half to even),
  so an in-graph resize lands on the size the converter stored.
  """
  h = tf.cast(height, tf.float64)
  w = tf.cast(width, tf.float64)
  scale = float(short_side) / tf.minimum(h, w)
  long_h = tf.maximum(tf.round(h * scale), 1.0)
  long_w = tf.maximum(tf.round(w * scale), 1.0)
  out_h = tf.where(h <= w, tf.constant(float(short_side), tf.float64), long_h)
  out_w = tf.where(h <= w, long_w, tf.constant(float(short_side), tf.float64))
  return tf.cast(out_h, tf.int32), tf.cast(out_w, tf.int32)


def resize_short_side(clip: tf.Tensor, short_side: int) -> tf.Tensor:
  """Scales frames so their short side is `short_side` (antialiased bilinear).

  The in-graph counterpart of the converter's frame resize (PIL bilinear with
  antialiasing, `tfrecords.encode_frames`) for frames that do not come from the
  TFRecords: frames whose short side already is `short_side` (e.g. frames in
  the stored format, `clip_spec.ClipSpec.stored_frames`) pass unchanged, so
  they are never resized twice.

  Args:
    clip: [T, H, W, C] or [B, T, H, W, C], uint8 or float.
    short_side: target short side; 0 keeps the size.

  Returns:
    The clip with the same rank and dtype (uint8 values rounded, as stored).
  """
  clip = tf.convert_to_tensor(clip)
  if not short_side:
    return clip
  images, lead = _as_images(clip)
  shape = tf.shape(images)
  out_h, out_w = short_side_size(shape[1], shape[2], short_side)

  def resize():
    out = tf.image.resize(images, tf.stack([out_h, out_w]), method="bilinear", antialias=True)
    if clip.dtype == tf.uint8:
      out = tf.cast(tf.round(tf.clip_by_value(out, 0.0, 255.0)), tf.uint8)
    return tf.cast(out, clip.dtype)

  same = tf.logical_and(tf.equal(out_h, shape[1]), tf.equal(out_w, shape[2]))
  images = tf.cond(same, lambda: images, resize)
  out = tf.reshape(images, tf.concat([lead, tf.shape(images)[1:]], axis=0))
  static = clip.shape.as_list()
  static[-3] = static[-2] = None
  out.set_shape(static)
  return out


def eval_preprocess(clip: tf.Tensor, crop_size: int) -> tf.Tensor:
  """Resize short side to `crop_size`, centre crop `crop_size` (see module doc).

  Graph- and TFLite-friendly (shape arithmetic, slice, RESIZE_BILINEAR).

  Args:
    clip: [T, H, W, C] or [B, T, H, W, C], uint8 or float, any H and W.
    crop_size: output side S.

  Returns:
    float32 [T, S, S, C] or [B, T, S, S, C].
  """
  clip = tf.convert_to_tensor(clip)
  shape = tf.shape(clip)
  rank = clip.shape.rank
  if rank not in (4, 5):
    raise ValueError(f"clip must be [T, H, W, C] or [B, T, H, W, C], got shape {clip.shape}")
  window = centre_crop_window(shape[rank - 3], shape[rank - 2])
  return crop_and_resize(clip, window, crop_size)


def color_jitter(clip: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
  """One random brightness, contrast and saturation change for a whole clip.

  Each factor is drawn uniformly in `[1 - strength, 1 + strength]`; every frame
  gets the same ones, so the motion between frames is unchanged. Hue is left
  alone: it would turn one coloured object into another, and colour can be
  what a class is (the appearance x motion benchmark).

  Args:
    clip: float32 `[T, H, W, 3]` in [0, 255].
    strength: in [0, 1); 0 returns the clip.
    seed: int [2] stateless-random seed.

  Returns:
    float32 `[T, H, W, 3]` in [0, 255].
  """
  if not strength:
    return clip
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
  factor = [tf.random.stateless_uniform([], seed=s, minval=1.0 - strength,
                                        maxval=1.0 + strength) for s in tf.unstack(seeds)]
  clip = clip * factor[0]
  mean = tf.reduce_mean(clip, axis=[1, 2, 3], keepdims=True)
  clip = (clip - mean) * factor[1] + mean
  grey = tf.reduce_mean(clip, axis=-1, keepdims=True)
  clip = (clip - grey) * factor[2] + grey
  return tf.clip_by_value(clip, 0.0, 255.0)


def background_mix(clips: tf.Tensor, max_alpha: float, seed: tf.Tensor) -> tf.Tensor:
  """Blends into each clip of a batch one still frame of another clip.

  `clip' = (1 - a) clip + a still`, with `a ~ U(0, max_alpha)` per clip and
  `still` a random frame of the next clip in the batch (the batch rolled by
  one). The still frame adds appearance (another person, another room) but no
  motion, so the label and the clip's optical flow are unchanged while who
  and where stop telling the class.

  Args:
    clips: float32 `[B, T, H, W, C]` in [0, 255].
    max_alpha: in [0, 1); 0 returns the clips.
    seed: int [2] stateless-random seed.

  Returns:
    float32 `[B, T, H, W, C]`.
  """
  if not max_alpha:
    return clips
  shape = tf.shape(clips)
  batch, frames = shape[0], shape[1]
  alpha_seed, frame_seed = tf.unstack(
      tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2))
  alpha = tf.random.stateless_uniform([batch, 1, 1, 1, 1], seed=alpha_seed, maxval=max_alpha)
  pick = tf.random.stateless_uniform([batch], seed=frame_seed, maxval=frames, dtype=tf.int32)
  others = tf.roll(clips, shift=1, axis=0)
  still = tf.gather(others, pick, axis=1, batch_dims=1)[:, None]
  return (1.0 - alpha) * clips + alpha * still
