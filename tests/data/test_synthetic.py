import math
import os
import re

import cv2
import numpy as np
import pytest

from tsnet_tf.data import hmdb51
from tsnet_tf.data import synthetic
from tsnet_tf.data import synthetic_render
from tsnet_tf.data import video

_SMALL = dict(height=32, width=40, min_seconds=0.3, max_seconds=0.5)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  """3 classes x 10 videos at 32x40 plus one broken file of each kind."""
  root = str(tmp_path_factory.mktemp("synthetic") / "ds")
  summary = synthetic.generate_dataset(root, num_classes=3, videos_per_class=10, seed=3,
                                       broken=synthetic.BROKEN_KINDS, **_SMALL)
  return root, summary


def _files(root):
  out = {}
  for d, _, names in os.walk(root):
    for n in names:
      with open(os.path.join(d, n), "rb") as f:
        out[os.path.relpath(os.path.join(d, n), root)] = f.read()
  return out


# ---------------------------------------------------------------------------
# Layout and split files.


def test_layout_and_names(small):
  root, summary = small
  assert summary.classes == ("move_left", "move_right", "move_up")
  assert hmdb51.list_class_dirs(os.path.join(root, "videos")) == list(summary.classes)
  assert sorted(os.listdir(root)) == ["manifest.json", "splits", "videos"]
  for cls in summary.classes:
    names = os.listdir(os.path.join(root, "videos", cls))
    assert len(names) == 11  # 10 good + 1 broken
    for n in names:
      assert re.fullmatch(rf"Synth\d{{4}}_{cls}_[fuh]_nm_np1_(fr|ba|le|ri)_(goo|med)_\d+\.avi", n), n


def test_split_files_are_hmdb51_format_with_70_30(small):
  root, summary = small
  splits = hmdb51.read_splits(os.path.join(root, "splits"), summary.classes)
  for cls in summary.classes:
    on_disk = set(os.listdir(os.path.join(root, "videos", cls)))
    partitions = []
    for k in hmdb51.SPLITS:
      path = os.path.join(root, "splits", hmdb51.split_file_name(cls, k))
      with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
      assert all(line.endswith(" ") for line in lines)  # HMDB51's trailing space
      entries = splits[k][cls]
      assert {e.video for e in entries} == on_disk
      ids = [e.subset_id for e in entries]
      used = len(ids) - ids.count(0)
      assert ids.count(0) == len(ids) // 20
      assert ids.count(1) == round(0.7 * used) and ids.count(2) == used - ids.count(1)
      assert summary.split_counts[k][cls] == {
          "train": ids.count(1), "test": ids.count(2), "unused": ids.count(0)}
      partitions.append(tuple(ids))
    assert len(set(partitions)) > 1, f"{cls}: the three splits are the same partition"


def test_partition_marks_a_few_unused_and_keeps_broken_used():
  names = [f"v{i}.avi" for i in range(103)]
  entries = synthetic.partition(names, np.random.default_rng(0), never_unused=names[:50])
  ids = [e.subset_id for e in entries]
  assert ids.count(0) == 5 and ids.count(1) == 69 and ids.count(2) == 29
  assert all(e.subset_id != 0 for e in entries[:50])
  assert [e.video for e in entries] == names


# ---------------------------------------------------------------------------
# Videos.


def test_videos_decode_with_pyav_and_opencv(small):
  root, summary = small
  good = [v for v in summary.videos if not v.broken]
  assert len(good) == 30
  for rec in good:
    path = os.path.join(root, rec.path)
    frames = video.read_video(path)
    info = video.probe_video(path)
    assert frames.shape == (rec.num_frames, 32, 40, 3)
    assert info.num_frames == rec.num_frames and (info.height, info.width) == (32, 40)
    assert info.fps == pytest.approx(rec.fps, abs=1e-3)
    assert any(info.fps == pytest.approx(f, abs=1e-3) for f in (25, 29.97, 30))
    assert round(0.3 * rec.fps) - 1 <= rec.num_frames <= round(0.5 * rec.fps) + 1
    cap = cv2.VideoCapture(path)
    count = 0
    while True:
      ok, bgr = cap.read()
      if not ok:
        break
      assert bgr.shape == (32, 40, 3)
      count += 1
    cap.release()
    assert count == rec.num_frames
  assert len({v.fps for v in good}) > 1 and len({v.num_frames for v in good}) > 1


