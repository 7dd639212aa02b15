"""Tests of tsnet_tf/data/distributed.py: conversion and flow extraction on Ray.

One local Ray instance (2 CPUs) serves the whole module. Each Ray result is
checked against the local engine's on the same tiny videos: the same records
(frame bytes, label, split membership, stored flow), the same files.
"""

import ast
import filecmp
import json
import os
import sys

import pytest

from tsnet_tf.data import distributed
from tsnet_tf.data import hmdb51
from tsnet_tf.data import synthetic
from tsnet_tf.data import tfrecords
from tsnet_tf.data.schema import FLOW_X_KEY
from tsnet_tf.data.schema import FLOW_Y_KEY
from tsnet_tf.data.schema import FRAMES_KEY
from tsnet_tf.data.schema import LABEL_INDEX_KEY
from tsnet_tf.data.schema import list_shards
from tsnet_tf.data.schema import MEDIA_ID_KEY
from tsnet_tf.data import flow_extraction as extract

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = tfrecords.ConversionSettings(short_side=16)
# A TV-L1 small enough for 32x40 frames in a fraction of a second.
TINY_TVL1 = dict(num_scales=1, finest_scale=0, num_warps=1, num_iters=2, median_size=0)


@pytest.fixture(scope="module")
def ray_cluster():
  with distributed.cluster(num_cpus=2):
    yield


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
  """HMDB51 layout: 2 classes x 3 videos, one undecodable file, one split line naming no file."""
  root = str(tmp_path_factory.mktemp("synth") / "hmdb")
  synthetic.generate_dataset(root, num_classes=2, videos_per_class=3, seed=2, height=32,
                             width=40, min_seconds=0.4, max_seconds=0.6, fps=(25.0,),
                             broken=("garbage",))
  with open(os.path.join(root, "splits", hmdb51.split_file_name("move_left", 1)), "a") as f:
    f.write("ghost.avi 1 \n")
  return root


@pytest.fixture(scope="module")
def local_data(synth, tmp_path_factory):
  """The local converter's data directory (the reference)."""
  out = str(tmp_path_factory.mktemp("local") / "data")
  tfrecords.convert(os.path.join(synth, "videos"), os.path.join(synth, "splits"), out,
                    splits=[1, 2], settings=SETTINGS, num_workers=0, num_shards=3,
                    progress=False)
  return out


def _convert(synth, out, **kwargs):
  return distributed.convert(os.path.join(synth, "videos"), os.path.join(synth, "splits"),
                             str(out), splits=[1, 2], num_shards=3, progress=False,
                             **{"settings": SETTINGS, **kwargs})


