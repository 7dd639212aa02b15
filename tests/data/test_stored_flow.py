"""Stored TV-L1 flow: conversion (round trip against tvl1) and the training pipeline's
flow clips (same frames, window, flip and resize as the RGB clip)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import flow_extraction
from tsnet_tf.data import pipeline
from tsnet_tf.data import schema
from tsnet_tf.data import stored_flow
from tsnet_tf.data import synthetic
from tsnet_tf.data import tfrecords
from tsnet_tf.flow import batching
from tsnet_tf.flow import quantize
from tsnet_tf.flow import tvl1

BOUND = 8.0


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("synth") / "hmdb")
  synthetic.generate_dataset(root, num_classes=2, videos_per_class=2, seed=3, height=32,
                             width=40, min_seconds=0.3, max_seconds=0.4, fps=(25.0,))
  return root


def _convert(synth, out, **flow):
  settings = tfrecords.ConversionSettings(short_side=0, jpeg_quality=95, **flow)
  return tfrecords.convert(os.path.join(synth, "videos"), os.path.join(synth, "splits"), out,
                           splits=[1], settings=settings, num_workers=0, num_shards=2,
                           progress=False)


def _records(data_dir, with_flow=True):
  out = []
  for path in schema.list_shards(data_dir):
    for s in tf.data.TFRecordDataset(path):
      rec = schema.parse_sequence_example(s, splits=(1,), with_flow=with_flow)
      out.append({k: v.numpy() for k, v in rec.items()})
  return out


def _decode(jpegs, channels):
  return np.stack([tf.io.decode_jpeg(j, channels=channels).numpy() for j in jpegs])


def test_conversion_stores_tvl1_of_the_stored_frames(synth, tmp_path):
  plain = _convert(synth, str(tmp_path / "plain"))
  summary = _convert(synth, str(tmp_path / "flow"), flow_preset="fast", flow_stride=2,
                     flow_bound=BOUND)
  # Without flow: no flow key anywhere, settings as before the flow fields existed.
  assert "flow" not in plain and "flow_preset" not in plain["settings"]
  assert all(r[schema.FLOW_STRIDE_KEY] == 0 and r[schema.FLOW_X_KEY].size == 0
             for r in _records(str(tmp_path / "plain")))
  assert summary["flow"] == {"preset": "fast", "stride": 2, "bound": BOUND, "overrides": {}}
  assert summary["settings"]["flow_stride"] == 2
  plain_frames = {r[schema.MEDIA_ID_KEY]: r[schema.FRAMES_KEY]
                  for r in _records(str(tmp_path / "plain"))}
  records = _records(str(tmp_path / "flow"))
  largest = 0.0
  assert len(records) == summary["num_videos"] == 4
  for rec in records:
    # The frames are those of a conversion without flow, byte for byte.
    np.testing.assert_array_equal(rec[schema.FRAMES_KEY], plain_frames[rec[schema.MEDIA_ID_KEY]])
    n = rec[schema.NUM_FRAMES_KEY]
    assert rec[schema.FLOW_NUM_KEY] == n - 2 == len(rec[schema.FLOW_X_KEY])
    assert rec[schema.FLOW_STRIDE_KEY] == 2 and rec[schema.FLOW_BOUND_KEY] == BOUND
    assert rec[schema.FLOW_PRESET_KEY] == b"fast"
    frames = _decode(rec[schema.FRAMES_KEY], 3).astype(np.float32)
    expected = np.clip(np.asarray(tvl1(frames[:-2], frames[2:], "fast")), -BOUND, BOUND)
    stored = np.stack([quantize.uint8_to_flow(_decode(rec[key], 1)[..., 0], BOUND)
                       for key in (schema.FLOW_X_KEY, schema.FLOW_Y_KEY)], axis=-1)
    err = np.abs(stored - expected)
    # Quantisation step 2 * bound / 255 = 0.063 px; JPEG (q95) adds a little.
    assert err.mean() < 2 * BOUND / 255, err.mean()
    assert np.percentile(err, 99) < 4 * 2 * BOUND / 255, np.percentile(err, 99)
    largest = max(largest, float(np.abs(expected).max()))
  assert largest > 0.5  # the videos move


class _CountingFrames(flow_extraction.StoredFrames):
  """StoredFrames that records which frames each access decodes."""

  def __init__(self, jpegs):
    super().__init__(jpegs)
    self.accessed = []

  def __getitem__(self, index):
    self.accessed.append(int(index))
    return super().__getitem__(index)


def test_flow_pairs_decode_lazily_and_match_the_decoded_array():
  rng = np.random.RandomState(0)
  base = rng.randint(0, 256, (6, 8, 3)).repeat(4, 0).repeat(4, 1).astype(np.uint8)  # 24x32
  frames = np.stack([np.roll(base, t, axis=1) for t in range(7)])
  jpegs = [tf.io.encode_jpeg(f, quality=95).numpy() for f in frames]
  lazy = _CountingFrames(jpegs)
  decoded = np.stack([lazy[i] for i in range(len(lazy))])
  lazy.accessed.clear()
  expected = np.concatenate(list(batching.flow_pairs(decoded, 2, "fast", batch_size=2)))
  got = np.concatenate(list(batching.flow_pairs(lazy, 2, "fast", batch_size=2)))
  np.testing.assert_array_equal(got, expected)
  assert got.shape == (5, 24, 32, 2)
  # Frames are decoded per call (two pairs: 4 frames), never the whole video at once;
  # each frame is decoded at most as the first and as the second of a pair (+ padding).
  assert max(lazy.accessed.count(i) for i in range(7)) <= 3
  assert lazy.accessed[1:5] == [0, 1, 2, 3]  # after reading frame 0's size: one call


def test_student_stream_is_the_plain_stream_plus_flow_and_resumes(synth, tmp_path):
  data_dir = str(tmp_path / "flow")
  _convert(synth, data_dir, flow_preset="fast", flow_stride=1, flow_bound=BOUND)
  make = lambda mode, skip=0: pipeline.make_dataset(
      data_dir, 1, "train", num_frames=4, crop_size=16, batch_size=2, seed=7,
      stored_flow=mode, skip_steps=skip)
  take = lambda ds, n: [next(it) for it in [iter(ds)] for _ in range(n)]
  plain, both = take(make(""), 5), take(make("clip_and_flow"), 5)
  flows = take(make("flow"), 5)
  for (clip, y), (x, y2), (f, y3) in zip(plain, both, flows):
    # The student sees the clips an RGB-only run sees (same frames, window, flip).
    np.testing.assert_array_equal(x["clip"].numpy(), clip.numpy())
    np.testing.assert_array_equal(y2.numpy(), y.numpy())
    np.testing.assert_array_equal(f["flow"].numpy(), x["flow"].numpy())
    np.testing.assert_array_equal(y3.numpy(), y.numpy())
  # A run resumed after 3 steps continues the same stream (checkpoint resume).
  for (x, y), (x2, y2) in zip(both[3:], take(make("clip_and_flow", skip=3), 2)):
    np.testing.assert_array_equal(x2["flow"].numpy(), x["flow"].numpy())
    np.testing.assert_array_equal(x2["clip"].numpy(), x["clip"].numpy())
  assert np.abs(both[0][0]["flow"].numpy()).max() > 0.1  # the videos move


def test_bad_flow_settings_raise():
  for kwargs, match in ((dict(flow_preset="fastest"), "--flow_preset"),
                        (dict(flow_preset="fast", flow_stride=0), "--flow_stride"),
                        (dict(flow_preset="fast", flow_bound=0.0), "--flow_bound")):
    with pytest.raises(ValueError, match=match):
      tfrecords.ConversionSettings(**kwargs).validate()


# ---------------------------------------------------------------------------
# Hand-made data directories: known frames and known stored flow.


def _jpeg(image, quality=100):
  return tf.io.encode_jpeg(image, quality=quality).numpy()


def _write_data_dir(path, videos, flow_stride=1, preset="fast"):
  """videos: list of (frames uint8 [N,H,W,3], flow {"x","y"} of grey uint8 [M,H,W])."""
  os.makedirs(path)
  with tf.io.TFRecordWriter(os.path.join(path, schema.shard_name(0, 1))) as writer:
    for i, (frames, flow) in enumerate(videos):
      flow_arg = {"x": [_jpeg(f[..., None]) for f in flow["x"]],
                  "y": [_jpeg(f[..., None]) for f in flow["y"]],
                  "stride": flow_stride, "bound": BOUND, "preset": preset}
      ex = schema.make_sequence_example([_jpeg(f) for f in frames], i % 2, f"c{i % 2}",
                                        f"c{i % 2}/v{i}.avi", i, 25.0, frames.shape[1],
                                        frames.shape[2], {1: 1}, flow=flow_arg)
      writer.write(ex.SerializeToString())
  summary = {"splits": {"1": {"train": len(videos), "validation": 0, "test": 0}},
             "settings": {"short_side": 0, "jpeg_quality": 100, "frame_stride": 1},
             "flow": stored_flow.summary_entry(preset, flow_stride, BOUND)}
  with open(os.path.join(path, schema.SUMMARY_FILE), "w") as f:
    json.dump(summary, f)
  with open(os.path.join(path, schema.LABELS_FILE), "w") as f:
    f.write("c0\nc1\n")
  return str(path)


def test_flow_clip_follows_the_frames_window_flip_and_resize(tmp_path):
  # Frames: a horizontal ramp (value 2 * column); stored x flow: quantised value
  # 64 + column, y: 160. Any window, flip and resize of both keeps q_x = 64 + rgb / 2
  # once the x flow is unflipped and unscaled.
  h, w, n = 40, 64, 6
  ramp = np.tile((2 * np.arange(w)).astype(np.uint8)[None, :, None], (h, 1, 3))
  frames = np.stack([ramp] * n)
  fx = np.tile((64 + np.arange(w)).astype(np.uint8)[None, :], (h, 1))
  flow = {"x": np.stack([fx] * (n - 1)), "y": np.full((n - 1, h, w), 160, np.uint8)}
  data_dir = _write_data_dir(tmp_path / "d", [(frames, flow)] * 4)
  side, crop = 24, 12  # scale_range fixes the window side at 0.6 * 40
  ds = pipeline.make_dataset(data_dir, training=True, num_frames=3, crop_size=crop,
                             batch_size=16, seed=1, scale_range=(0.6, 0.6),
                             stored_flow="clip_and_flow")
  x, labels = next(iter(ds))
  clips, flows = x["clip"].numpy(), x["flow"].numpy()
  assert flows.shape == (16, 2, crop, crop, 2) and flows.dtype == np.float32
  assert labels.shape == (16,)
  scale = crop / side
  step = 2 * BOUND / 255
  signs = []
  for clip, f in zip(clips, flows):
    sign = 1.0 if clip[0, :, -1, 0].mean() > clip[0, :, 0, 0].mean() else -1.0
    signs.append(sign)
    q_x = (f[..., 0] / (sign * scale) + BOUND) / step
    np.testing.assert_allclose(q_x, 64 + clip[1:, ..., 0] / 2, atol=1.0)
    np.testing.assert_allclose(f[..., 1], (160 * step - BOUND) * scale, atol=0.01)
  assert -1.0 in signs and 1.0 in signs  # both flips were drawn


def test_translation_video_gives_its_motion(tmp_path):
  # A texture moving 1 px/frame to the right; stored flow of stride 2 (2 px) from
  # tvl1, read at crop side 24 -> 12: 1 px, negated when flipped.
  rng = np.random.default_rng(0)
  h, w, n = 48, 64, 8
  coarse = rng.uniform(0, 255, (1, h // 4, (w + n) // 4, 3)).astype(np.float32)
  texture = tf.image.resize(coarse, (h, w + n), method="bicubic").numpy()[0].clip(0, 255)
  frames = np.stack([texture[:, n - t:n - t + w] for t in range(n)]).astype(np.uint8)
  jpegs = [_jpeg(f, 95) for f in frames]
  flow = flow_extraction.encode_video_flow(jpegs, 2, "fast", BOUND, 95)
  assert len(flow["x"]) == n - 2
  decoded = {k: np.stack([tf.io.decode_jpeg(j).numpy()[..., 0] for j in flow[k]])
             for k in ("x", "y")}
  motion = float(quantize.uint8_to_flow(decoded["x"], BOUND)[:, 8:-8, 8:-8].mean())
  assert abs(motion - 2.0) < 0.3, motion  # tvl1 sees the 2 px
  data_dir = _write_data_dir(tmp_path / "d", [(frames, decoded)] * 2, flow_stride=2)
  ds = pipeline.make_dataset(data_dir, training=True, num_frames=3, crop_size=12,
                             batch_size=8, seed=0, frame_stride=2, scale_range=(0.5, 0.5),
                             stored_flow="clip_and_flow")
  x, _ = next(iter(ds))
  seen = set()
  for clip, f in zip(x["clip"].numpy(), x["flow"].numpy()):
    # The moving texture's column profile tells a flipped clip: frame 1 is frame 0
    # shifted right (unflipped) or left (flipped) by 2 px at stored size = 1 px here.
    right = np.abs(clip[1, :, 1:] - clip[0, :, :-1]).mean()
    left = np.abs(clip[1, :, :-1] - clip[0, :, 1:]).mean()
    sign = 1.0 if right < left else -1.0
    seen.add(sign)
    inner = f[:, 2:-2, 2:-2]
    assert abs(inner[..., 0].mean() - sign * motion / 2) < 0.15, (sign, inner[..., 0].mean())
    assert abs(inner[..., 1].mean()) < 0.15
  assert seen == {1.0, -1.0}


def test_looped_clip_has_zero_flow_across_the_seam(tmp_path):
  h, w, n = 16, 16, 3
  frames = np.full((n, h, w, 3), 100, np.uint8)
  flow = {"x": np.full((n - 1, h, w), 200, np.uint8), "y": np.full((n - 1, h, w), 200, np.uint8)}
  data_dir = _write_data_dir(tmp_path / "d", [(frames, flow)])
  ds = pipeline.make_dataset(data_dir, training=True, num_frames=4, crop_size=8, batch_size=1,
                             seed=0, flip=False, scale_range=(1.0, 1.0), stored_flow="flow")
  x, _ = next(iter(ds))
  f = x["flow"].numpy()[0]
  assert set(x) == {"flow"}
  expected = (200 * 2 * BOUND / 255 - BOUND) * 8 / 16
  np.testing.assert_allclose(f[:2], expected, atol=1e-4)  # pairs (0, 1), (1, 2)
  np.testing.assert_array_equal(f[2], 0.0)  # (2, 0): the loop seam


def test_pipeline_refuses_flow_it_cannot_serve(tmp_path):
  frames = np.zeros((4, 16, 16, 3), np.uint8)
  flow = {"x": np.zeros((3, 16, 16), np.uint8), "y": np.zeros((3, 16, 16), np.uint8)}
  data_dir = _write_data_dir(tmp_path / "d", [(frames, flow)])
  kwargs = dict(num_frames=2, crop_size=8, batch_size=1)
  with pytest.raises(ValueError, match=r"frame_stride=2 .*stores flow with stride 1"):
    pipeline.make_dataset(data_dir, frame_stride=2, stored_flow="flow", **kwargs)
  with pytest.raises(ValueError, match="training input only"):
    pipeline.make_dataset(data_dir, training=False, stored_flow="flow", **kwargs)
  with pytest.raises(ValueError, match="stored_flow must be"):
    pipeline.make_dataset(data_dir, stored_flow="rgb", **kwargs)
  os.remove(os.path.join(data_dir, schema.SUMMARY_FILE))
  with open(os.path.join(data_dir, schema.SUMMARY_FILE), "w") as f:
    json.dump({"splits": {"1": {"train": 1}}}, f)
  with pytest.raises(ValueError, match="has no stored flow"):
    pipeline.make_dataset(data_dir, stored_flow="flow", **kwargs)


def test_check_summary_names_the_key_and_the_stored_value():
  summary = {"flow": stored_flow.summary_entry("fast", 3, 4.0)}
  stored_flow.check_summary(summary, "d", "fast", 4.0, 3)
  for args, match in ((("accurate", 4.0, 3), r"model.flow.preset='accurate' .*flow.preset='fast'"),
                      (("fast", 20.0, 3), r"model.flow.bound=20.0 .*flow.bound=4.0"),
                      (("fast", 4.0, 1), r"data.frame_stride=1 .*flow.stride=3")):
    with pytest.raises(stored_flow.StoredFlowError, match=match):
      stored_flow.check_summary(summary, "d", *args)
  with pytest.raises(stored_flow.StoredFlowError, match="model.flow.overrides"):
    stored_flow.check_summary(summary, "d", "fast", 4.0, 3, {"num_iters": 2})
  with pytest.raises(stored_flow.StoredFlowError, match="has no stored flow"):
    stored_flow.check_summary({}, "d", "fast", 4.0, 3)