def test_broken_files_are_listed_and_fail_clearly(small):
  root, summary = small
  assert sorted(v.broken for v in summary.broken) == sorted(synthetic.BROKEN_KINDS)
  text = synthetic.format_summary(summary)
  splits = hmdb51.read_splits(os.path.join(root, "splits"), summary.classes)
  for rec in summary.broken:
    assert rec.path in text and rec.broken in text
    name = os.path.basename(rec.path)
    for k in hmdb51.SPLITS:
      ids = {e.video: e.subset_id for e in splits[k][rec.class_name]}
      assert ids[name] in (1, 2)
    path = os.path.join(root, rec.path)
    if rec.broken == "truncated":
      frames = video.read_video(path)  # cut mid-stream: some frames survive
      assert 1 <= frames.shape[0] < rec.num_frames
    else:
      with pytest.raises(video.VideoDecodeError, match=re.escape(name)):
        video.read_video(path)
  assert os.path.getsize(os.path.join(root, summary.broken[0].path)) == 0  # "empty" first


def test_motion_speeds_follow_the_reference_scale(small):
  _, summary = small
  scale = math.sqrt(32 * 40 / (240 * 320))
  for rec in summary.videos:
    assert 1.0 <= rec.motion["speed_px"] / scale <= 4.0


# ---------------------------------------------------------------------------
# Determinism and arguments.


def test_same_seed_same_bytes_any_workers(tmp_path):
  args = dict(num_classes=2, videos_per_class=2, seed=7, broken=("truncated",), **_SMALL)
  synthetic.generate_dataset(tmp_path / "a", **args)
  synthetic.generate_dataset(tmp_path / "b", num_workers=2, **args)
  synthetic.generate_dataset(tmp_path / "c", **dict(args, seed=8))
  a, b, c = (_files(tmp_path / n) for n in "abc")
  assert a == b
  avis_a = {v for k, v in a.items() if k.endswith(".avi")}
  avis_c = {v for k, v in c.items() if k.endswith(".avi")}
  assert len(avis_a) == 5 and not avis_a & avis_c  # another seed: other videos


def test_arguments_are_validated(tmp_path):
  with pytest.raises(ValueError, match="--num_classes"):
    synthetic.generate_dataset(tmp_path / "x", num_classes=len(synthetic_render.MOTION_CLASSES) + 1)
  with pytest.raises(ValueError, match="even"):
    synthetic.generate_dataset(tmp_path / "x", height=33)
  with pytest.raises(ValueError, match="--min_seconds"):
    synthetic.generate_dataset(tmp_path / "x", min_seconds=2, max_seconds=1)
  with pytest.raises(ValueError, match="--broken"):
    synthetic.generate_dataset(tmp_path / "x", broken=("nope",))
  assert not (tmp_path / "x").exists()
  (tmp_path / "y").mkdir()
  with pytest.raises(FileExistsError, match="--overwrite"):
    synthetic.generate_dataset(tmp_path / "y")
  synthetic.generate_dataset(tmp_path / "y", num_classes=1, videos_per_class=2, overwrite=True,
                             **_SMALL)
  assert len(os.listdir(tmp_path / "y" / "videos" / "move_left")) == 2
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp dirs left


def test_parse_broken():
  assert synthetic.parse_broken("") == ()
  assert synthetic.parse_broken("garbage, empty") == ("garbage", "empty")
  assert synthetic.parse_broken("4") == ("empty", "truncated", "garbage", "empty")
  with pytest.raises(ValueError, match="unknown kind"):
    synthetic.parse_broken("empty,bad")


# ---------------------------------------------------------------------------
# Rendering helpers against references.


def test_torus_shift_matches_roll_and_interpolates():
  img = np.random.default_rng(0).uniform(0, 255, (6, 8, 3)).astype(np.float32)
  torus = synthetic_render._Torus(img)
  np.testing.assert_allclose(torus.shifted(2, -3), np.roll(img, (2, -3), axis=(0, 1)), atol=1e-4)
  half = 0.5 * (np.roll(img, 1, axis=1) + np.roll(img, 2, axis=1))
  np.testing.assert_allclose(torus.shifted(0, 1.5), half, atol=1e-4)


