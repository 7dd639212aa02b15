"""tsnet_tf.export.recognize: windows, segments, sources, live behaviour, outputs.

The fast tests use a fake model whose output depends on the frames (the
direction the whole image moves between the clip's first and last frame, by
phase correlation) on a long video made by concatenating synthetic `pan_*`
classes (tsnet_tf.data.synthetic); the slow one recognises a long video with
the tiny student trained in conftest.py.
"""

import functools
import http.server
import io
import json
import os
import socketserver
import threading
import time

import numpy as np
import pytest

from tsnet_tf.data import clip_spec
from tsnet_tf.layers import clip_contract
from tsnet_tf.data import synthetic_render
from tsnet_tf.data import video
from tsnet_tf.data import streams
from tsnet_tf.export import recognize as rec

PANS = ["pan_down", "pan_left", "pan_right", "pan_up"]
ORDER = ["pan_left", "pan_up", "pan_right", "pan_down", "pan_left"]
SEG_FRAMES, FPS, H, W = 40, 25, 48, 64
SPEC = clip_spec.ClipSpec(num_frames=4, crop_size=16, frame_stride=3)  # span 10 frames


class PanModel(rec.Classifier):
  """Probabilities of the four pans from the global shift between first and last frame."""
  kind = "fake"

  def __init__(self, spec=SPEC, delay=0.0):
    self.spec, self.labels, self.delay, self.calls = spec, list(PANS), delay, 0

  def classify(self, clips):
    self.calls += 1
    out = []
    for clip in clips:
      a, b = clip[0].mean(-1), clip[-1].mean(-1)
      cross = np.fft.fft2(a) * np.conj(np.fft.fft2(b))
      r = np.fft.ifft2(cross / (np.abs(cross) + 1e-6)).real
      dy, dx = np.unravel_index(np.argmax(r), r.shape)
      dy = dy - r.shape[0] if dy > r.shape[0] // 2 else dy
      dx = dx - r.shape[1] if dx > r.shape[1] // 2 else dx
      z = np.array([dy, -dx, dx, -dy], np.float64)
      e = np.exp(z - z.max())
      out.append(e / e.sum())
    if self.delay:
      time.sleep(self.delay)
    return np.asarray(out, np.float32)


def _iou(a, b):
  inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
  return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def check_segments_found(segments, truth):
  """Every true (label, start, end) has a segment of its label with temporal IoU >= 0.5."""
  for label, start, end in truth:
    best = max((_iou((s.start, s.end), (start, end)) for s in segments if s.label == label),
               default=0.0)
    assert best >= 0.5, (label, start, end, segments)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
  """(path, frames, truth): 5 synthetic pan segments of 40 frames at 25 fps, 48x64."""
  rng = np.random.default_rng(0)
  frames = np.concatenate([synthetic_render.render_video(c, rng, SEG_FRAMES, H, W)[0]
                           for c in ORDER])
  path = str(tmp_path_factory.mktemp("long") / "long.avi")
  video.write_video(path, frames, fps=FPS)
  truth = [(c, i * SEG_FRAMES / FPS, (i + 1) * SEG_FRAMES / FPS) for i, c in enumerate(ORDER)]
  return path, video.read_video(path), truth


def _run(source, out=None, model=None, **kwargs):
  kwargs.setdefault("print_windows", False)
  kwargs.setdefault("progress", False)
  return rec.recognize(model or PanModel(), source, out, **kwargs)


# -- windows and segments of a long video -----------------------------------


def test_segments_from_a_long_video_with_a_model_reading_the_frames(long_video, tmp_path):
  path, frames, truth = long_video
  result = _run(streams.open_source(path), str(tmp_path), annotate=True, timeline=True)
  assert result.end == "end of stream" and result.frames == len(frames)
  check_segments_found(result.segments, truth)
  lines = (tmp_path / "windows.jsonl").read_text().splitlines()
  assert len(lines) == result.windows == (len(frames) - 10) // 5 + 1
  first = json.loads(lines[0])
  assert (first["start"], first["end"], first["start_frame"], first["end_frame"]) == (
      0.0, 0.4, 0, 10)
  assert [t["label"] for t in first["top"]][:1] == ["pan_left"] and len(first["top"]) == 4
  saved = json.loads((tmp_path / "segments.json").read_text())
  assert saved["windows"] == result.windows and saved["dropped"] == 0
  assert [s["label"] for s in saved["segments"]] == ORDER
  # the annotated video decodes, with the input's frame count; the timeline is a PNG
  annotated = video.read_video(str(tmp_path / "annotated.mp4"))
  assert annotated.shape == frames.shape
  assert (annotated[:, :8] < 40).mean() > 0.5  # the dark label band is drawn
  assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- sources ---------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
  """Serves files; `?cut=N` sends only the first N bytes, then closes (a stream that dies);
  `?hang=N` sends them, then nothing for 20 s (a stream that stalls)."""

  def log_message(self, *args):
    pass

  def do_GET(self):
    path, _, query = self.path.partition("?")
    if not query.startswith(("cut=", "hang=")):
      self.path = path
      return super().do_GET()
    data = open(os.path.join(self.directory, path.lstrip("/")), "rb").read()
    self.send_response(200)
    self.send_header("Content-Type", "video/x-msvideo")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data[:int(query.split("=")[1])])
    self.wfile.flush()
    if query.startswith("hang="):
      time.sleep(20)
    self.close_connection = True


