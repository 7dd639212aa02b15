"""Tests of tsnet_tf/data/flow_extraction.py (with flow/quantize.py, flow/batching.py) and tools/extract_flow.py."""

import concurrent.futures
import io
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
from PIL import Image
import pytest

from tsnet_tf.data import flow_extraction
from tsnet_tf.data import video as video_io
from tsnet_tf.flow import batching
from tsnet_tf.flow import evaluation
from tsnet_tf.flow import quantize
from tsnet_tf.flow import read_flo
from tsnet_tf.flow import tvl1

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
_TOOL = os.path.join(_ROOT, "tools", "extract_flow.py")
_REAL_CLIP = os.path.join(_ROOT, "..", "shared", "data", "video",
                          "carphone_176x144.mp4")
SIZE = 32
SHIFT = 2  # px per frame, to the right
FAST = dict(preset="fast", batch_size=4, num_writers=1)


def _frames(num_frames=5, size=SIZE, seed=0):
  """uint8 RGB frames whose content moves SHIFT px right per frame."""
  texture = evaluation.Texture(np.random.default_rng(seed),
                               extent=float(size))
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  return np.asarray([np.repeat(texture(x - SHIFT * t, y)[..., None], 3, -1)
                     for t in range(num_frames)], np.uint8)


def _write(path, num_frames=5, seed=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  video_io.write_video(path, _frames(num_frames, seed=seed), fps=10,
                       quality=2)


@pytest.fixture
def hmdb_tree(tmp_path):
  """HMDB51 layout: class folders of AVI files, plus one unreadable file."""
  root = tmp_path / "videos"
  _write(str(root / "run" / "a.avi"))
  _write(str(root / "wave" / "b.avi"), seed=1)
  (root / "wave" / "broken.avi").write_bytes(b"not a video at all")
  (root / "wave" / "notes.txt").write_text("ignored")
  return root


def _read(path):
  return np.asarray(Image.open(path))


def test_flow_to_uint8_is_denseflow_mapping():
  flow = np.array([0.0, -20.0, 20.0, 35.0, -50.0, 10.0], np.float32)
  # 0 -> 127.5 rounds to 128; clipped at +-bound; linear in between.
  np.testing.assert_array_equal(quantize.flow_to_uint8(flow, 20.0),
                                [128, 0, 255, 255, 0, 191])
  back = quantize.uint8_to_flow(quantize.flow_to_uint8(flow, 20.0), 20.0)
  np.testing.assert_allclose(back, np.clip(flow, -20, 20),
                             atol=20.0 / 255 + 1e-5)


def test_find_videos_hmdb_layout_and_list_file(hmdb_tree, tmp_path):
  videos = flow_extraction.find_videos(str(hmdb_tree))
  assert [v.name for v in videos] == ["run/a", "wave/b", "wave/broken"]
  listing = tmp_path / "list.txt"
  listing.write_text("# split 1\nwave/b.avi 1\n\nrun/a.avi 0\n")
  listed = flow_extraction.find_videos(str(hmdb_tree), str(listing))
  assert [v.name for v in listed] == ["run/a", "wave/b"]
  assert listed[0].path == os.path.join(str(hmdb_tree), "run/a.avi")
  with pytest.raises(ValueError, match="--video_dir"):
    flow_extraction.find_videos(str(tmp_path / "missing"))


def test_rawframes_layout_values_and_skipped_unreadable(hmdb_tree, tmp_path):
  out = tmp_path / "out"
  messages = []
  summary = flow_extraction.extract_all(flow_extraction.find_videos(str(hmdb_tree)),
                                str(out), flow_extraction.Options(**FAST),
                                progress=False, log=messages.append)
  assert summary.done == ["run/a", "wave/b"] and summary.num_flows == 8
  assert list(summary.failed) == ["wave/broken"]
  assert len(messages) == 1 and "broken.avi" in messages[0]
  # Nothing written for the broken video, no temporary folder left.
  assert sorted(os.listdir(out / "wave")) == ["b"]
  files = sorted(os.listdir(out / "run" / "a"))
  assert files == ([f"flow_x_{i:05d}.jpg" for i in range(1, 5)]
                   + [f"flow_y_{i:05d}.jpg" for i in range(1, 5)]
                   + [f"img_{i:05d}.jpg" for i in range(1, 6)])
  # Motion of SHIFT px to the right: flow_x = 128 + SHIFT * 255 / 40.
  flow_x = _read(out / "run" / "a" / "flow_x_00002.jpg").astype(float)
  flow_y = _read(out / "run" / "a" / "flow_y_00002.jpg").astype(float)
  inner = (slice(8, -8), slice(8, -8))
  assert flow_x.shape == (SIZE, SIZE)
  assert abs(flow_x[inner].mean() - (128 + SHIFT * 255 / 40)) < 4
  assert abs(flow_y[inner].mean() - 128) < 4
  # The same numbers as tvl1 on the decoded frames (JPEG error aside).
  frames = video_io.read_video(str(hmdb_tree / "run" / "a.avi"))
  ref = np.asarray(tvl1(frames[1:2].astype(np.float32),
                        frames[2:3].astype(np.float32), "fast"))[0]
  np.testing.assert_allclose(quantize.uint8_to_flow(flow_x, 20.0),
                             ref[..., 0], atol=0.5)
  record = json.loads((out / flow_extraction.SUMMARY_FILE).read_text())
  assert record["failed"]["wave/broken"].startswith("cannot decode video")


def test_resume_skips_finished_and_cleans_own_temporaries(hmdb_tree,
                                                          tmp_path):
  out = tmp_path / "out"
  videos = [v for v in flow_extraction.find_videos(str(hmdb_tree))
            if v.name != "wave/broken"]
  flow_extraction.extract_all(videos[:1], str(out), flow_extraction.Options(**FAST),
                      progress=False)
  stamp = os.path.getmtime(out / "run" / "a" / "flow_x_00001.jpg")
  # What a kill in the middle of wave/b leaves behind.
  stale = out / "wave" / ".b.tmp-killed"
  stale.mkdir(parents=True)
  (stale / "flow_x_00001.jpg").write_bytes(b"half")
  summary = flow_extraction.extract_all(videos, str(out), flow_extraction.Options(**FAST),
                                progress=False)
  assert summary.skipped == ["run/a"] and summary.done == ["wave/b"]
  assert os.path.getmtime(out / "run" / "a" / "flow_x_00001.jpg") == stamp
  assert sorted(os.listdir(out / "wave")) == ["b"]


def test_failure_mid_video_leaves_nothing(hmdb_tree, tmp_path, monkeypatch):
  out = tmp_path / "out"
  video = flow_extraction.find_videos(str(hmdb_tree))[0]

  def interrupted(path):
    raise KeyboardInterrupt(path)

  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    with pytest.raises(KeyboardInterrupt):
      flow_extraction.extract_video(video, str(out), flow_extraction.Options(**FAST), pool,
                            read_video=interrupted)
    # A write failing (disk full) after some files were written.
    written = []
    real_write = flow_extraction._write_jpeg

    def full_disk(path, image, quality):
      if len(written) == 3:
        raise OSError(28, "No space left on device")
      written.append(path)
      real_write(path, image, quality)

    monkeypatch.setattr(flow_extraction, "_write_jpeg", full_disk)
    with pytest.raises(OSError, match="No space"):
      flow_extraction.extract_video(video, str(out), flow_extraction.Options(**FAST), pool)
  assert len(written) == 3
  assert os.listdir(out / "run") == []


def test_flo_format_round_trips(hmdb_tree, tmp_path):
  out = tmp_path / "out"
  videos = flow_extraction.find_videos(str(hmdb_tree))[:1]
  flow_extraction.extract_all(videos, str(out), flow_extraction.Options(fmt="flo", **FAST),
                      progress=False)
  files = sorted(os.listdir(out / "run" / "a"))
  assert files == [f"flow_{i:05d}.flo" for i in range(1, 5)]
  frames = video_io.read_video(str(hmdb_tree / "run" / "a.avi"))
  ref = np.asarray(tvl1(frames[:1].astype(np.float32),
                        frames[1:2].astype(np.float32), "fast"))[0]
  np.testing.assert_allclose(read_flo(str(out / "run" / "a" /
                                          "flow_00001.flo")), ref, atol=1e-3)


def test_real_clip(tmp_path):
  if not os.path.exists(_REAL_CLIP):
    pytest.skip(f"no {_REAL_CLIP}")
  video = flow_extraction.Video(_REAL_CLIP, "carphone")
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    count, _ = flow_extraction.extract_video(
        video, str(tmp_path), flow_extraction.Options(**FAST), pool,
        read_video=lambda p: video_io.read_video(p, max_frames=5))
  assert count == 4
  flow_x = _read(tmp_path / "carphone" / "flow_x_00001.jpg")
  img = _read(tmp_path / "carphone" / "img_00001.jpg")
  assert flow_x.shape == (144, 176) and img.shape == (144, 176, 3)
  # A person talking in a car: mostly still, some motion.
  assert abs(float(np.median(flow_x)) - 128) <= 3 and flow_x.std() > 0.5


def _old_extraction(path, out_dir, preset, batch_size, quality=95, bound=20.0):
  """What extract_video wrote before it streamed: every frame decoded into
  memory first, then `tvl1` on the padded batches of pairs (t, t+1)."""
  frames = video_io.read_video(path)
  os.makedirs(out_dir)
  for t, frame in enumerate(frames, 1):
    Image.fromarray(frame).save(os.path.join(out_dir, f"img_{t:05d}.jpg"),
                                quality=quality)
  num_pairs = len(frames) - 1
  for start in range(0, num_pairs, batch_size):
    index = np.minimum(np.arange(start, start + batch_size), num_pairs - 1)
    flows = np.asarray(tvl1(frames[index].astype(np.float32),
                            frames[index + 1].astype(np.float32), preset))
    for i, flow in enumerate(flows[:min(batch_size, num_pairs - start)]):
      image = quantize.flow_to_uint8(flow, bound)
      for axis, name in ((0, "x"), (1, "y")):
        Image.fromarray(np.ascontiguousarray(image[..., axis])).save(
            os.path.join(out_dir, f"flow_{name}_{start + i + 1:05d}.jpg"),
            quality=quality)


def test_streaming_output_is_byte_identical_to_the_whole_video_path(tmp_path):
  """The real clip's 120 frames, 119 flows in batches of 4 (the last one
  padded): every file equals what the read-everything path wrote."""
  if not os.path.exists(_REAL_CLIP):
    pytest.skip(f"no {_REAL_CLIP}")
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    count, _ = flow_extraction.extract_video(flow_extraction.Video(_REAL_CLIP, "new"),
                                     str(tmp_path), flow_extraction.Options(**FAST),
                                     pool)
  assert count == 119
  _old_extraction(_REAL_CLIP, str(tmp_path / "old"), "fast", 4)
  names = sorted(os.listdir(tmp_path / "old"))
  assert len(names) == 120 + 2 * 119
  assert sorted(os.listdir(tmp_path / "new")) == names
  for name in names:
    assert ((tmp_path / "new" / name).read_bytes()
            == (tmp_path / "old" / name).read_bytes()), name


def test_flow_starts_before_the_decoder_reaches_the_end(tmp_path, monkeypatch):
  """The default reader is pulled one frame at a time: the first batch's flow
  is computed when only that batch's frames (and the next one) are decoded."""
  path = str(tmp_path / "v.avi")
  _write(path, num_frames=40)
  decoded = []
  real_iter_frames = video_io.iter_frames

  def counting(*args, **kwargs):
    for frame in real_iter_frames(*args, **kwargs):
      decoded.append(1)
      yield frame

  monkeypatch.setattr(video_io, "iter_frames", counting)
  seen_at_batch = []
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    count, _ = flow_extraction.extract_video(
        flow_extraction.Video(path, "v"), str(tmp_path / "out"),
        flow_extraction.Options(**FAST), pool,
        on_flows=lambda n: seen_at_batch.append((n, len(decoded))))
  assert count == 39 and len(decoded) == 40
  # Batch k (4 pairs) needs frames up to 4k + 1; nothing more was decoded.
  assert seen_at_batch[0] == (4, 5)
  assert seen_at_batch == [(4, 4 * k + 5) for k in range(9)] + [(3, 40)]


def test_video_flow_streams_an_iterator_in_padded_batches(monkeypatch):
  """video_flow pulls frames lazily, keeps the last frame of a batch as the
  first of the next, pads the last call, and caps pairs per call by pixels."""
  calls = []

  def fake_tvl1(first, second, preset, **overrides):
    calls.append((first[:, 0, 0, 0].tolist(), second[:, 0, 0, 0].tolist()))
    return np.repeat((second - first)[..., :1], 2, -1)

  monkeypatch.setattr(batching, "tvl1", fake_tvl1)
  pulled = []

  def frames():
    for t in range(8):  # frame t has the value t
      pulled.append(t)
      yield np.full((4, 6, 3), t, np.uint8)

  batches = batching.video_flow(frames(), "fast", batch_size=3)
  first = next(batches)
  assert pulled == [0, 1, 2, 3] and len(first) == 3
  rest = list(batches)
  assert [len(b) for b in rest] == [3, 1]
  assert calls == [([0, 1, 2], [1, 2, 3]), ([3, 4, 5], [4, 5, 6]),
                   ([6, 6, 6], [7, 7, 7])]
  calls.clear()
  # 4 x 6 = 24 px a frame: a budget of 50 px allows 2 pairs per call.
  assert [len(b) for b in batching.video_flow(
      (np.zeros((4, 6, 3), np.uint8) for _ in range(6)), "fast", 16,
      max_batch_pixels=50)] == [2, 2, 1]
  assert [len(c[0]) for c in calls] == [2, 2, 2]
  assert not list(batching.video_flow(iter([]), "fast"))


def test_pairs_per_call_budget():
  assert batching.pairs_per_call(16, 0, 1080, 1920) == 16
  assert batching.pairs_per_call(16, batching.DEFAULT_MAX_BATCH_PIXELS, 1080,
                                1920) == 4
  assert batching.pairs_per_call(16, batching.DEFAULT_MAX_BATCH_PIXELS, 240,
                                320) == 16
  assert batching.pairs_per_call(16, batching.DEFAULT_MAX_BATCH_PIXELS, 2160,
                                3840) == 1
  assert batching.pairs_per_call(16, 1, 2160, 3840) == 1


def _zero_flow(frames):
  """A flow_fn that costs nothing and pulls frames as video_flow does."""
  previous = None
  for frame in frames:
    if previous is not None:
      yield np.zeros(frame.shape[:2] + (2,), np.float32)[None]
    previous = frame


def test_memory_does_not_grow_with_the_video_length(tmp_path):
  """numpy buffers are traced by tracemalloc: a video 4x longer peaks the
  same, far below its decoded frames."""
  frame_bytes = 48 * 64 * 3
  rng = np.random.default_rng(0)
  for num_frames in (30, 120):
    video_io.write_video(str(tmp_path / f"v{num_frames}.avi"),
                         rng.integers(0, 256, (num_frames, 48, 64, 3), dtype=np.uint8),
                         fps=25)

  def peak(name, num_frames):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      tracemalloc.start()
      try:
        count, _ = flow_extraction.extract_video(
            flow_extraction.Video(str(tmp_path / f"v{num_frames}.avi"), name),
            str(tmp_path / "out"), flow_extraction.Options(**FAST), pool,
            flow_fn=_zero_flow)
        assert count == num_frames - 1
        return tracemalloc.get_traced_memory()[1]
      finally:
        tracemalloc.stop()

  peak("warm_up", 30)  # one-time allocations (imports, caches)
  short, long = peak("short", 30), peak("long", 120)
  assert long < short + 4 * frame_bytes
  assert long < 20 * frame_bytes  # the old path held all 120 frames


def test_writes_are_bounded_when_the_disk_is_slow(tmp_path, monkeypatch):
  """Back-pressure: with a writer much slower than the flow, images wait in a
  bounded queue (3 x pairs per call) instead of piling up."""
  path = str(tmp_path / "v.avi")
  _write(path, num_frames=40)
  real_write = flow_extraction._write_jpeg
  in_flight, lock = [0, 0], threading.Lock()

  class CountingPool(concurrent.futures.ThreadPoolExecutor):

    def submit(self, fn, *args):
      with lock:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])

      def run():
        try:
          fn(*args)
        finally:
          with lock:
            in_flight[0] -= 1

      return super().submit(run)

  def slow_write(*args):
    time.sleep(0.005)
    real_write(*args)

  monkeypatch.setattr(flow_extraction, "_write_jpeg", slow_write)
  with CountingPool(1) as pool:
    count, _ = flow_extraction.extract_video(flow_extraction.Video(path, "v"),
                                     str(tmp_path / "out"),
                                     flow_extraction.Options(**FAST), pool,
                                     flow_fn=_zero_flow)
  assert count == 39
  assert len(os.listdir(tmp_path / "out" / "v")) == 40 + 2 * 39
  assert 3 <= in_flight[1] <= 3 * 4  # FAST: 4 pairs per call


