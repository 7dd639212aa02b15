"""class_activation_maps: their mean plus the bias is the logit, for both head layouts."""

import numpy as np
import pytest

from tsnet_tf import models
from tsnet_tf.models import cam


@pytest.mark.parametrize("feature_dim", [None, 6])
def test_cam_mean_plus_bias_is_the_logit(feature_dim):
  model = models.build_rgb_model(3, 4, 16, backbone="light", width=4, dropout_rate=0.0,
                                 feature_dim=feature_dim)
  clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  logits = model.predict(clips, verbose=0)
  cams = cam.class_activation_maps(model, clips, [0, 2])
  assert cams.ndim == 4 and cams.shape[0] == 2
  bias = model.get_layer("logits").bias.numpy()
  if feature_dim:
    bias = bias + model.get_layer("features").bias.numpy() @ model.get_layer(
        "logits").kernel.numpy()
  for b, k in enumerate([0, 2]):
    assert cams[b].mean() + bias[k] == pytest.approx(logits[b, k], rel=1e-4, abs=1e-4)


def test_a_model_without_a_pool_is_refused():
  import keras  # pylint: disable=g-import-not-at-top
  inputs = keras.Input((4, 8, 8, 3))
  model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(
      keras.layers.Flatten()(inputs)))
  with pytest.raises(ValueError, match="no global-average-pool"):
    cam.class_activation_maps(model, np.zeros((1, 4, 8, 8, 3), "float32"), [0])
