"""The real-footage benchmark builder: windows, playback variants, splits, layout."""

import json
import os

import numpy as np
import pytest

from tsnet_tf.data import footage
from tsnet_tf.data import hmdb51
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video

SHARED_VIDEO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "..", "shared", "data", "video")


def _ramp_video(path, num_frames, size=(32, 48)):
  """Frame t is a flat grey of level 8 * t: the frame index reads back from pixels."""
  assert num_frames <= 32
  frames = np.zeros((num_frames,) + size + (3,), np.uint8)
  frames += (8 * np.arange(num_frames, dtype=np.uint8))[:, None, None, None]
  video.write_video(path, frames, 25)


def _levels(path):
  return np.round(video.read_video(path).mean(axis=(1, 2, 3)) / 8).astype(int)


def test_windows_are_disjoint_and_every_window_is_tested_once():
  spans = footage.plan_windows(300, 6, gap=2, max_frames=64)
  assert len(spans) == 6
  for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
    assert e0 + 2 <= s1  # a gap between neighbours
  assert all(e - s == 48 for s, e in spans)  # 300 // 6 - 2
  assert footage.plan_windows(300, 6, gap=2, max_frames=20)[0] == (15, 35)  # centred
  tested = [footage.test_windows(k, 6) for k in hmdb51.SPLITS]
  assert tested == [(0, 3), (1, 4), (2, 5)]
  assert sorted(w for t in tested for w in t) == list(range(6))


def test_playback_variants():
  clip = np.arange(10)
  np.testing.assert_array_equal(footage.playback(clip, "fwd"), clip)
  np.testing.assert_array_equal(footage.playback(clip, "bwd"), clip[::-1])
  np.testing.assert_array_equal(footage.playback(clip, "x1"), [2, 3, 4, 5, 6])
  np.testing.assert_array_equal(footage.playback(clip, "x2"), [0, 2, 4, 6, 8])
  with pytest.raises(ValueError):
    footage.playback(clip, "sideways")


def test_pan_slides_a_crop_across_the_frame():
  # Pixel value = its column: each output frame's first column is the crop's left edge.
  n, height, width = 11, 20, 50
  clip = np.broadcast_to(np.arange(width, dtype=np.int32)[None, None, :, None],
                         (n, height, width, 1))
  right = footage.playback(clip, "right")
  left = footage.playback(clip, "left")
  assert right.shape == left.shape == (n, 16, 40, 1)  # PAN_CROP of each side, even
  edges = right[:, 0, 0, 0]
  assert edges[0] == 0 and edges[-1] == width - 40  # crosses the whole frame
  assert np.all(np.diff(edges) == 1)  # 10 px in 10 steps: constant speed
  np.testing.assert_array_equal(left[:, 0, 0, 0], edges[::-1])
  np.testing.assert_array_equal(right[0, :, :, 0], clip[0, 2:18, :40, 0])  # centred rows


def test_pan_is_a_translation_optical_flow_sees():
  from tsnet_tf import flow  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  texture = rng.rand(12, 16)
  scene = np.kron(texture, np.ones((4, 4)))[..., None].repeat(3, -1) * 255  # 48x64
  clip = np.repeat(scene[None].astype(np.float32), 9, axis=0)  # a static shot
  for variant, sign in (("right", -1), ("left", 1)):
    frames = footage.playback(clip, variant)  # view moves 13 px over 8 steps
    flows = np.asarray(flow.tvl1(frames[None, 3] / 255.0, frames[None, 4] / 255.0,
                                 preset="fast"))
    mean_u = flows[0, 8:-8, 8:-8, 0].mean()
    assert sign * mean_u > 1.0, (variant, mean_u)  # about 1.6 px per frame


@pytest.mark.parametrize("factor", ["direction", "speed", "pan"])
def test_builds_layout_splits_and_playback(tmp_path, factor):
  src = tmp_path / "src"
  src.mkdir()
  _ramp_video(str(src / "Clip A.avi"), 30)
  _ramp_video(str(src / "clip_b.avi"), 32)
  _ramp_video(str(src / "short.avi"), 12)  # too short for 6 windows of >= 2 frames
  (src / "notes.txt").write_text("not a video")
  out = tmp_path / "set"
  summary = footage.build_direction_dataset(
      footage.find_videos(str(src)), str(out), windows_per_source=6, gap_frames=1,
      min_window_frames=2, max_window_frames=64, factor=factor)
  variants = footage.FACTORS[factor]
  assert summary.classes == tuple(sorted(f"{s}_{v}" for s in ("clip_a", "clip_b")
                                         for v in variants))
  assert list(summary.skipped) == [str(src / "short.avi")]
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["factor"] == factor
  spans = summary.windows["clip_a"]  # 30 // 6 - 1 = 4 frames each
  assert [e - s for s, e in spans] == [4] * 6
  for w, (start, end) in enumerate(spans):
    name = f"clip_a-w{w:02d}_clip_a_{variants[0]}_nm_np1_fr_goo_0.avi"
    first = _levels(str(out / "videos" / f"clip_a_{variants[0]}" / name))
    second = _levels(str(out / "videos" / f"clip_a_{variants[1]}" /
                          name.replace(variants[0], variants[1])))
    window = np.arange(start, end)
    if factor == "pan":  # flat frames: a crop keeps each frame's level and order
      np.testing.assert_array_equal(first, window)
      np.testing.assert_array_equal(second, window)
      info = video.probe_video(str(out / "videos" / f"clip_a_{variants[0]}" / name))
      assert (info.height, info.width) == (24, 38)  # 0.8 of 32x48, even
      continue
    np.testing.assert_array_equal(first, footage.playback(window, variants[0]))
    np.testing.assert_array_equal(second, footage.playback(window, variants[1]))
  # Split k tests windows (k-1, k+2); the rest are training; both variants alike.
  for k in hmdb51.SPLITS:
    entries = hmdb51.parse_split_file(
        str(out / "splits" / hmdb51.split_file_name(f"clip_b_{variants[1]}", k)))
    tested = [int(e.video.split("-w")[1][:2]) for e in entries if e.subset_id == hmdb51.TEST]
    assert tuple(tested) == footage.test_windows(k, 6)
    assert sum(e.subset_id == hmdb51.TRAIN for e in entries) == 4
  with pytest.raises(FileExistsError):
    footage.build_direction_dataset(footage.find_videos(str(src)), str(out))


