import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from tsnet_tf import models
from tsnet_tf.training import callbacks

K, T, S = 3, 4, 16
LAMBDA = 0.7
WD = 1e-3


def _data(n=4, seed=0):
  rng = np.random.RandomState(seed)
  x = rng.uniform(0, 255, (n, T, S, S, 3)).astype("float32")
  return x, (np.arange(n) % K).astype("int32")


def _pair(student_width=16, teacher_width=8, weight_decay=0.0):
  keras.utils.set_random_seed(0)
  student = models.build_rgb_model(K, T, S, backbone="light", width=student_width,
                                   dropout_rate=0.0, weight_decay=weight_decay,
                                   name="student")
  # Any classifier with a "features" layer can teach; an RGB one keeps the
  # loss tests independent of the flow layer (the teacher test covers it).
  teacher = models.build_rgb_model(K, T, S, backbone="light", width=teacher_width,
                                   dropout_rate=0.0, name="teacher")
  return student, teacher


def _distiller(lr=0.1, run_eagerly=True, **kwargs):
  student, teacher = _pair(**kwargs)
  model = models.DistillationModel(student, teacher, distill_weight=LAMBDA)
  # Eager steps skip seconds of tf.function tracing per test; graph mode is
  # covered by test_teacher_frozen_student_trained and the mirrored test.
  model.compile(optimizer=keras.optimizers.SGD(lr), run_eagerly=run_eagerly)
  return model


def _np(x):
  return np.asarray(x, dtype="float64")


def _ce(logits, y):
  z = logits - logits.max(axis=-1, keepdims=True)
  log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
  return -log_p[np.arange(len(y)), y].mean()


def _expected(model, x, y, weight_decay):
  """Eq. 7 in numpy from the networks' raw outputs at the step's weights."""
  s_feat, logits = models.feature_and_logits(model.student)(x, training=True)
  t_feat, _ = models.feature_and_logits(model.teacher)(x, training=False)
  s_feat = _np(s_feat)
  if model.projection is not None:
    s_feat = s_feat @ _np(model.projection.kernel) + _np(model.projection.bias)
  ce = _ce(_np(logits), y)
  mse = np.mean((s_feat - _np(t_feat)) ** 2)
  kernels = [w for w in model.student.trainable_weights if w.path.endswith("kernel")]
  reg = weight_decay / 2 * sum(np.sum(_np(w) ** 2) for w in kernels)
  return ce, mse, reg


