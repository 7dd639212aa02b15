"""Edge twin pieces: BatchNorm folding; TimeDistributed(Conv2D) becomes FrameConv2D."""

import numpy as np
import pytest

import keras

from tsnet_tf.export import edge
from tsnet_tf.layers import edge as edge_layers
from tsnet_tf.layers import FrameConv2D
from tsnet_tf.models import classifiers


@pytest.mark.parametrize("backbone", ["light", "r3d18"])
def test_batch_norms_fold_into_convolutions(backbone):
  model = classifiers.build_rgb_model(3, 4, 16, backbone=backbone, width=4)
  rng = np.random.default_rng(2)
  for layer in model.layers:  # non-trivial inference statistics
    if isinstance(layer, keras.layers.BatchNormalization):
      c = layer.gamma.shape[0]
      layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 1, c), rng.normal(0, 1, c),
                         rng.uniform(0.5, 2, c)])
  twin = edge.edge_model(model)
  bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
  folded = [l for l in twin.layers if isinstance(l, edge_layers.EdgeFoldedBatchNorm)]
  assert bns and len(folded) == len(bns)  # every BN here follows a convolution
  x = rng.uniform(0, 255, (2, 4, 16, 16, 3)).astype("float32")
  np.testing.assert_allclose(twin(x).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)


def test_time_distributed_conv_becomes_frame_conv_with_folded_batch_norm():
  # Models built outside tsnet_tf (or saved before the backbones used
  # FrameConv2D) wrap their per-frame convolutions in TimeDistributed.
  inputs = keras.Input((4, 8, 8, 3))
  x = keras.layers.TimeDistributed(keras.layers.Conv2D(5, 3, padding="same", use_bias=False),
                                   name="td")(inputs)
  x = keras.layers.BatchNormalization(name="bn")(x)
  model = keras.Model(inputs, x)
  bn = model.get_layer("bn")
  rng = np.random.default_rng(3)
  bn.set_weights([rng.uniform(0.5, 2, 5), rng.normal(0, 1, 5), rng.normal(0, 1, 5),
                  rng.uniform(0.5, 2, 5)])
  twin = edge.edge_model(model)
  assert type(twin.get_layer("td")) is FrameConv2D  # pylint: disable=unidiomatic-typecheck
  assert isinstance(twin.get_layer("bn"), edge_layers.EdgeFoldedBatchNorm)
  assert edge.unswapped_3d_layers(twin) == []
  x = rng.normal(size=(2, 4, 8, 8, 3)).astype("float32")
  np.testing.assert_allclose(twin(x).numpy(), model(x, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)