def _records(data_dir):
  """{media id: (label, frame bytes, split ids, flow x bytes, flow y bytes)} of a data dir."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = {}
  for shard in list_shards(data_dir):
    for raw in tf.data.TFRecordDataset(shard):
      ex = tf.train.SequenceExample.FromString(raw.numpy())
      ctx, lists = ex.context.feature, ex.feature_lists.feature_list
      splits = {k: ctx[k].int64_list.value[0] for k in ctx if k.startswith("clip/split")}
      seq = lambda key: [f.bytes_list.value[0] for f in lists[key].feature]
      media = ctx[MEDIA_ID_KEY].bytes_list.value[0].decode()
      assert media not in out, f"{media} twice"
      out[media] = (ctx[LABEL_INDEX_KEY].int64_list.value[0], seq(FRAMES_KEY), splits,
                    seq(FLOW_X_KEY), seq(FLOW_Y_KEY))
  return out


def _same_files(a, b, ignore=()):
  """Relative paths that differ between two trees (missing on a side, or other bytes)."""
  bad = []
  cmp = filecmp.dircmp(a, b, ignore=list(ignore))
  stack = [("", cmp)]
  while stack:
    rel, c = stack.pop()
    bad += [os.path.join(rel, n) for n in c.left_only + c.right_only + c.funny_files]
    _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
    bad += [os.path.join(rel, n) for n in mismatch + errors]
    stack += [(os.path.join(rel, n), s) for n, s in c.subdirs.items()]
  return bad


def test_conversion_is_the_local_one_record_for_record(ray_cluster, synth, local_data, tmp_path):
  summary = _convert(synth, tmp_path / "ray")
  ours, theirs = _records(str(tmp_path / "ray")), _records(local_data)
  assert sorted(ours) == sorted(theirs) and len(ours) == 6
  for media, record in theirs.items():
    assert ours[media] == record, media  # label, frame bytes, split membership
  # Same shards (bytes and placement), labels.txt and summary.json.
  assert _same_files(local_data, str(tmp_path / "ray")) == []
  # The undecodable file is a dead letter: named with its error, counted, skipped.
  assert summary["num_skipped"] == 1
  assert summary["skipped"][0]["video"].startswith("move_left/Synth")
  assert "readable" in summary["skipped"][0]["reason"]
  assert [m["video"] for m in summary["missing"]] == ["move_left/ghost.avi"]


def test_a_worker_killed_mid_job_is_retried_with_the_same_output(ray_cluster, synth, local_data,
                                                                 tmp_path):
  marker = tmp_path / "kill-once"
  marker.write_text("")
  marker = str(marker)

  def encode_killing_once(task, settings, **spool):
    try:
      os.remove(marker)  # only the first caller wins: it dies, Ray retries its video
    except FileNotFoundError:
      return tfrecords.encode_video(task, settings, **spool)
    os._exit(1)  # pylint: disable=protected-access

  summary = _convert(synth, tmp_path / "ray", encode_fn=encode_killing_once)
  assert not os.path.exists(marker)
  assert summary["num_videos"] == 6 and summary["num_skipped"] == 1
  assert _same_files(local_data, str(tmp_path / "ray")) == []


def test_a_video_whose_worker_always_dies_is_a_dead_letter(ray_cluster, synth, tmp_path):

  def encode_crashing_on_one(task, settings, **spool):
    if task.file_name.startswith("Synth0001_move_right"):
      os._exit(1)  # pylint: disable=protected-access
    return tfrecords.encode_video(task, settings, **spool)

  summary = _convert(synth, tmp_path / "ray", encode_fn=encode_crashing_on_one, max_retries=1)
  assert summary["num_videos"] == 5 and summary["num_skipped"] == 2
  crashed = [s for s in summary["skipped"] if s["video"].startswith("move_right/Synth0001")]
  assert len(crashed) == 1 and "failed on the cluster" in crashed[0]["reason"]
  assert "move_right/Synth0001" not in str(sorted(_records(str(tmp_path / "ray"))))


def test_a_rerun_redoes_only_the_incomplete_shards(ray_cluster, synth, local_data, tmp_path):
  out = tmp_path / "ray"
  _convert(synth, out)
  shards = list_shards(str(out))
  # A shard missing (as after a kill before its rename); the others must stay untouched.
  os.remove(shards[1])
  stamps = {s: os.stat(s).st_mtime_ns for s in (shards[0], shards[2])}
  calls = tmp_path / "calls"
  calls.mkdir()
  calls = str(calls)

  def encode_counting(task, settings, **spool):
    open(os.path.join(calls, task.file_name), "w").close()
    return tfrecords.encode_video(task, settings, **spool)

  _convert(synth, out, encode_fn=encode_counting)
  assert {s: os.stat(s).st_mtime_ns for s in stamps} == stamps
  plan = tfrecords.build_plan(os.path.join(synth, "videos"), os.path.join(synth, "splits"),
                              [1, 2], SETTINGS.validation_fraction)
  second = tfrecords.assign_shards(len(plan.videos), 3)[1]
  assert sorted(os.listdir(calls)) == sorted(plan.videos[i].file_name for i in second)
  assert _same_files(local_data, str(out)) == []


def test_unreachable_ray_address_is_one_line_exit_1(ray_cluster, synth, tmp_path, capsys):
  sys.path.insert(0, os.path.join(_ROOT, "tests", "reliability"))
  try:
    import conftest as runner  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  result = runner.run_tool(capsys, "prepare_hmdb51.py", f"--video_dir={synth}/videos",
                           f"--split_dir={synth}/splits", f"--output_dir={tmp_path / 'o'}",
                           "--engine=ray", "--ray_address=127.0.0.1:1")
  assert result.code == 1
  assert result.lines == ["prepare_hmdb51: error: cannot reach a Ray cluster at "
                          "--ray_address '127.0.0.1:1': Connection refused"]
  assert not (tmp_path / "o").exists()


def test_size_affinity_compiles_each_frame_size_once_per_node(monkeypatch):
  """The extraction pool's order: a new frame size goes to an idle actor, a compiled one to anyone."""
  sizes = {"a1": (72, 96), "a2": (72, 96), "a3": (72, 96), "b1": (72, 88), "x": None}
  monkeypatch.setattr(distributed, "_probe", lambda path, new_short: (sizes[path], 0.0))
  videos = [extract.Video(n, n) for n in ("a1", "a2", "a3", "b1", "x")]
  queue = distributed._SizeAffinity(videos, new_short=72)
  assert queue.pick("actor0", "node1").name == "a1"  # claims 72x96 on node1
  assert queue.pick("actor1", "node1").name == "b1"  # 72x96 is being compiled: a new size
  assert queue.pick("actor0", "node1").name == "a2"  # its own size
  assert queue.pick("actor2", "node2").name == "a3"  # node2 compiles 72x96 for itself
  queue.finished(videos[0], "node1")
  assert queue.pick("actor1", "node1").name == "x" and not queue  # unknown size: anyone
  # Nothing but sizes being compiled elsewhere: the next video anyway (no actor waits).
  queue = distributed._SizeAffinity(videos[:2], new_short=72)
  assert [queue.pick("actor0", "n").name, queue.pick("actor1", "n").name] == ["a1", "a2"]
  # Within a class the longest video first (frames x pixels), so it does not end the job alone.
  work = {"a1": 10.0, "a2": 500.0, "a3": 20.0, "b1": 1000.0}
  monkeypatch.setattr(distributed, "_probe", lambda path, new_short: (sizes[path], work[path]))
  queue = distributed._SizeAffinity(videos[:4], new_short=72)
  assert queue.pick("actor0", "n").name == "b1"  # the largest new size
  assert queue.pick("actor1", "n").name == "a2"  # the largest of the other new size
  assert [queue.pick("actor1", "n").name, queue.pick("actor0", "n").name] == ["a3", "a1"]



