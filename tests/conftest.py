"""Shared by every test directory: the environment, and the tiny converted data directory."""

import importlib.util
import os

import pytest

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
