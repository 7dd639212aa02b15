import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import preprocessing


def _clip(t=3, h=32, w=40, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _block_mean(x, f):
  """Reference downscale by an integer factor: bilinear with half-pixel centres at an
  exact factor 2 is the mean of each 2x2 block."""
  t, h, w, c = x.shape
  return x.reshape(t, h // f, f, w // f, f, c).astype(np.float64).mean(axis=(2, 4))


def test_eval_preprocess_is_centre_square_then_resize():
  clip = _clip(h=32, w=40)
  out = preprocessing.eval_preprocess(clip, 16).numpy()
  assert out.shape == (3, 16, 16, 3) and out.dtype == np.float32
  # Short side 32 -> 16 (factor 2), centre crop: columns 4..35 of the original.
  np.testing.assert_allclose(out, _block_mean(clip[:, :, 4:36], 2), atol=1e-3)


def test_eval_preprocess_identity_at_native_size_portrait():
  clip = _clip(h=40, w=24)
  out = preprocessing.eval_preprocess(clip, 24).numpy()
  np.testing.assert_allclose(out, clip[:, 8:32].astype(np.float32), atol=1e-4)


def test_eval_preprocess_batched_float_equals_per_clip_uint8():
  clips = np.stack([_clip(seed=1), _clip(seed=2)])
  batched = preprocessing.eval_preprocess(clips.astype(np.float32), 20).numpy()
  assert batched.shape == (2, 3, 20, 20, 3)
  for b in range(2):
    np.testing.assert_allclose(batched[b], preprocessing.eval_preprocess(clips[b], 20).numpy(),
                               atol=1e-4)
  assert batched.min() >= 0 and batched.max() <= 255


def test_eval_preprocess_graph_dynamic_size():
  fn = tf.function(lambda x: preprocessing.eval_preprocess(x, 8),
                   input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8)])
  for h, w in ((16, 24), (30, 18)):
    out = fn(np.zeros((1, 2, h, w, 3), np.uint8))
    assert out.shape == (1, 2, 8, 8, 3)


def test_eval_preprocess_converts_to_tflite_builtins():
  fn = tf.function(lambda x: preprocessing.eval_preprocess(x, 8),
                   input_signature=[tf.TensorSpec([1, 2, 16, 24, 3], tf.uint8)])
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [fn.get_concrete_function()], fn)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Select TF ops
  model = converter.convert()
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  interpreter = Interpreter(model_content=model)
  interpreter.allocate_tensors()
  x = _clip(t=2, h=16, w=24)[None]
  interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
  interpreter.invoke()
  got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
  np.testing.assert_allclose(got, fn(x).numpy(), atol=1e-3)


def test_random_crop_window_bounds_and_scale():
  sides = []
  for i in range(30):
    y, x, h, w = preprocessing.random_crop_window(
        30, 50, tf.constant([i, 1], tf.int64), scale_range=(0.5, 1.0)).numpy()
    assert h == w and 15 <= h <= 30
    assert 0 <= y and y + h <= 30 and 0 <= x and x + w <= 50
    sides.append(h)
  assert max(sides) - min(sides) >= 5  # scale jitter actually varies
  with pytest.raises(ValueError, match="scale_range"):
    preprocessing.random_crop_window(30, 50, tf.constant([0, 0], tf.int64), (0.0, 1.0))


def test_train_preprocess_is_a_crop_or_its_mirror_and_seeded():
  clip = _clip(t=2, h=20, w=30)
  seen_flip, seen_plain = False, False
  for i in range(12):
    seed = tf.constant([i, 3], tf.int64)
    out = preprocessing.train_preprocess(clip, 20, seed, scale_range=(1.0, 1.0)).numpy()
    again = preprocessing.train_preprocess(clip, 20, seed, scale_range=(1.0, 1.0)).numpy()
    np.testing.assert_array_equal(out, again)
    assert out.shape == (2, 20, 20, 3)
    # Full-height window at native size: must equal some column offset, maybe mirrored.
    matches = [(x, f) for x in range(11) for f in (False, True)
               if np.allclose(out, (clip[:, :, x:x + 20, :][:, :, ::-1] if f else
                                    clip[:, :, x:x + 20, :]), atol=1e-3)]
    assert matches, f"seed {i}: output is not a crop of the input"
    seen_flip |= any(f for _, f in matches)
    seen_plain |= any(not f for _, f in matches)
  assert seen_flip and seen_plain


def test_crop_and_resize_rejects_bad_rank():
  with pytest.raises(ValueError, match="clip must be"):
    preprocessing.eval_preprocess(np.zeros((4, 4, 3), np.uint8), 2)


def test_color_jitter_changes_every_frame_alike_and_keeps_the_range():
  rng = np.random.default_rng(3)
  clip = tf.constant(rng.uniform(0, 255, size=(4, 8, 8, 3)), tf.float32)
  assert preprocessing.color_jitter(clip, 0.0, tf.constant([1, 2])) is clip
  out = preprocessing.color_jitter(clip, 0.5, tf.constant([1, 2])).numpy()
  assert out.min() >= 0 and out.max() <= 255 and not np.allclose(out, clip.numpy())
  np.testing.assert_array_equal(out, preprocessing.color_jitter(clip, 0.5,
                                                                tf.constant([1, 2])).numpy())
  # One change for the whole clip: a still clip stays still.
  still = tf.repeat(clip[:1], 4, axis=0)
  jittered = preprocessing.color_jitter(still, 0.5, tf.constant([5, 6])).numpy()
  np.testing.assert_allclose(jittered, np.repeat(jittered[:1], 4, axis=0), atol=1e-4)


def test_background_mix_is_a_still_frame_of_the_next_clip():
  rng = np.random.default_rng(4)
  clips = rng.uniform(0, 255, size=(3, 5, 4, 4, 3)).astype("float32")
  assert preprocessing.background_mix(clips, 0.0, tf.constant([0, 1])) is clips
  out = preprocessing.background_mix(tf.constant(clips), 0.6, tf.constant([0, 1])).numpy()
  others = np.roll(clips, 1, axis=0)
  for b in range(3):
    # out - x = a (still - x): the added part is one frame of the clip before, the same
    # at every time step, with a in [0, 0.6).
    found = False
    for k in range(5):
      still = others[b, k][None]
      a = np.sum((out[b] - clips[b]) * (still - clips[b])) / np.sum((still - clips[b]) ** 2)
      if np.allclose(out[b], (1 - a) * clips[b] + a * still, atol=1e-3):
        found = 0 <= a < 0.6
    assert found, b
  # The motion is kept, scaled by 1 - a: frame differences are proportional.
  d_out = np.diff(out, axis=1)
  d_in = np.diff(clips, axis=1)
  ratio = np.sum(d_out * d_in, axis=(1, 2, 3, 4)) / np.sum(d_in * d_in, axis=(1, 2, 3, 4))
  np.testing.assert_allclose(d_out, ratio[:, None, None, None, None] * d_in, atol=1e-3)
  assert np.all((ratio > 0.4) & (ratio <= 1.0))