def test_progress_counts_flows_and_videos(hmdb_tree, tmp_path, monkeypatch):
  import tqdm  # pylint: disable=g-import-not-at-top
  bars = []
  real_tqdm = tqdm.tqdm

  def recording(*args, **kwargs):
    bar = real_tqdm(*args, file=io.StringIO(), **kwargs)
    bars.append(bar)
    return bar

  monkeypatch.setattr(tqdm, "tqdm", recording)
  totals = []

  def flow_fn(frames):
    totals.append(bars[0].total)
    return batching.video_flow(frames, "fast", 4)

  summary = flow_extraction.extract_all(flow_extraction.find_videos(str(hmdb_tree)),
                                str(tmp_path / "out"), flow_extraction.Options(**FAST),
                                progress=True, flow_fn=flow_fn)
  assert summary.num_flows == 8
  (bar,) = bars
  # During run/a: its header's 4 flows, and 4 for each of the 2 videos to come;
  # during wave/b: run/a's 4, its own 4, and the mean of 4 for wave/broken;
  # during wave/broken (no header): the 8 done.
  assert totals == [12, 12, 8]
  assert bar.unit == "flow" and bar.n == 8 and bar.total == 8
  assert "videos=3/3" in str(bar) and "failed=1" in str(bar)


def test_options_are_checked():
  for bad, match in ((dict(fmt="png"), "format"), (dict(bound=0), "bound"),
                     (dict(batch_size=0), "batch_size"),
                     (dict(max_batch_pixels=-1), "max_batch_pixels"),
                     (dict(num_writers=0), "num_writers"),
                     (dict(preset="best"), "unknown preset")):
    with pytest.raises(ValueError, match=match):
      flow_extraction.Options(**bad).check()