def test_wrapped_box_round_trips():
  frame = np.arange(7 * 9 * 3, dtype=np.float32).reshape(7, 9, 3)
  box = synthetic_render._get_box(frame, -2, 7, 5)
  expect = frame.take(np.arange(-2, 3), axis=0, mode="wrap").take(
      np.arange(7, 12), axis=1, mode="wrap")
  np.testing.assert_array_equal(box, expect)
  out = frame.copy()
  synthetic_render._set_box(out, -2, 7, box + 1000)
  changed = out != frame
  assert changed.sum() == 5 * 5 * 3
  np.testing.assert_array_equal(synthetic_render._get_box(out, -2, 7, 5), box + 1000)


def test_periodic_texture_tiles_seamlessly():
  tex = synthetic_render.periodic_texture(np.random.default_rng(0), 64, 64)
  assert tex.dtype == np.float32 and tex.min() >= 0 and tex.max() <= 255
  # The jump across the wrap seam is no larger than between neighbours inside.
  inner = np.abs(np.diff(tex, axis=1)).mean()
  seam = np.abs(tex[:, 0] - tex[:, -1]).mean()
  assert seam < 1.5 * inner


# ---------------------------------------------------------------------------
# The claim: appearance says nothing about the class, motion says everything.


def _flow_features(frames):
  """Motion statistics from OpenCV Farneback flow: mean (u, v) of the moving
  pixels, the moving area fraction, mean curl and divergence there."""
  gray = frames.astype(np.float32).mean(-1)
  pairs = list(zip(gray[:-1:2], gray[1::2]))[:6]
  flow = np.stack([cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 2, 5, 1.1, 0)
                   for a, b in pairs])
  u, v = flow[..., 0], flow[..., 1]
  moving = np.hypot(u, v) > 0.3 * np.hypot(u, v).max()
  curl = np.gradient(v, axis=2) - np.gradient(u, axis=1)
  div = np.gradient(u, axis=2) + np.gradient(v, axis=1)
  mean = lambda x: (x * moving).sum() / max(moving.sum(), 1)
  return np.array([mean(u), mean(v), moving.mean(), mean(curl), mean(div)])


def _appearance_features(frames):
  """Mean and spread of colour, texture energy, and the first frame's colour."""
  f = frames.astype(np.float32)
  gray = f.mean(-1)
  return np.concatenate([f.mean((0, 1, 2)), f.std((0, 1, 2)),
                         [np.abs(np.diff(gray, axis=1)).mean(),
                          np.abs(np.diff(gray, axis=2)).mean()],
                         f[0].mean((0, 1))])


def _nearest_class_mean_accuracy(features, labels, is_train):
  mu, sd = features[is_train].mean(0), features[is_train].std(0) + 1e-9
  z = (features - mu) / sd
  classes = np.unique(labels)
  centres = np.stack([z[is_train & (labels == c)].mean(0) for c in classes])
  dist = ((z[~is_train][:, None] - centres[None]) ** 2).sum(-1)
  return float((classes[dist.argmin(1)] == labels[~is_train]).mean())


@pytest.fixture(scope="module")
def all_classes(tmp_path_factory):
  """All 12 classes x 8 videos at 64x80, ~0.6 s each, decoded back from AVI."""
  root = str(tmp_path_factory.mktemp("claim") / "ds")
  summary = synthetic.generate_dataset(
      root, num_classes=len(synthetic_render.MOTION_CLASSES), videos_per_class=8, seed=1,
      height=64, width=80, min_seconds=0.5, max_seconds=0.7)
  clips = [video.read_video(os.path.join(root, r.path)) for r in summary.videos]
  labels = np.array([synthetic_render.MOTION_CLASSES.index(r.class_name) for r in summary.videos])
  # Held out: the last 3 videos of each class.
  index = np.array([int(os.path.basename(r.path)[5:9]) for r in summary.videos])
  return summary, clips, labels, index < 5


