"""tools/results_table.py as a command: flags, errors, and a table for a tiny teacher."""

import pytest
import json


def test_helpfull(run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import for --help.
  result = run_tool_in_process("results_table.py", "--helpfull")
  assert result.code == 0
  for flag in ("--rgb_dir", "--flow_dir", "--student_dir", "--data_dir", "--output_dir",
               "--timing_runs", "--[no]tflite"):
    assert flag in result.out, flag
  # The tool spells out tsnet_tf.config.FUSION_MODES (no Keras at --help).
  from tsnet_tf import config  # pylint: disable=g-import-not-at-top
  assert f"--fusion: <{'|'.join(config.FUSION_MODES)}>" in result.out


@pytest.mark.slow  # a tool in subprocesses; `make test-all` runs it
def test_bad_input_names_the_flag(tmp_path, run_tool):
  proc = run_tool("results_table.py", f"--data_dir={tmp_path}",
                  f"--output_dir={tmp_path / 'out'}")
  assert proc.returncode == 2
  assert "--rgb_dir, --flow_dir, --student_dir" in proc.stderr
  proc = run_tool("results_table.py", f"--flow_dir={tmp_path}",
                  f"--data_dir={tmp_path / 'nowhere'}", f"--output_dir={tmp_path / 'out'}",
                  "--progress=false")
  assert proc.returncode == 2
  assert "--data_dir" in proc.stderr and "nowhere" in proc.stderr
  assert not (tmp_path / "out" / "table1.md").exists()


def test_table_for_a_flow_network(tmp_path, tiny_data_dir, run_tool):
  from tsnet_tf import models
  flow_dir = tmp_path / "flow"
  flow_dir.mkdir()
  # Untrained: the table reports whatever accuracy it has; a fresh process must load it.
  models.build_teacher(2, 4, 16, backbone="light", width=4,
                       flow_overrides=dict(num_scales=1, finest_scale=0, num_warps=1,
                                           num_iters=2, median_size=0)
                       ).save(str(flow_dir / "model.keras"))
  out = tmp_path / "table"
  proc = run_tool("results_table.py", f"--flow_dir={flow_dir}", f"--data_dir={tiny_data_dir}",
                  f"--output_dir={out}", "--num_clips=2", "--timing_runs=2", "--notflite",
                  "--progress=false")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| 3D CNN on TV-L1 flow (flow = teacher) |" in proc.stdout
  assert (out / "table1.md").read_text() in proc.stdout + "\n"
  rows = json.loads((out / "table1.json").read_text())
  assert [r["model"] for r in rows] == ["flow"]
  assert rows[0]["tflite_ms_per_clip"] is None and rows[0]["ms_per_clip"] > 0
  assert json.loads((out / "flow" / "eval.json").read_text())["num_clips"] == 4


def test_swapped_run_directories_are_refused(tmp_path, run_tool_in_process):
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  for name, stage in (("rgb", "rgb"), ("teacher", "teacher")):
    (tmp_path / name).mkdir()
    config_lib.save_config(config_lib.load_config(None, stage),
                           str(tmp_path / name / "config.yaml"))
  out = tmp_path / "out"
  # In-process (cli.run, as its __main__): the refusals come before any evaluation.
  proc = run_tool_in_process("results_table.py", f"--rgb_dir={tmp_path / 'teacher'}",
                             f"--flow_dir={tmp_path / 'rgb'}", f"--data_dir={tmp_path}",
                             f"--output_dir={out}", "--progress=false")
  assert proc.code == 2, proc.err[-3000:]
  assert "Traceback" not in proc.err
  assert "--rgb_dir" in proc.err and "holds a teacher run" in proc.err
  assert not out.exists()
  proc = run_tool_in_process("results_table.py", f"--student_dir={tmp_path / 'rgb'}",
                             f"--data_dir={tmp_path}", f"--output_dir={out}",
                             "--progress=false")
  assert proc.code == 2
  assert "--student_dir" in proc.err and "holds a rgb run" in proc.err
