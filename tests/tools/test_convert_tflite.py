"""tools/convert_tflite.py: an existing output is replaced only with --overwrite."""

import os

import pytest


@pytest.fixture
def tool(run_tool_in_process):
  return lambda *args: run_tool_in_process("convert_tflite.py", *args)


def _one_error(result):
  assert result.code == 2, result.err
  lines = [l for l in result.lines if ": error: " in l]
  assert len(lines) == 1 and lines[0] == result.lines[-1], result.err
  return lines[0]


def test_existing_output_or_labels_refused_before_any_work(tool, tmp_path):
  mine, labels = tmp_path / "mine.tflite", tmp_path / "mine.labels.txt"
  mine.write_text("precious")
  labels.write_text("x")
  # --saved_model does not exist: the refusal comes before it is read.
  r = tool(f"--saved_model={tmp_path}/none", f"--output={mine}", "--quantize=none")
  assert f"--output '{mine}' already exists; pass --overwrite" in _one_error(r)
  mine.unlink()
  r = tool(f"--saved_model={tmp_path}/none", f"--output={mine}", "--quantize=none")
  assert f"'{labels}' already exists; pass --overwrite" in _one_error(r)
  assert labels.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["mine.labels.txt"]


def test_directory_output_refused_even_with_overwrite(tool, tmp_path):
  (tmp_path / "d.tflite").mkdir()
  r = tool("--flow_only", f"--output={tmp_path}/d.tflite", "--overwrite")
  assert f"--output '{tmp_path}/d.tflite' is a directory" in _one_error(r)


def test_overwrite_replaces(tool, tmp_path):
  out = tmp_path / "tvl1.tflite"
  out.write_text("old")
  r = tool("--flow_only", "--flow_shape=2,8,8", "--flow_preset=fast", f"--output={out}")
  assert "already exists" in _one_error(r) and out.read_text() == "old"
  r = tool("--flow_only", "--flow_shape=2,8,8", "--flow_preset=fast", f"--output={out}",
           "--overwrite")
  assert r.code == 0, r.err
  assert out.read_bytes()[4:8] == b"TFL3"  # a flatbuffer with TFLite's identifier
  assert os.listdir(tmp_path) == ["tvl1.tflite"]