@pytest.fixture
def http_server(long_video):
  directory = os.path.dirname(long_video[0])
  server = socketserver.ThreadingTCPServer(
      ("127.0.0.1", 0), functools.partial(_Handler, directory=directory))
  server.daemon_threads = True
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{server.server_address[1]}/"
  server.shutdown()
  server.server_close()


def test_http_url_gives_the_file_windows(long_video, http_server):
  path, frames, truth = long_video
  source = streams.open_source(http_server + os.path.basename(path), timeout=5)
  assert not source.live
  result = _run(source)
  assert result.end == "end of stream"
  assert result.frames == len(frames)
  check_segments_found(result.segments, truth)


def test_a_server_that_closes_mid_way_ends_the_stream_in_one_line(long_video, http_server,
                                                                  tmp_path):
  path, frames, _ = long_video
  cut = os.path.getsize(path) // 2
  source = streams.open_source(f"{http_server}{os.path.basename(path)}?cut={cut}", timeout=3)
  result = _run(source, str(tmp_path))
  assert 10 < result.frames < len(frames)
  assert "\n" not in result.summary("x") and "after" in result.summary("x")
  saved = json.loads((tmp_path / "segments.json").read_text())  # complete and valid
  assert saved["frames"] == result.frames
  assert len((tmp_path / "windows.jsonl").read_text().splitlines()) == result.windows


def test_a_stalled_url_ends_in_one_line(long_video, http_server, tmp_path):
  path, frames, _ = long_video
  cut = os.path.getsize(path) // 2
  source = streams.open_source(f"{http_server}{os.path.basename(path)}?hang={cut}", timeout=1)
  started = time.monotonic()
  result = _run(source, str(tmp_path), stall_timeout=1)
  assert time.monotonic() - started < 8
  assert 10 < result.frames < len(frames)
  assert result.end.startswith(("stalled", "stream ended early")), result.end
  assert json.loads((tmp_path / "segments.json").read_text())["end"] == result.end


def test_an_rtsp_stream_over_tcp_gives_every_frame_and_the_segments(long_video, rtsp):
  _, frames, truth = long_video
  # 200 frames released 4x faster than their 25 fps: 2 s
  with rtsp.RtspServer(frames, fps=FPS, speed=4) as server:
    assert streams.open_source(server.url, timeout=5).live  # rtsp is live by default
    # live=False: every window classified, so the segments do not depend on the load
    result = _run(streams.open_source(server.url, timeout=5, live=False))
  # the media came interleaved on the RTSP connection, asked for at once (no UDP try)
  assert server.transports == ["RTP/AVP/TCP;unicast;interleaved=0-1"] * 2
  assert server.requests[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]
  assert result.end == "end of stream" and result.fps == FPS
  assert result.frames == len(frames)
  assert result.windows == (len(frames) - 10) // 5 + 1
  check_segments_found(result.segments, truth)  # MPEG-4 Part 2 at 400 kbit/s, lossy


def test_rtsp_transport_auto_falls_back_to_tcp_and_a_bad_one_is_named(long_video, rtsp):
  _, frames, _ = long_video
  with rtsp.RtspServer(frames[:30], fps=FPS, speed=4) as server:
    result = _run(streams.open_source(server.url, timeout=5, rtsp_transport="auto"))
  # FFmpeg's default asks for UDP first; this server answers 461, then TCP
  assert "TCP" not in server.transports[0].upper() and "TCP" in server.transports[1]
  assert result.frames == 30
  with pytest.raises(ValueError, match="--rtsp_transport"):
    streams.open_source("rtsp://127.0.0.1:1/x", rtsp_transport="http")


def test_an_rtsp_server_that_dies_mid_stream_ends_in_one_line(long_video, rtsp, tmp_path):
  _, frames, _ = long_video
  with rtsp.RtspServer(frames, fps=FPS, speed=4, stop_after=100) as server:
    result = _run(streams.open_source(server.url, timeout=5), str(tmp_path))
  # FFmpeg's RTSP client reads a closed connection as the stream's end (as an RTCP BYE)
  assert result.end == "end of stream"
  assert result.frames == 100 and result.windows + result.dropped == (100 - 10) // 5 + 1
  summary = result.summary(server.url)
  assert "\n" not in summary and "end of stream after 100 frames" in summary
  saved = json.loads((tmp_path / "segments.json").read_text())  # complete and valid
  assert saved["frames"] == 100 and saved["end"] == "end of stream"


