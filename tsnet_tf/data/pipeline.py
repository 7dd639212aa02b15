"""tf.data input pipeline over the TFRecords written by tools/prepare_hmdb51.py.

    ds = make_dataset(data_dir, split=1, subset="train", training=True)
    model.fit(ds, steps_per_epoch=count_videos(data_dir, 1, "train") // 8, ...)

Training (`training=True`): **infinite** (each pass reshuffles shards and
records, then repeats), so use `steps_per_epoch`. Shards are read in parallel
(interleave), records of the wanted (split, subset) kept by their
`clip/split<k>` context feature (a context-only parse), shuffled, then per
video: `sampling.train_indices` picks T consecutive frames (looping short
videos), only those T JPEGs are decoded, and only inside the random crop window
(`tf.io.decode_and_crop_jpeg`), resized to `crop_size`, flipped with p = 1/2.
Batches are full (`drop_remainder=True`), prefetched with AUTOTUNE. With a
`seed` the stream is deterministic (the same batches every run, from every
iterator of the dataset); without one, tf.data may reorder elements for speed.

Evaluation (`training=False`): one finite, ordered pass; each video gives
`num_clips` clips spread uniformly (`sampling.eval_indices`), whole frames
decoded and passed through `preprocessing.eval_preprocess` (the serving graph's
function, so evaluation and deployment see identical pixels); the last batch may
be smaller. `return_video_index=True` adds each clip's
`clip/video_index` (unique per video in the data directory; average clip
predictions per index for video-level accuracy).

Elements: `(clips, labels)` or `(clips, labels, video_index)`:
  clips        float32 [B, T, S, S, 3], RGB in [0, 255] (models normalise)
  labels       int32 [B], indices into `load_labels(data_dir)`
  video_index  int32 [B]

Stored flow (`stored_flow="flow"` or `"clip_and_flow"`, training only; data
converted with `prepare_hmdb51.py --flow_preset`): the clip's inputs become a
dict, `{"flow": float32 [B, T-1, S, S, 2]}` (px, `stored_flow.train_flow_clip`:
same frames, window and flip as the clip) or `{"clip": clips, "flow": ...}`;
with `"flow"` alone no RGB frame is decoded.

tf.distribute: pass `input_context` (from
`strategy.distribute_datasets_from_function`); `batch_size` is then the global
batch size and each input pipeline gets the per-replica batch, reading its own
subset of the shard files (records, if there are fewer files than pipelines).
"""

import contextlib
import dataclasses
import functools
import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from tsnet_tf import config
from tsnet_tf.data import hmdb51
from tsnet_tf.data import preprocessing
from tsnet_tf.data import sampling
from tsnet_tf.data import schema
from tsnet_tf.data import stored_flow as stored_flow_lib
from tsnet_tf.utils import errors
from tsnet_tf.utils import labels as labels_lib

log = logging.getLogger(__name__)

SUBSETS = hmdb51.SUBSETS
# Records are ~1.5 MB for HMDB51 at short side 240: 64 records is ~100 MB of
# shuffle buffer, on top of the shuffled shard order and the mixed shards.
DEFAULT_SHUFFLE_BUFFER = 64
_MAX_OPEN_SHARDS = 8


class CorruptDataError(errors.ResourceError, OSError):
  """A shard of the data directory cannot be read to its end (truncated, corrupt)."""


def find_corrupt_shards(data_dir: str) -> List[str]:
  """Paths of `data_dir`'s shards whose records cannot all be read (bad length or CRC).

  Reads every record of every shard (no parsing): run it after a failure, not
  before every read.
  """
  bad = []
  for path in schema.list_shards(data_dir):
    try:
      tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
    except tf.errors.DataLossError:
      bad.append(path)
  return bad