def test_size_affinity_a_failed_video_leaves_its_size_uncompiled(monkeypatch):
  sizes = {"a1": (72, 96), "a2": (72, 96), "b1": (72, 88)}
  monkeypatch.setattr(distributed, "_probe", lambda path, new_short: (sizes[path], 0.0))
  videos = [extract.Video(n, n) for n in ("a1", "a2", "b1")]
  for compiled, expected in ((True, "a2"), (False, "b1")):
    queue = distributed._SizeAffinity(videos, new_short=72)
    assert queue.pick("actor0", "node1").name == "a1"
    queue.finished(videos[0], "node1", compiled=compiled)
    # Compiled: 72x96 is warm on node1, anyone takes a2; failed: it is still actor0's claim.
    assert queue.pick("actor1", "node1").name == expected

def test_the_local_engine_does_not_import_ray():
  """Only distributed.py imports ray; the tools import it only for --engine=ray."""
  offenders = []
  for top in ("tsnet_tf", "tools"):
    for folder, _, names in os.walk(os.path.join(_ROOT, top)):
      for name in names:
        path = os.path.join(folder, name)
        if not name.endswith(".py") or path == distributed.__file__:
          continue
        with open(path, encoding="utf-8") as f:
          tree = ast.parse(f.read())
        for node in tree.body:  # module level: run by every import of the module
          if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
          elif isinstance(node, ast.ImportFrom):
            modules = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
          else:
            continue
          if any(m == "ray" or m.startswith("ray.") or m == "tsnet_tf.data.distributed"
                 for m in modules):
            offenders.append(os.path.relpath(path, _ROOT))
  assert offenders == []
  # And the engine switch really is lazy in both tools.
  for tool in ("prepare_hmdb51.py", "extract_flow.py"):
    with open(os.path.join(_ROOT, "tools", tool), encoding="utf-8") as f:
      assert "from tsnet_tf.data import distributed  # pylint" in f.read(), tool


