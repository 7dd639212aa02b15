"""Shared by every test directory: the environment, and the tiny converted data directory."""

import importlib.util
import os

from absl import app as absl_app
import pytest

# absl defines --help, --helpfull, ... at the first app.run; the in-process tool
# runners (tests/reliability/conftest.py) delete the flags a run defined, so they
# are defined here, before any test, and a later in-process --helpfull still works.
absl_app.define_help_flags()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """tests/training/tiny_data.py's converted data directory, built once per session."""
  spec = importlib.util.spec_from_file_location(
      "tiny_data", os.path.join(_TESTS, "training", "tiny_data.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.make_tiny_data_dir(str(tmp_path_factory.getbasetemp() / "tiny"))
