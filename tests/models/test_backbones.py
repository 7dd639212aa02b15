import keras
import numpy as np
import pytest

from tsnet_tf.models import backbones

# torchvision.models.video.r3d_18(num_classes=400): sum of p.numel() over
# parameters (BatchNorm running statistics are buffers there, not parameters).
TORCHVISION_R3D18_PARAMS = 33_371_472


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_r3d18_matches_torchvision_parameter_count():
  base = backbones.build_backbone("r3d18", input_channels=3)
  logits = keras.layers.Dense(400)(base.output)
  model = keras.Model(base.input, logits)
  assert _trainable(model) == TORCHVISION_R3D18_PARAMS
  assert base.output.shape == (None, 512)
  assert base.layers[-1].name == "features"


def test_r3d18_shapes_and_downsampling():
  base = backbones.build_backbone("r3d18", input_channels=2, num_frames=8,
                                  input_size=32, width_multiplier=0.25)
  # Stem halves space; stages 2-4 halve time and space.
  assert base.get_layer("stage1_block2_out").output.shape == (None, 8, 16, 16, 16)
  assert base.get_layer("stage4_block2_out").output.shape == (None, 1, 2, 2, 128)
  assert base.output.shape == (None, 128)


def test_r3d_depth_option():
  blocks = (1, 1, 1, 1)
  base = backbones.build_backbone("r3d18", 3, 4, 16, depth=10,
                                  width_multiplier=0.125)
  for stage, n in enumerate(blocks, start=1):
    names = [l.name for l in base.layers
             if l.name.startswith(f"stage{stage}_block") and l.name.endswith("_out")]
    assert len(names) == n


def test_light_backbone_shapes_and_width():
  base = backbones.build_backbone("light", input_channels=3, num_frames=8,
                                  input_size=64)
  out = base(np.zeros((2, 8, 64, 64, 3), "float32"))
  assert out.shape == (2, 128)
  assert base.get_layer("stage4_block1_out").output.shape == (None, 2, 4, 4, 128)
  half = backbones.build_backbone("light", input_channels=2, width_multiplier=0.5)
  assert half.output.shape == (None, 64)
  assert half.count_params() < base.count_params() / 2
  # Small enough for CPU/edge: well under R3D-18 at a quarter width.
  assert base.count_params() < 300_000


def test_projection_becomes_features():
  base = backbones.build_backbone("light", 3, 4, 32, feature_dim=24)
  assert isinstance(base.get_layer("features"), keras.layers.Dense)
  assert isinstance(base.get_layer("pool"), keras.layers.GlobalAveragePooling3D)
  assert base.output.shape == (None, 24)
  assert backbones.feature_size(base) == 24


def test_features_is_the_global_average():
  base = backbones.build_backbone("light", 3, 4, 32)
  trunk = keras.Model(base.input, base.get_layer("stage4_block1_out").output)
  x = np.random.RandomState(0).normal(size=(2, 4, 32, 32, 3)).astype("float32")
  expected = np.asarray(trunk(x)).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(base(x)), expected, rtol=1e-5, atol=1e-6)


def test_weight_decay_adds_l2_with_pytorch_gradient_convention():
  base = backbones.build_backbone("light", 3, 4, 16, weight_decay=0.1)
  kernels = [w for w in base.trainable_weights if w.regularizer is not None]
  assert kernels and all("kernel" in w.path for w in kernels)
  expected = sum(0.05 * float(np.sum(np.square(np.asarray(w)))) for w in kernels)
  got = sum(float(np.asarray(l)) for l in base.losses)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bad_options_raise_clear_errors():
  with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
    backbones.build_backbone("resnet50")
  with pytest.raises(ValueError, match="depth"):
    backbones.build_backbone("r3d18", depth=50)
  with pytest.raises(ValueError, match="width_multiplier"):
    backbones.build_backbone("light", width_multiplier=0)


def test_light_3d_stem_option():
  base = backbones.build_backbone("light", input_channels=3, num_frames=8, input_size=32,
                                  stem="3d")
  stem = base.get_layer("stem_conv")
  assert isinstance(stem, keras.layers.Conv3D) and tuple(stem.kernel_size) == (3, 3, 3)
  assert tuple(stem.strides) == (1, 2, 2)
  with pytest.raises(ValueError):
    base.get_layer("stem_temporal_conv")  # the (2+1)D stem's layers are gone
  assert base(np.zeros((2, 8, 32, 32, 3), "float32")).shape == (2, 128)
  with pytest.raises(ValueError, match="unknown light stem 'x'"):
    backbones.build_backbone("light", stem="x")
