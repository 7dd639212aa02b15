import keras
import numpy as np
import pytest

from tsnet_tf import config as config_lib
from tsnet_tf import layers
from tsnet_tf import models
from tsnet_tf.models import classifiers

K, T, S = 4, 4, 32


def _clip(n=2, seed=0):
  return np.random.RandomState(seed).uniform(0, 255, (n, T, S, S, 3)).astype("float32")


def _log_softmax(z):
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def rgb_model():
  return models.build_rgb_model(K, T, S, backbone="light", dropout_rate=0.0,
                                name="rgb")


@pytest.fixture(scope="module")
def teacher():
  pytest.importorskip("tsnet_tf.layers.tvl1_flow",
                      reason="TVL1Flow layer not available")
  return models.build_teacher(K, T, S, backbone="light", width=8,
                              flow_preset="fast", flow_bound=4.0,
                              dropout_rate=0.0, name="flow")


@pytest.fixture(scope="module")
def cheap_teacher():
  """A teacher whose TV-L1 does little work: for tests of plumbing, not flow."""
  pytest.importorskip("tsnet_tf.layers.tvl1_flow",
                      reason="TVL1Flow layer not available")
  return models.build_teacher(K, T, S, backbone="light", width=8,
                              flow_preset="fast", flow_bound=4.0,
                              flow_overrides=dict(num_scales=2, num_warps=1,
                                                  num_iters=2, median_size=0),
                              dropout_rate=0.0, name="flow")


def test_rgb_model_shapes_and_layers(rgb_model):
  assert rgb_model.input_shape == (None, T, S, S, 3)
  logits = rgb_model(_clip())
  assert logits.shape == (2, K) and logits.dtype == "float32"
  assert rgb_model.get_layer("features").output.shape == (None, 128)
  assert rgb_model.layers[1].name == "normalize"  # first layer after input
  assert rgb_model.layers[-1].get_config()["activation"] == "linear"


def test_normalization_matches_hand_computation():
  layer = models.video_normalization(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
  x = np.array([[0.0, 127.5, 255.0]], "float32")
  expected = (x / 255.0 - np.array([0.5, 0.25, 0.0])) / np.array([0.5, 0.25, 2.0])
  np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6, atol=1e-6)


def test_width_overrides_multiplier():
  m = models.build_rgb_model(K, T, S, backbone="light", width=8)
  assert models.feature_size(m) == 64
  with pytest.raises(ValueError, match="num_frames"):
    models.build_teacher(K, 1, S, backbone="light")


def test_feature_and_logits_share_weights(rgb_model):
  fl = models.feature_and_logits(rgb_model)
  x = _clip()
  features, logits = fl(x, training=False)
  np.testing.assert_allclose(np.asarray(logits), np.asarray(rgb_model(x)),
                             rtol=1e-5, atol=1e-6)
  head = rgb_model.get_layer("logits")
  by_hand = np.asarray(features) @ np.asarray(head.kernel) + np.asarray(head.bias)
  np.testing.assert_allclose(np.asarray(logits), by_hand, rtol=1e-4, atol=1e-5)
  assert {id(w) for w in fl.weights} == {id(w) for w in rgb_model.weights}
  with pytest.raises(ValueError, match="no layer named 'nope'"):
    models.feature_and_logits(rgb_model, "nope")


def test_flow_scaling_clips_and_divides():
  layer = layers.FlowScaling(bound=4.0)
  x = np.array([[-10.0, -2.0, 0.0, 3.0, 9.0]], "float32")
  np.testing.assert_allclose(np.asarray(layer(x)), [[-1.0, -0.5, 0.0, 0.75, 1.0]])
  assert layers.FlowScaling.from_config(layer.get_config()).bound == 4.0


