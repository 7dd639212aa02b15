"""tools/layout_sessions.py: the layout, then prepare_hmdb51 on it with one split per session."""

import json
import os

import numpy as np

from tsnet_tf.data import video as video_lib


def _recordings(root):
  lines = ["relative_path\tsession\n"]
  for cls in ("left", "right"):
    os.makedirs(root / "rec" / cls)
    for session in ("S1", "S2", "S3"):
      name = f"{cls}_{session}.mp4"
      frames = np.random.default_rng(len(lines)).integers(0, 255, (4, 16, 16, 3), np.uint8)
      video_lib.write_video(str(root / "rec" / cls / name), frames, 10)
      lines.append(f"{cls}/{name}\t{session}\n")
  (root / "sessions.tsv").write_text("".join(lines))


def test_layout_then_convert_one_split_per_session(tmp_path, run_tool_in_process):
  _recordings(tmp_path)
  out = tmp_path / "layout"
  result = run_tool_in_process("layout_sessions.py", f"--video_dir={tmp_path / 'rec'}",
                               f"--sessions={tmp_path / 'sessions.tsv'}", f"--output_dir={out}")
  assert result.code == 0, result.err
  assert "split 3: test session S3 (left 1, right 1)" in result.out
  assert "--validation_groups=shared" in result.out  # the hint for the converter
  data = tmp_path / "data"
  result = run_tool_in_process("prepare_hmdb51.py", f"--video_dir={out / 'videos'}",
                               f"--split_dir={out / 'splits'}", f"--output_dir={data}",
                               "--splits=1,2,3", "--short_side=0", "--num_workers=1",
                               "--validation_fraction=0.4", "--validation_groups=shared")
  assert result.code == 0, result.err
  summary = json.loads((data / "summary.json").read_text())
  for k in ("1", "2", "3"):
    # One session tested, one of the two training sessions held out for validation.
    assert summary["splits"][k] == {"train": 2, "validation": 2, "test": 2}, summary["splits"]


def test_a_missing_sessions_file_is_one_line(tmp_path, run_tool_in_process):
  _recordings(tmp_path)
  result = run_tool_in_process("layout_sessions.py", f"--video_dir={tmp_path / 'rec'}",
                               f"--sessions={tmp_path / 'nope.tsv'}",
                               f"--output_dir={tmp_path / 'out'}")
  assert result.code != 0
  assert result.lines[-1].endswith(f"--sessions '{tmp_path / 'nope.tsv'}' does not exist")
  assert not (tmp_path / "out").exists()