@contextlib.contextmanager
def reading(data_dir: str):
  """Names the shard when reading `data_dir`'s records fails as corrupt.

  tf.data's DataLossError ("truncated record at 1440714 ... [Op:IteratorGetNext]")
  names no file. Inside this block it becomes `CorruptDataError` naming
  `data_dir` and the corrupt shards (re-scanned, `find_corrupt_shards`); if no
  shard is corrupt, the loss was elsewhere (a checkpoint, say) and the
  original error propagates.

  Raises:
    CorruptDataError: a DataLossError was raised and a shard of `data_dir` is corrupt.
  """
  try:
    yield
  except tf.errors.DataLossError as e:
    bad = find_corrupt_shards(data_dir)
    if not bad:
      raise
    names = ", ".join(os.path.basename(p) for p in bad)
    raise CorruptDataError(
        f"--data_dir {data_dir!r}: truncated or corrupt shard: {names} "
        f"({errors.tf_error_text(e)}); delete it and re-run tools/prepare_hmdb51.py "
        "with the same flags, which rewrites missing shards") from e


def load_summary(data_dir: str) -> dict:
  """`data_dir/summary.json` as a dict (written by tfrecords.convert)."""
  path = os.path.join(data_dir, schema.SUMMARY_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path!r} not found: --data_dir must be the output of tools/prepare_hmdb51.py")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def load_labels(data_dir: str) -> List[str]:
  """Class names in label order, from `data_dir/labels.txt`."""
  path = os.path.join(data_dir, schema.LABELS_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path!r} not found: --data_dir must be the output of tools/prepare_hmdb51.py")
  return labels_lib.read_labels(path)


def _check_split_subset(summary: dict, data_dir: str, split: int, subset: str) -> None:
  if subset not in SUBSETS:
    raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
  if str(int(split)) not in summary["splits"]:
    raise ValueError(
        f"split {split} was not converted into {data_dir!r} (it has splits "
        f"{sorted(int(k) for k in summary['splits'])}); re-run prepare_hmdb51 with --splits")


def count_videos(data_dir: str, split: int, subset: str) -> int:
  """Number of videos (records) of `subset` (one of SUBSETS) in official split `split`."""
  return subset_size(load_summary(data_dir), data_dir, split, subset)


def subset_size(summary: dict, data_dir: str, split: int, subset: str) -> int:
  """`count_videos` from `load_summary(data_dir)`, already read (`data_dir` names it in errors)."""
  _check_split_subset(summary, data_dir, split, subset)
  # Conversions made before the validation subset existed have no such count.
  return int(summary["splits"][str(int(split))].get(subset, 0))


def _decode_frames(encoded: tf.Tensor, window: tf.Tensor, num_frames: int) -> tf.Tensor:
  """Decodes the `window` of T JPEGs: uint8 [T, h, w, 3].

  Unrolled over the static T (cheaper than a tf.map_fn while-loop); parallelism
  comes from the dataset map running several clips at once.
  """
  return tf.stack([tf.io.decode_and_crop_jpeg(encoded[t], window, channels=3)
                   for t in range(num_frames)])


def _frame_shape(encoded: tf.Tensor):
  """(height, width) of the first JPEG, read from its header only."""
  shape = tf.io.extract_jpeg_shape(encoded[0])
  return shape[0], shape[1]