def test_converter_holds_out_the_same_windows_for_both_variants(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  for name in ("a", "b"):
    _ramp_video(str(src / f"{name}.avi"), 30)
  out = tmp_path / "set"
  footage.build_direction_dataset(footage.find_videos(str(src)), str(out),
                                  windows_per_source=6, min_window_frames=2)
  plan = tfrecords.build_plan(str(out / "videos"), str(out / "splits"), [1],
                              validation_fraction=0.25)
  held = {}
  for v in plan.videos:
    if v.split_ids[1] == hmdb51.VALIDATION:
      held.setdefault(v.class_name, set()).add(v.file_name.split("_")[0])
  assert held["a_fwd"] == held["a_bwd"] and len(held["a_fwd"]) == 1
  # Never a tested window.
  tested = {f"a-w{w:02d}" for w in footage.test_windows(1, 6)}
  assert not held["a_fwd"] & tested


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="windows_per_source"):
    footage.build_direction_dataset([], str(tmp_path / "x"), windows_per_source=3)
  with pytest.raises(ValueError, match="factor"):
    footage.build_direction_dataset([], str(tmp_path / "x"), factor="colour")
  with pytest.raises(ValueError, match="source name"):
    footage.build_direction_dataset(["a/x.avi", "b/X.mp4"], str(tmp_path / "x"))
  with pytest.raises(ValueError, match="not a directory"):
    footage.find_videos(str(tmp_path / "missing"))


@pytest.mark.skipif(not os.path.isdir(SHARED_VIDEO), reason="needs ../shared/data/video")
def test_shared_real_clips_are_found():
  names = {footage.source_name(p) for p in footage.find_videos(SHARED_VIDEO)}
  assert {"tai_chi", "skateboarding", "arm_wrestling", "cleaning_pool", "clean_and_jerk",
          "flipping_pancake", "bikes"} <= names


def test_windows_are_read_resized_without_the_rest_of_the_video(tmp_path):
  # A textured video larger than short_side: the windows come back resized and
  # equal to cutting them out of the fully decoded video.
  rng = np.random.RandomState(0)
  frames = rng.randint(0, 256, (60, 48, 64, 3)).astype(np.uint8)
  path = str(tmp_path / "v.avi")
  video.write_video(path, frames, 25)
  info = video.probe_video(path)
  spans, windows = footage._read_windows(path, info, 4, 2, 10, 4, short_side=24)  # pylint: disable=protected-access
  assert spans == footage.plan_windows(60, 4, 2, 10)
  decoded = video.read_video(path)
  for (start, end), window in zip(spans, windows):
    assert window.shape == (end - start, 24, 32, 3)
    np.testing.assert_array_equal(
        window, np.stack([video.resize_frame(f, (24, 32)) for f in decoded[start:end]]))
  with pytest.raises(footage._TooShort):  # pylint: disable=protected-access
    footage._read_windows(path, info, 4, 2, 10, 20, short_side=24)  # pylint: disable=protected-access


def _two_sources(src):
  src.mkdir()
  for name in ("a", "b"):
    _ramp_video(str(src / f"{name}.avi"), 12)
  return footage.find_videos(str(src))


_SMALL = dict(windows_per_source=4, gap_frames=0, min_window_frames=2, max_window_frames=3)


def test_overwrite_replaces_only_a_set_it_wrote(tmp_path):
  paths = _two_sources(tmp_path / "src")
  out = tmp_path / "set"
  footage.build_direction_dataset(paths, str(out), **_SMALL)
  footage.build_direction_dataset(paths, str(out), overwrite=True, **_SMALL)
  assert sorted(os.listdir(out)) == ["manifest.json", "splits", "videos"]
  # A user's file inside it: refused, kept.
  (out / "videos" / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="'videos/notes.txt', which make_footage_set did"):
    footage.build_direction_dataset(paths, str(out), overwrite=True, **_SMALL)
  assert (out / "videos" / "notes.txt").read_text() == "mine"
  # A directory it never wrote (another tool's manifest counts as none).
  thesis = tmp_path / "thesis"
  thesis.mkdir()
  (thesis / "thesis.txt").write_text("mine")
  for manifest in (None, {"generator": "tsnet_tf.data.synthetic"}):
    if manifest:
      (thesis / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FileExistsError, match="not a dataset written by make_footage_set"):
      footage.build_direction_dataset(paths, str(thesis), overwrite=True, **_SMALL)
    assert (thesis / "thesis.txt").read_text() == "mine"


def test_refuses_an_output_dir_holding_its_videos(tmp_path):
  src = tmp_path / "src"
  paths = _two_sources(src)
  for out in (src, tmp_path):
    with pytest.raises(ValueError, match="is inside --output_dir"):
      footage.build_direction_dataset(paths, str(out), overwrite=True, **_SMALL)
  assert sorted(os.listdir(src)) == ["a.avi", "b.avi"]
