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
