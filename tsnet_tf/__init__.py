"""tsnet_tf: teacher-student action recognition with in-graph TV-L1 optical flow.

Zhao & Lee, "Teacher-Student Architecture Based CNN for Action Recognition", in
TensorFlow 2 / Keras 3:

- `tsnet_tf.flow`: TV-L1 optical flow (`tvl1`), flow colour coding, .flo files.
- `tsnet_tf.layers`: `TVL1Flow`, the Keras layer (M1).
- `tsnet_tf.models`: backbones, teacher (M1 + M2), student / RGB model (M3),
  two-stream fusion and the Eq. 7 `DistillationModel`.
- `tsnet_tf.data`: HMDB51 layout, synthetic videos, TFRecords, tf.data input.
- `tsnet_tf.training`, `tsnet_tf.export`, `tsnet_tf.config`: what the tools use.

Importing the package registers its Keras objects (package "tsnet_tf"), so saved
models load with plain `keras.saving.load_model(path)` after `import tsnet_tf`.
"""

__version__ = "0.1.0"

import importlib
import os

# Worker processes that only decode video (tsnet_tf.utils.processes) set this so
# that importing the package does not load TensorFlow and Keras in each of them.
KERAS_FREE_ENV = "TSNET_TF_KERAS_FREE"

if os.environ.get(KERAS_FREE_ENV) != "1":
  # Eager: these register the serializable Keras layers and models.
  from tsnet_tf import flow
  from tsnet_tf import layers
  from tsnet_tf import models
  from tsnet_tf.data import clip_spec  # registers the ClipContract layer
  from tsnet_tf.flow import flow_to_rgb
  from tsnet_tf.flow import tvl1
  from tsnet_tf.layers import TVL1Flow
  from tsnet_tf.models import build_rgb_model
  from tsnet_tf.models import build_teacher
  from tsnet_tf.models import build_two_stream
  from tsnet_tf.models import DistillationModel

# Lazy: heavier or tool-only submodules load on first attribute access.
_LAZY_SUBMODULES = ("config", "data", "export", "training", "utils")


def __getattr__(name):
  if name in _LAZY_SUBMODULES:
    return importlib.import_module(f"tsnet_tf.{name}")
  raise AttributeError(f"module 'tsnet_tf' has no attribute {name!r}")


__all__ = [
    "DistillationModel", "TVL1Flow", "build_rgb_model", "build_teacher", "build_two_stream",
    "config", "data", "export", "flow", "flow_to_rgb", "layers", "models", "training", "tvl1",
    "utils", "__version__",
]
