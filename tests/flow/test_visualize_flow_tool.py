"""Tests of tools/visualize_flow.py, run as a user runs it (a subprocess)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tsnet_tf.flow import evaluation

_TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools", "visualize_flow.py")


def _run(*args):
  return subprocess.run([sys.executable, _TOOL, *args], capture_output=True,
                        text=True, check=False)


def _write_video(path, num_frames=6, size=32):
  video = pytest.importorskip("tsnet_tf.data.video")
  texture = evaluation.Texture(np.random.default_rng(0), extent=float(size))
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  frames = [np.repeat(texture(x - 2 * t, y)[..., None], 3, -1)
            for t in range(num_frames)]
  video.write_video(path, np.asarray(frames, np.uint8), fps=10)


def test_writes_rows_of_frames_and_flows(tmp_path):
  video, out = str(tmp_path / "v.avi"), str(tmp_path / "fig.png")
  _write_video(video)
  done = _run(f"--video={video}", f"--output={out}", "--rows=2", "--size=0",
              "--preset=fast")
  assert done.returncode == 0, done.stderr[-2000:]
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(Image.open(out))
  # Two rows of five panels (3 frames, 2 flows): much wider than tall.
  assert image.ndim == 3 and image.shape[1] > 2 * image.shape[0] * 0.8
  # Written atomically: no temporary file left beside it.
  assert set(os.listdir(tmp_path)) == {"v.avi", "fig.png"}


def test_too_short_video_names_the_file(tmp_path, capsys):
  video = str(tmp_path / "short.avi")
  _write_video(video, num_frames=2)
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import.
  done = _in_process(capsys, f"--video={video}", f"--output={tmp_path / 'x.png'}",
                     "--size=0", "--preset=fast")
  assert done.code != 0
  assert "short.avi" in done.err and "needs at least 3" in done.err
  assert not os.path.exists(tmp_path / "x.png")


@pytest.mark.slow  # a tool in subprocesses; `make test-all` runs it
def test_helpfull_and_missing_flag():
  done = _run("--helpfull")
  assert done.returncode == 0 and "--video" in done.stdout
  done = _run("--output=a.png")
  assert done.returncode != 0 and "--video is required" in done.stderr


def _in_process(capsys, *args):
  """The tool through `cli.run` in this process (tests/reliability/conftest.py)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "reliability_conftest", os.path.join(os.path.dirname(os.path.dirname(
          os.path.abspath(__file__))), "reliability", "conftest.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.run_tool(capsys, "visualize_flow.py", *args)


def _error_line(result):
  assert result.code == 2, result.err
  lines = [l for l in result.lines if ": error: " in l]
  assert len(lines) == 1 and lines[0] == result.lines[-1], result.err
  return lines[0]


def test_refusals_before_any_flow(capsys, tmp_path):
  video = str(tmp_path / "v.avi")
  _write_video(video)
  mine = tmp_path / "mine.png"
  mine.write_text("precious")
  (tmp_path / "dir.png").mkdir()
  (tmp_path / "x.mp4").mkdir()
  fast = ("--size=0", "--preset=fast")
  for args, needle in [
      ((f"--output={mine}",), f"--output '{mine}' already exists; pass --overwrite"),
      ((f"--output={tmp_path}/dir.png", "--overwrite"), "dir.png' is a directory"),
      ((f"--output={tmp_path}/n.png", "--max_flow=-5"), "--max_flow=-5.0: must be > 0"),
  ]:
    assert needle in _error_line(_in_process(capsys, f"--video={video}", *args, *fast))
  r = _in_process(capsys, f"--video={tmp_path}/x.mp4", f"--output={tmp_path}/n.png")
  assert "x.mp4: is a directory" in _error_line(r)
  assert mine.read_text() == "precious"
  assert sorted(os.listdir(tmp_path)) == ["dir.png", "mine.png", "v.avi", "x.mp4"]
  # --overwrite replaces it; 0 still means each row's own scale.
  r = _in_process(capsys, f"--video={video}", f"--output={mine}", "--overwrite", "--rows=1",
                  "--max_flow=0", *fast)
  assert r.code == 0, r.err
  assert mine.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
