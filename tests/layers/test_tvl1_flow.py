"""Tests of tsnet_tf/layers/tvl1_flow.py: shapes, equivalence, saving, export."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.flow import evaluation
from tsnet_tf.flow import tvl1
from tsnet_tf.layers import TVL1Flow

# Plumbing tests, as cheap as possible: min_level_size=4 keeps the second
# (8x8) level of these 16x16 frames, and 3 iterations at a blurred 8x8 level
# would not move the flow far enough to check its direction.
TINY = dict(num_scales=2, num_warps=1, num_iters=3, median_size=3,
            min_level_size=4, antialias=False)
SIZE = 16


def _clip(batch=2, steps=3, size=SIZE, channels=3, seed=0):
  """A clip whose frames drift right by 1 px a frame."""
  rng = np.random.default_rng(seed)
  clips = []
  for _ in range(batch):
    texture = evaluation.Texture(rng, extent=float(size))
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    clips.append([np.round(texture(x - t, y)) for t in range(steps)])
  clip = np.asarray(clips, np.float32)[..., None]
  return np.repeat(clip, channels, -1)


def _model(layer, steps=3, channels=3):
  inputs = keras.Input((steps, SIZE, SIZE, channels))
  return keras.Model(inputs, layer(inputs))


def test_output_is_flow_of_each_consecutive_pair():
  clip = _clip()
  out = TVL1Flow("fast", **TINY)(clip)
  assert out.shape == (2, 2, SIZE, SIZE, 2) and out.dtype == "float32"
  for b in range(2):
    for t in range(2):
      ref = tvl1(clip[b, t][None], clip[b, t + 1][None], "fast", **TINY)
      np.testing.assert_allclose(out[b, t], ref[0], atol=1e-4)
  # Frames drift right: frame_t(p) = frame_t+1(p + (1, 0)).
  assert float(np.mean(out[..., 4:-4, 4:-4, 0])) > 0.5


def test_symbolic_shape_and_config_round_trip():
  layer = TVL1Flow("accurate", num_iters=7, name="m1")
  config = layer.get_config()
  assert config["preset"] == "accurate" and config["num_iters"] == 7
  clone = TVL1Flow.from_config(config)
  assert clone.get_config() == config
  out = layer.compute_output_shape((None, 25, 112, 112, 3))
  assert out == (None, 24, 112, 112, 2)
  assert keras.saving.get_registered_object("tsnet_tf>TVL1Flow") is TVL1Flow


def test_keras_file_round_trip(tmp_path):
  model = _model(TVL1Flow("fast", **TINY))
  clip = _clip()
  # Direct calls, not predict(): predict would XLA-compile, which costs
  # seconds and is tested elsewhere.
  expected = model(clip)
  path = str(tmp_path / "m1.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert isinstance(loaded.layers[-1], TVL1Flow)
  np.testing.assert_allclose(loaded(clip), expected, atol=1e-5)


def test_learned_parameters_survive_keras_file(tmp_path):
  layer = TVL1Flow("fast", learnable=True, **TINY)
  model = _model(layer)
  layer.trainable_weights[0].assign(layer.trainable_weights[0] * 1.5)
  path = str(tmp_path / "learned.keras")
  model.save(path)
  loaded = keras.saving.load_model(path).layers[-1]
  assert loaded.learnable
  for a, b in zip(layer.weights, loaded.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_learnable_parameters_get_gradients():
  layer = TVL1Flow("fast", learnable=True, **TINY)
  clip = tf.constant(_clip(batch=1))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(layer(clip)))
  names = sorted(w.name for w in layer.trainable_weights)
  assert names == ["divergence_kernel", "forward_kernel", "gradient_kernel",
                   "lambda_", "tau", "theta"]
  grads = tape.gradient(loss, layer.trainable_weights)
  for w, g in zip(layer.trainable_weights, grads):
    assert g is not None, w.name
    assert np.all(np.isfinite(g.numpy())), w.name
  assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0
  # Initialised to TV-L1, so the untrained layer equals the fixed one.
  fixed = TVL1Flow("fast", **TINY)(clip)
  np.testing.assert_allclose(layer(clip), fixed, atol=1e-4)


def test_saved_model_and_tflite_conversion(tmp_path):
  model = _model(TVL1Flow("fast", **TINY), channels=1)
  clip = _clip(batch=1, channels=1)
  expected = model(clip)
  export_dir = str(tmp_path / "saved")
  model.export(export_dir, format="tf_saved_model", verbose=False)
  reloaded = tf.saved_model.load(export_dir)
  np.testing.assert_allclose(reloaded.serve(tf.constant(clip)), expected,
                             atol=1e-4)
  converter = tf.lite.TFLiteConverter.from_saved_model(export_dir)
  tflite = converter.convert()
  interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")
  interpreter = interpreter_lib.Interpreter(model_content=tflite)
  runner = interpreter.get_signature_runner()
  (name,) = runner.get_input_details()
  (out,) = runner(**{name: clip}).values()
  np.testing.assert_allclose(out, expected, atol=1e-3)


@pytest.mark.parametrize("shape,dtype,error,match", [
    ((2, 16, 16, 3), "float32", ValueError, "rank 4"),
    ((1, 1, 16, 16, 3), "float32", ValueError, "T >= 2"),
    ((1, 3, 16, 16, 3), "uint8", TypeError, "must be float"),
    ((1, 3, 16, 16, 2), "float32", ValueError, "1 or 3 channels"),
])
def test_bad_input_raises_clear_error(shape, dtype, error, match):
  with pytest.raises(error, match=match):
    TVL1Flow("fast", **TINY)(np.zeros(shape, dtype))


def test_bad_parameters_raise_at_construction():
  with pytest.raises(ValueError, match="unknown preset"):
    TVL1Flow("precise")
  with pytest.raises(ValueError, match="num_warps"):
    TVL1Flow("fast", num_warps=0)


def test_compute_flops_scales_with_pairs_and_iterations():
  full = dict(TINY, finest_scale=0)
  layer = TVL1Flow("fast", **full)
  one = layer.compute_flops((1, 2, 32, 32, 3))
  assert layer.compute_flops((None, 5, 32, 32, 3)) == 4 * one
  # Dominated by the iterations: 2 levels (32^2 + 16^2 px) x 3 iterations
  # x 52 operations at least.
  assert one > 3 * 52 * (32 * 32 + 16 * 16)
  # finest_scale=1 skips the 32x32 level.
  assert TVL1Flow("fast", **TINY).compute_flops((1, 2, 32, 32, 3)) < one / 3
  more = TVL1Flow("fast", **dict(full, num_iters=30))
  assert more.compute_flops((1, 2, 32, 32, 3)) > 5 * one
