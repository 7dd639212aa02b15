import os
import pickle
import tracemalloc

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


def test_write_streams_an_iterator_of_frames(tmp_path):
  frames = _smooth_frames()
  video.write_video(tmp_path / "a.avi", frames, fps=25)
  video.write_video(tmp_path / "b.avi", (f for f in frames), fps=25)
  assert (tmp_path / "a.avi").read_bytes() == (tmp_path / "b.avi").read_bytes()
  bad = iter([frames[0], frames[1, :16]])
  with pytest.raises(ValueError, match="frame of uint8 .16, 40, 3. in a uint8 32x40 video"):
    video.write_video(tmp_path / "c.avi", bad, fps=25)
  with pytest.raises(ValueError, match="shape"):
    video.write_video(tmp_path / "d.avi", iter([]), fps=25)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi", "b.avi"]


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
  for fn in (video.read_video, video.probe_video, video.count_frames,
             lambda p: video.read_frames(p, [0])):
    if kind == "header_only" and fn is video.count_frames:
      assert fn(path) == 0  # intact headers, no frame packet: nothing to count
      continue
    with pytest.raises(video.VideoDecodeError) as info:
      fn(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path) and info.value.reason
    assert isinstance(info.value, ValueError)


def test_video_decode_error_pickles():
  err = pickle.loads(pickle.dumps(video.VideoDecodeError("x.avi", "broken")))
  assert (err.path, err.reason) == ("x.avi", "broken")
  assert "x.avi" in str(err) and "broken" in str(err)


# -- streaming reads (read_frames, count_frames) ------------------------------

SHARED_VIDEO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "..", "shared", "data", "video")


@pytest.fixture(scope="module")
def long_path(tmp_path_factory):
  """40 frames 48x64 of random texture (every frame differs from the others)."""
  rng = np.random.default_rng(1)
  frames = rng.integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
  path = tmp_path_factory.mktemp("long") / "long.avi"
  video.write_video(path, frames, fps=25)
  return path


def _half(frame):
  """A resize stand-in: every other pixel, as a fresh array."""
  return np.ascontiguousarray(frame[::2, ::2])


def test_count_frames_is_read_videos_length(clip_path, long_path):
  assert video.count_frames(clip_path) == 8
  assert video.count_frames(long_path) == 40


def test_read_frames_equals_read_video_then_index(long_path):
  full = video.read_video(long_path)
  idx = np.array([[0, 39, 7], [7, 7, 20]])  # any shape, repeats allowed
  got = video.read_frames(long_path, idx)
  assert got.dtype == np.uint8 and got.shape == (2, 3, 48, 64, 3)
  np.testing.assert_array_equal(got, full[idx])
  np.testing.assert_array_equal(video.read_frames(long_path, [5]), full[[5]])