@pytest.mark.parametrize("student_width", [16, 8])
def test_loss_is_ce_plus_lambda_mse_by_hand(student_width):
  model = _distiller(student_width=student_width, weight_decay=WD)
  # Projection only when the feature sizes differ (128 vs 64, or 64 vs 64).
  assert (model.projection is not None) == (student_width != 8)
  x, y = _data()
  ce, mse, reg = _expected(model, x, y, WD)
  logs = model.train_on_batch(x, y, return_dict=True)
  np.testing.assert_allclose(logs["ce_loss"], ce, rtol=1e-5)
  np.testing.assert_allclose(logs["distill_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(logs["loss"], ce + LAMBDA * mse + reg, rtol=1e-5)
  assert reg > 1e-4 * logs["loss"]  # the regularizer is really in the sum


def test_confidence_weighted_mse_and_forced_projection_by_hand():
  student, teacher = _pair(student_width=8, teacher_width=8)
  model = models.DistillationModel(student, teacher, distill_weight=LAMBDA,
                                   projection="always", confidence_weighting=True)
  model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
  # Same sizes, but "always" still maps the student's features.
  assert model.projection is not None
  x, y = _data()
  ce, _, _ = _expected(model, x, y, 0.0)
  s_feat, _ = models.feature_and_logits(model.student)(x, training=True)
  t_feat, t_logits = models.feature_and_logits(model.teacher)(x, training=False)
  s_feat = _np(s_feat) @ _np(model.projection.kernel) + _np(model.projection.bias)
  z = _np(t_logits) - _np(t_logits).max(axis=-1, keepdims=True)
  p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
  confidence = p[np.arange(len(y)), y]
  per_clip = np.mean((s_feat - _np(t_feat)) ** 2, axis=-1)
  mse = np.mean(confidence * per_clip)
  # The weights differ between clips, so the weighted MSE is not the plain one.
  assert abs(mse - confidence.mean() * per_clip.mean()) > 1e-6 * mse
  logs = model.train_on_batch(x, y, return_dict=True)
  np.testing.assert_allclose(logs["distill_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(logs["loss"], ce + LAMBDA * mse, rtol=1e-5)
  config = model.get_config()
  assert config["projection"] == "always" and config["confidence_weighting"] is True
  with pytest.raises(ValueError, match="projection"):
    models.DistillationModel(student, teacher, projection="sometimes")


def test_soft_logit_term_by_hand_and_off_in_warmup():
  student, teacher = _pair(student_width=8, teacher_width=8)
  temperature, beta = 3.0, 0.5
  model = models.DistillationModel(student, teacher, distill_weight=LAMBDA,
                                   logit_weight=beta, temperature=temperature)
  model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
  x, y = _data()
  ce, mse, _ = _expected(model, x, y, 0.0)
  _, s_logits = models.feature_and_logits(model.student)(x, training=True)
  _, t_logits = models.feature_and_logits(model.teacher)(x, training=False)

  def log_softmax(z):
    z = _np(z) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
  log_pt, log_ps = log_softmax(t_logits), log_softmax(s_logits)
  kd = temperature ** 2 * np.mean(np.sum(np.exp(log_pt) * (log_pt - log_ps), axis=-1))
  assert kd > 1e-6
  logs = model.train_on_batch(x, y, return_dict=True)
  np.testing.assert_allclose(logs["kd_loss"], kd, rtol=1e-4)
  np.testing.assert_allclose(logs["loss"], ce + LAMBDA * mse + beta * kd, rtol=1e-5)
  config = model.get_config()
  assert config["logit_weight"] == beta and config["temperature"] == temperature
  # The MSE warm-up switches the term off with CE, and back on after.
  warmup = callbacks.MseWarmup(1)
  warmup.set_model(model)
  warmup.on_epoch_begin(0)
  assert float(keras.ops.convert_to_numpy(model.loss_weights()["kd_loss"])) == 0.0
  warmup.on_epoch_begin(1)
  assert float(keras.ops.convert_to_numpy(model.loss_weights()["kd_loss"])) == beta
  # Plain Eq. 7 has no such term.
  plain = models.DistillationModel(student, teacher, distill_weight=LAMBDA)
  assert plain.kd_tracker is None and "kd_loss" not in plain.loss_weights()
  with pytest.raises(ValueError, match="temperature"):
    models.DistillationModel(student, teacher, logit_weight=1.0, temperature=0.0)


def test_intermediate_feature_map_loss_by_hand_and_shape_check():
  student, teacher = _pair()
  model = models.DistillationModel(student, teacher, distill_weight=LAMBDA,
                                   feature_layer="stage3_block1_out")
  model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
  assert model._student_fl.outputs[0].shape[1:-1] == model._teacher_fl.outputs[0].shape[1:-1]  # pylint: disable=protected-access
  assert model.projection is not None  # 64 vs 32 channels: a 1x1x1 map
  x, y = _data()
  s_feat, logits = models.feature_and_logits(student, "stage3_block1_out")(x, training=True)
  t_feat, _ = models.feature_and_logits(teacher, "stage3_block1_out")(x, training=False)
  s_feat = _np(s_feat) @ _np(model.projection.kernel) + _np(model.projection.bias)
  mse = np.mean((s_feat - _np(t_feat)) ** 2)
  logs = model.train_on_batch(x, y, return_dict=True)
  np.testing.assert_allclose(logs["distill_loss"], mse, rtol=1e-5)
  np.testing.assert_allclose(logs["loss"], _ce(_np(logits), y) + LAMBDA * mse, rtol=1e-5)
  # A teacher whose maps have other positions (here 2 more frames) is refused.
  longer = models.build_rgb_model(K, T + 2, S, backbone="light", width=8, name="long")
  with pytest.raises(ValueError, match="stage1_block1_out.*positions"):
    models.DistillationModel(student, longer, feature_layer="stage1_block1_out")


def test_mse_warmup_trains_only_below_features():
  model = _distiller()
  model.ce_weight.assign(0.0)
  x, y = _data()
  _, mse, _ = _expected(model, x, y, 0.0)
  head = [_np(w) for w in model.student.get_layer("logits").weights]
  stem = _np(model.student.get_layer("stem_temporal_conv").kernel)
  logs = model.train_on_batch(x, y, return_dict=True)
  np.testing.assert_allclose(logs["loss"], LAMBDA * mse, rtol=1e-5)
  for before, w in zip(head, model.student.get_layer("logits").weights):
    np.testing.assert_array_equal(before, _np(w))
  assert not np.allclose(stem, _np(model.student.get_layer("stem_temporal_conv").kernel))


def test_mse_warmup_callback_sets_phase_per_epoch():
  model = _distiller()
  callback = callbacks.MseWarmup(warmup_epochs=2)
  callback.set_model(model)
  seen = []
  for epoch in range(3):
    callback.on_epoch_begin(epoch)
    seen.append(float(_np(model.ce_weight)))
  assert seen == [0.0, 0.0, 1.0]


def test_distill_weight_decay_sets_lambda_per_epoch_by_hand():
  model = _distiller()
  callback = callbacks.DistillWeightDecay(10.0, epochs=5, start_epoch=1)
  callback.set_model(model)
  seen = []
  for epoch in range(5):
    callback.on_epoch_begin(epoch)
    seen.append(float(_np(model.distill_weight)))
  # Warm-up epoch at full weight, then 10 * (1 + cos(pi * k / 4)) / 2, k = 0..3.
  np.testing.assert_allclose(seen, [10.0, 10.0, 8.5355339, 5.0, 1.4644661], rtol=1e-6)
  x, y = _data()
  ce, mse, _ = _expected(model, x, y, 0.0)
  logs = model.train_on_batch(x, y, return_dict=True)
  np.testing.assert_allclose(logs["loss"], ce + seen[-1] * mse, rtol=1e-5)
  with pytest.raises(ValueError, match="epochs > start_epoch"):
    callbacks.DistillWeightDecay(1.0, epochs=2, start_epoch=2)


def test_teacher_frozen_student_trained():
  model = _distiller(run_eagerly=False)
  teacher_before = [_np(w) for w in model.teacher.weights]  # incl. BN statistics
  student_before = [_np(w) for w in model.student.trainable_weights]
  x, y = _data()
  model.fit(x, y, batch_size=2, epochs=1, verbose=0)
  for before, w in zip(teacher_before, model.teacher.weights):
    np.testing.assert_array_equal(before, _np(w), err_msg=w.path)
  for before, w in zip(student_before, model.student.trainable_weights):
    assert not np.array_equal(before, _np(w)), w.path
  assert not model.teacher.trainable
  assert {id(w) for w in model.trainable_weights} == {
      id(w) for w in model.student.trainable_weights + model.projection.trainable_weights}


class _Poison(keras.layers.Layer):

  def call(self, inputs, training=None):
    raise AssertionError("the teacher must not run in test_step")


def test_test_step_and_call_use_the_student_only():
  model = _distiller()
  x, y = _data()
  model._teacher_fl = _Poison()
  logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
  logits = _np(model.student(x, training=False))
  assert set(logs) == {"loss", "ce_loss", "accuracy"}
  np.testing.assert_allclose(logs["loss"], _ce(logits, y), rtol=1e-5)
  np.testing.assert_allclose(logs["accuracy"], np.mean(logits.argmax(-1) == y))
  np.testing.assert_allclose(_np(model(x)), logits, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(model.predict(x, verbose=0), logits, rtol=1e-5, atol=1e-6)


def test_round_trips(tmp_path):
  model = _distiller()
  x, _ = _data()
  student_path = str(tmp_path / "student.keras")
  model.student.save(student_path)
  student = keras.saving.load_model(student_path)
  np.testing.assert_allclose(_np(student(x)), _np(model.student(x)), rtol=1e-5, atol=1e-5)
  path = str(tmp_path / "distill.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert isinstance(loaded, models.DistillationModel)
  np.testing.assert_allclose(float(_np(loaded.distill_weight)), LAMBDA)
  np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(_np(loaded.projection.kernel), _np(model.projection.kernel))
  assert not loaded.teacher.trainable


def test_distills_from_flow_teacher():
  pytest.importorskip("tsnet_tf.layers.tvl1_flow", reason="TVL1Flow layer not available")
  student = models.build_rgb_model(K, T, S, backbone="light", width=8, name="student")
  teacher = models.build_teacher(K, T, S, backbone="light", width=8, flow_bound=4.0,
                                 flow_overrides=dict(num_scales=2, num_warps=1,
                                                     num_iters=2), name="flow")
  model = models.DistillationModel(student, teacher)
  assert model.projection is None
  model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
  x, y = _data(2)
  logs = model.train_on_batch(x, y, return_dict=True)
  assert np.isfinite(logs["loss"]) and logs["distill_loss"] > 0


def test_mixed_precision_with_loss_scale_optimizer():
  policy = keras.mixed_precision.global_policy()
  # bfloat16: CPU kernels exist for it; LossScaleOptimizer is exercised all the same.
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    student, teacher = _pair()
    model = models.DistillationModel(student, teacher)
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
                  run_eagerly=True)
    before = _np(student.get_layer("stem_temporal_conv").kernel)
    x, y = _data()
    logs = model.train_on_batch(x, y, return_dict=True)
  finally:
    keras.mixed_precision.set_global_policy(policy)
  assert student.get_layer("stem_temporal_conv").compute_dtype == "bfloat16"
  assert student.output.dtype == "float32"
  assert np.isfinite(logs["loss"])
  assert not np.array_equal(before, _np(student.get_layer("stem_temporal_conv").kernel))


_MIRRORED = textwrap.dedent("""
    import numpy as np, keras, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tsnet_tf import models
    x = np.random.RandomState(0).uniform(0, 255, (4, 4, 32, 32, 3)).astype("float32")
    y = np.arange(4) % 3
    def make():
      keras.utils.set_random_seed(1)
      s = models.build_rgb_model(3, 4, 32, backbone="light", dropout_rate=0.0,
                                 weight_decay=1e-3, name="student")
      t = models.build_rgb_model(3, 4, 32, backbone="light", width=8, name="teacher")
      d = models.DistillationModel(s, t, distill_weight=0.7)
      d.compile(optimizer=keras.optimizers.SGD(0.1))
      return d
    # Two replicas of 2 = the mean of two single-device steps on each half
    # (BatchNorm statistics are per replica, so compare against halves).
    halves = []
    for part in (slice(0, 2), slice(2, 4)):
      d = make()
      logs = d.train_on_batch(x[part], y[part], return_dict=True)
      halves.append((logs["loss"], [w.numpy() for w in d.student.trainable_weights]))
    with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
      d = make()
    loss = d.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    np.testing.assert_allclose(loss, (halves[0][0] + halves[1][0]) / 2, rtol=1e-5)
    for a, b, w in zip(halves[0][1], halves[1][1], d.student.trainable_weights):
      np.testing.assert_allclose(w.numpy(), (a + b) / 2, rtol=1e-4, atol=1e-6)
    print("OK")
""")


@pytest.mark.slow
def test_mirrored_strategy_matches_single_device():
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow")
  result = subprocess.run([sys.executable, "-c", _MIRRORED], env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_student_steps_from_an_accurate_teacher_run_with_grappler_defaults():
  # configs/synthetic_table1.yaml's student step (accurate TV-L1, width-64
  # teacher, 8x64x64 clips, batch 8, stage-3 features): with Grappler's
  # defaults for the train function its second step died with AlreadyExistsError
  # in the teacher's TV-L1 loops (tsnet_tf/utils/tf_graph.py). Smaller shapes
  # did not reproduce it.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.optimizer.set_experimental_options({"arithmetic_optimization": True})
  keras.utils.set_random_seed(0)
  student = models.build_rgb_model(4, 8, 64, backbone="light", width=16,
                                   dropout_rate=0.0, name="student")
  teacher = models.build_teacher(4, 8, 64, backbone="light", width=64,
                                 flow_preset="accurate", flow_bound=4.0,
                                 dropout_rate=0.0, name="teacher")
  model = models.DistillationModel(student, teacher, distill_weight=10.0,
                                   feature_layer="stage3_block1_out")
  model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
  rng = np.random.RandomState(0)
  x = rng.uniform(0, 255, (24, 8, 64, 64, 3)).astype("float32")
  y = np.arange(24) % 4
  history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history
  assert np.isfinite(history["loss"][0]) and np.isfinite(history["distill_loss"][0])
  # The setting is the train function's own: the process keeps its options.
  assert tf.config.optimizer.get_experimental_options()["arithmetic_optimization"] is True


class _RecordCallOptions(keras.layers.Layer):
  """Runs `inner`, noting the Grappler options of the function being traced."""
  def __init__(self, inner, seen):
    super().__init__()
    self.inner = inner
    self.record = seen.append  # a list attribute would be copied by Keras' tracking

  def call(self, inputs, training=None):
    from tensorflow.core.protobuf import config_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top
    config = config_pb2.ConfigProto()
    config.ParseFromString(context.context().function_call_options.config_proto_serialized)
    self.record(config.graph_options.rewrite_options.arithmetic_optimization)
    return self.inner(inputs, training=training)


def test_only_the_train_function_runs_without_the_arithmetic_optimizer():
  if keras.backend.backend() != "tensorflow":
    pytest.skip("Grappler is TensorFlow's")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top
  process_options = tf.config.optimizer.get_experimental_options()
  model = _distiller(run_eagerly=False)
  seen = []
  model._teacher_fl = _RecordCallOptions(model._teacher_fl, seen)
  x, y = _data()
  model.fit(x, y, batch_size=2, epochs=2, verbose=0)
  # Traced once, inside a call of the train function made with the pass off.
  assert seen == [rewriter_config_pb2.RewriterConfig.OFF]
  assert tf.config.optimizer.get_experimental_options() == process_options
