"""Shared by the tool tests: run a tool as a subprocess (tiny_data_dir: tests/conftest.py)."""

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

