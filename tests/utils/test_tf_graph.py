import keras
import pytest

from tsnet_tf.utils import tf_graph

tf = pytest.importorskip("tensorflow")
from tensorflow.core.protobuf import config_pb2  # pylint: disable=g-import-not-at-top,wrong-import-position
from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top,wrong-import-position
from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top,wrong-import-position


def _call_config():
  config = config_pb2.ConfigProto()
  config.ParseFromString(context.context().function_call_options.config_proto_serialized)
  return config


def test_arithmetic_optimizer_is_off_only_inside_the_wrapped_call():
  if keras.backend.backend() != "tensorflow":
    pytest.skip("Grappler is TensorFlow's")
  process_options = tf.config.optimizer.get_experimental_options()
  before = _call_config()
  seen = {}

  def train_function(x, scale=1.0):
    seen["config"] = _call_config()
    return tf.function(lambda v: v * scale)(x)

  wrapped = tf_graph.without_add_ops_rewrite(train_function)
  assert float(wrapped(tf.constant(2.0), scale=3.0)) == 6.0
  # The caller's options with the one pass off, nothing else changed.
  expected = config_pb2.ConfigProto()
  expected.CopyFrom(before)
  expected.graph_options.rewrite_options.arithmetic_optimization = (
      rewriter_config_pb2.RewriterConfig.OFF)
  assert seen["config"] == expected
  assert _call_config() == before
  assert tf.config.optimizer.get_experimental_options() == process_options


def test_options_are_restored_when_the_call_raises():
  before = _call_config()

  def failing():
    raise ValueError("boom")

  with pytest.raises(ValueError, match="boom"):
    tf_graph.without_add_ops_rewrite(failing)()
  assert _call_config() == before


class _Recorder(keras.layers.Layer):
  """Records the arithmetic optimizer setting of the call options its calls see."""

  def __init__(self, record, **kwargs):
    super().__init__(**kwargs)
    self.record = record  # a function: Keras would track (copy) a list attribute

  def call(self, x, training=False):
    self.record((bool(training), _call_config().graph_options.rewrite_options
                      .arithmetic_optimization))
    return x


def _fit_and_evaluate(model, seen):
  x = tf.ones((4, 3))
  y = tf.zeros((4,), "int32")
  model.fit(x, y, batch_size=2, epochs=1, verbose=0, validation_data=(x, y))
  model.evaluate(x, y, batch_size=2, verbose=0)
  model.fit(x, y, batch_size=2, epochs=1, verbose=0)
  return {mode for _, mode in seen}


def _model(seen):
  inputs = keras.Input((3,))
  model = keras.Model(inputs, keras.layers.Dense(2)(_Recorder(seen.append)(inputs)))
  model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  seen.clear()  # the symbolic call that built the model
  return model


def test_compiled_model_fits_and_evaluates_without_the_optimizer():
  if keras.backend.backend() != "tensorflow":
    pytest.skip("Grappler is TensorFlow's")
  off = rewriter_config_pb2.RewriterConfig.OFF
  seen = []
  model = _model(seen)
  tf_graph.keras_functions_without_add_ops_rewrite(model)
  # Functions are traced inside their first call: the recorder sees that call's options,
  # for the train steps, fit's validation and evaluate alike.
  assert _fit_and_evaluate(model, seen) == {off}
  assert {training for training, _ in seen} == {True, False}
  # Without it Keras' functions run with the caller's (default) options.
  seen_default = []
  assert off not in _fit_and_evaluate(_model(seen_default), seen_default)


@pytest.mark.slow
def test_fit_and_evaluate_run_accurate_tvl1_at_the_paper_clip():
  # 25x224x224 clips through in-graph `accurate` TV-L1 (the teacher's flow, without its
  # backbone): with Grappler's defaults Keras' fit died in its first steps
  # (AlreadyExistsError ... AddOpsRewrite_add_3/tmp_var, or a segmentation fault).
  # ~3 min on 2 cores.
  if keras.backend.backend() != "tensorflow":
    pytest.skip("Grappler is TensorFlow's")
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tsnet_tf.layers import TVL1Flow  # pylint: disable=g-import-not-at-top
  inputs = keras.Input((25, 224, 224, 3))
  pooled = keras.layers.GlobalAveragePooling3D()(TVL1Flow("accurate")(inputs))
  model = keras.Model(inputs, keras.layers.Dense(3)(pooled))
  model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  tf_graph.keras_functions_without_add_ops_rewrite(model)
  rng = np.random.default_rng(0)
  clips = rng.uniform(0, 255, (3, 25, 224, 224, 3)).astype("float32")
  labels = np.arange(3, dtype="int32")
  history = model.fit(clips, labels, batch_size=1, epochs=1, verbose=0,
                      validation_data=(clips, labels))
  loss, _ = model.evaluate(clips, labels, batch_size=1, verbose=0)
  # The evaluation after the step is the validation's: same weights, same clips.
  assert np.isfinite(loss)
  np.testing.assert_allclose(loss, history.history["val_loss"][0], rtol=1e-5)


def test_wrapping_a_wrapped_callable_returns_it():
  if keras.backend.backend() != "tensorflow":
    pytest.skip("Grappler is TensorFlow's")
  wrapped = tf_graph.without_add_ops_rewrite(lambda: 1)
  assert tf_graph.without_add_ops_rewrite(wrapped) is wrapped