def test_flow_scaling_subtracts_each_frames_median_motion():
  # A camera pan of (3, -1) px over the whole frame, and a hand moving (2, 2)
  # px against it in a quarter of the frame (the median is the pan's).
  rng = np.random.RandomState(0)
  flow = np.tile(np.array([3.0, -1.0], "float32"), (2, 3, 8, 8, 1))
  flow[:, :, :4, :4] += 2.0
  flow[0, 1] += 1.5  # frames differ: the median is per frame
  flow += rng.uniform(-0.01, 0.01, flow.shape).astype("float32")
  layer = layers.FlowScaling(bound=4.0, subtract_median=True)
  expected = np.clip(flow - np.median(flow, axis=(2, 3), keepdims=True), -4, 4) / 4
  got = np.asarray(layer(flow))
  np.testing.assert_allclose(got, expected, atol=1e-6)
  # The background is still; the hand keeps its own (2, 2) px.
  np.testing.assert_allclose(got[:, :, 6, 6], 0.0, atol=0.01)
  np.testing.assert_allclose(got[:, :, 1, 1], 0.5, atol=0.01)
  restored = layers.FlowScaling.from_config(layer.get_config())
  assert restored.subtract_median and not layers.FlowScaling(4.0).subtract_median
  # Off (the default): the pan stays in the flow.
  np.testing.assert_allclose(np.asarray(layers.FlowScaling(4.0)(flow))[1, :, 6, 6, 0], 0.75,
                             atol=0.01)


def test_late_fusion_is_log_of_mean_probability():
  rng = np.random.RandomState(1)
  a, b = rng.normal(size=(3, 5)) * 4, rng.normal(size=(3, 5)) * 4
  fused = np.asarray(layers.LateFusion()([a.astype("float32"), b.astype("float32")]))
  mean_p = (np.exp(_log_softmax(a)) + np.exp(_log_softmax(b))) / 2
  np.testing.assert_allclose(fused, np.log(mean_p), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.exp(_log_softmax(fused)), mean_p, atol=1e-6)


def test_late_fusion_geometric_is_normalised_product_of_probabilities():
  rng = np.random.RandomState(2)
  a, b = rng.normal(size=(3, 5)) * 4, rng.normal(size=(3, 5)) * 4
  fused = np.asarray(layers.LateFusion(mode="geometric")(
      [a.astype("float32"), b.astype("float32")]))
  product = np.sqrt(np.exp(_log_softmax(a)) * np.exp(_log_softmax(b)))
  geometric = product / product.sum(axis=-1, keepdims=True)
  np.testing.assert_allclose(fused, np.log(geometric), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.exp(fused).sum(axis=-1), 1.0, atol=1e-6)
  # The veto: rgb confidently picks class 0, flow is sure class 0 is wrong
  # and mildly prefers 1. The mean follows rgb, the product follows flow.
  rgb = np.array([[6.0, 3.0, 0.0]], "float32")
  flow = np.array([[-6.0, 1.0, 0.0]], "float32")
  mean = np.asarray(layers.LateFusion(mode="mean")([rgb, flow]))
  product = np.asarray(layers.LateFusion(mode="geometric")([rgb, flow]))
  assert np.argmax(mean) == 0 and np.argmax(product) == 1


def test_late_fusion_modes_config_and_errors():
  assert config_lib.FUSION_MODES == ("mean", "geometric")
  assert layers.LateFusion().mode == "mean"
  layer = layers.LateFusion(mode="geometric", name="fuse")
  config = layer.get_config()
  assert config["mode"] == "geometric"
  again = layers.LateFusion.from_config(config)
  assert again.mode == "geometric" and again.name == "fuse"
  with pytest.raises(ValueError, match=r"'median'.*mean, geometric"):
    layers.LateFusion(mode="median")


def test_teacher_computes_flow_in_graph(teacher):
  assert teacher.get_layer("flow").output.shape == (None, T - 1, S, S, 2)
  assert teacher.get_layer("flow_scaling").output.shape == (None, T - 1, S, S, 2)
  assert teacher.get_layer("features").output.shape == (None, 64)
  # A bright square moving right by 2 px per frame: the flow layer sees it
  # and the scaled flow feeding M2 is 2 / bound = 0.5 on the square.
  clip = np.zeros((1, T, S, S, 3), "float32")
  for t in range(T):
    clip[0, t, 10:20, 6 + 2 * t:16 + 2 * t] = 200.0
  scaled = keras.Model(teacher.input, teacher.get_layer("flow_scaling").output)
  u = np.asarray(scaled(clip))[0, :, 13:17, 10:14, 0]
  np.testing.assert_allclose(np.median(u), 0.5, atol=0.15)
  assert teacher(clip).shape == (1, K)


