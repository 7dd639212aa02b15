import json
import os
import subprocess
import sys

import pytest

from tsnet_tf.data import hmdb51
from tsnet_tf.data import video

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TOOL = os.path.join(_ROOT, "tools", "make_synthetic.py")
_SMALL = ["--height=32", "--width=40", "--min_seconds=0.3", "--max_seconds=0.4"]


def _run(*flags):
  return subprocess.run([sys.executable, _TOOL, *flags], capture_output=True, text=True,
                        timeout=120)


def test_helpfull_documents_every_flag(run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import for --help.
  proc = run_tool_in_process("make_synthetic.py", "--helpfull")
  assert proc.code == 0, proc.err
  for flag in ("--output_dir", "--num_classes", "--videos_per_class", "--seed", "--height",
               "--width", "--min_seconds", "--max_seconds", "--fps", "--broken", "--[no]overwrite",
               "--num_workers"):
    assert flag in proc.out, flag


def test_generates_dataset_and_reports_broken_files(tmp_path):
  out = tmp_path / "ds"
  proc = _run(f"--output_dir={out}", "--num_classes=2", "--videos_per_class=3", "--seed=5",
              "--broken=2", "--fps=25", *_SMALL)
  assert proc.returncode == 0, proc.stderr
  classes = hmdb51.list_class_dirs(str(out / "videos"))
  assert classes == ["move_left", "move_right"]
  hmdb51.read_splits(str(out / "splits"), classes)
  manifest = json.loads((out / "manifest.json").read_text())
  broken = [v for v in manifest["videos"] if v["broken"]]
  assert [v["broken"] for v in broken] == ["empty", "truncated"]
  for v in broken:
    assert v["path"] in proc.stdout
  good = [v for v in manifest["videos"] if not v["broken"]]
  assert len(good) == 6
  assert video.probe_video(str(out / good[0]["path"])).fps == 25.0
  assert "split 1: train" in proc.stdout


@pytest.mark.parametrize("flags, message", [
    (["--num_classes=13"], "num_classes"),
    (["--broken=empty,bogus"], "bogus"),
    (["--fps=fast"], "--fps"),
])
def test_bad_flags_fail_with_a_clear_error(tmp_path, flags, message, run_tool_in_process):
  # In-process (cli.run, as its __main__): refused before any video is written.
  proc = run_tool_in_process("make_synthetic.py", f"--output_dir={tmp_path / 'ds'}", *flags)
  assert proc.code != 0
  assert message in proc.err + proc.out
  assert not (tmp_path / "ds").exists()


def test_missing_output_dir_and_existing_output_dir(tmp_path, run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import.
  proc = run_tool_in_process("make_synthetic.py")
  assert proc.code != 0 and "output_dir" in proc.err
  proc = run_tool_in_process("make_synthetic.py", f"--output_dir={tmp_path}")
  assert proc.code != 0 and "--overwrite" in proc.err + proc.out
