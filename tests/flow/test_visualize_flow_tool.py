"""Tests of tools/visualize_flow.py (library entry points and the CLI)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import _flow_data

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(_ROOT, "tools"))
import visualize_flow  # pylint: disable=g-import-not-at-top,wrong-import-position


def _write_video(path, num_frames=6, size=32):
  video = pytest.importorskip("tsnet_tf.data.video")
  texture = _flow_data.Texture(np.random.default_rng(0), extent=float(size))
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  frames = [np.repeat(texture(x - 2 * t, y)[..., None], 3, -1)
            for t in range(num_frames)]
  video.write_video(path, np.asarray(frames, np.uint8), fps=10)


def test_writes_rows_of_frames_and_flows(tmp_path):
  video, out = str(tmp_path / "v.avi"), str(tmp_path / "fig.png")
  _write_video(video)
  visualize_flow.visualize_video(video, out, rows=2, size=0, preset="fast")
  from PIL import Image
  image = np.asarray(Image.open(out))
  assert image.ndim == 3 and image.shape[1] > 2 * image.shape[0] * 0.8
  # Written atomically: no temporary file left beside it.
  assert set(os.listdir(tmp_path)) == {"v.avi", "fig.png"}


def test_too_short_video_names_the_file(tmp_path):
  video = str(tmp_path / "short.avi")
  _write_video(video, num_frames=2)
  with pytest.raises(ValueError, match="short.avi.*needs at least 3"):
    visualize_flow.visualize_video(video, str(tmp_path / "x.png"), size=0,
                                   preset="fast")
  assert not os.path.exists(tmp_path / "x.png")


def test_pick_triplets_spread_over_video():
  assert visualize_flow.pick_triplets(10, 3, 1) == [0, 4, 7]
  assert visualize_flow.pick_triplets(5, 1, 2) == [0]


def test_helpfull_and_missing_flag():
  tool = os.path.join(_ROOT, "tools", "visualize_flow.py")
  done = subprocess.run([sys.executable, tool, "--helpfull"],
                        capture_output=True, text=True, check=False)
  assert done.returncode == 0 and "--video" in done.stdout
  done = subprocess.run([sys.executable, tool, "--output=a.png"],
                        capture_output=True, text=True, check=False)
  assert done.returncode != 0 and "--video is required" in done.stderr
