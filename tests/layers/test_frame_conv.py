"""FrameConv2D == TimeDistributed(Conv2D): shapes, values, config, .keras file, FLOPs."""

import numpy as np
import pytest

import keras

from tsnet_tf.layers import FrameConv2D
from tsnet_tf.models import flops


@pytest.mark.parametrize("kwargs", [
    dict(filters=5, kernel_size=3, strides=1, padding="same"),
    dict(filters=4, kernel_size=(3, 5), strides=(2, 1), padding="same", use_bias=False),
    dict(filters=3, kernel_size=1, strides=2, padding="valid", activation="relu"),
])
def test_matches_time_distributed_conv2d(kwargs):
  x = np.random.default_rng(0).normal(size=(2, 4, 9, 8, 3)).astype("float32")
  ref_layer = keras.layers.TimeDistributed(keras.layers.Conv2D(**kwargs))
  ref = ref_layer(x).numpy()
  layer = FrameConv2D(**kwargs)
  out_shape = layer.compute_output_shape(x.shape)
  layer.build(x.shape)
  layer.set_weights(ref_layer.get_weights())
  got = layer(x).numpy()
  assert got.shape == ref.shape == tuple(out_shape)
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_config_round_trip_and_keras_file(tmp_path):
  inputs = keras.Input((4, 8, 8, 3))
  outputs = FrameConv2D(6, 3, strides=2, padding="same", name="fc")(inputs)
  model = keras.Model(inputs, outputs)
  layer = model.get_layer("fc")
  clone = FrameConv2D.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  x = np.random.default_rng(1).normal(size=(3, 4, 8, 8, 3)).astype("float32")
  np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
  assert isinstance(loaded.get_layer("fc"), FrameConv2D)


def test_flops_count_every_frame():
  inputs = keras.Input((4, 8, 8, 3))
  model = keras.Model(inputs, FrameConv2D(6, 3, padding="same")(inputs))
  assert flops.count_flops(model) == 2 * 4 * 8 * 8 * 9 * 3 * 6


def test_wrong_rank_and_channels_first_are_errors():
  with pytest.raises(ValueError, match="channels_last"):
    FrameConv2D(4, 3, data_format="channels_first")
  with pytest.raises(ValueError):
    FrameConv2D(4, 3)(np.zeros((2, 8, 8, 3), "float32"))