def test_read_frames_passes_the_decoded_count_to_the_selector(long_path):
  seen = []

  def centre(n):
    seen.append(n)
    return np.arange(n // 2 - 2, n // 2 + 2)

  got = video.read_frames(long_path, centre)
  assert seen == [40]
  np.testing.assert_array_equal(got, video.read_video(long_path)[18:22])


def test_read_frames_transforms_each_selected_frame_once_as_it_arrives(long_path):
  calls = []

  def transform(frame):
    calls.append(frame.shape)
    return _half(frame)

  idx = np.array([3, 3, 30, 3, 12])
  got = video.read_frames(long_path, idx, transform)
  full = video.read_video(long_path)
  np.testing.assert_array_equal(got, np.stack([_half(f) for f in full[idx]]))
  assert calls == [(48, 64, 3)] * 3  # distinct frames only, at full size


def test_read_frames_holds_the_selected_frames_not_the_video(long_path):
  """numpy reports its buffers to tracemalloc: the decoded RGB frames of
  read_video all stay alive; read_frames converts and keeps only two."""
  frame_bytes = 48 * 64 * 3

  def peak(fn):
    tracemalloc.start()
    try:
      fn()
      return tracemalloc.get_traced_memory()[1]
    finally:
      tracemalloc.stop()

  assert peak(lambda: video.read_video(long_path)) > 40 * frame_bytes
  assert peak(lambda: video.read_frames(long_path, [10, 11])) < 6 * frame_bytes


def test_read_frames_rechecks_a_wrong_frame_count(long_path, monkeypatch):
  """When demuxing miscounts (decoders may drop or add frames), the selector
  is asked again with the decoded count: the clip is read_video's."""
  full = video.read_video(long_path)
  for wrong in (0, 25, 60):
    monkeypatch.setattr(video, "count_frames", lambda path, n=wrong: n)
    seen = []
    got = video.read_frames(long_path, lambda n: seen.append(n) or np.arange(n - 3, n))
    assert seen[-1] == 40
    np.testing.assert_array_equal(got, full[37:])


def test_read_frames_selector_errors_use_the_decoded_count(long_path, monkeypatch):
  def needs_50(n):
    if n < 50:
      raise ValueError(f"the video has {n} frames")
    return np.arange(50)

  with pytest.raises(ValueError, match="has 40 frames"):
    video.read_frames(long_path, needs_50)
  monkeypatch.setattr(video, "count_frames", lambda path: 60)  # optimistic estimate
  with pytest.raises(ValueError, match="has 40 frames"):
    video.read_frames(long_path, needs_50)


@pytest.mark.parametrize("idx, match", [([40], "frame index 40"), ([-1], "frame index -1"),
                                        ([], "no frame indices")])
def test_read_frames_rejects_bad_indices(long_path, idx, match):
  with pytest.raises(ValueError, match=match):
    video.read_frames(long_path, idx)


def test_read_frames_on_a_truncated_file_uses_what_decodes(tmp_path, long_path):
  data = long_path.read_bytes()
  start, end = data.find(b"movi"), data.find(b"idx1")
  cut = tmp_path / "cut.avi"
  cut.write_bytes(data[: start + (end - start) * 6 // 10])
  full = video.read_video(cut)
  assert 1 <= len(full) < 40
  last3 = lambda n: np.arange(n - 3, n)
  np.testing.assert_array_equal(video.read_frames(cut, last3), full[-3:])
  with pytest.raises(ValueError, match=f"outside the video's {len(full)} decodable"):
    video.read_frames(cut, [39])


@pytest.mark.skipif(not os.path.isdir(SHARED_VIDEO), reason="needs ../shared/data/video")
@pytest.mark.parametrize("name", ["kinetics/flipping_pancake.mkv", "kinetics/tai_chi.mp4"])
def test_read_frames_on_real_clips(name):
  """H.264 with B-frames in MKV (no frame count in the header) and MP4."""
  path = os.path.join(SHARED_VIDEO, name)
  full = video.read_video(path)
  assert video.count_frames(path) == len(full)
  idx = np.array([0, 1, len(full) // 2, len(full) - 1])
  np.testing.assert_array_equal(video.read_frames(path, idx, _half),
                                np.stack([_half(f) for f in full[idx]]))


# -- one decoding pass (VideoReader, iter_frames, read_selection) -------------


def _count_decoded(monkeypatch):
  """Counts the frames every VideoReader decodes."""
  decoded = []
  real = video.VideoReader.decoded

  def counting(self):
    for frame in real(self):
      decoded.append(self.path)
      yield frame

  monkeypatch.setattr(video.VideoReader, "decoded", counting)
  return decoded


def test_iter_frames_streams_every_frame_in_order(long_path):
  full = video.read_video(long_path)
  frames = video.iter_frames(long_path, _half)
  np.testing.assert_array_equal(next(frames), _half(full[0]))  # before the rest decodes
  np.testing.assert_array_equal(np.stack(list(frames)), np.stack([_half(f) for f in full[1:]]))
  with video.VideoReader(long_path) as reader:
    assert (reader.fps, reader.header_frames) == (25.0, 40)
    kept = list(reader.frames(step=3))
    assert reader.num_decoded == 40
  np.testing.assert_array_equal(np.stack(kept), full[::3])


def test_iter_frames_on_unreadable_files(tmp_path, clip_path):
  empty = tmp_path / "empty.avi"
  empty.write_bytes(b"")
  data = clip_path.read_bytes()
  header_only = tmp_path / "header_only.avi"
  header_only.write_bytes(data[: data.find(b"movi") + 4])
  for path, reason in ((empty, "empty"), (header_only, "no decodable frames")):
    with pytest.raises(video.VideoDecodeError, match=reason):
      list(video.iter_frames(path))


def test_read_selection_returns_the_decoded_count_in_one_pass(long_path, monkeypatch):
  decoded = _count_decoded(monkeypatch)
  read = video.read_selection(long_path, lambda n: np.arange(n - 2, n))
  assert read.num_frames == 40 and read.indices.tolist() == [38, 39]
  assert len(decoded) == 40  # one decoding pass; the count came from demuxing
  np.testing.assert_array_equal(read.frames, video.read_video(long_path)[38:])


def test_read_frames_with_fixed_indices_stops_after_the_last_one(long_path, monkeypatch):
  decoded = _count_decoded(monkeypatch)
  read = video.read_selection(long_path, [5, 2])
  assert len(decoded) == 6 and read.num_frames is None


def test_only_frame_count_errors_are_checked_by_decoding(long_path, monkeypatch):
  """A selector's FrameCountError on the demuxed count is checked against the
  decoded count; any other error propagates at once, without decoding."""
  decoded = _count_decoded(monkeypatch)
  monkeypatch.setattr(video, "count_frames", lambda path: 30)  # a low estimate
  asked = []

  def needs_35(n):
    asked.append(n)
    if n < 35:
      raise video.FrameCountError(f"{n} frames")
    return [34]

  np.testing.assert_array_equal(video.read_frames(long_path, needs_35),
                                video.read_video(long_path)[[34]])
  assert asked == [30, 40]
  decoded.clear()

  def broken(n):
    raise ValueError("a bug in the selector")

  with pytest.raises(ValueError, match="a bug"):
    video.read_frames(long_path, broken)
  assert not decoded


def test_probe_video_counts_packets_not_frames_without_a_header_count(monkeypatch):
  path = os.path.join(SHARED_VIDEO, "kinetics", "flipping_pancake.mkv")
  if not os.path.exists(path):
    pytest.skip(f"no {path}")
  decoded = _count_decoded(monkeypatch)
  info = video.probe_video(path)
  assert info.num_frames == 310 and len(decoded) == 1  # MKV: no count in the header


def test_find_video_files_skips_hidden_and_other_files(tmp_path):
  for name in ("b/x.AVI", "a/y.mp4", "a/.hidden.avi", ".tmp/z.avi", "a/notes.txt", "c.mkv"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"")
  assert video.find_video_files(tmp_path) == [
      str(tmp_path / "a" / "y.mp4"), str(tmp_path / "b" / "x.AVI"), str(tmp_path / "c.mkv")]
  assert video.find_video_files(tmp_path / "missing") == []


def test_resize_frame_is_pil_bilinear():
  from PIL import Image  # pylint: disable=g-import-not-at-top
  frame = _smooth_frames(t=1)[0]
  np.testing.assert_array_equal(
      video.resize_frame(frame, (16, 20)),
      np.asarray(Image.fromarray(frame).resize((20, 16), Image.BILINEAR)))
  assert video.resize_frame(frame, frame.shape[:2]) is frame


# -- rotation: frames as a player shows them ----------------------------------

# The mp4 `tkhd` matrix (ISO/IEC 14496-12 8.3.2) maps a stored pixel (p, q) to
# (a*p + c*q + x, b*p + d*q + y); (a, b, c, d) for a clockwise turn on screen
# (y grows downwards) of 90, 180 and 270 degrees, as a phone filming upright writes.
_CLOCKWISE_MATRIX = {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}


def _write_mp4(path, frames, fps=25):
  """An mp4 (MPEG-4 Part 2) written by PyAV, no rotation."""
  with av_lib().open(str(path), mode="w", format="mp4") as container:
    stream = container.add_stream("mpeg4", rate=fps)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = "yuv420p"
    stream.thread_count = 1
    for rgb in frames:
      container.mux(stream.encode(av_lib().VideoFrame.from_ndarray(rgb, format="rgb24")))
    container.mux(stream.encode(None))


def av_lib():
  import av  # pylint: disable=g-import-not-at-top
  return av


def _set_track_matrix(path, degrees_clockwise):
  """Rewrites the (version 0) `tkhd` box's display matrix in place."""
  import struct  # pylint: disable=g-import-not-at-top
  data = bytearray(path.read_bytes())
  box = data.index(b"tkhd")
  assert data[box + 4] == 0, "version 1 tkhd: wider time fields"
  # Type, version+flags, creation, modification, track id, reserved, duration
  # (4 bytes each), reserved (8), layer, group, volume, reserved (2 each).
  matrix = box + 4 + 40
  a, b, c, d = _CLOCKWISE_MATRIX[degrees_clockwise]
  for offset, value in zip((0, 4, 12, 16), (a, b, c, d)):  # 16.16 fixed point
    data[matrix + offset:matrix + offset + 4] = struct.pack(">i", value << 16)
  path.write_bytes(data)


@pytest.fixture(scope="module")
def rotated_paths(tmp_path_factory):
  """{clockwise degrees: path}: one 32x48 (h x w) stream, with each track matrix."""
  root = tmp_path_factory.mktemp("rotated")
  frames = np.random.default_rng(2).integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)
  frames[:, :8, :8] = 255  # a white top-left corner, to see where it goes
  frames[:, :8, -8:] = 0
  paths = {}
  for degrees in (0, 90, 180, 270):
    paths[degrees] = root / f"r{degrees}.mp4"
    _write_mp4(paths[degrees], frames)
    if degrees:
      _set_track_matrix(paths[degrees], degrees)
  return paths


def test_rotation_sign_follows_the_display_matrix(rotated_paths):
  # PyAV reads the angle counterclockwise (the tester's -90 for a phone's 90).
  for degrees, path in rotated_paths.items():
    with av_lib().open(str(path)) as container:
      frame = next(container.decode(video=0))
      assert frame.rotation % 360 == -degrees % 360
  # Turned clockwise by 90, the stored top-left corner shows at the top-right
  # (the matrix maps (0, 0) to the right end of the displayed x range).
  shown = video.read_video(rotated_paths[90])[0]
  assert shown.shape == (48, 32, 3)
  assert shown[:8, -8:].min() > 200 and shown[-8:, -8:].max() < 60


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_video_decodes_as_a_player_shows_it(rotated_paths, degrees):
  stored = video.read_video(rotated_paths[0])
  expected = np.rot90(stored, k=-degrees // 90, axes=(1, 2))  # clockwise
  path = rotated_paths[degrees]
  np.testing.assert_array_equal(video.read_video(path), expected)
  np.testing.assert_array_equal(np.stack(list(video.iter_frames(path, step=2))),
                                expected[::2])
  idx = np.array([[5, 0], [2, 2]])
  np.testing.assert_array_equal(video.read_frames(path, idx), expected[idx])
  selection = video.read_selection(path, lambda n: np.arange(n - 3, n))
  np.testing.assert_array_equal(selection.frames, expected[3:])
  # A transform (the converters' resize) sees the displayed frame.
  np.testing.assert_array_equal(video.read_frames(path, [1], transform=_half),
                                np.stack([_half(expected[1])]))
  height, width = expected.shape[1:3]
  assert video.probe_video(path) == video.VideoInfo(fps=25.0, num_frames=6,
                                                    height=height, width=width)
  with video.VideoReader(path) as reader:
    assert {video.display_size(f) for f in reader.decoded()} == {(height, width)}
