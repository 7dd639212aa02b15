import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import hmdb51
from tsnet_tf.data import schema
from tsnet_tf.data import synthetic
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video

SETTINGS = tfrecords.ConversionSettings(short_side=0, jpeg_quality=95)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("synth") / "hmdb")
  return synthetic.generate_dataset(
      root, num_classes=3, videos_per_class=4, seed=0, height=32, width=40,
      min_seconds=0.4, max_seconds=0.8, fps=(25.0,), broken=("empty", "truncated", "garbage"))


@pytest.fixture(scope="module")
def converted(synth, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("tfr") / "data")
  summary = tfrecords.convert(os.path.join(synth.output_dir, "videos"),
                              os.path.join(synth.output_dir, "splits"), out, settings=SETTINGS,
                              num_workers=1, num_shards=3, progress=False)
  return out, summary


def _records(data_dir):
  recs = []
  for path in schema.list_shards(data_dir):
    for s in tf.data.TFRecordDataset(path):
      r = schema.parse_sequence_example(s, splits=(1, 2, 3))
      recs.append({k: v.numpy() for k, v in r.items()})
  return recs


def _shard_bytes(data_dir):
  return {os.path.basename(p): open(p, "rb").read() for p in schema.list_shards(data_dir)}


def test_sequence_example_round_trip():
  jpegs = [tf.io.encode_jpeg(np.full((4, 6, 3), v, np.uint8)).numpy() for v in (10, 200)]
  ex = schema.make_sequence_example(jpegs, 3, "clap", "clap/a.avi", 7, 29.97, 4, 6,
                                    {1: 1, 2: 2, 3: 0})
  r = schema.parse_sequence_example(ex.SerializeToString(), splits=(1, 2, 3))
  assert r[schema.LABEL_INDEX_KEY].numpy() == 3
  assert r[schema.LABEL_TEXT_KEY].numpy() == b"clap"
  assert r[schema.MEDIA_ID_KEY].numpy() == b"clap/a.avi"
  assert r[schema.VIDEO_INDEX_KEY].numpy() == 7
  assert r[schema.NUM_FRAMES_KEY].numpy() == 2
  assert abs(r[schema.FRAME_RATE_KEY].numpy() - 29.97) < 1e-4
  assert (r[schema.HEIGHT_KEY].numpy(), r[schema.WIDTH_KEY].numpy()) == (4, 6)
  assert [r["clip/split%d" % k].numpy() for k in (1, 2, 3)] == [1, 2, 0]
  assert list(r[schema.FRAMES_KEY].numpy()) == jpegs
  ctx = schema.parse_sequence_example(ex.SerializeToString(), with_frames=False)
  assert schema.FRAMES_KEY not in ctx


def test_helpers():
  assert video.short_side_size(240, 320, 240) == (240, 320)
  assert video.short_side_size(480, 640, 240) == (240, 320)
  assert video.short_side_size(320, 180, 90) == (160, 90)
  assert video.short_side_size(33, 41, 0) == (33, 41)
  parts = tfrecords.assign_shards(23, 4)
  assert sorted(i for p in parts for i in p) == list(range(23))
  assert [len(p) for p in parts] == [5, 6, 6, 6]
  assert parts == tfrecords.assign_shards(23, 4)
  assert tfrecords.default_num_shards(40) == 8
  assert tfrecords.default_num_shards(3) == 3
  assert tfrecords.default_num_shards(6766) == 68


