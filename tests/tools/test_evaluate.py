"""tools/evaluate.py as a command on a tiny data directory and an untrained tiny teacher."""

import importlib.util
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "evaluate.py")


def _tiny_data(tmp_path_factory):
  path = os.path.join(REPO, "tests", "training", "tiny_data.py")
  spec = importlib.util.spec_from_file_location("tiny_data", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  # Same directory as tests/training's fixture: built once per session.
  return module.make_tiny_data_dir(str(tmp_path_factory.getbasetemp() / "tiny"))


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                        env=env, timeout=300)


def test_helpfull():
  proc = _run("--helpfull")
  assert proc.returncode == 0
  for flag in ("--model_dir", "--data_dir", "--split", "--num_clips", "--fuse_with"):
    assert flag in proc.stdout, flag


def test_writes_eval_json_with_fractions(tmp_path, tmp_path_factory):
  from tsnet_tf import models
  data_dir = _tiny_data(tmp_path_factory)
  model_dir = tmp_path / "model"
  # A teacher: loading it in a fresh process needs TVL1Flow registered.
  model = models.build_teacher(2, 4, 16, backbone="light", width=4,
                               flow_overrides=dict(num_scales=1, finest_scale=0, num_warps=1,
                                                   num_iters=2, median_size=0))
  model_dir.mkdir()
  model.save(str(model_dir / "model.keras"))
  proc = _run(f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--num_clips=3",
              "--batch_size=4")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "video accuracy" in proc.stdout
  with open(model_dir / "eval.json") as f:
    result = json.load(f)
  for key in ("clip_accuracy", "video_accuracy"):
    assert 0.0 <= result[key] <= 1.0
  assert result["num_clips"] == 3 * result["num_videos"] == 6
  assert (model_dir / "confusion_matrix.png").stat().st_size > 0
