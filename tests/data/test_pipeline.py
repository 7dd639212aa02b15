import os

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import pipeline
from tsnet_tf.data import preprocessing
from tsnet_tf.data import sampling
from tsnet_tf.data import schema
from tsnet_tf.data import synthetic
from tsnet_tf.data import synthetic_render
from tsnet_tf.data import tfrecords

T, S = 6, 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("synth") / "hmdb")
  synthetic.generate_dataset(root, num_classes=3, videos_per_class=5, seed=1, height=32,
                             width=40, min_seconds=0.2, max_seconds=0.8, fps=(25.0,),
                             broken=("empty",))
  out = str(tmp_path_factory.mktemp("tfr") / "data")
  tfrecords.convert(os.path.join(root, "videos"), os.path.join(root, "splits"), out,
                    splits=(1, 2), settings=tfrecords.ConversionSettings(short_side=0),
                    num_workers=1, num_shards=4, progress=False)
  records = {}
  for path in schema.list_shards(out):
    for s in tf.data.TFRecordDataset(path):
      r = schema.parse_sequence_example(s, splits=(1, 2))
      records[int(r[schema.VIDEO_INDEX_KEY])] = {
          "label": int(r[schema.LABEL_INDEX_KEY]),
          "split1": int(r["clip/split1"]),
          "frames": np.stack([tf.io.decode_jpeg(j).numpy() for j in r[schema.FRAMES_KEY]])}
  return out, records


def _take(ds, n):
  return [tuple(x.numpy() for x in b) for b in ds.take(n)]


def test_labels_and_counts(data):
  out, records = data
  assert pipeline.load_labels(out) == sorted(synthetic_render.MOTION_CLASSES[:3])
  assert pipeline.count_videos(out, 1, "train") == sum(r["split1"] == 1 for r in records.values())
  assert pipeline.count_videos(out, 1, "test") == sum(r["split1"] == 2 for r in records.values())
  with pytest.raises(ValueError, match="split 3 was not converted"):
    pipeline.count_videos(out, 3, "train")
  with pytest.raises(ValueError, match="subset"):
    pipeline.count_videos(out, 1, "val")
  with pytest.raises(FileNotFoundError, match="prepare_hmdb51"):
    pipeline.make_dataset(os.path.dirname(out))


def test_train_batches_shapes_labels_and_infinite(data):
  out, records = data
  n_train = pipeline.count_videos(out, 1, "train")
  ds = pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=S, batch_size=4, seed=0,
                             return_video_index=True)
  assert ds.element_spec[0].shape.as_list() == [4, T, S, S, 3]
  assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.int32
  batches = _take(ds, 2 * n_train // 4 + 2)  # more than two epochs: it repeats
  seen = []
  for clips, labels, vids in batches:
    assert clips.shape == (4, T, S, S, 3) and 0 <= clips.min() and clips.max() <= 255
    assert clips.std() > 5  # real pixels, not a constant
    for label, v in zip(labels, vids):
      assert records[v]["split1"] == 1 and records[v]["label"] == label
    seen.extend(vids)
  # The first epoch is one pass over the training videos (repeat after shuffle).
  assert sorted(seen[:n_train]) == sorted(v for v, r in records.items() if r["split1"] == 1)
  assert seen[:n_train] != seen[n_train:2 * n_train]  # reshuffled each epoch


def test_train_is_deterministic_with_seed(data):
  out, _ = data
  make = lambda seed: pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=S,
                                            batch_size=3, seed=seed)
  a, b, c = _take(make(5), 3), _take(make(5), 3), _take(make(6), 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x[0], y[0])
    np.testing.assert_array_equal(x[1], y[1])
  assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_every_iterator_of_a_seeded_dataset_yields_the_same_stream(data):
  out, _ = data
  ds = pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=S, batch_size=3, seed=5,
                             return_video_index=True)
  # Keras' torch and JAX fit take one batch from a first iterator (to build
  # the model), then train on a second: neither a first iterator still alive
  # nor one that has gone on into later epochs may change the second's stream.
  first = iter(ds)
  streams = [[tuple(x.numpy() for x in next(first)) for _ in range(8)]]  # 3 epochs
  streams.append(_take(ds, 8))  # while `first` is alive
  del first
  streams.append(_take(ds, 8))
  for other in streams[1:]:
    for x, y in zip(streams[0], other):
      for a, b in zip(x, y):
        np.testing.assert_array_equal(a, b)