@pytest.mark.slow  # a tool in subprocesses; `make test-all` runs it
def test_tool_helpfull_errors_and_run(hmdb_tree, tmp_path):
  run = lambda *a: subprocess.run([sys.executable, _TOOL, *a],
                                  capture_output=True, text=True, check=False)
  done = run("--helpfull")
  assert done.returncode == 0
  for flag in ("--video_dir", "--output_dir", "--list_file", "--bound",
               "--format", "--preset"):
    assert flag in done.stdout
  done = run(f"--video_dir={tmp_path / 'nope'}", f"--output_dir={tmp_path}")
  assert done.returncode != 0 and "is not a directory" in done.stderr
  assert "Traceback" not in done.stderr
  out = tmp_path / "out"
  done = run(f"--video_dir={hmdb_tree}", f"--output_dir={out}",
             "--preset=fast", "--batch_size=4", "--noprogress")
  assert done.returncode == 0, done.stderr[-2000:]
  assert "2 extracted, 0 already done, 1 unreadable" in done.stdout
  assert "broken.avi" in done.stdout + done.stderr
  done = run(f"--video_dir={hmdb_tree}", f"--output_dir={out}",
             "--preset=fast", "--batch_size=4", "--noprogress")
  assert "0 extracted, 2 already done, 1 unreadable" in done.stdout