def make_dataset(data_dir: str, split: int = 1, subset: str = "train", training: bool = True,
                 num_frames: int = 25, crop_size: int = 224, batch_size: int = 8,
                 num_clips: int = 1, seed: Optional[int] = None,
                 return_video_index: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 frame_stride: int = 1,
                 scale_range: Sequence[float] = preprocessing.DEFAULT_SCALE_RANGE,
                 flip: bool = True, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                 drop_remainder: Optional[bool] = None,
                 skip_steps: int = 0, stored_flow: str = "", color_jitter: float = 0.0,
                 background_mix: float = 0.0) -> tf.data.Dataset:
  """The input pipeline (see the module doc for semantics).

  Args:
    data_dir: output of tools/prepare_hmdb51.py.
    split: official split, 1..3 (must have been converted).
    subset: "train" or "test": which videos of the split.
    training: augment, shuffle, repeat forever (True) or one ordered centre-crop pass.
    num_frames: T, frames per clip.
    crop_size: S, output side.
    batch_size: clips per batch (global batch size when `input_context` is given).
    num_clips: K clips per video (evaluation only; training takes one per video visit).
    seed: makes the stream deterministic (shuffles, sampling, crops, flips),
      the same from every iterator of the dataset.
    return_video_index: also yield each clip's video index (int32 [B]).
    input_context: tf.distribute.InputContext for per-replica batching and sharding.
    frame_stride: step between the T frames of a clip.
    scale_range: training crop side as a fraction of the short side (scale jitter).
    flip: random horizontal flips in training.
    shuffle_buffer: records in the shuffle buffer (training).
    drop_remainder: defaults to `training`.
    skip_steps: training: start the stream after this many global batches
      (`batch_size` clips each, over all input pipelines), where a run resumed
      after that many steps continues; the skipped records are read but not
      decoded. With a `seed`, the batches that follow are those an
      uninterrupted run gets.
    stored_flow: training only: "" (RGB clips), "flow" (the stored flow of
      each clip, no RGB decoded) or "clip_and_flow" (both), see the module
      doc; the records must hold flow stored with stride `frame_stride`.
    color_jitter: training: strength of one random brightness, contrast and
      saturation change per RGB clip (`preprocessing.color_jitter`); the
      stored flow is the unchanged clip's, so a student's Eq. 7 target does not
      depend on it. 0 = off.
    background_mix: training: the largest weight of a still frame of another
      clip of the batch blended into each RGB clip
      (`preprocessing.background_mix`). 0 = off.

  Returns:
    tf.data.Dataset of `(clips float32 [B,T,S,S,3], labels int32 [B][, video_index int32 [B]])`.

  Raises:
    FileNotFoundError: `data_dir` is not a converted data directory.
    ValueError: bad split, subset or sizes.
  """
  summary = load_summary(data_dir)
  if not (0.0 <= color_jitter < 1.0 and 0.0 <= background_mix < 1.0):
    raise ValueError(f"color_jitter and background_mix must be in [0, 1), got {color_jitter} "
                     f"and {background_mix}")
  _check_arguments(summary, data_dir, split, subset, training, num_frames, crop_size,
                   batch_size, num_clips, frame_stride, skip_steps, stored_flow)
  deterministic = (seed is not None) or not training
  if drop_remainder is None:
    drop_remainder = training
  global_batch = int(batch_size)
  source = _Source.of(schema.list_shards(data_dir), int(split), hmdb51.SUBSET_IDS[subset],
                      input_context, deterministic)
  if input_context is not None:
    batch_size = input_context.get_per_replica_batch_size(batch_size)

  if training:
    ds = _training_stream(source, seed, shuffle_buffer)
    if skip_steps:
      # Before the decoding map: skipped clips cost a record read, not a decode.
      ds = ds.skip(int(skip_steps) * global_batch // source.num_pipelines)
    clip = functools.partial(_train_clip, num_frames=num_frames, crop_size=crop_size,
                             frame_stride=frame_stride, scale_range=scale_range, flip=flip,
                             stored_flow=stored_flow, color_jitter=color_jitter)
    ds = ds.map(clip, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  else:
    ds = _records(source)
    ds = ds.map(functools.partial(_eval_frames, num_frames=num_frames, num_clips=num_clips,
                                  frame_stride=frame_stride),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch()
    ds = ds.map(functools.partial(_eval_clip, num_frames=num_frames, crop_size=crop_size),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  mix = None
  if training and background_mix and stored_flow != "flow":
    mix = functools.partial(_mix_backgrounds, max_alpha=background_mix, seed=seed,
                            skip_steps=skip_steps)
  return _batch(ds, batch_size, drop_remainder, deterministic, return_video_index, mix)


def make_dataset_from_config(data_dir: str, data: config.DataConfig, split: int = 1,
                             subset: str = "train", training: bool = True,
                             **kwargs) -> tf.data.Dataset:
  """`make_dataset` with the clip, batch and augmentation settings of a config's `data`.

  Args:
    data_dir: output of tools/prepare_hmdb51.py.
    data: the experiment's `config.DataConfig`: `num_frames`, `crop_size`,
      `frame_stride`; in training `batch_size`, `shuffle_seed` (the seed) and
      `random_flip`; in evaluation `eval_batch_size` and `validation_clips`
      (clips per video).
    split, subset, training: as `make_dataset`.
    **kwargs: the other `make_dataset` arguments (`input_context`,
      `skip_steps`, `stored_flow`, `return_video_index`, ...); they override
      the config's.
  """
  return make_dataset(data_dir, split, subset, training,
                      **dict(config_kwargs(data, training), **kwargs))


def config_kwargs(data: config.DataConfig, training: bool) -> Dict[str, Any]:
  """The `make_dataset` arguments a `config.DataConfig` decides (see `make_dataset_from_config`)."""
  kwargs = dict(num_frames=data.num_frames, crop_size=data.crop_size,
                frame_stride=data.frame_stride)
  if training:
    kwargs.update(batch_size=data.batch_size, seed=data.shuffle_seed, flip=data.random_flip,
                  color_jitter=data.color_jitter, background_mix=data.background_mix)
  else:
    kwargs.update(batch_size=data.eval_batch_size, num_clips=data.validation_clips)
  return kwargs


def _check_arguments(summary: dict, data_dir: str, split: int, subset: str, training: bool,
                     num_frames: int, crop_size: int, batch_size: int, num_clips: int,
                     frame_stride: int, skip_steps: int, stored_flow: str) -> None:
  """Raises ValueError naming the first argument `make_dataset` cannot serve."""
  _check_split_subset(summary, data_dir, split, subset)
  for name, value in (("num_frames", num_frames), ("crop_size", crop_size),
                      ("batch_size", batch_size), ("num_clips", num_clips),
                      ("frame_stride", frame_stride)):
    if int(value) < 1:
      raise ValueError(f"{name} must be >= 1, got {value}")
  if stored_flow:
    _check_stored_flow(summary, data_dir, stored_flow, training, frame_stride)
  if int(skip_steps) < 0 or (skip_steps and not training):
    raise ValueError(f"skip_steps must be >= 0 and only in training, got {skip_steps}")


# ---------------------------------------------------------------------------
# Phase 1, read: the subset's serialized records (shards, interleave, context-only filter).


@dataclasses.dataclass(frozen=True)
class _Source:
  """Which records this input pipeline reads.

  Attributes:
    files: the data directory's shard files.
    split, subset_id: the records kept (`clip/split<split>` == `subset_id`).
    num_pipelines, pipeline_id: this pipeline among those of `tf.distribute`.
    shard_files: whether pipelines split the files (else they split records).
    deterministic: keep the interleave's order.
  """
  files: Tuple[str, ...]
  split: int
  subset_id: int
  num_pipelines: int
  pipeline_id: int
  shard_files: bool
  deterministic: bool

  @classmethod
  def of(cls, files: Sequence[str], split: int, subset_id: int,
         input_context: Optional[tf.distribute.InputContext], deterministic: bool) -> "_Source":
    num_pipelines, pipeline_id = 1, 0
    if input_context is not None:
      num_pipelines = input_context.num_input_pipelines
      pipeline_id = input_context.input_pipeline_id
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if num_pipelines > 1 and not shard_files:
      log.warning("%d shard files for %d input pipelines: sharding by record", len(files),
                  num_pipelines)
    return cls(tuple(files), split, subset_id, num_pipelines, pipeline_id, shard_files,
               deterministic)


def _records(source: _Source, seed: Optional[int] = None,
             shuffle_files: bool = False) -> tf.data.Dataset:
  """One pass over the subset's records (shard files in shuffled order, reshuffled at each
  repeat, with `shuffle_files`)."""
  files = list(source.files)
  skey = schema.split_key(source.split)

  def in_subset(serialized):
    ctx = schema.parse_sequence_example(serialized, splits=[source.split], with_frames=False)
    return tf.equal(ctx[skey], source.subset_id)

  ds = tf.data.Dataset.from_tensor_slices(files)
  if source.shard_files:
    ds = ds.shard(source.num_pipelines, source.pipeline_id)
  if shuffle_files:
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), _MAX_OPEN_SHARDS),
                     block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=source.deterministic)
  if source.num_pipelines > 1 and not source.shard_files:
    ds = ds.shard(source.num_pipelines, source.pipeline_id)
  return ds.filter(in_subset)


def _training_stream(source: _Source, seed: Optional[int],
                     shuffle_buffer: int) -> tf.data.Dataset:
  """`(serialized record, clip seed int64 [2])`: the shuffled records, forever."""

  def stream(_):
    # Repeat after the record shuffle: an epoch is finished before the next
    # starts, so a small dataset does not put one video twice in a batch.
    return _records(source, seed, shuffle_files=True).shuffle(
        shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()

  # Built inside flat_map, which runs `stream` once per iterator: each
  # iterator gets its own shuffle seed generators, so with a seed every
  # iterator yields the same stream. (Built directly, all iterators of the
  # dataset share them, each epoch of each iterator drawing from them: Keras'
  # torch and JAX `fit` take a batch from one iterator to build the model and
  # train on a second, which then started wherever the first one's
  # prefetching had left them.)
  ds = tf.data.Dataset.range(1).flat_map(stream)
  return tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))


