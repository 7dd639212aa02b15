"""tools/results_table.py as a command: flags, errors, and a table for a tiny teacher."""

import importlib.util
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "results_table.py")


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
  for flag in ("--rgb_dir", "--flow_dir", "--student_dir", "--data_dir", "--output_dir",
               "--timing_runs", "--[no]tflite"):
    assert flag in proc.stdout, flag


def test_bad_input_names_the_flag(tmp_path):
  proc = _run(f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'out'}")
  assert proc.returncode == 1
  assert "--rgb_dir, --flow_dir, --student_dir" in proc.stderr
  proc = _run(f"--flow_dir={tmp_path}", f"--data_dir={tmp_path / 'nowhere'}",
              f"--output_dir={tmp_path / 'out'}", "--progress=false")
  assert proc.returncode == 2
  assert "--data_dir" in proc.stderr and "nowhere" in proc.stderr
  assert not (tmp_path / "out" / "table1.md").exists()


def test_table_for_a_flow_network(tmp_path, tmp_path_factory):
  from tsnet_tf import models
  data_dir = _tiny_data(tmp_path_factory)
  flow_dir = tmp_path / "flow"
  flow_dir.mkdir()
  # Untrained: the table reports whatever accuracy it has; a fresh process must load it.
  models.build_teacher(2, 4, 16, backbone="light", width=4,
                       flow_overrides=dict(num_scales=1, finest_scale=0, num_warps=1,
                                           num_iters=2, median_size=0)
                       ).save(str(flow_dir / "model.keras"))
  out = tmp_path / "table"
  proc = _run(f"--flow_dir={flow_dir}", f"--data_dir={data_dir}", f"--output_dir={out}",
              "--num_clips=2", "--timing_runs=2", "--notflite", "--progress=false")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| 3D CNN on TV-L1 flow (flow = teacher) |" in proc.stdout
  assert (out / "table1.md").read_text() in proc.stdout + "\n"
  rows = json.loads((out / "table1.json").read_text())
  assert [r["model"] for r in rows] == ["flow"]
  assert rows[0]["tflite_ms_per_clip"] is None and rows[0]["ms_per_clip"] > 0
  assert json.loads((out / "flow" / "eval.json").read_text())["num_clips"] == 4
