"""Shared by the tool tests: run a tool as a subprocess, and the tiny data directory."""

import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def run_tool():
  """`run_tool("evaluate.py", *flags)`: the tool in a fresh process, output captured."""

  def run(tool, *args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", tool), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)

  return run


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """tests/training's tiny converted data directory (the same path: built once per session)."""
  path = os.path.join(REPO, "tests", "training", "tiny_data.py")
  spec = importlib.util.spec_from_file_location("tiny_data", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.make_tiny_data_dir(str(tmp_path_factory.getbasetemp() / "tiny"))
