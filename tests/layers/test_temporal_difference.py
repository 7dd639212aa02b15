"""TemporalDifference: numpy reference, shapes, config, .keras file, inside the rgb model."""

import numpy as np
import pytest

import keras

from tsnet_tf import models
from tsnet_tf.layers import TemporalDifference


def test_differences_and_frames_match_numpy():
  x = np.random.default_rng(0).normal(size=(2, 5, 4, 3, 3)).astype("float32")
  diff = TemporalDifference("differences")(x).numpy()
  np.testing.assert_allclose(diff, x[:, 1:] - x[:, :-1], atol=1e-6)
  both = TemporalDifference("frames_and_differences")(x).numpy()
  np.testing.assert_allclose(both, np.concatenate([x[:, 1:], x[:, 1:] - x[:, :-1]], -1),
                             atol=1e-6)
  assert TemporalDifference("differences").compute_output_shape((None, 5, 4, 3, 3)) == (
      None, 4, 4, 3, 3)
  assert TemporalDifference("frames_and_differences").compute_output_shape(
      (None, 5, 4, 3, 3)) == (None, 4, 4, 3, 6)


def test_a_still_clip_has_no_difference():
  still = np.repeat(np.random.default_rng(1).normal(size=(1, 1, 6, 6, 3)), 4, axis=1)
  assert not np.any(TemporalDifference()(still.astype("float32")).numpy())


def test_bad_mode_and_single_frame_are_refused():
  with pytest.raises(ValueError, match="mode must be one of"):
    TemporalDifference("optical_flow")
  with pytest.raises(ValueError, match="at least 2 frames"):
    TemporalDifference()(keras.Input((1, 8, 8, 3)))


def test_rgb_model_with_differences_saves_loads_and_ignores_still_appearance(tmp_path):
  model = models.build_rgb_model(3, 4, 16, backbone="light", width=4,
                                 rgb_input="differences", dropout_rate=0.0)
  layer = model.get_layer("temporal_difference")
  assert TemporalDifference.from_config(layer.get_config()).get_config() == layer.get_config()
  path = str(tmp_path / "m.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  rng = np.random.default_rng(2)
  clip = rng.uniform(0, 255, size=(2, 4, 16, 16, 3)).astype("float32")
  np.testing.assert_allclose(loaded.predict(clip, verbose=0), model.predict(clip, verbose=0),
                             atol=1e-5)
  # Two still clips of different scenes: the network sees zeros in both.
  a = np.repeat(clip[:1, :1], 4, axis=1)
  b = np.repeat(clip[1:, :1], 4, axis=1)
  np.testing.assert_allclose(model.predict(a, verbose=0), model.predict(b, verbose=0),
                             atol=1e-5)