@pytest.mark.slow
def test_stored_flow_is_the_local_one(ray_cluster, synth, tmp_path):
  settings = tfrecords.ConversionSettings(short_side=16, flow_preset="fast", flow_stride=2,
                                          flow_bound=4.0)
  local = str(tmp_path / "local")
  tfrecords.convert(os.path.join(synth, "videos"), os.path.join(synth, "splits"), local,
                    splits=[1, 2], settings=settings, num_workers=0, num_shards=3,
                    progress=False)
  _convert(synth, tmp_path / "ray", settings=settings, flow_actors=2)
  ours, theirs = _records(str(tmp_path / "ray")), _records(local)
  assert sorted(ours) == sorted(theirs)
  for media, record in theirs.items():
    assert record[3] and ours[media] == record, media
  assert _same_files(local, str(tmp_path / "ray")) == []


@pytest.mark.slow
def test_extraction_gives_the_files_of_extract_flow(ray_cluster, synth, tmp_path):
  options = extract.Options(preset="fast", batch_size=4, num_writers=1, overrides=TINY_TVL1)
  videos = extract.find_videos(os.path.join(synth, "videos"))
  local = extract.extract_all(videos, str(tmp_path / "local"), options, progress=False)
  ghost = extract.Video(os.path.join(synth, "videos", "move_left", "ghost.avi"),
                        "move_left/ghost")
  marker = tmp_path / "kill-once"
  marker.write_text("")
  marker = str(marker)

  def read_killing_once(path):
    from tsnet_tf.data import video as video_lib  # pylint: disable=g-import-not-at-top
    try:
      os.remove(marker)
    except FileNotFoundError:
      return video_lib.iter_frames(path)
    os._exit(1)  # pylint: disable=protected-access

  summary = distributed.extract(videos + [ghost], str(tmp_path / "ray"), options, num_workers=2,
                                progress=False, read_video=read_killing_once)
  assert not os.path.exists(marker)  # an actor died mid-job; its video was redone
  assert sorted(summary.done) == sorted(local.done) and len(summary.done) == 6
  assert sorted(summary.failed) == sorted(list(local.failed) + ["move_left/ghost"])
  assert summary.num_flows == local.num_flows
  assert _same_files(str(tmp_path / "local"), str(tmp_path / "ray"),
                     ignore=[extract.SUMMARY_FILE]) == []
  with open(tmp_path / "ray" / extract.SUMMARY_FILE) as f:
    assert "move_left/ghost" in json.load(f)["failed"]
  # A rerun does nothing again.
  again = distributed.extract(videos, str(tmp_path / "ray"), options, progress=False)
  assert again.done == [] and sorted(again.skipped) == sorted(local.done)