def test_a_stalled_rtsp_stream_ends_in_one_line(long_video, rtsp, tmp_path):
  _, frames, _ = long_video
  with rtsp.RtspServer(frames, fps=FPS, speed=4, stall_after=60) as server:
    started = time.monotonic()
    # the reader's 1 s read timeout fires before recognize's own 5 s stall timeout
    result = _run(streams.open_source(server.url, timeout=1), str(tmp_path), stall_timeout=5)
    assert time.monotonic() - started < 8
  # the last frame sent waits in FFmpeg's MPEG-4 parser for the next start code
  assert 59 <= result.frames <= 60
  assert result.end == "stalled: no data for 1 s"  # not FFmpeg's "Immediate exit requested"
  assert "\n" not in result.summary(server.url)
  assert json.loads((tmp_path / "segments.json").read_text())["end"] == result.end


def test_a_v4l2_device_is_opened_as_v4l2_with_the_timeout(long_video, monkeypatch):
  """No camera here: av.open is replaced by a double that checks how the device is
  opened and hands back the long video's container, so the run behind it is real."""
  path, frames, truth = long_video
  real_open = video.av.open
  calls = []

  def fake_open(file, **kwargs):
    calls.append((file, kwargs))
    return real_open(path, "r")

  monkeypatch.setattr(video.av, "open", fake_open)
  source = streams.open_source("/dev/video0", timeout=3)
  assert calls == [("/dev/video0", dict(mode="r", format="v4l2", options={}, timeout=3))]
  assert source.live and source.name == "/dev/video0"
  result = _run(source)
  assert result.frames == len(frames) and result.end == "end of stream"
  check_segments_found(result.segments, truth)


@pytest.mark.parametrize("transport, options", [("tcp", {"rtsp_transport": "tcp"}),
                                                ("udp", {"rtsp_transport": "udp"}),
                                                ("auto", {})])
def test_rtsp_options_reach_ffmpeg(monkeypatch, transport, options):
  calls = []

  def fake_open(file, **kwargs):
    calls.append((file, kwargs))
    raise video.av.error.ConnectionRefusedError(111, "Connection refused", file)

  monkeypatch.setattr(video.av, "open", fake_open)
  with pytest.raises(video.VideoDecodeError, match="'rtsp://cam/x': cannot open the stream"):
    streams.open_source("rtsp://cam/x", timeout=2, rtsp_transport=transport)
  assert calls == [("rtsp://cam/x", dict(mode="r", format=None, options=options, timeout=2))]