# ---------------------------------------------------------------------------
# Phases 2-4 of a training clip: parse, sample (frames, window, flip), decode and
# preprocess (`_train_frames`, or the stored flow's `_stored_flow_inputs`).


def _train_clip(serialized, clip_seed, num_frames: int, crop_size: int, frame_stride: int,
                scale_range: Sequence[float], flip: bool, stored_flow: str,
                color_jitter: float = 0.0):
  """`(clip or inputs dict, label int32, video_index int32)` of one training record."""
  rec = schema.parse_sequence_example(serialized, with_flow=bool(stored_flow))
  encoded = rec[schema.FRAMES_KEY]
  sample_seed, crop_seed = tf.unstack(
      tf.random.experimental.stateless_split(clip_seed, num=2))
  idx = sampling.train_indices(tf.shape(encoded)[0], num_frames, sample_seed,
                               stride=frame_stride)
  encoded = tf.gather(encoded, idx)
  window_seed, flip_seed = preprocessing.train_window_and_flip_seeds(crop_seed)
  height, width = _frame_shape(encoded)
  window = preprocessing.random_crop_window(height, width, window_seed, scale_range)
  label = tf.cast(rec[schema.LABEL_INDEX_KEY], tf.int32)
  video_index = tf.cast(rec[schema.VIDEO_INDEX_KEY], tf.int32)
  # Folded from the clip's seed, so the other draws are those of a run without it.
  jitter_seed = tf.random.experimental.stateless_fold_in(clip_seed, _JITTER_SALT)
  if stored_flow:
    inputs = _stored_flow_inputs(rec, idx, encoded, window, flip_seed, flip, crop_size,
                                 num_frames, with_clip=stored_flow == "clip_and_flow")
    if stored_flow_lib.CLIP_KEY in inputs:
      inputs[stored_flow_lib.CLIP_KEY] = preprocessing.color_jitter(
          inputs[stored_flow_lib.CLIP_KEY], color_jitter, jitter_seed)
    return inputs, label, video_index
  clip = _train_frames(encoded, window, flip_seed, flip, crop_size, num_frames)
  clip = preprocessing.color_jitter(clip, color_jitter, jitter_seed)
  return clip, label, video_index