def test_skip_steps_continues_the_stream_where_a_resumed_run_starts(data):
  out, _ = data
  make = lambda skip: pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=S,
                                            batch_size=3, seed=5, return_video_index=True,
                                            skip_steps=skip)
  # 5 batches of 3 cross the first epoch's end (the split has fewer videos).
  whole, resumed = _take(make(0), 7), _take(make(5), 2)
  for x, y in zip(whole[5:], resumed):
    for a, b in zip(x, y):
      np.testing.assert_array_equal(a, b)
  assert not np.array_equal(whole[0][0], resumed[0][0])
  with pytest.raises(ValueError, match="skip_steps"):
    pipeline.make_dataset(out, 1, "test", training=False, skip_steps=1)


def test_train_clip_is_consecutive_frames_cropped(data):
  out, records = data
  ds = pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=32, batch_size=1, seed=3,
                             return_video_index=True, scale_range=(1.0, 1.0), flip=False)
  for clips, _, vids in _take(ds, 4):
    frames = records[int(vids[0])]["frames"].astype(np.float32)
    n = len(frames)
    # Full-height 32x32 window at native size: some start and some column offset.
    # decode_and_crop_jpeg may differ from decode-then-crop in the edge column
    # (chroma upsampling), hence a mean, not a max, tolerance.
    found = [(s, x) for s in range(max(n - T, 0) + 1) for x in range(9)
             if np.abs(clips[0] - frames[(s + np.arange(T)) % n, :, x:x + 32]).mean() < 0.5]
    assert found, f"video {vids[0]}: clip is not {T} consecutive cropped frames"


def test_eval_clips_match_eval_preprocess(data):
  out, records = data
  k = 3
  ds = pipeline.make_dataset(out, 1, "test", training=False, num_frames=T, crop_size=S,
                             batch_size=4, num_clips=k, return_video_index=True)
  clips, labels, vids = (np.concatenate(x) for x in zip(*_take(ds, -1)))
  test_ids = sorted(v for v, r in records.items() if r["split1"] == 2)
  assert len(clips) == k * len(test_ids) == k * pipeline.count_videos(out, 1, "test")
  assert sorted(set(vids)) == test_ids
  for i in range(0, len(vids), k):  # a video's K clips come together
    assert len(set(vids[i:i + k])) == 1
    v = int(vids[i])
    assert set(labels[i:i + k]) == {records[v]["label"]}
    frames = records[v]["frames"]
    expected = preprocessing.eval_preprocess(sampling.sample_eval_clips(frames, T, k), S).numpy()
    np.testing.assert_allclose(clips[i:i + k], expected, atol=1e-3)
  again = np.concatenate([b[0] for b in _take(pipeline.make_dataset(
      out, 1, "test", training=False, num_frames=T, crop_size=S, batch_size=4, num_clips=k), -1)])
  np.testing.assert_array_equal(again, clips)


def test_input_context_per_replica_batch_and_file_sharding(data):
  out, _ = data
  got = []
  for pid in range(2):
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid,
                                     num_replicas_in_sync=2)
    ds = pipeline.make_dataset(out, 1, "test", training=False, num_frames=T, crop_size=S,
                               batch_size=4, return_video_index=True, input_context=ctx)
    batches = _take(ds, -1)
    assert all(b[0].shape[0] <= 2 for b in batches)
    got.append([v for b in batches for v in b[2]])
  assert not set(got[0]) & set(got[1])
  assert len(got[0]) + len(got[1]) == pipeline.count_videos(out, 1, "test")


