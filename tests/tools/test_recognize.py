"""tools/recognize.py: window lines, outputs, stdin frames, and one-line errors.

In-process (`run_tool_in_process`), on a random-weight light classifier that
carries its clip spec: the tool's plumbing, not the model, is under test
(tests/export/test_recognize.py checks what the windows find).
"""

import importlib.util
import io
import json
import os
import sys

import numpy as np
import pytest

CLASSES = ("catch", "hug", "run")
N, FPS = 30, 25


@pytest.fixture
def tool(run_tool_in_process):
  return run_tool_in_process


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import clip_spec  # pylint: disable=g-import-not-at-top
  from tsnet_tf.layers import clip_contract  # pylint: disable=g-import-not-at-top
  model = models.build_rgb_model(len(CLASSES), 4, 16, backbone="light", width=4)
  model = clip_contract.attach(model, clip_spec.ClipSpec(num_frames=4, crop_size=16,
                                                     frame_stride=2), CLASSES)
  path = tmp_path_factory.mktemp("run") / "model.keras"
  model.save(str(path))
  return str(path)


@pytest.fixture(scope="module")
def frames():
  return np.random.default_rng(0).integers(0, 255, (N, 24, 32, 3), np.uint8)


@pytest.fixture(scope="module")
def video_file(tmp_path_factory, frames):
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  path = tmp_path_factory.mktemp("v") / "a.avi"
  video.write_video(path, frames, fps=FPS)
  return str(path)


def _error_line(result, code):
  assert result.code == code, (result.out, result.err)
  assert "Traceback" not in result.err, result.err
  errors = [l for l in result.lines if ": error: " in l]
  assert len(errors) == 1 and errors[0] == result.lines[-1], result.err
  return errors[0]


def _windows(out):
  return [l for l in out.splitlines() if l.startswith("[")]


def test_prints_windows_and_writes_the_outputs(tool, model_path, video_file, tmp_path):
  r = tool("recognize.py", f"--model={model_path}", f"--video={video_file}",
           f"--output_dir={tmp_path}", "--top_k=2", "--hop=4", "--timeline", "--quiet=false")
  assert r.code == 0, r.err
  windows = _windows(r.out)
  span = 7  # T=4 frames 2 apart
  assert len(windows) == (N - span) // 4 + 2  # + the window ending on the last frame
  assert windows[0].startswith("[    0.00s -     0.28s]")
  assert all(sum(name in w for name in CLASSES) == 2 for w in windows)
  assert "end of stream after 30 frames" in r.out.splitlines()[-1]
  lines = [json.loads(l) for l in (tmp_path / "windows.jsonl").read_text().splitlines()]
  assert [w["start_frame"] for w in lines[:-1]] == list(range(0, N - span + 1, 4))
  assert lines[-1]["end_frame"] == N
  saved = json.loads((tmp_path / "segments.json").read_text())
  assert saved["windows"] == len(lines) and saved["clip"]["frame_stride"] == 2
  assert (tmp_path / "timeline.png").is_file()


def _rtsp_helper():
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export",
                      "rtsp_server.py")
  spec = importlib.util.spec_from_file_location("tests_export_rtsp_server", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("stop_after", [None, 20])
def test_rtsp_stream_over_tcp(tool, model_path, frames, tmp_path, stop_after):
  """A stream from tests/export/rtsp_server.py; a server that dies after 20 frames."""
  with _rtsp_helper().RtspServer(frames, fps=FPS, speed=4, stop_after=stop_after) as server:
    r = tool("recognize.py", f"--model={model_path}", f"--video={server.url}",
             "--rtsp_transport=tcp", "--timeout=5", f"--output_dir={tmp_path}", "--quiet")
  assert r.code == 0, r.err
  assert server.transports == ["RTP/AVP/TCP;unicast;interleaved=0-1"]
  n = stop_after or N
  assert r.out.splitlines()[0] == f"{server.url} (keras, {_spec_text()}, 25 fps, live)"
  assert r.out.splitlines()[-1].startswith(f"{server.url}: end of stream after {n} frames")
  saved = json.loads((tmp_path / "segments.json").read_text())
  assert saved["frames"] == n and saved["source"] == server.url
  assert saved["windows"] + saved["dropped"] == (n - 7) // 3 + 2


def _spec_text():
  from tsnet_tf.data import clip_spec  # pylint: disable=g-import-not-at-top
  return clip_spec.ClipSpec(num_frames=4, crop_size=16, frame_stride=2).describe()


def test_stdin_frames(tool, model_path, frames, monkeypatch, tmp_path):
  monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(frames.tobytes())))
  r = tool("recognize.py", f"--model={model_path}", "--video=-", "--stdin_size=32x24",
           "--stdin_fps=25", f"--output_dir={tmp_path}", "--quiet")
  assert r.code == 0, r.err
  assert not _windows(r.out)
  saved = json.loads((tmp_path / "segments.json").read_text())
  assert saved["frames"] == N and saved["source"] == "-"
  assert saved["windows"] + saved["dropped"] == (N - 7) // 3 + 2


@pytest.mark.parametrize("args, code, needles", [
    (["--video=/nonexistent/x.avi"], 1, ["--video", "x.avi", "does not exist"]),
    (["--video=-"], 2, ["--stdin_size", "--stdin_fps"]),
    (["--video=-", "--stdin_size=32by24", "--stdin_fps=25"], 2, ["--stdin_size", "32by24"]),
    (["--video=x.avi", "--server=localhost:1", "--model_name=m"], 2, ["either --model or"]),
])
def test_errors_are_one_line(tool, model_path, args, code, needles):
  r = tool("recognize.py", f"--model={model_path}", *args)
  line = _error_line(r, code)
  for needle in needles:
    assert needle in line, (needle, line)


def test_server_needs_a_model_name(tool):
  line = _error_line(tool("recognize.py", "--server=localhost:1", "--video=x.avi"), 2)
  assert "--model_name" in line
