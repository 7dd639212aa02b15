"""Shared by the tool tests: run a tool as a subprocess (tiny_data_dir: tests/conftest.py)."""

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


def _in_process_runner():
  spec = importlib.util.spec_from_file_location(
      "_reliability_runner", os.path.join(REPO, "tests", "reliability", "conftest.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_RUNNER = _in_process_runner()


@pytest.fixture
def run_tool_in_process(capsys):
  """`run_tool_in_process("predict.py", *flags)`: the tool through `cli.run` in this process.

  tests/reliability/conftest.py's `run_tool`: a probe of an error path costs what the
  tool does, not a subprocess's TensorFlow import.
  """
  return lambda tool, *args: _RUNNER.run_tool(capsys, tool, *args)
