"""tools/make_footage_set.py: --overwrite never deletes what the tool did not write."""

import os

import pytest


@pytest.fixture
def tool(run_tool_in_process):
  return lambda *args: run_tool_in_process("make_footage_set.py", *args)


@pytest.fixture
def loc(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  np = pytest.importorskip("numpy")
  video = pytest.importorskip("tsnet_tf.data.video")
  for name in ("a", "b"):
    video.write_video(str(src / f"{name}.avi"),
                      np.random.default_rng(0).integers(0, 255, (12, 16, 16, 3), np.uint8), 25)
  return tmp_path


_FLAGS = ("--windows_per_source=4", "--min_window_frames=2", "--max_window_frames=3",
          "--gap_frames=0")


def _one_error(result):
  assert result.code != 0, result.out
  lines = [l for l in result.lines if ": error: " in l]
  assert len(lines) == 1 and lines[0] == result.lines[-1], result.err
  return lines[0]


@pytest.mark.parametrize("output, needle", [
    ("src", "--output_dir '{loc}/src' is --video_dir"),
    ("src/out", "--output_dir '{loc}/src/out' is inside --video_dir"),
    (".", "--video_dir '{loc}/src' is inside --output_dir"),
])
def test_output_dir_apart_from_video_dir(tool, loc, output, needle):
  before = sorted(os.listdir(loc / "src"))
  r = tool(f"--video_dir={loc}/src", f"--output_dir={os.path.normpath(loc / output)}",
           *_FLAGS, "--overwrite")
  assert needle.format(loc=loc) in _one_error(r) and r.code == 2
  assert sorted(os.listdir(loc / "src")) == before == ["a.avi", "b.avi"]
  assert not (loc / "src" / "out").exists()


def test_overwrite_refuses_a_directory_it_did_not_write(tool, loc):
  (loc / "thesis").mkdir()
  (loc / "thesis" / "thesis.txt").write_text("mine")
  r = tool(f"--video_dir={loc}/src", f"--output_dir={loc}/thesis", *_FLAGS, "--overwrite")
  assert "not a dataset written by make_footage_set" in _one_error(r)
  assert os.listdir(loc / "thesis") == ["thesis.txt"]


def test_writes_readable_dir_and_replaces_its_own(tool, loc):
  old = os.umask(0o022)
  try:
    assert tool(f"--video_dir={loc}/src", f"--output_dir={loc}/set", *_FLAGS).code == 0
    assert (loc / "set").stat().st_mode & 0o777 == 0o755
    r = tool(f"--video_dir={loc}/src", f"--output_dir={loc}/set", *_FLAGS, "--overwrite")
    assert r.code == 0, r.err
  finally:
    os.umask(old)
  assert sorted(os.listdir(loc)) == ["set", "src"]


def test_missing_video_dir_is_one_line(tool, tmp_path):
  r = tool(f"--video_dir={tmp_path}/nope", f"--output_dir={tmp_path}/o")
  assert f"--video_dir '{tmp_path}/nope' is not a directory" in _one_error(r) and r.code == 2
