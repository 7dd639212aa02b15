import json
import os
import subprocess
import sys

import pytest

from tsnet_tf.data import hmdb51
from tsnet_tf.data import synthetic

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TOOL = os.path.join(_ROOT, "tools", "prepare_hmdb51.py")


def _run(*flags):
  return subprocess.run([sys.executable, _TOOL, *flags], capture_output=True, text=True,
                        timeout=300)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("synth") / "hmdb")
  synthetic.generate_dataset(root, num_classes=2, videos_per_class=3, seed=2, height=32,
                             width=40, min_seconds=0.4, max_seconds=0.6, fps=(25.0,),
                             broken=("garbage",))
  return root


def test_helpfull_documents_every_flag(run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import for --help.
  proc = run_tool_in_process("prepare_hmdb51.py", "--helpfull")
  assert proc.code == 0, proc.err
  for flag in ("--video_dir", "--split_dir", "--output_dir", "--splits", "--short_side",
               "--jpeg_quality", "--frame_stride", "--validation_fraction", "--validation_groups",
               "--num_workers", "--num_shards",
               "--[no]overwrite", "--flow_preset", "--flow_stride", "--flow_bound"):
    assert flag in proc.out, flag


def test_converts_and_reports(synth, tmp_path):
  split_dir = tmp_path / "splits"
  split_dir.mkdir()
  for name in os.listdir(os.path.join(synth, "splits")):
    text = open(os.path.join(synth, "splits", name)).read()
    if name == hmdb51.split_file_name("move_left", 1):
      text += "ghost.avi 1 \n"
    (split_dir / name).write_text(text)
  out = tmp_path / "data"
  proc = _run(f"--video_dir={synth}/videos", f"--split_dir={split_dir}", f"--output_dir={out}",
              "--splits=1,2", "--short_side=16", "--num_workers=1", "--num_shards=2")
  assert proc.returncode == 0, proc.stderr
  summary = json.loads((out / "summary.json").read_text())
  assert (out / "labels.txt").read_text().split() == ["move_left", "move_right"]
  assert sorted(summary["splits"]) == ["1", "2"]
  assert summary["num_videos"] == 6 and summary["num_skipped"] == 1
  assert summary["skipped"][0]["video"].startswith("move_left/")
  assert summary["missing"][0]["video"] == "move_left/ghost.avi"
  assert sorted(os.listdir(out)) == ["_shard_info", "hmdb51-00000-of-00002.tfrecord",
                                     "hmdb51-00001-of-00002.tfrecord", "labels.txt", "plan.json",
                                     "summary.json"]
  assert "skipped 1 unreadable videos" in proc.stdout
  assert "move_left/ghost.avi" in proc.stdout
  for k in ("1", "2"):
    c = summary["splits"][k]
    assert f"split {k}: train {c['train']}" in proc.stdout
    assert c["train"] + c["validation"] + c["test"] == 6
    assert c["validation"] >= 1
    assert f"validation {c['validation']}" in proc.stdout


def test_missing_split_file_is_an_error_before_work(synth, tmp_path, run_tool_in_process):
  split_dir = tmp_path / "splits"
  split_dir.mkdir()
  for name in os.listdir(os.path.join(synth, "splits")):
    if name != hmdb51.split_file_name("move_right", 3):
      (split_dir / name).write_text(open(os.path.join(synth, "splits", name)).read())
  out = tmp_path / "data"
  # In-process (cli.run, as its __main__): the error comes before any conversion.
  proc = run_tool_in_process("prepare_hmdb51.py", f"--video_dir={synth}/videos",
                             f"--split_dir={split_dir}", f"--output_dir={out}")
  assert proc.code == 1
  assert "move_right_test_split3.txt" in proc.err and "missing split file" in proc.err
  assert not out.exists()


# In-process (cli.run, as its __main__): a subprocess would pay TF's import (~5-15 s).
# Splits are numbered from 1; one without split files is named with the file it lacks.
@pytest.mark.parametrize("flag, match", [("--splits=0,1", "--splits"),
                                         ("--splits=1,4", "missing split file"),
                                         ("--jpeg_quality=0", "jpeg_quality")])
def test_bad_flags_are_clear(synth, tmp_path, flag, match, run_tool_in_process):
  proc = run_tool_in_process("prepare_hmdb51.py", f"--video_dir={synth}/videos",
                             f"--split_dir={synth}/splits", f"--output_dir={tmp_path / 'o'}",
                             flag)
  assert proc.code != 0
  assert match in proc.err


def test_flow_flags_store_flow_and_bad_values_are_usage_errors(synth, tmp_path,
                                                              run_tool_in_process):
  out = tmp_path / "data"
  common = (f"--video_dir={synth}/videos", f"--split_dir={synth}/splits", "--splits=1",
            "--short_side=16", "--num_workers=1", "--num_shards=1")
  # In-process (cli.run, as its __main__): test_converts_and_reports runs the tool as a
  # subprocess; a second one would pay TF's import again.
  proc = run_tool_in_process("prepare_hmdb51.py", *common, f"--output_dir={out}",
                             "--flow_preset=fast", "--flow_stride=2", "--flow_bound=5")
  assert proc.code == 0, proc.err
  summary = json.loads((out / "summary.json").read_text())
  assert summary["flow"] == {"preset": "fast", "stride": 2, "bound": 5.0, "overrides": {}}
  assert "stored TV-L1 flow: preset fast, stride 2, bound 5 px" in proc.out
  proc = run_tool_in_process("prepare_hmdb51.py", *common, f"--output_dir={tmp_path / 'bad'}",
                             "--flow_preset=fast", "--flow_bound=0")
  assert proc.code != 0 and "--flow_bound must be > 0" in proc.err