# ---------------------------------------------------------------------------
# Phases 2-4 of evaluation: parse and sample (K clips of a record), then decode
# and preprocess each clip.


def _eval_frames(serialized, num_frames: int, num_clips: int, frame_stride: int):
  """`(encoded string [K, T], label int32 [K], video_index int32 [K])` of one record."""
  rec = schema.parse_sequence_example(serialized)
  encoded = rec[schema.FRAMES_KEY]
  idx = sampling.eval_indices(tf.shape(encoded)[0], num_frames, num_clips,
                              stride=frame_stride)
  k = tf.shape(idx)[0]
  return (tf.gather(encoded, idx),
          tf.fill([k], tf.cast(rec[schema.LABEL_INDEX_KEY], tf.int32)),
          tf.fill([k], tf.cast(rec[schema.VIDEO_INDEX_KEY], tf.int32)))


def _eval_clip(encoded, label, video_index, num_frames: int, crop_size: int):
  """Decodes one clip's T JPEGs and preprocesses them as the serving graph does."""
  # Whole frames, then the serving graph's own function: evaluation sees
  # exactly the pixels a deployed model sees. (decode_and_crop_jpeg differs
  # at window edges that fall on JPEG block boundaries: chroma upsampling.)
  frames = tf.stack([tf.io.decode_jpeg(encoded[t], channels=3) for t in range(num_frames)])
  clip = preprocessing.eval_preprocess(frames, crop_size)
  clip = tf.ensure_shape(clip, [num_frames, crop_size, crop_size, 3])
  return clip, label, video_index


