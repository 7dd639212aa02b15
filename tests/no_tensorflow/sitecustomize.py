"""Makes `import tensorflow` fail, as on a machine without it (the GPU machine).

Tests put this directory first on PYTHONPATH of a subprocess. The module is
found (so libraries that probe with `importlib.util.find_spec`, such as
torch._dynamo, keep working) but importing it raises ImportError.
"""

import importlib.abc
import importlib.machinery
import sys


class _Refuse(importlib.abc.Loader):

  def create_module(self, spec):
    raise ImportError(f"no tensorflow here: {spec.name}")

  def exec_module(self, module):
    raise ImportError(f"no tensorflow here: {module.__name__}")


class _NoTensorFlow(importlib.abc.MetaPathFinder):

  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] != "tensorflow":
      return None
    return importlib.machinery.ModuleSpec(name, _Refuse(), origin="<no tensorflow>")


sys.meta_path.insert(0, _NoTensorFlow())
