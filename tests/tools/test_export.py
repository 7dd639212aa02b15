"""tools/export.py, convert_tflite.py, predict.py, serve_client.py as a user runs them."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tsnet_tf.data import clip_spec
from tsnet_tf.data import video
from tsnet_tf.layers import clip_contract
from tsnet_tf.models import build_rgb_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T, S = 4, 16
CLASSES = ("catch", "hug", "run")
# The model's logits are these constants (zero kernel), so every tool must print
# hug, run, catch with softmax([0, 2, 1]) = 0.6652, 0.2447, 0.0900.
BIAS = np.array([0.0, 2.0, 1.0], np.float32)
EXPECTED = [("hug", 0.6652), ("run", 0.2447), ("catch", 0.0900)]
SPEC = clip_spec.ClipSpec(T, S, frame_stride=2,
                          stored_frames=clip_spec.StoredFrames(short_side=20, jpeg_quality=90))


def _run(tool, *args, ok=True):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", tool), *args],
                        capture_output=True, text=True, timeout=300, cwd=ROOT,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if ok:
    assert proc.returncode == 0, proc.stderr[-2000:]
  else:
    assert proc.returncode != 0, proc.stdout
  return proc


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  """A training-style output directory with a tiny student of known output."""
  path = tmp_path_factory.mktemp("run")
  keras.utils.set_random_seed(0)
  model = build_rgb_model(len(CLASSES), T, S, backbone="light", width=4)
  logits = model.get_layer("logits")
  logits.set_weights([np.zeros_like(logits.get_weights()[0]), BIAS])
  clip_contract.attach(model, SPEC, CLASSES).save(str(path / "model.keras"))
  (path / "labels.txt").write_text("\n".join(CLASSES) + "\n")
  return str(path)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("v") / "a.avi")
  video.write_video(path, np.random.default_rng(0).integers(0, 255, (6, 24, 30, 3), np.uint8),
                    fps=25)
  return path


def _check_top(out, atol=1e-3):
  """The tool printed the model's ranking and probabilities (and its frame stride)."""
  lines = [l.split() for l in out.splitlines() if l[:2] in ("1.", "2.", "3.", "4.")]
  assert [l[1] for l in lines] == [name for name, _ in EXPECTED], out
  np.testing.assert_allclose([float(l[2]) for l in lines], [p for _, p in EXPECTED],
                             atol=atol, err_msg=out)
  assert "frame stride 2" in out, out


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory):
  path = str(tmp_path_factory.mktemp("saved_models") / "student" / "1")
  _run("export.py", f"--model_dir={model_dir}", f"--export_dir={path}")
  return path


@pytest.mark.slow
def test_export_refuses_overwrite_and_predict(export_dir, model_dir, clip_file):
  assert os.path.isfile(os.path.join(export_dir, "assets", "labels.txt"))
  refused = _run("export.py", f"--model_dir={model_dir}", f"--export_dir={export_dir}", ok=False)
  assert "already exists" in refused.stderr and "--overwrite" in refused.stderr
  _check_top(_run("predict.py", f"--model={export_dir}", f"--video={clip_file}").stdout)


@pytest.mark.slow
def test_convert_and_predict_tflite(export_dir, clip_file, tmp_path):
  tflite = str(tmp_path / "student.tflite")
  _run("convert_tflite.py", f"--saved_model={export_dir}", f"--output={tflite}",
       "--quantize=float16")
  _check_top(_run("predict.py", f"--model={tflite}", f"--video={clip_file}").stdout, atol=2e-3)


@pytest.mark.slow
def test_clear_errors(model_dir, clip_file, tmp_path):
  bad = _run("export.py", f"--model_dir={model_dir}",
             f"--export_dir={tmp_path / 'student' / 'latest'}", ok=False)
  assert "numeric version" in bad.stderr
  broken = tmp_path / "broken.avi"
  broken.write_bytes(b"garbage")
  out = _run("predict.py", f"--model={model_dir}/model.keras", f"--video={broken}", ok=False)
  assert "broken.avi" in out.stderr
  out = _run("convert_tflite.py", f"--saved_model={model_dir}/model.keras",
             f"--output={tmp_path / 'x.tflite'}", "--quantize=int8", ok=False)
  assert "--data_dir" in out.stderr


@pytest.mark.parametrize("tool, flag", [("export.py", "--export_dir"),
                                        ("convert_tflite.py", "--saved_model"),
                                        ("predict.py", "--video"),
                                        ("serve_client.py", "--server")])
def test_helpfull(tool, flag, run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import for --help.
  result = run_tool_in_process(tool, "--helpfull")
  assert result.code == 0
  assert "flags" in result.out.lower() and flag in result.out


@pytest.mark.slow
@pytest.mark.parametrize("rest", [False, True])
def test_serve_client_against_test_double(export_dir, clip_file, rest):
  spec = importlib.util.spec_from_file_location(
      "fake_model_server", os.path.join(ROOT, "tests", "export", "fake_model_server.py"))
  fake_model_server = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(fake_model_server)
  start = fake_model_server.start_rest_server if rest else fake_model_server.start_grpc_server
  server, address = start("student", 1, export_dir)
  try:
    args = [f"--server={address}", "--model_name=student", f"--video={clip_file}"]
    _check_top(_run("serve_client.py", *args, *(["--rest"] if rest else [])).stdout)
    refused = _run("serve_client.py", f"--server={address}", "--model_name=nope",
                   f"--video={clip_file}", *(["--rest"] if rest else []), ok=False)
    assert "refused" in refused.stderr
  finally:
    if rest:
      server.shutdown()
    else:
      server.stop(0)