@pytest.mark.slow
def test_extraction_through_uris_gives_the_files_of_extract_flow(ray_cluster, synth, tmp_path):
  """file:// URIs go through fsspec (staged input, uploaded output), as s3:// would."""
  from tsnet_tf.data import remote  # pylint: disable=g-import-not-at-top
  options = extract.Options(preset="fast", batch_size=4, num_writers=1, overrides=TINY_TVL1)
  local_videos = extract.find_videos(os.path.join(synth, "videos"))
  local = extract.extract_all(local_videos, str(tmp_path / "local"), options, progress=False)
  video_uri, out_uri = f"file://{synth}/videos", f"file://{tmp_path}/ray"
  videos = [extract.Video(uri, name) for uri, name in remote.find_videos(video_uri)]
  assert [v.name for v in videos] == [v.name for v in local_videos]
  videos.append(extract.Video(f"{video_uri}/move_left/ghost.avi", "move_left/ghost"))
  summary = distributed.extract(videos, out_uri, options, num_workers=2, progress=False,
                                compile_cache="")
  assert sorted(summary.done) == sorted(local.done)
  assert sorted(summary.failed) == sorted(list(local.failed) + ["move_left/ghost"])
  assert summary.failed["move_left/ghost"] == f"'{video_uri}/move_left/ghost.avi' does not exist"
  assert _same_files(str(tmp_path / "local"), str(tmp_path / "ray"),
                     ignore=[extract.SUMMARY_FILE, remote.COMPLETE_DIR]) == []
  assert sorted(remote.complete_names(out_uri)) == sorted(local.done)
  assert (tmp_path / "ray" / extract.SUMMARY_FILE).is_file()
  again = distributed.extract(videos[:-1], out_uri, options, progress=False, compile_cache="")
  assert again.done == [] and sorted(again.skipped) == sorted(local.done)


def _kinetics_tree(synth, root):
  """The synthetic clips as a Kinetics download: CSV + <label>/<id>_<start>_<end>.avi."""
  rows = ["label,youtube_id,time_start,time_end,split"]
  subsets = ["train", "val", "test"]
  for label in ("move_left", "move_right"):
    folder = os.path.join(synth, "videos", label)
    os.makedirs(os.path.join(root, label))
    clips = sorted(os.listdir(folder))[:3]  # move_left's 4th is the undecodable file
    for i, name in enumerate(clips):
      yt = f"{label[5]}{i:010d}"
      os.symlink(os.path.join(folder, name),
                 os.path.join(root, label, f"{yt}_{i:06d}_{i + 10:06d}.avi"))
      rows.append(f"{label},{yt},{i},{i + 10},{subsets[i % 3]}")
  rows.append("move_left,ghostghost1,5,15,train")  # listed, never downloaded
  with open(os.path.join(root, "train.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")
  return os.path.join(root, "train.csv")


def test_kinetics_csv_layout_converts_the_same_on_both_engines(ray_cluster, synth, tmp_path,
                                                                capsys):
  from tsnet_tf.data import kinetics  # pylint: disable=g-import-not-at-top
  videos = str(tmp_path / "kinetics")
  csv_path = _kinetics_tree(synth, videos)
  plan = kinetics.build_plan([csv_path], videos)
  assert plan.classes == ["move_left", "move_right"] and len(plan.videos) == 6
  assert [m["video"] for m in plan.missing] == ["move_left/ghostghost1_000005_000015"]
  local = str(tmp_path / "local")
  summary = tfrecords.convert(videos, None, local, splits=[1], settings=SETTINGS, num_workers=0,
                              num_shards=2, progress=False, plan=plan)
  assert summary["splits"]["1"] == {"train": 2, "validation": 2, "test": 2}
  assert summary["num_skipped"] == 0 and summary["num_missing"] == 1
  sys.path.insert(0, os.path.join(_ROOT, "tests", "reliability"))
  try:
    import conftest as runner  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  result = runner.run_tool(capsys, "prepare_hmdb51.py", f"--video_dir={videos}",
                           f"--kinetics_csv={csv_path}", f"--output_dir={tmp_path / 'ray'}",
                           "--short_side=16", "--num_shards=2", "--engine=ray")
  assert result.code == 0, result.err
  assert _same_files(local, str(tmp_path / "ray")) == []
  records = _records(local)
  assert records["move_right/r0000000001_000001_000011.avi"][2] == {"clip/split1": 3}
