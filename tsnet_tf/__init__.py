"""tsnet_tf: teacher-student action recognition with in-graph TV-L1 optical flow.

Zhao & Lee, "Teacher-Student Architecture Based CNN for Action Recognition", in
TensorFlow 2 / Keras 3:

- `tsnet_tf.flow`: TV-L1 optical flow (`tvl1`), flow colour coding, .flo files.
- `tsnet_tf.layers`: every Keras layer of the models (`TVL1Flow`, M1, ...).
- `tsnet_tf.models`: backbones, teacher (M1 + M2), student / RGB model (M3),
  two-stream fusion and the Eq. 7 `DistillationModel`.
- `tsnet_tf.data`: HMDB51 layout, synthetic videos, TFRecords, tf.data input.
- `tsnet_tf.training`, `tsnet_tf.export`, `tsnet_tf.config`: what the tools use.

Importing the package has no side effect: it loads neither TensorFlow nor Keras
(worker processes that only decode video import `tsnet_tf.data` modules through
it). Submodules and the names below load on first access, e.g.
`tsnet_tf.build_teacher`. `import tsnet_tf.layers` registers every tsnet_tf
Keras layer (package "tsnet_tf"), so a saved model then loads with plain
`keras.saving.load_model(path)`; `tsnet_tf.models` imports it too.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("config", "data", "export", "flow", "layers", "models", "training", "utils")
# Public name -> the module that defines it (loaded on first access).
_LAZY_NAMES = {
    "DistillationModel": "tsnet_tf.models.distillation",
    "TVL1Flow": "tsnet_tf.layers.tvl1_flow",
    "build_rgb_model": "tsnet_tf.models.classifiers",
    "build_teacher": "tsnet_tf.models.classifiers",
    "build_two_stream": "tsnet_tf.models.classifiers",
    "flow_to_rgb": "tsnet_tf.flow.visualize",
    "tvl1": "tsnet_tf.flow.tvl1",
}


def __getattr__(name):
  if name in _SUBMODULES:
    return importlib.import_module(f"tsnet_tf.{name}")
  if name in _LAZY_NAMES:
    return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
  raise AttributeError(f"module 'tsnet_tf' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_SUBMODULES) + list(_LAZY_NAMES))


__all__ = [
    "DistillationModel", "TVL1Flow", "build_rgb_model", "build_teacher", "build_two_stream",
    "config", "data", "export", "flow", "flow_to_rgb", "layers", "models", "training", "tvl1",
    "utils", "__version__",
]