def test_appearance_does_not_predict_class_but_motion_does(all_classes):
  summary, clips, labels, is_train = all_classes
  chance = 1 / len(synthetic_render.MOTION_CLASSES)
  appearance = np.stack([_appearance_features(c) for c in clips])
  motion = np.stack([_flow_features(c) for c in clips])
  acc_appearance = _nearest_class_mean_accuracy(appearance, labels, is_train)
  acc_motion = _nearest_class_mean_accuracy(motion, labels, is_train)
  # 36 held-out videos: chance is 1/12 (3 right), std ~ 0.05.
  assert acc_appearance <= chance + 0.12, acc_appearance
  assert acc_motion >= 0.75, acc_motion
  # Translations: the measured speed of the moving content matches the ground truth.
  ratios = [np.hypot(*m[:2]) / r.motion["speed_px"]
            for m, r in zip(motion, summary.videos) if r.class_name[:4] in ("move", "pan_")]
  assert 0.75 <= np.median(ratios) <= 1.25 and min(ratios) > 0.4 and max(ratios) < 1.6, ratios
  # The names mean what they say (image axes: x right, y down; pan left -> scene moves right).
  mean = {c: motion[labels == i].mean(0) for i, c in enumerate(synthetic_render.MOTION_CLASSES)}
  u, v, curl, div = 0, 1, 3, 4
  expected = {"move_left": (u, -1), "move_right": (u, 1), "move_up": (v, -1),
              "move_down": (v, 1), "pan_left": (u, 1), "pan_right": (u, -1), "pan_up": (v, 1),
              "pan_down": (v, -1), "rotate_cw": (curl, 1), "rotate_ccw": (curl, -1),
              "zoom_in": (div, 1), "zoom_out": (div, -1)}
  for cls, (feature, sign) in expected.items():
    assert np.sign(mean[cls][feature]) == sign, (cls, mean[cls])


def test_split_class_and_appearance_colours():
  assert synthetic_render.split_class("red_move_left") == ("red", "move_left")
  assert synthetic_render.split_class("move_left") == (None, "move_left")
  for bad in ("red", "red_jump", "mauve_move_left"):
    with pytest.raises(ValueError):
      synthetic_render.split_class(bad)
  import colorsys  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for name, hue in synthetic_render.APPEARANCES.items():
    for colour in synthetic_render.appearance_colours(rng, name):
      h, s, _ = colorsys.rgb_to_hsv(*(colour / 255.0))
      assert min(abs(h - hue), 1 - abs(h - hue)) <= synthetic_render._HUE_JITTER + 1e-6, name
      assert s >= 0.6


def test_appearance_changes_only_the_objects_colour():
  def render(cls):
    return synthetic_render.render_video(cls, np.random.default_rng(3), 6, 48, 64)

  red, motion_red = render("red_move_right")
  blue, motion_blue = render("blue_move_right")
  assert motion_red == motion_blue  # same draws: same trajectory and background
  differs = np.abs(red.astype(int) - blue.astype(int)).sum(-1) > 30
  # Only the object (a minority of the frame) changes, in every frame.
  assert 0.02 < differs.mean() < 0.4 and differs.any(axis=(1, 2)).all()
  r, b = red[differs].astype(float), blue[differs].astype(float)
  assert r[:, 0].mean() > r[:, 2].mean() + 40 and b[:, 2].mean() > b[:, 0].mean() + 40


def test_dataset_of_appearance_x_motion_classes(tmp_path):
  summary = synthetic.generate_dataset(str(tmp_path / "am"), num_classes=2, videos_per_class=2,
                                       height=32, width=32, min_seconds=0.3,
                                       max_seconds=0.4, appearances=("green", "red"))
  assert summary.classes == ("green_move_left", "green_move_right", "red_move_left",
                             "red_move_right")
  assert sorted(os.listdir(tmp_path / "am" / "videos")) == list(summary.classes)
  with pytest.raises(ValueError, match="appearances"):
    synthetic.generate_dataset(str(tmp_path / "x"), appearances=("red", "red"))
  with pytest.raises(ValueError, match="appearances"):
    synthetic.generate_dataset(str(tmp_path / "x"), appearances=("mauve",))
