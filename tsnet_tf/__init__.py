"""tsnet_tf: teacher-student action recognition with in-graph TV-L1 optical flow.

Zhao & Lee, "Teacher-Student Architecture Based CNN for Action Recognition", in
TensorFlow 2 / Keras 3:

- `tsnet_tf.flow`: TV-L1 optical flow (`tvl1`), flow colour coding, .flo files.
- `tsnet_tf.layers`: every Keras layer of the models (`TVL1Flow`, M1, ...).
- `tsnet_tf.models`: backbones, teacher (M1 + M2), student / RGB model (M3),
  two-stream fusion and the Eq. 7 `DistillationModel`.
- `tsnet_tf.data`: HMDB51 layout, synthetic videos, TFRecords, tf.data input.
- `tsnet_tf.training`, `tsnet_tf.export`, `tsnet_tf.config`: what the tools use.

Importing the package loads neither TensorFlow nor Keras (worker processes that
only decode video import `tsnet_tf.data` modules through it). Submodules and the
names below load on first access, e.g. `tsnet_tf.build_teacher`.

A saved model loads with plain `keras.saving.load_model(path)` after
`import tsnet_tf` (the public contract): every tsnet_tf Keras layer (package
"tsnet_tf") is registered by `tsnet_tf.layers`, which this package imports as
soon as Keras is loaded: at once if it already is, else right after the
process's own `import keras` (a post-import hook, `_register_layers_with_keras`),
so a process that never imports Keras never pays for it.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys

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


def _run_after(spec, after: "callable"):
  """`spec`, its loader running `after(module)` once the module has executed."""
  loader = getattr(spec, "loader", None)
  if loader is None or not hasattr(loader, "exec_module"):
    return spec
  exec_first = loader.exec_module

  def exec_module(module):
    exec_first(module)
    after(module)

  loader.exec_module = exec_module
  return spec


class _AfterKerasImport(importlib.abc.MetaPathFinder):
  """Finds `keras` as the other finders do; runs `tsnet_tf.layers` once Keras is loaded."""

  def find_spec(self, name, path=None, target=None):
    if name != "keras":
      return None
    # Once: later imports of keras find it in sys.modules anyway.
    sys.meta_path.remove(self)
    return _run_after(importlib.util.find_spec(name), lambda _: _register_layers_with_keras())


class _AfterOwnImports(importlib.abc.MetaPathFinder):
  """Retries the layers' registration after each tsnet_tf module's import.

  Keras' hook cannot import `tsnet_tf.layers` while a module that the layers
  need is half-imported (e.g. `import tsnet_tf.flow.tvl1` before Keras: tvl1
  imports Keras, whose hook needs tvl1's names); it waits for the end of the
  tsnet_tf imports under way.
  """

  def find_spec(self, name, path=None, target=None):
    if not name.startswith("tsnet_tf."):
      return None
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    return _run_after(spec, lambda module: _register_pending_layers(module.__name__))


def _initialising_tsnet_tf_module(except_name: str = "") -> bool:
  """Whether a tsnet_tf module (other than `except_name`) is half-way through its import."""
  return any(name.startswith("tsnet_tf.") and name != except_name
             and getattr(getattr(module, "__spec__", None), "_initializing", False)
             for name, module in list(sys.modules.items()))


def _register_layers_with_keras() -> None:
  try:
    importlib.import_module("tsnet_tf.layers")
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(e, ImportError) and _initialising_tsnet_tf_module():
      return  # a circular import: _AfterOwnImports retries when it is over
    # Never break the user's `import keras`; loading a tsnet_tf model will say what is missing.
    logging.getLogger(__name__).warning("tsnet_tf layers not registered with Keras: %s", e)
  _stop_retrying()


def _register_pending_layers(finished: str) -> None:
  """After module `finished` is imported: registers the layers if Keras' hook had to wait."""
  if ("keras" in sys.modules and "tsnet_tf.layers" not in sys.modules
      and not _initialising_tsnet_tf_module(except_name=finished)):
    _register_layers_with_keras()


def _stop_retrying() -> None:
  for finder in [f for f in sys.meta_path if isinstance(f, _AfterOwnImports)]:
    sys.meta_path.remove(finder)


if "keras" in sys.modules:
  _register_layers_with_keras()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
  sys.meta_path.insert(0, _AfterKerasImport())
  sys.meta_path.insert(0, _AfterOwnImports())


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