# ---------------------------------------------------------------------------
# Last phase: the elements, batched.


def _batch(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool, deterministic: bool,
           return_video_index: bool, mix=None) -> tf.data.Dataset:
  """Batches; `mix` (e.g. `_mix_backgrounds`) maps the batched dataset before prefetching."""
  if not return_video_index:
    ds = ds.map(lambda clip, label, video_index: (clip, label))
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  if mix is not None:
    ds = mix(ds)
  options = tf.data.Options()
  options.deterministic = deterministic
  ds = ds.with_options(options)
  return ds.prefetch(tf.data.AUTOTUNE)


_JITTER_SALT = 0x6A17


def _mix_backgrounds(ds: tf.data.Dataset, max_alpha: float, seed: Optional[int],
                     skip_steps: int) -> tf.data.Dataset:
  """`preprocessing.background_mix` on each batch's RGB clips (not its stored flow)."""
  # One seed per batch, skipped like the batches of a resumed run.
  seeds = tf.data.Dataset.random(seed=None if seed is None else seed + 1).batch(2)
  seeds = seeds.skip(int(skip_steps))

  def mix(batch, batch_seed):
    inputs = batch[0]
    if isinstance(inputs, dict):
      inputs = dict(inputs)
      inputs[stored_flow_lib.CLIP_KEY] = preprocessing.background_mix(
          inputs[stored_flow_lib.CLIP_KEY], max_alpha, batch_seed)
    else:
      inputs = preprocessing.background_mix(inputs, max_alpha, batch_seed)
    return (inputs,) + tuple(batch[1:])

  return tf.data.Dataset.zip((ds, seeds)).map(mix, num_parallel_calls=tf.data.AUTOTUNE)


STORED_FLOW_MODES = ("flow", "clip_and_flow")


def _check_stored_flow(summary: dict, data_dir: str, mode: str, training: bool,
                       frame_stride: int) -> None:
  """`make_dataset(stored_flow=mode)` can serve this data directory."""
  if mode not in STORED_FLOW_MODES:
    raise ValueError(f"stored_flow must be '' or one of {STORED_FLOW_MODES}, got {mode!r}")
  if not training:
    raise ValueError("stored_flow is for training input only (evaluation feeds RGB clips "
                     "to the in-graph teacher)")
  stored_flow_lib.check_stride(summary, data_dir, frame_stride)


def _train_frames(encoded, window, flip_seed, flip: bool, crop_size: int,
                  num_frames: int) -> tf.Tensor:
  """float32 [T, S, S, 3]: a training clip's frames, decoded in `window`, flipped
  (`flip`, decided by `flip_seed`) and resized to S."""
  frames = _decode_frames(encoded, window, num_frames)
  if flip:  # uint8 window: a quarter of the bytes of the float32 clip
    frames = preprocessing.random_flip(frames, flip_seed)
  clip = preprocessing.resize_window(frames, crop_size)
  return tf.ensure_shape(clip, [num_frames, crop_size, crop_size, 3])


def _stored_flow_inputs(rec, idx, encoded, window, flip_seed, flip: bool, crop_size: int,
                        num_frames: int, with_clip: bool):
  """`{FLOW_KEY[, CLIP_KEY]}` of one training clip (`stored_flow.train_flow_clip`): the
  flow follows the frames' window and flip (the same seed)."""
  flipped = preprocessing.flip_decision(flip_seed) if flip else tf.constant(False)
  inputs = {stored_flow_lib.FLOW_KEY: stored_flow_lib.train_flow_clip(rec, idx, window, flipped,
                                                                      crop_size)}
  if with_clip:
    inputs[stored_flow_lib.CLIP_KEY] = _train_frames(encoded, window, flip_seed, flip,
                                                     crop_size, num_frames)
  return inputs
