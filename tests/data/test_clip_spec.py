"""Tests for tsnet_tf/data/clip_spec.py: serialisation, the one sampling rule, the carrier layer."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import clip_spec
from tsnet_tf.data import preprocessing
from tsnet_tf.data import sampling
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video
from tsnet_tf.layers import clip_contract
from tsnet_tf.models import build_rgb_model

SPEC = clip_spec.ClipSpec(num_frames=4, crop_size=16, frame_stride=3,
                          stored_frames=clip_spec.StoredFrames(stride=2, short_side=24,
                                                               jpeg_quality=90))


def test_round_trip_and_clear_errors():
  assert clip_spec.ClipSpec.from_json(SPEC.to_json()) == SPEC
  assert clip_spec.ClipSpec.from_dict(SPEC.to_dict()) == SPEC
  with pytest.raises(clip_spec.ClipSpecError, match="unknown key.*'frame_step'"):
    clip_spec.ClipSpec.from_dict({**SPEC.to_dict(), "frame_step": 2})
  with pytest.raises(clip_spec.ClipSpecError, match="'frame_stride' must be an integer >= 1"):
    clip_spec.ClipSpec.from_dict({**SPEC.to_dict(), "frame_stride": 0})
  with pytest.raises(clip_spec.ClipSpecError, match="missing 'crop_size'"):
    clip_spec.ClipSpec.from_dict({"num_frames": 4})
  with pytest.raises(clip_spec.ClipSpecError, match="newer"):
    clip_spec.ClipSpec.from_dict({**SPEC.to_dict(), "version": 99})
  with pytest.raises(clip_spec.ClipSpecError, match="not valid JSON"):
    clip_spec.ClipSpec.from_json("{")


def test_from_training_reads_the_conversion_settings():
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.load_config(None, "rgb", "data.frame_stride=3,data.num_frames=5")
  spec = clip_spec.ClipSpec.from_training(
      cfg.data, {"short_side": 72, "jpeg_quality": 85, "frame_stride": 2})
  assert (spec.num_frames, spec.frame_stride, spec.video_stride) == (5, 3, 6)
  assert spec.stored_frames == clip_spec.StoredFrames(stride=2, short_side=72, jpeg_quality=85)


@pytest.mark.parametrize("n", [1, 5, 9, 23, 24, 40])
def test_video_indices_are_the_converter_then_evaluation(n):
  # What prepare_hmdb51 + evaluation do: keep 1 frame in 2, then the centre clip
  # of 4 frames 3 apart among the kept frames (looped when too few).
  kept = np.arange(n)[::2]
  expected = kept[sampling.eval_indices_np(len(kept), 4, 2, 3)]
  np.testing.assert_array_equal(SPEC.video_indices(n, num_clips=2), expected)


@pytest.mark.parametrize("n", [1, 5, 9, 23, 24, 40])
def test_window_and_graph_sampling_pick_the_same_frames(n):
  frames = np.arange(n, dtype=np.int32)[None, :, None, None, None]  # frame i holds i
  want = SPEC.video_indices(n)[0]
  whole = SPEC.sample(tf.constant(frames)).numpy()[0, :, 0, 0, 0]
  np.testing.assert_array_equal(whole, want)
  begin, end = SPEC.window(n)
  sent = SPEC.sample(tf.constant(frames[:, begin:end])).numpy()[0, :, 0, 0, 0]
  np.testing.assert_array_equal(sent, want)
  if n >= 20:  # a window is shorter than the video when the clip fits
    assert end - begin == (4 - 1) * 3 * 2 + 1


def test_stored_frames_are_the_converters_pixels():
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (3, 30, 40, 3), np.uint8)
  jpegs, h, w = tfrecords.encode_frames(frames, tfrecords.ConversionSettings(short_side=24))
  decoded = np.stack([tf.io.decode_jpeg(j).numpy() for j in jpegs])
  np.testing.assert_array_equal(SPEC.stored_frames_of(frames), decoded)
  assert (h, w) == (24, 32)
  clips = SPEC.clip_of_video(frames)
  assert clips.shape == (1, 4, 24, 32, 3)
  np.testing.assert_array_equal(clips[0], decoded[SPEC.video_indices(3)[0]])


def test_resize_short_side_matches_the_converter_size_and_skips_stored_frames():
  rng = np.random.default_rng(1)
  frames = rng.integers(0, 256, (2, 45, 61, 3), np.uint8)
  for short, shape in ((24, (24, 33)), (45, (45, 61))):
    out = preprocessing.resize_short_side(frames, short).numpy()
    assert out.shape == (2,) + shape + (3,) and out.dtype == np.uint8
    assert video.short_side_size(45, 61, short) == shape
  np.testing.assert_array_equal(preprocessing.resize_short_side(frames, 45), frames)
  # Smooth content: TF's antialiased bilinear is within a few levels of PIL's.
  smooth = np.broadcast_to(np.linspace(0, 255, 61).astype(np.uint8)[None, None, :, None],
                           (1, 45, 61, 3)).copy()
  ours = preprocessing.resize_short_side(smooth, 24).numpy().astype(int)
  pil = tfrecords.resize_frames(smooth, 24).astype(int)
  assert np.abs(ours - pil).max() <= 3


SHARED_VIDEO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "..", "shared", "data", "video")
RAW = clip_spec.ClipSpec(num_frames=8, crop_size=16)  # raw frames, no stored format


def _streamed_equals_read_all(path, specs=(SPEC, RAW), num_clips=(1, 3)):
  """`read_clip`/`read_window` (streaming) == `clip_of_video`/`window_of_video`
  of the whole decoded video, bit for bit."""
  frames = video.read_video(path)
  for spec in specs:
    for k in num_clips:
      want = spec.clip_of_video(frames, k)
      got = spec.read_clip(path, k)
      assert got.dtype == np.uint8 and got.shape == want.shape
      np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(spec.read_window(path), spec.window_of_video(frames))


@pytest.mark.parametrize("n", [3, 30])  # looped (shorter than a clip) and centre clip
def test_streamed_clip_is_the_read_all_clip(tmp_path, n):
  rng = np.random.default_rng(n)
  path = str(tmp_path / "v.avi")
  video.write_video(path, rng.integers(0, 256, (n, 36, 44, 3), dtype=np.uint8), fps=25)
  _streamed_equals_read_all(path)


@pytest.mark.skipif(not os.path.isdir(SHARED_VIDEO), reason="needs ../shared/data/video")
def test_streamed_clip_is_the_read_all_clip_on_a_real_video():
  _streamed_equals_read_all(os.path.join(SHARED_VIDEO, "kinetics", "skateboarding.mp4"),
                            num_clips=(3,))  # K=3 holds the centre clip


@pytest.mark.slow  # decodes 103 1080p frames several times (~1 GB while reading all)
@pytest.mark.skipif(not os.path.isdir(SHARED_VIDEO), reason="needs ../shared/data/video")
def test_streamed_clip_is_the_read_all_clip_on_the_1080p_video():
  spec = clip_spec.ClipSpec(num_frames=8, crop_size=112, stored_frames=clip_spec.StoredFrames(
      short_side=128, jpeg_quality=90))
  _streamed_equals_read_all(os.path.join(SHARED_VIDEO, "ntu_drink_water_1920x1080.avi"),
                            specs=(spec,), num_clips=(1,))


def test_contract_survives_save_load_and_is_replaced(tmp_path):
  model = build_rgb_model(3, 4, 16, backbone="light", width=4)
  assert clip_contract.from_model(model) is None
  tagged = clip_contract.attach(model, SPEC, ["a", "b", "c"])
  x = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  np.testing.assert_allclose(tagged(x), model(x), atol=1e-6)
  path = str(tmp_path / "m.keras")
  tagged.save(path)
  loaded = keras.saving.load_model(path)
  assert clip_contract.from_model(loaded) == (SPEC, ["a", "b", "c"])
  retagged = clip_contract.attach(loaded, SPEC.replace(frame_stride=1), ["x", "y", "z"])
  assert len([l for l in retagged.layers if isinstance(l, clip_contract.ClipContract)]) == 1
  assert clip_contract.from_model(retagged)[0].frame_stride == 1
  np.testing.assert_allclose(retagged(x), model(x), atol=1e-5)
  with pytest.raises(clip_spec.ClipSpecError, match="takes clips of shape"):
    clip_contract.attach(model, SPEC.replace(num_frames=8))
  with pytest.raises(clip_spec.ClipSpecError, match="2 labels"):
    clip_contract.attach(model, SPEC, ["a", "b"])
  assert os.path.getsize(path) > 0