def test_counts_labels_and_skips_match_split_files(synth, converted):
  data_dir, summary = converted
  assert open(os.path.join(data_dir, "labels.txt")).read().split() == list(synth.classes)
  assert summary["classes"] == sorted(summary["classes"])
  broken = {v.path.split("/", 1)[1]: v.broken for v in synth.broken}
  skipped = {s["video"]: s["reason"] for s in summary["skipped"]}
  # Empty and garbage files never decode; a truncated one either keeps the frames
  # before the cut or (cut before the first frame) is skipped.
  assert {v for v, k in broken.items() if k in ("empty", "garbage")} <= set(skipped)
  assert set(skipped) <= set(broken)
  assert all(r for r in skipped.values())
  recs = _records(data_dir)
  assert len(recs) == summary["num_videos"] == 15 - len(skipped)
  # Counts per split and subset: split-file entries minus skipped files, with
  # the converter's validation carve (whole groups of training videos).
  fraction = tfrecords.ConversionSettings().validation_fraction
  for k in hmdb51.SPLITS:
    expect = dict.fromkeys(hmdb51.SUBSETS, 0)
    for cls in synth.classes:
      entries = hmdb51.parse_split_file(
          os.path.join(synth.output_dir, "splits", hmdb51.split_file_name(cls, k)))
      carved = hmdb51.carve_validation(entries, cls, fraction)
      assert [e.video for e in carved] == [e.video for e in entries]
      for e, c in zip(entries, carved):
        assert c.subset_id == e.subset_id or (e.subset_id, c.subset_id) == (1, 3)
        if f"{cls}/{e.video}" not in skipped and c.subset_id:
          expect[{1: "train", 2: "test", 3: "validation"}[c.subset_id]] += 1
    assert summary["splits"][str(k)] == expect
    assert expect["validation"] > 0
    got = {name: sum(r[f"clip/split{k}"] == i for r in recs)
           for name, i in hmdb51.SUBSET_IDS.items()}
    assert got == expect
  for r in recs:
    cls = r[schema.LABEL_TEXT_KEY].decode()
    assert synth.classes.index(cls) == r[schema.LABEL_INDEX_KEY]
    assert r[schema.MEDIA_ID_KEY].decode().startswith(cls + "/")
  assert sorted(r[schema.VIDEO_INDEX_KEY] for r in recs) == sorted(
      v["video_index"] for s in range(3) for v in json.load(open(os.path.join(
          data_dir, "_shard_info", schema.shard_name(s, 3) + ".json")))["videos"])