def test_output_write_failure_stops_the_run_naming_the_output(hmdb_tree, tmp_path,
                                                              monkeypatch):
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  out = tmp_path / "out"
  written = []

  def full_disk(path, image, quality):
    del image, quality
    if len(written) == 3:
      raise OSError(28, "No space left on device", path)
    written.append(path)

  monkeypatch.setattr(flow_extraction, "_write_jpeg", full_disk)
  with pytest.raises(flow_extraction.OutputError) as info:
    flow_extraction.extract_all(flow_extraction.find_videos(str(hmdb_tree)), str(out),
                        flow_extraction.Options(**FAST), progress=False)
  # The first video's final folder, not the hidden temporary one being written.
  assert str(info.value) == f"cannot write {str(out / 'run' / 'a')!r}: No space left on device"
  assert cli.describe(info.value) == (str(info.value), cli.FAILURE_EXIT)
  assert len(written) == 3  # stopped at the failure: not 3 videos' worth of retries
  assert os.listdir(out / "run") == []  # the partial temporary folder is gone
  assert not (out / flow_extraction.SUMMARY_FILE).exists()


def test_unwritable_output_dir_stops_the_run(hmdb_tree, tmp_path, monkeypatch):
  out = tmp_path / "out"
  out.mkdir()
  out.chmod(0o555)
  if os.geteuid() == 0:  # root ignores the mode: refuse as a read-only mount does
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):
      if str(path).startswith(str(out)):
        raise OSError(30, "Read-only file system", str(path))
      return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
  try:
    with pytest.raises(flow_extraction.OutputError, match=r"cannot write '.*out/run/a': "
                       r"(Permission denied|Read-only file system)"):
      flow_extraction.extract_all(flow_extraction.find_videos(str(hmdb_tree)), str(out),
                          flow_extraction.Options(**FAST), progress=False)
  finally:
    out.chmod(0o755)
  assert os.listdir(out) == []


