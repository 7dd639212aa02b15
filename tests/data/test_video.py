import pickle

import cv2
import numpy as np
import pytest

from tsnet_tf.data import video


def _smooth_frames(t=8, h=32, w=40, seed=0):
  """A smooth colour gradient that moves 1 px per frame: compresses well, so
  decoded values stay close to the input."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  frames = []
  for i in range(t):
    r = 128 + 100 * np.sin((xx + i) / 6.0)
    g = 128 + 100 * np.cos(yy / 5.0)
    b = np.full_like(xx, 60.0 + 10 * seed)
    frames.append(np.stack([r, g, b], -1))
  return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("video") / "clip.avi"
  video.write_video(path, _smooth_frames(), fps=25)
  return path


def test_write_then_read_round_trips(clip_path):
  frames = _smooth_frames()
  out = video.read_video(clip_path)
  assert out.dtype == np.uint8 and out.shape == frames.shape
  # Lossy codec: close on average, and colour channels not swapped (R varies, B flat).
  assert np.abs(out.astype(int) - frames).mean() < 6
  assert out[..., 0].std() > 30 and out[..., 2].std() < 10


def test_read_max_frames(clip_path):
  assert video.read_video(clip_path, max_frames=3).shape[0] == 3
  assert video.read_video(clip_path, max_frames=100).shape[0] == 8
  with pytest.raises(ValueError, match="max_frames"):
    video.read_video(clip_path, max_frames=0)


def test_probe_video(clip_path):
  info = video.probe_video(clip_path)
  assert info == video.VideoInfo(fps=25.0, num_frames=8, height=32, width=40)
  with pytest.raises(dataclasses_frozen_error()):
    info.fps = 30.0


def dataclasses_frozen_error():
  import dataclasses
  return dataclasses.FrozenInstanceError


def test_ntsc_rate_and_opencv_decode(tmp_path):
  path = tmp_path / "ntsc.avi"
  frames = _smooth_frames(t=6)
  video.write_video(path, frames, fps=30000 / 1001)
  assert video.probe_video(path).fps == pytest.approx(29.97, abs=1e-3)
  cap = cv2.VideoCapture(str(path))
  assert cap.isOpened()
  assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=1e-2)
  decoded = []
  while True:
    ok, bgr = cap.read()
    if not ok:
      break
    decoded.append(bgr[..., ::-1])
  cap.release()
  assert len(decoded) == 6
  assert np.abs(np.stack(decoded).astype(int) - video.read_video(path)).mean() < 3


def test_write_is_deterministic(tmp_path):
  frames = _smooth_frames()
  video.write_video(tmp_path / "a.avi", frames, fps=25)
  video.write_video(tmp_path / "b.avi", frames, fps=25)
  assert (tmp_path / "a.avi").read_bytes() == (tmp_path / "b.avi").read_bytes()


def test_write_leaves_no_temp_files(tmp_path):
  video.write_video(tmp_path / "a.avi", _smooth_frames(), fps=25)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi"]


@pytest.mark.parametrize("frames, match", [
    (np.zeros((2, 32, 40, 3), np.float32), "uint8"),
    (np.zeros((32, 40, 3), np.uint8), "shape"),
    (np.zeros((0, 32, 40, 3), np.uint8), "shape"),
    (np.zeros((2, 31, 40, 3), np.uint8), "even"),
])
def test_write_rejects_bad_frames(tmp_path, frames, match):
  with pytest.raises(ValueError, match=match):
    video.write_video(tmp_path / "bad.avi", frames, fps=25)
  assert not list(tmp_path.iterdir())


def test_write_rejects_bad_fps_and_codec(tmp_path):
  with pytest.raises(ValueError, match="fps"):
    video.write_video(tmp_path / "a.avi", _smooth_frames(), fps=0)
  with pytest.raises(ValueError, match="codec"):
    video.write_video(tmp_path / "a.avi", _smooth_frames(), fps=25, codec="nope")


def test_truncated_file_returns_frames_before_the_cut(tmp_path, clip_path):
  data = clip_path.read_bytes()
  # Cut inside the 'movi' list (the frame data), between its start and the index.
  start, end = data.find(b"movi"), data.find(b"idx1")
  assert 0 < start < end
  cut = tmp_path / "cut.avi"
  cut.write_bytes(data[: start + (end - start) * 6 // 10])
  frames = video.read_video(cut)
  assert 1 <= frames.shape[0] < 8
  full = video.read_video(clip_path)
  np.testing.assert_array_equal(frames, full[: frames.shape[0]])


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "header_only", "directory"])
def test_unreadable_files_raise_video_decode_error(tmp_path, clip_path, kind):
  path = tmp_path / f"{kind}.avi"
  if kind == "empty":
    path.write_bytes(b"")
  elif kind == "garbage":
    path.write_bytes(np.random.default_rng(0).bytes(4096))
  elif kind == "header_only":
    # Complete RIFF/AVI headers, cut right after the start of the frame data.
    data = clip_path.read_bytes()
    path.write_bytes(data[: data.find(b"movi") + 4])
  elif kind == "directory":
    path.mkdir()
  for fn in (video.read_video, video.probe_video):
    with pytest.raises(video.VideoDecodeError) as info:
      fn(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path) and info.value.reason
    assert isinstance(info.value, ValueError)


def test_video_decode_error_pickles():
  err = pickle.loads(pickle.dumps(video.VideoDecodeError("x.avi", "broken")))
  assert (err.path, err.reason) == ("x.avi", "broken")
  assert "x.avi" in str(err) and "broken" in str(err)
