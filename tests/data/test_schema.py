"""Tests for tsnet_tf/data/schema.py: a record written by the schema reads back."""

import numpy as np
import tensorflow as tf

from tsnet_tf.data import schema


def test_record_round_trip_and_context_only_parse():
  jpegs = [tf.io.encode_jpeg(np.full((6, 8, 3), v, np.uint8)).numpy() for v in (10, 200)]
  ex = schema.make_sequence_example(jpegs, 2, "wave", "wave/a.avi", 7, 12.5, 6, 8, {1: 1, 3: 2})
  rec = schema.parse_sequence_example(ex.SerializeToString(), splits=[1, 2, 3])
  assert rec[schema.FRAMES_KEY].numpy().tolist() == jpegs
  assert int(rec[schema.LABEL_INDEX_KEY]) == 2 and rec[schema.LABEL_TEXT_KEY].numpy() == b"wave"
  assert int(rec[schema.VIDEO_INDEX_KEY]) == 7 and int(rec[schema.NUM_FRAMES_KEY]) == 2
  assert float(rec[schema.FRAME_RATE_KEY]) == 12.5
  assert (int(rec[schema.HEIGHT_KEY]), int(rec[schema.WIDTH_KEY])) == (6, 8)
  # Splits absent from the record read as 0 (unused).
  assert [int(rec[schema.split_key(k)]) for k in (1, 2, 3)] == [1, 0, 2]
  ctx = schema.parse_sequence_example(ex.SerializeToString(), with_frames=False)
  assert schema.FRAMES_KEY not in ctx and int(ctx[schema.LABEL_INDEX_KEY]) == 2


def test_shard_names_and_listing(tmp_path):
  name = schema.shard_name(3, 12)
  assert name == "hmdb51-00003-of-00012.tfrecord" and schema.is_shard_name(name)
  assert not schema.is_shard_name(".hmdb51-00003-of-00012.tfrecord.tmp-1")
  for n in (name, schema.shard_name(0, 12), "notes.txt"):
    (tmp_path / n).write_bytes(b"")
  assert [p.rsplit("/", 1)[1] for p in schema.list_shards(str(tmp_path))] == [
      schema.shard_name(0, 12), name]