def test_unreadable_input_is_still_skipped_not_an_output_error(tmp_path):
  out = tmp_path / "out"

  def unreadable(path):
    raise PermissionError(13, "Permission denied", path)

  summary = flow_extraction.extract_all([flow_extraction.Video("/in/a.avi", "a")], str(out),
                                flow_extraction.Options(**FAST), progress=False, log=lambda m: None,
                                read_video=unreadable)
  assert summary.failed == {"a": "[Errno 13] Permission denied: '/in/a.avi'"}


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750)])
def test_output_folder_gets_the_mode_of_a_plain_folder(tmp_path, umask, mode):
  old = os.umask(umask)
  try:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      flow_extraction.extract_video(flow_extraction.Video("a.avi", "a"), str(tmp_path),
                            flow_extraction.Options(**FAST), pool,
                            read_video=lambda path: _frames(3, size=8), flow_fn=_zero_flow)
  finally:
    os.umask(old)
  # tempfile.mkdtemp's 0700 would hide it from other users (a server, a colleague).
  assert os.stat(tmp_path / "a").st_mode & 0o777 == mode
  assert os.listdir(tmp_path) == ["a"]


def test_list_file_not_utf8_names_the_file_and_line(hmdb_tree, tmp_path):
  listing = tmp_path / "list.txt"
  listing.write_bytes(b"run/a.avi 0\ncaf\xe9.avi 1\n")
  with pytest.raises(ValueError) as info:
    flow_extraction.find_videos(str(hmdb_tree), str(listing))
  assert str(info.value).startswith(f"--list_file {str(listing)!r}: line 2 (byte 15) is not "
                                    "UTF-8")
  done = subprocess.run([sys.executable, _TOOL, f"--video_dir={hmdb_tree}",
                         f"--output_dir={tmp_path / 'out'}", f"--list_file={listing}"],
                        capture_output=True, text=True, check=False)
  errors = [l for l in done.stderr.splitlines() if l.startswith("extract_flow")]
  assert done.returncode == 2 and errors == [
      f"extract_flow: error: {info.value}"], done.stderr[-2000:]