def test_a_truncated_file_gives_the_frames_before_the_cut(long_video, tmp_path):
  path, frames, _ = long_video
  cut = tmp_path / "cut.avi"
  cut.write_bytes(open(path, "rb").read()[:os.path.getsize(path) * 3 // 5])
  result = _run(streams.open_source(str(cut)), str(tmp_path / "out"))
  assert 10 < result.frames < len(frames)
  assert result.windows >= (result.frames - 10) // 5 + 1
  json.loads((tmp_path / "out" / "segments.json").read_text())


def test_stdin_frames(long_video):
  _, frames, truth = long_video
  stream = io.BytesIO(frames.tobytes())
  source = streams.open_source("-", f"{W}x{H}", FPS, stdin=stream)
  assert source.live
  result = _run(source, queue_size=10 ** 4)  # room for every window: none dropped
  assert result.frames == len(frames) and result.dropped == 0
  check_segments_found(result.segments, truth)


def test_a_stalled_stream_ends_in_one_line(tmp_path):
  read_fd, write_fd = os.pipe()
  os.write(write_fd, np.zeros((12, 8, 8, 3), np.uint8).tobytes())  # 12 frames, then silence
  try:
    with open(read_fd, "rb", buffering=0) as reader:
      source = streams.open_source("-", "8x8", 25, stdin=reader)
      started = time.monotonic()
      result = _run(source, str(tmp_path), stall_timeout=0.5)
      assert time.monotonic() - started < 5
      assert result.end.startswith("stalled") and result.frames == 12
      assert json.loads((tmp_path / "segments.json").read_text())["end"] == result.end
  finally:
    os.close(write_fd)


# -- live behaviour --------------------------------------------------------


def test_a_slow_model_on_a_live_source_drops_windows_instead_of_lagging(long_video, tmp_path):
  path, frames, _ = long_video
  fast = tmp_path / "fast.avi"  # the same frames at 100 fps: 2 s of stream
  video.write_video(str(fast), frames, fps=100)
  model = PanModel(delay=0.15)  # 2 windows every 0.1 s arrive, one is classified in 0.15 s
  result = _run(streams.open_source(str(fast), realtime=True), model=model, queue_size=1)
  total = (len(frames) - 10) // 5 + 1
  assert result.dropped > total // 3
  assert result.windows + result.dropped == total
  # never further and further behind: the last label is as fresh as the early ones
  assert max(result.latencies_ms) < 1000, result.latencies_ms


def test_a_model_that_keeps_up_drops_nothing_live(long_video, tmp_path):
  path, frames, _ = long_video
  short = tmp_path / "short.avi"  # 2 segments at 100 fps: 0.8 s of stream
  video.write_video(str(short), frames[:80], fps=100)
  result = _run(streams.open_source(str(short), realtime=True), queue_size=1)
  assert (result.windows, result.dropped) == ((80 - 10) // 5 + 1, 0)  # the last one too


def test_ctrl_c_ends_cleanly_with_valid_outputs(long_video, tmp_path):
  path, _, _ = long_video
  seen = []

  def interrupt(window):
    seen.append(window)
    if len(seen) == 6:
      raise KeyboardInterrupt

  result = _run(streams.open_source(path), str(tmp_path), annotate=True, on_window=interrupt)
  assert result.interrupted and result.end == "interrupted" and result.windows == 6
  saved = json.loads((tmp_path / "segments.json").read_text())
  assert saved["end"] == "interrupted" and saved["windows"] == 6
  assert len((tmp_path / "windows.jsonl").read_text().splitlines()) == 6
  assert len(video.read_video(str(tmp_path / "annotated.mp4"))) >= 6 * 5


# -- a trained model -------------------------------------------------------


@pytest.mark.slow
def test_trained_student_finds_every_segment(deploy, dataset, tmp_path):
  """A tiny student trained on conftest.py's data (colour classes under noise) on a long
  video of its classes. Trained for 6 epochs: after conftest's 2, one segment in the
  last fifth was lost (IoU 0.2)."""
  from tsnet_tf.export import predict  # pylint: disable=g-import-not-at-top
  model_path = str(tmp_path / "student.keras")
  trained = deploy.train_student(dataset[1], epochs=6)
  clip_contract.attach(trained, deploy.spec(dataset[1]), deploy.CLASSES).save(model_path)
  rng = np.random.default_rng(7)
  order = [0, 2, 1, 0, 2]
  seg = 60
  make = deploy._video  # pylint: disable=protected-access
  frames = np.concatenate([make(k, rng, lengths=(seg, seg + 1)) for k in order])
  path = str(tmp_path / "long.avi")
  video.write_video(path, frames, fps=FPS)
  classifier = rec.PredictorClassifier(predict.load_predictor(model_path))
  result = rec.recognize(classifier, streams.open_source(path), str(tmp_path / "out"),
                         print_windows=False, progress=False)
  truth = [(deploy.CLASSES[k], i * seg / FPS, (i + 1) * seg / FPS) for i, k in enumerate(order)]
  check_segments_found(result.segments, truth)


@pytest.mark.slow
@pytest.mark.parametrize("rest", [False, True])
def test_a_served_model_gives_the_local_windows(fake_server, long_video, tmp_path, rest):
  """--server sends each clip as frames whose served centre clip is that clip (the
  clip's frames repeated video_stride times), with a converter stride of 2 too."""
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import predict  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import saved_model as sm  # pylint: disable=g-import-not-at-top
  spec = clip_spec.ClipSpec(4, 16, 2, clip_spec.StoredFrames(stride=2))
  model = models.build_rgb_model(len(PANS), 4, 16, backbone="light", width=4)
  export = sm.export_saved_model(model, PANS, str(tmp_path / "m" / "1"), spec=spec)
  start = fake_server.start_rest_server if rest else fake_server.start_grpc_server
  server, address = start("m", 1, export)
  try:
    path = long_video[0]
    local = _run(streams.open_source(path), str(tmp_path / "local"),
                 model=rec.PredictorClassifier(predict.load_predictor(export)))
    served = _run(streams.open_source(path), str(tmp_path / "served"),
                  model=rec.load_classifier(server=address, model_name="m", rest=rest))
  finally:
    if rest:
      server.shutdown()
    else:
      server.stop(0)
  a, b = ([json.loads(l) for l in (tmp_path / d / "windows.jsonl").read_text().splitlines()]
          for d in ("local", "served"))
  assert len(a) == len(b) == local.windows > 10
  for x, y in zip(a, b):
    assert x["start_frame"] == y["start_frame"]
    assert [t["label"] for t in x["top"]][:1] == [t["label"] for t in y["top"]][:1]
    np.testing.assert_allclose([t["score"] for t in x["top"]], [t["score"] for t in y["top"]],
                               atol=2e-3)
