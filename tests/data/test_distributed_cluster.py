"""Ray engine tests that need their own Ray: a two-node cluster, a killed driver (slow)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tsnet_tf.data import distributed
from tsnet_tf.data import synthetic
from tsnet_tf.data import tfrecords
from tsnet_tf.data.schema import is_shard_name
from tsnet_tf.data.schema import SHARD_PREFIX

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = tfrecords.ConversionSettings(short_side=16)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("synth") / "hmdb")
  synthetic.generate_dataset(root, num_classes=2, videos_per_class=6, seed=3, height=32,
                             width=40, min_seconds=0.4, max_seconds=0.6, fps=(25.0,))
  return root


@pytest.fixture(scope="module")
def local_data(synth, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("local") / "data")
  tfrecords.convert(os.path.join(synth, "videos"), os.path.join(synth, "splits"), out,
                    splits=[1], settings=SETTINGS, num_workers=0, num_shards=4, progress=False)
  return out


def _shards(data_dir):
  if not os.path.isdir(data_dir):
    return []
  return sorted(os.path.join(data_dir, n) for n in os.listdir(data_dir) if is_shard_name(n))


def _same_bytes(a, b):
  names = sorted(n for n in os.listdir(a) if os.path.isfile(os.path.join(a, n)))
  assert names == sorted(n for n in os.listdir(b) if os.path.isfile(os.path.join(b, n)))
  for n in names:
    with open(os.path.join(a, n), "rb") as fa, open(os.path.join(b, n), "rb") as fb:
      assert fa.read() == fb.read(), n


@pytest.mark.slow
def test_a_two_node_cluster_shares_the_videos(synth, local_data, tmp_path):
  from ray import cluster_utils  # pylint: disable=g-import-not-at-top
  marks = tmp_path / "nodes"
  marks.mkdir()
  marks = str(marks)

  def encode_noting_the_node(task, settings, **spool):
    import ray  # pylint: disable=g-import-not-at-top
    with open(os.path.join(marks, task.file_name), "w") as f:
      f.write(ray.get_runtime_context().get_node_id())
    time.sleep(0.2)  # long enough that one node cannot take every video alone
    return tfrecords.encode_video(task, settings, **spool)

  cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
  try:
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    summary = distributed.convert(os.path.join(synth, "videos"), os.path.join(synth, "splits"),
                                  str(tmp_path / "ray"), splits=[1], settings=SETTINGS,
                                  num_shards=4, progress=False, ray_address=cluster.address,
                                  encode_fn=encode_noting_the_node)
  finally:
    cluster.shutdown()
  nodes = []
  for name in os.listdir(marks):
    with open(os.path.join(marks, name)) as f:
      nodes.append(f.read())
  assert summary["num_videos"] == 12 and len(nodes) == 12
  assert len(set(nodes)) == 2, "both raylets ran videos"
  _same_bytes(local_data, str(tmp_path / "ray"))


@pytest.mark.slow
def test_a_killed_driver_reruns_to_the_same_output_keeping_finished_shards(synth, local_data,
                                                                          tmp_path):
  out = tmp_path / "ray"
  cmd = [sys.executable, os.path.join(_ROOT, "tools", "prepare_hmdb51.py"),
         f"--video_dir={synth}/videos", f"--split_dir={synth}/splits", f"--output_dir={out}",
         "--splits=1", "--short_side=16", "--num_shards=4", "--engine=ray", "--num_workers=2"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
  try:
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
      if _shards(str(out)):
        break
      time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait(timeout=60)
  finished = {s: os.stat(s) for s in _shards(str(out))}
  assert 1 <= len(finished) < 4, "killed between the first and the last shard"
  assert not os.path.exists(out / "summary.json")

  rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert rerun.returncode == 0, rerun.stderr
  for shard, stat in finished.items():
    now = os.stat(shard)
    assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), "redone"
  leftovers = [n for n in os.listdir(out) if n.startswith(f".{SHARD_PREFIX}")]
  assert leftovers == []
  _same_bytes(local_data, str(out))


def _peak_mib(pid):
  with open(f"/proc/{pid}/status") as f:
    return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


@pytest.mark.slow
def test_a_conversion_workers_peak_memory_does_not_grow_with_the_video(tmp_path):
  """One worker converts one video of 2 s, then (a fresh instance) one of 12 s:
  its peak RSS (VmHWM, read after the conversion) is the same. Before the
  workers spooled their JPEGs it grew by ~2-3x the record (the list of JPEGs,
  its pickle, the object store's pages: 145 -> 228 MiB for 10 s -> 60 s)."""
  peaks, records = {}, {}
  for seconds in (2, 12):
    root = str(tmp_path / f"len{seconds}")
    synthetic.generate_dataset(root, num_classes=2, videos_per_class=2, seed=2, height=96,
                               width=128, min_seconds=seconds, max_seconds=seconds, fps=(25.0,))
    plan = tfrecords.build_plan(os.path.join(root, "videos"), os.path.join(root, "splits"), [1])
    plan.videos[1:] = []
    pid_file = os.path.join(root, "pid")

    def encode_noting_the_pid(task, settings, pid_file=pid_file, **spool):
      with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
      return tfrecords.encode_video(task, settings, **spool)

    out = os.path.join(root, "data")
    # Large frames, so that the 12 s record (~20 MiB) dwarfs the measurement's noise.
    with distributed.cluster(num_cpus=1):
      summary = distributed.convert(
          "", "", out, settings=tfrecords.ConversionSettings(short_side=480), num_shards=1,
          progress=False, encode_fn=encode_noting_the_pid, plan=plan)
      with open(pid_file) as f:
        peaks[seconds] = _peak_mib(int(f.read()))
    assert summary["num_videos"] == 1
    records[seconds] = sum(os.path.getsize(s) for s in _shards(out)) / 2**20
  assert records[12] > 5 * records[2] and records[12] > 10, records
  assert peaks[12] - peaks[2] < min(0.15 * peaks[2], records[12] / 4), (peaks, records)