def test_distribute_datasets_from_function(data):
  out, _ = data
  strategy = tf.distribute.get_strategy()
  dist = strategy.distribute_datasets_from_function(
      lambda ctx: pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=S,
                                        batch_size=2, seed=0, input_context=ctx))
  clips, labels = next(iter(dist))
  assert clips.shape == (2, T, S, S, 3) and labels.dtype == tf.int32


def _truncated_copy(data_dir, tmp_path, shard=1):
  """A copy of `data_dir` whose `shard` is cut to 60% (a full disk, a killed copy)."""
  import shutil  # pylint: disable=g-import-not-at-top
  copy = str(tmp_path / "data")
  shutil.copytree(data_dir, copy)
  path = schema.list_shards(copy)[shard]
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) * 6 // 10)
  return copy, path


def test_reading_a_truncated_shard_names_it_and_the_data_dir(data, tmp_path):
  copy, bad = _truncated_copy(data[0], tmp_path)
  assert pipeline.find_corrupt_shards(data[0]) == []
  assert pipeline.find_corrupt_shards(copy) == [bad]
  ds = pipeline.make_dataset(copy, split=1, subset="train", training=False, num_frames=T,
                             crop_size=S, batch_size=4)
  with pytest.raises(pipeline.CorruptDataError) as info:
    with pipeline.reading(copy):
      for _ in ds:
        pass
  message = str(info.value)
  assert message.startswith(f"--data_dir {copy!r}: truncated or corrupt shard: "
                            f"{os.path.basename(bad)} (")
  assert "{{function_node" not in message and "[Op:" not in message
  assert isinstance(info.value.__cause__, tf.errors.DataLossError)


def test_reading_leaves_a_data_loss_elsewhere_as_it_is(data):
  # A corrupt checkpoint, say: the shards are fine, so nothing to blame on them.
  with pytest.raises(tf.errors.DataLossError, match="checkpoint"):
    with pipeline.reading(data[0]):
      raise tf.errors.DataLossError(None, None, "corrupt checkpoint")


def test_appearance_augmentation_is_seeded_resumable_and_changes_only_the_clips(data):
  out, _ = data
  make = lambda skip=0, **aug: pipeline.make_dataset(
      out, 1, "train", num_frames=T, crop_size=S, batch_size=3, seed=5,
      return_video_index=True, skip_steps=skip, **aug)
  aug = dict(color_jitter=0.4, background_mix=0.5)
  plain, mixed = _take(make(), 4), _take(make(**aug), 4)
  for p, m in zip(plain, mixed):
    np.testing.assert_array_equal(p[1], m[1])  # same videos, same labels
    np.testing.assert_array_equal(p[2], m[2])
    assert not np.allclose(p[0], m[0])
    assert m[0].min() >= 0 and m[0].max() <= 255
  # Seeded, and a resumed run gets the same augmented batches.
  for x, y in zip(mixed[2:], _take(make(2, **aug), 2)):
    for a, b in zip(x, y):
      np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="color_jitter and background_mix"):
    pipeline.make_dataset(out, 1, "train", color_jitter=1.5)


def test_make_dataset_from_config_is_make_dataset_with_the_configs_data(data):
  out, _ = data
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.DataConfig(num_frames=T, crop_size=S, batch_size=3, eval_batch_size=2,
                              validation_clips=2, shuffle_seed=4, random_flip=False)
  train = pipeline.make_dataset_from_config(out, cfg, 1, "train", training=True)
  by_hand = pipeline.make_dataset(out, 1, "train", num_frames=T, crop_size=S, batch_size=3,
                                  seed=4, flip=False)
  for got, want in zip(_take(train, 1), _take(by_hand, 1)):
    for a, b in zip(got, want):
      np.testing.assert_array_equal(a, b)
  evaluation = pipeline.make_dataset_from_config(out, cfg, 1, "test", training=False,
                                                 return_video_index=True)
  clips, _, vids = (np.concatenate(x) for x in zip(*_take(evaluation, -1)))
  assert clips.shape[1:] == (T, S, S, 3)
  assert len(clips) == 2 * pipeline.count_videos(out, 1, "test")  # validation_clips each
  assert len(set(vids)) == pipeline.count_videos(out, 1, "test")