def test_two_stream_equals_hand_fusion(rgb_model, cheap_teacher):
  fused = models.build_two_stream(rgb_model, cheap_teacher)
  x = _clip(3)
  mean_p = (np.exp(_log_softmax(np.asarray(rgb_model(x), "float64")))
            + np.exp(_log_softmax(np.asarray(cheap_teacher(x), "float64")))) / 2
  np.testing.assert_allclose(np.asarray(fused(x)), np.log(mean_p), rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="distinct names"):
    models.build_two_stream(rgb_model, rgb_model)
  with pytest.raises(ValueError, match="unknown fusion mode 'max'"):
    models.build_two_stream(rgb_model, cheap_teacher, fusion="max")


def _round_trip(model, tmp_path, x):
  path = str(tmp_path / f"{model.name}.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)),
                             rtol=1e-5, atol=1e-5)
  return loaded


def test_rgb_model_round_trip_needs_no_custom_objects(rgb_model, tmp_path):
  loaded = _round_trip(rgb_model, tmp_path, _clip())
  # Built-in Keras layers and FrameConv2D, registered by `import tsnet_tf.layers`:
  # load_model needs no custom_objects.
  modules = {type(l).__module__.split(".")[0] for l in loaded.layers}
  assert modules == {"keras", "tsnet_tf"}
  assert {type(l).__name__ for l in loaded.layers
          if type(l).__module__.startswith("tsnet_tf")} == {"FrameConv2D"}


def test_teacher_and_two_stream_round_trip(rgb_model, cheap_teacher, tmp_path):
  x = _clip(1)
  loaded = _round_trip(cheap_teacher, tmp_path, x)
  assert loaded.get_layer("flow_scaling").bound == 4.0
  assert loaded.get_layer("flow").get_config()["num_iters"] == 2
  _round_trip(models.build_two_stream(rgb_model, cheap_teacher), tmp_path, x)


def test_geometric_two_stream_by_hand_and_round_trip(rgb_model, cheap_teacher, tmp_path):
  fused = models.build_two_stream(rgb_model, cheap_teacher, name="geo", fusion="geometric")
  x = _clip(2)
  mean_log_p = (_log_softmax(np.asarray(rgb_model(x), "float64"))
                + _log_softmax(np.asarray(cheap_teacher(x), "float64"))) / 2
  np.testing.assert_allclose(np.asarray(fused(x)), _log_softmax(mean_log_p),
                             rtol=1e-4, atol=1e-5)
  loaded = _round_trip(fused, tmp_path, x)
  assert loaded.get_layer("late_fusion").mode == "geometric"


def test_count_flops_by_hand():
  inputs = keras.Input((4, 8, 8, 3))
  x = keras.layers.Conv3D(5, 3, padding="same")(inputs)
  x = keras.layers.Conv3D(6, (1, 3, 3), strides=(1, 2, 2), padding="same")(x)
  x = keras.layers.GlobalAveragePooling3D()(x)
  model = keras.Model(inputs, keras.layers.Dense(7)(x))
  expected = 2 * (27 * 3 * 5 * 4 * 8 * 8 + 9 * 5 * 6 * 4 * 4 * 4 + 6 * 7)
  assert models.count_flops(model, (1, 4, 8, 8, 3)) == expected
  with pytest.raises(ValueError, match="does not match"):
    models.count_flops(model, (4, 16, 16, 3))


def test_count_flops_agrees_with_tf_profiler(rgb_model):
  import tensorflow as tf
  from tensorflow.python.framework import convert_to_constants
  from tensorflow.python.profiler import model_analyzer, option_builder

  fn = tf.function(lambda x: rgb_model(x, training=False))
  concrete = fn.get_concrete_function(tf.TensorSpec((1, T, S, S, 3), tf.float32))
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  options = option_builder.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  profiled = model_analyzer.profile(frozen.graph, options=options).total_float_ops
  analytic = models.count_flops(rgb_model)
  # The profiler also counts elementwise ops (BN, ReLU, adds); convs dominate.
  assert 0.97 * profiled <= analytic <= profiled


def test_count_flops_of_two_stream_adds_both(rgb_model):
  other = models.build_rgb_model(K, T, S, backbone="light", width=8, name="other")
  fused = models.build_two_stream(rgb_model, other)
  assert models.count_flops(fused) == (models.count_flops(rgb_model)
                                       + models.count_flops(other))
  assert models.count_params(fused) == (models.count_params(rgb_model)
                                        + models.count_params(other))