def test_frames_round_trip_within_jpeg_tolerance(synth, converted):
  data_dir, _ = converted
  for r in _records(data_dir)[:4]:
    media_id = r[schema.MEDIA_ID_KEY].decode()
    original = video.read_video(os.path.join(synth.output_dir, "videos", media_id))
    frames = np.stack([tf.io.decode_jpeg(j).numpy() for j in r[schema.FRAMES_KEY]])
    assert frames.shape == original.shape
    assert r[schema.NUM_FRAMES_KEY] == len(original)
    assert (r[schema.HEIGHT_KEY], r[schema.WIDTH_KEY]) == (32, 40)
    assert abs(r[schema.FRAME_RATE_KEY] - 25.0) < 1e-3
    err = np.abs(frames.astype(np.float32) - original).mean()
    # Reference: OpenCV's own JPEG round trip at the same quality (4:2:0 as ours).
    ref = np.mean([np.abs(cv2.cvtColor(cv2.imdecode(cv2.imencode(
        ".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1], 1),
        cv2.COLOR_BGR2RGB).astype(np.float32) - f).mean() for f in original])
    assert err <= 1.15 * ref + 0.25, (media_id, err, ref)


def test_deterministic_and_parallel_gives_same_bytes(synth, converted, tmp_path):
  data_dir, _ = converted
  out = str(tmp_path / "par")
  tfrecords.convert(os.path.join(synth.output_dir, "videos"),
                    os.path.join(synth.output_dir, "splits"), out, settings=SETTINGS,
                    num_workers=2, num_shards=3, progress=False)
  assert _shard_bytes(out) == _shard_bytes(data_dir)
  summary = json.load(open(os.path.join(out, "summary.json")))
  assert summary == json.load(open(os.path.join(data_dir, "summary.json")))


def test_resume_after_crash_keeps_complete_shards(synth, converted, tmp_path, monkeypatch):
  data_dir, _ = converted
  out = str(tmp_path / "crash")
  args = (os.path.join(synth.output_dir, "videos"), os.path.join(synth.output_dir, "splits"), out)
  real = tfrecords.encode_video
  calls, crash_at = [], [8]

  def crashing(task, settings):
    calls.append(task.media_id)
    if len(calls) == crash_at[0]:  # shards hold 5 videos: dies inside the second shard
      raise KeyboardInterrupt("simulated crash")
    return real(task, settings)

  monkeypatch.setattr(tfrecords, "encode_video", crashing)
  with pytest.raises(KeyboardInterrupt):
    tfrecords.convert(*args, settings=SETTINGS, num_workers=1, num_shards=3, progress=False)
  names = sorted(os.listdir(out))
  assert schema.shard_name(0, 3) in names
  assert schema.shard_name(1, 3) not in names  # never under its final name half-written
  assert not [n for n in names if ".tmp-" in n]
  assert "summary.json" not in names
  first = os.stat(os.path.join(out, schema.shard_name(0, 3)))
  # A stale temp file from a killed process is cleaned up on resume.
  open(os.path.join(out, ".hmdb51-00001-of-00003.tmp-dead.tfrecord"), "wb").write(b"xx")
  calls.clear()
  crash_at[0] = -1
  tfrecords.convert(*args, settings=SETTINGS, num_workers=1, num_shards=3, progress=False)
  assert len(calls) == 10  # only the two unfinished shards were converted
  again = os.stat(os.path.join(out, schema.shard_name(0, 3)))
  assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
  assert _shard_bytes(out) == _shard_bytes(data_dir)
  assert not [n for n in os.listdir(out) if ".tmp-" in n]


def test_other_settings_in_same_dir_need_overwrite(synth, converted, tmp_path):
  data_dir, _ = converted
  out = str(tmp_path / "o")
  shutil.copytree(data_dir, out)
  args = (os.path.join(synth.output_dir, "videos"), os.path.join(synth.output_dir, "splits"), out)
  stride2 = tfrecords.ConversionSettings(short_side=16, jpeg_quality=95, frame_stride=2)
  with pytest.raises(FileExistsError, match="--overwrite"):
    tfrecords.convert(*args, settings=stride2, num_workers=1, num_shards=3, progress=False)
  summary = tfrecords.convert(*args, settings=stride2, num_workers=1, num_shards=2,
                              overwrite=True, progress=False)
  assert len(glob.glob(os.path.join(out, "hmdb51-*.tfrecord"))) == 2
  recs = {r[schema.MEDIA_ID_KEY]: r for r in _records(out)}
  for r in _records(data_dir):
    r2 = recs[r[schema.MEDIA_ID_KEY]]
    assert r2[schema.NUM_FRAMES_KEY] == (r[schema.NUM_FRAMES_KEY] + 1) // 2
    assert abs(r2[schema.FRAME_RATE_KEY] - 12.5) < 1e-3
    assert (r2[schema.HEIGHT_KEY], r2[schema.WIDTH_KEY]) == (16, 20)
    assert tf.io.decode_jpeg(r2[schema.FRAMES_KEY][0]).shape == (16, 20, 3)
  assert summary["settings"]["frame_stride"] == 2


def _layout_copy(synth, tmp_path):
  root = tmp_path / "layout"
  shutil.copytree(synth.output_dir, root)
  return str(root / "videos"), str(root / "splits"), str(tmp_path / "out")


def test_missing_video_is_reported_and_unused_counted(synth, tmp_path):
  videos, splits, out = _layout_copy(synth, tmp_path)
  cls = synth.classes[0]
  with open(os.path.join(splits, hmdb51.split_file_name(cls, 1)), "a") as f:
    f.write("ghost.avi 2 \n")
  shutil.copy(os.path.join(synth.output_dir, synth.videos[0].path),
              os.path.join(videos, cls, "extra.avi"))
  plan = tfrecords.build_plan(videos, splits, splits=(1,))
  assert plan.missing == [{"video": f"{cls}/ghost.avi",
                           "split_file": hmdb51.split_file_name(cls, 1), "subset_id": 2}]
  assert plan.unused == [f"{cls}/extra.avi"]
  assert plan.splits == [1]
  assert [v.video_index for v in plan.videos] == list(range(len(plan.videos)))
  assert [(v.label, v.file_name) for v in plan.videos] == sorted(
      (v.label, v.file_name) for v in plan.videos)


@pytest.mark.parametrize("damage, match", [
    ("remove_split_file", "missing split file"),
    ("stray_split_file", "no folder in the video directory"),
    ("extra_class_folder", "missing split file"),
])
def test_layout_errors_before_any_work(synth, tmp_path, damage, match):
  videos, splits, out = _layout_copy(synth, tmp_path)
  if damage == "remove_split_file":
    os.remove(os.path.join(splits, hmdb51.split_file_name(synth.classes[1], 2)))
  elif damage == "stray_split_file":
    open(os.path.join(splits, hmdb51.split_file_name("juggle", 1)), "w").write("a.avi 1\n")
  else:
    os.makedirs(os.path.join(videos, "juggle"))
  with pytest.raises(hmdb51.LayoutError, match=match):
    tfrecords.convert(videos, splits, out, settings=SETTINGS, num_workers=1, progress=False)
  assert not os.path.exists(out)


def test_bad_settings_raise():
  with pytest.raises(ValueError, match="--jpeg_quality"):
    tfrecords.ConversionSettings(jpeg_quality=0).validate()
  with pytest.raises(ValueError, match="--frame_stride"):
    tfrecords.ConversionSettings(frame_stride=0).validate()


def test_encode_video_streams_and_equals_encoding_the_decoded_video(tmp_path):
  """Each kept frame is encoded as it is decoded: the JPEGs equal encoding
  the fully decoded video's frames[::stride], and memory holds the JPEGs, not
  the decoded frames (numpy buffers are traced by tracemalloc)."""
  import tracemalloc  # pylint: disable=g-import-not-at-top
  height, width, num_frames = 96, 128, 90
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  frames = np.stack([np.stack([128 + 100 * np.sin((xx + 2 * t) / 9.0),
                               128 + 100 * np.cos(yy / 7.0),
                               np.full_like(xx, 80.0)], -1)
                     for t in range(num_frames)]).astype(np.uint8)
  path = str(tmp_path / "v.avi")
  video.write_video(path, frames, fps=30)
  task = tfrecords.VideoTask(path, "c", 0, "v.avi", 0, {1: 1})
  decoded = video.read_video(path)
  for settings in (tfrecords.ConversionSettings(short_side=48, frame_stride=2),
                   tfrecords.ConversionSettings(short_side=0, frame_stride=1)):
    kind, jpegs, info = tfrecords.encode_video(task, settings)
    want, h, w = tfrecords.encode_frames(decoded[::settings.frame_stride], settings)
    assert kind == "ok" and jpegs == want and (info["height"], info["width"]) == (h, w)
    assert info["decoded_frames"] == info["header_frames"] == num_frames
  del decoded
  tfrecords.encode_video(task, settings)  # warm up (one-time allocations)
  tracemalloc.start()
  try:
    _, jpegs, _ = tfrecords.encode_video(task, settings)
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  frame_bytes = height * width * 3
  assert peak < sum(len(j) for j in jpegs) + 16 * frame_bytes < num_frames * frame_bytes / 2


def test_spooled_encoding_holds_no_record_and_reads_back_the_same_jpegs(tmp_path):
  """With a spool folder each JPEG goes to a file as it is encoded: the worker's
  result is a small handle (no record in its memory, none pickled), and the
  shard writer reads back exactly the in-memory encoding's JPEGs."""
  import pickle  # pylint: disable=g-import-not-at-top
  import tracemalloc  # pylint: disable=g-import-not-at-top
  height, width, num_frames = 96, 128, 240
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  frames = np.stack([np.stack([128 + 100 * np.sin((xx + 2 * t) / 9.0),
                               128 + 100 * np.cos(yy / 7.0),
                               np.full_like(xx, 80.0)], -1)
                     for t in range(num_frames)]).astype(np.uint8)
  path = str(tmp_path / "v.avi")
  video.write_video(path, frames, fps=30)
  task = tfrecords.VideoTask(path, "c", 0, "v.avi", 3, {1: 1})
  settings = tfrecords.ConversionSettings(short_side=192)
  spool = tmp_path / "spool"
  spool.mkdir()
  kind, jpegs, info = tfrecords.encode_video(task, settings)
  record = sum(len(j) for j in jpegs)
  tfrecords.encode_video(task, settings, spool_dir=str(spool))  # warm up; leaves its file
  tracemalloc.start()
  try:
    result = tfrecords.encode_video(task, settings, spool_dir=str(spool))
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert result[0] == kind == "ok" and result[2] == info
  spooled = result[1]
  assert isinstance(spooled, tfrecords.SpooledJpegs) and len(spooled) == num_frames
  # Held: a frame or two (~150 kB resized) and the sizes, not the JPEGs (the record, ~2 MB).
  assert peak < record / 4 and len(pickle.dumps(result)) < 8 * num_frames + 1024 < record / 100
  assert os.listdir(spool) == [os.path.basename(spooled.path)]
  assert pickle.loads(pickle.dumps(spooled)).load() == jpegs  # another process reads it
  assert os.listdir(spool) == []  # read once, then deleted
  # A spool that cannot be written (here: gone) is no reason to skip the video.
  assert tfrecords.encode_video(task, settings, spool_dir=str(tmp_path / "gone")) == (
      kind, jpegs, info)
  # A video that fails to decode leaves no file behind.
  bad = str(tmp_path / "bad.avi")
  with open(bad, "wb") as f:
    f.write(b"not a video" * 100)
  assert tfrecords.encode_video(tfrecords.VideoTask(bad, "c", 0, "bad.avi", 4, {1: 1}),
                                settings, spool_dir=str(spool))[0] == "skip"
  assert os.listdir(spool) == []


def test_a_spool_folder_left_by_a_killed_converter_is_removed(tmp_path, monkeypatch):
  monkeypatch.setattr(tfrecords.tempfile, "tempdir", str(tmp_path))
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout.strip()
  for name in (f"tsnet_tf_spool_{dead}_x", f"tsnet_tf_spool_{os.getpid()}_y", "other_1_z"):
    (tmp_path / name).mkdir()
    (tmp_path / name / "00000001.jpegs").write_bytes(b"x")
  with tfrecords.spool_folder() as spool:
    assert os.path.dirname(spool) == str(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(spool), f"tsnet_tf_spool_{os.getpid()}_y", "other_1_z"])
  assert not os.path.exists(spool)


def _one_video_results():
  jpegs = [tf.io.encode_jpeg(np.full((4, 6, 3), 9, np.uint8)).numpy()]
  task = tfrecords.VideoTask(path="v.avi", class_name="clap", label=0, file_name="v.avi",
                             video_index=0, split_ids={1: 1})
  vinfo = {"video": task.media_id, "fps": 25.0, "height": 4, "width": 6}
  return [task], iter([("ok", jpegs, vinfo)])


class _FullDiskWriter:
  """tf.io.TFRecordWriter on a full disk: TF raises its own error, naming the temp file."""

  def __init__(self, path):
    self.path = path
    open(path, "wb").close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False

  def write(self, record):
    del record
    raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; No space left on device")


def test_write_shard_disk_full_names_the_shard_and_leaves_nothing(tmp_path, monkeypatch):
  monkeypatch.setattr(tf.io, "TFRecordWriter", _FullDiskWriter)
  out = str(tmp_path / "out")
  tasks, results = _one_video_results()
  with pytest.raises(tfrecords.ShardWriteError) as info:
    tfrecords.write_shard(out, 0, 2, tasks, results)
  message = str(info.value)
  assert os.path.join(out, schema.shard_name(0, 2)) in message
  assert "No space left on device" in message and ".tmp-" not in message
  assert isinstance(info.value, OSError)  # callers catching OSError still do
  assert os.listdir(out) == []  # the temporary shard is removed


def test_write_shard_keeps_a_bug_a_bug(tmp_path, monkeypatch):
  class BuggyWriter(_FullDiskWriter):

    def write(self, record):
      raise tf.errors.InvalidArgumentError(None, None, "a bug, not the disk")

  monkeypatch.setattr(tf.io, "TFRecordWriter", BuggyWriter)
  tasks, results = _one_video_results()
  with pytest.raises(tf.errors.InvalidArgumentError):
    tfrecords.write_shard(str(tmp_path), 0, 2, tasks, results)


def test_write_shard_unwritable_dir_names_the_shard(tmp_path, monkeypatch):
  def refuse(*args, **kwargs):
    raise PermissionError(13, "Permission denied", str(tmp_path / ".hmdb51.tmp-x.tfrecord"))

  monkeypatch.setattr(tfrecords.io_utils.tempfile, "mkstemp", refuse)
  tasks, results = _one_video_results()
  with pytest.raises(tfrecords.ShardWriteError, match=r"cannot write .*hmdb51-00001-of-00002"
                     r"\.tfrecord.*: Permission denied"):
    tfrecords.write_shard(str(tmp_path), 1, 2, tasks, results)


def test_plan_holds_out_shared_sessions_and_settings_record_the_rule(tmp_path):
  # A leave-one-session-out layout (names start with the session, the group):
  # two classes, training sessions of 6, 3 and 2 clips per class, test session T.
  video_dir, split_dir = tmp_path / "videos", tmp_path / "splits"
  split_dir.mkdir()
  for cls in ("up", "down"):
    (video_dir / cls).mkdir(parents=True)
    lines = []
    for session, n, sid in (("A", 6, 1), ("B", 3, 1), ("C", 2, 1), ("T", 2, 2)):
      for i in range(n):
        name = f"{session}_{cls}_{i}.mp4"
        (video_dir / cls / name).write_bytes(b"")
        lines.append(f"{name} {sid}")
    (split_dir / hmdb51.split_file_name(cls, 1)).write_text("\n".join(lines) + "\n")

  def held(mode):
    plan = tfrecords.build_plan(str(video_dir), str(split_dir), [1], 0.3, mode)
    return {(v.class_name, v.file_name.split("_")[0]) for v in plan.videos
            if v.split_ids[1] == hmdb51.VALIDATION}

  # Per class, one of three groups whatever its size; shared: whole sessions
  # within 30 % of 22 training clips (6.6), the same in both classes.
  assert len({s for _, s in held("per_class")}) == 1
  shared = held("shared")
  assert {s for _, s in shared} in ({"B"}, {"C"}, {"B", "C"}) and len(shared) % 2 == 0
  assert {s for c, s in shared if c == "up"} == {s for c, s in shared if c == "down"}
  assert "A" not in {s for _, s in shared}
  # The default rule is not named in the settings: older conversions keep their
  # fingerprint and resume; the shared rule is recorded.
  assert "validation_groups" not in tfrecords.ConversionSettings().as_dict()
  assert tfrecords.ConversionSettings(
      validation_groups="shared").as_dict()["validation_groups"] == "shared"
  with pytest.raises(ValueError, match="--validation_groups"):
    tfrecords.ConversionSettings(validation_groups="people").validate()
