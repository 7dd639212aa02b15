r"""Benchmark: the local tools vs the Ray engine on the same videos, plus a projection.

One run, side by side on this machine:

1. Conversion (`prepare_hmdb51`): videos/s of `tfrecords.convert` with
   `--num_workers` processes vs `distributed.convert` on a local Ray instance
   of 1 and of 2 CPUs, on a generated HMDB51-layout set plus the real clips of
   `--real_dir` (symlinked into one class folder); each Ray output is checked
   byte for byte against the local one.
2. Flow extraction (`extract_flow`): flow frames/s of `extract.extract_all`
   (one process; cold: each frame size compiles, then compiled) vs
   `distributed.extract` with 1 and 2 actors (cold compile cache), and with 2
   actors at Ray's default worker niceness, without compile cache and size
   affinity, and with a warm cache; each output checked file for file.
3. Per-video scheduling overhead: each real clip encoded once in this process
   (the work, W) and once as a lone Ray task on a warm worker (L: submit to
   result in this process): overhead = L - W, as a share of W; the same for
   lone calls to a warm extraction actor (W measured inside the actor).
4. Memory: peak RSS (VmHWM) of the Ray workers and the driver's peak RSS
   growth for `--memory_counts` videos; the Ray workers', the local pool
   workers' and a flow actor's peak for videos of `--memory_seconds` seconds.
5. A projection (not a measurement): Kinetics-400 hours on N CPU workers and
   N GPUs from the measured per-worker rates.

Start-up (`ray.init` and the task workers, the local pool, the flow actors loading
TensorFlow) is timed apart and kept out of the rates: the local converter runs its own
code path on a pool started first (`tfrecords.convert(encoder=pool.imap)`), Ray on
workers started first; `distributed.extract` reports when its actors have started
(`timings`), and the flow rates count from there.

  .venv/bin/python benchmarks/bench_scale.py
  .venv/bin/python benchmarks/bench_scale.py --videos_per_class=3 --skip_flow
  .venv/bin/python benchmarks/bench_scale.py --only_flow   # or --only_memory
"""

import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time

from absl import app
from absl import flags

from tsnet_tf.data import distributed
from tsnet_tf.data import hmdb51
from tsnet_tf.data import synthetic
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video as video_lib

_REAL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                         "shared", "data", "video")
flags.DEFINE_string("real_dir", _REAL_DIR, "Real clips (searched recursively); '' for none.")
flags.DEFINE_integer("num_classes", 2, "Generated classes.")
flags.DEFINE_integer("videos_per_class", 6, "Generated videos per class.")
flags.DEFINE_integer("size", 160, "Generated frame width (height 3/4 of it).")
flags.DEFINE_integer("num_workers", 2, "The local converter's --num_workers.")
flags.DEFINE_list("ray_workers", ["1", "2"], "CPUs of the local Ray instance, one run each.")
flags.DEFINE_integer("short_side", 240, "Converter --short_side.")
flags.DEFINE_boolean("skip_flow", False, "Skip the flow extraction part.")
flags.DEFINE_boolean("only_conversion", False, "Run the conversion table only.")
flags.DEFINE_integer("flow_new_short", 72, "Extraction --new_short (small: CPU TV-L1).")
flags.DEFINE_integer("flow_real_clips", 1, "Real clips (the shortest) in the flow part.")
flags.DEFINE_boolean("flow_cache_variants", True, "Also run Ray flow with the largest "
                     "--ray_workers at Ray's default worker niceness, without compile cache and "
                     "size affinity, and with a warm cache.")
flags.DEFINE_boolean("flow_overhead", True, "Measure the per-video overhead of the flow actors.")
flags.DEFINE_boolean("only_flow", False, "Run the flow extraction part only.")
flags.DEFINE_list("memory_counts", ["10", "100"], "Video counts of the memory check.")
flags.DEFINE_list("memory_seconds", ["10", "60"], "Video lengths (s) of the memory check.")
flags.DEFINE_boolean("only_memory", False, "Run the memory checks only.")
flags.DEFINE_float("kinetics_videos", 240000, "Kinetics-400 clips (projection).")
flags.DEFINE_float("kinetics_frames", 300, "Frames per Kinetics clip (10 s at 30 fps).")
flags.DEFINE_float("gpu_flow_rate", 893.5, "Flow frames/s of one GPU for the projection: "
                   "the README's H200 measurement (JAX, 320x240, accurate, 256 pairs a call).")
flags.DEFINE_string("note", "", "Machine note printed with the tables.")
FLAGS = flags.FLAGS


def _hmdb_set(root):
  """A generated HMDB51-layout set plus the real clips as class `real` (all in split 1)."""
  synthetic.generate_dataset(os.path.join(root, "gen"), num_classes=FLAGS.num_classes,
                             videos_per_class=FLAGS.videos_per_class, seed=0,
                             height=FLAGS.size * 3 // 4, width=FLAGS.size,
                             min_seconds=1.0, max_seconds=2.0)
  videos, splits = os.path.join(root, "gen", "videos"), os.path.join(root, "gen", "splits")
  real = sorted(video_lib.find_video_files(FLAGS.real_dir)) if FLAGS.real_dir else []
  if real:
    os.makedirs(os.path.join(videos, "real"))
    lines = []
    for i, path in enumerate(real):
      name = f"clip{i:02d}_{os.path.basename(path)}"
      os.symlink(os.path.abspath(path), os.path.join(videos, "real", name))
      lines.append(hmdb51.SplitEntry(name, 1 if i % 3 else 2))
    for k in hmdb51.SPLITS:
      with open(os.path.join(splits, hmdb51.split_file_name("real", k)), "w") as f:
        f.write(hmdb51.format_split_lines(lines))
  return videos, splits, real


def _same_tree(a, b, ignore=()):
  for folder, _, names in os.walk(a):
    for n in names:
      if n in ignore:
        continue
      pa = os.path.join(folder, n)
      pb = os.path.join(b, os.path.relpath(pa, a))
      if not os.path.isfile(pb):
        return False
      with open(pa, "rb") as fa, open(pb, "rb") as fb:
        if fa.read() != fb.read():
          return False
  return True


def _noop(task, settings):
  del task, settings
  time.sleep(0.5)  # so that each call lands on its own worker
  return os.getpid()


def _with_ray(num_cpus, fn, ray_niceness=False):
  """(start-up seconds, fn()) on a fresh local Ray instance of `num_cpus` CPUs.

  Start-up: `ray.init` plus starting the task workers (each imports this
  package, PyAV and Pillow), as the local converter's pool start-up is timed.
  """
  import ray  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  if ray_niceness:  # Ray's own default for its workers, instead of distributed.cluster's 0
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING")
  try:
    with distributed.cluster(num_cpus=num_cpus):
      ray.get([distributed._encode_task.remote(_noop, None, None) for _ in range(num_cpus)])
      started = time.perf_counter() - start
      return started, fn()
  finally:
    if ray_niceness:
      ray.shutdown()


def _warm_worker(_):
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top,unused-import
  from PIL import Image  # pylint: disable=g-import-not-at-top,unused-import
  return os.getpid()


def _conversion(videos, splits, root, settings):
  """Rows (engine, start-up s, wall s, videos/s after start-up, identical)."""
  from tsnet_tf.utils import processes  # pylint: disable=g-import-not-at-top
  rows, ref = [], os.path.join(root, "conv_local")
  kw = dict(splits=[1], settings=settings, num_shards=4, progress=False)
  # The local converter's own code path (pool.imap, chunksize 1, records written
  # here in plan order), on a pool started and warmed first, so that the rate is
  # the steady state's, as Ray's is after its workers have started.
  start = time.perf_counter()
  with tfrecords.spool_folder() as spool, processes.keras_free_pool(FLAGS.num_workers) as pool:
    pool.map(_warm_worker, range(FLAGS.num_workers), chunksize=1)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    summary = tfrecords.convert(videos, splits, ref, num_workers=FLAGS.num_workers,
                                encoder=tfrecords.pool_encoder(pool, spool), **kw)
    wall = time.perf_counter() - start
  n = summary["num_videos"]
  rows.append((f"local `--num_workers={FLAGS.num_workers}`", f"{startup:.1f} (pool)", wall,
               n / wall, "reference"))
  for w in FLAGS.ray_workers:
    out = os.path.join(root, f"conv_ray{w}")

    def run(out=out):
      start = time.perf_counter()
      distributed.convert(videos, splits, out, **kw)
      return time.perf_counter() - start

    init, wall = _with_ray(int(w), run)
    rows.append((f"Ray, {w} worker(s)", f"{init:.1f} (ray.init + workers)", wall, n / wall,
                 "yes" if _same_tree(ref, out) else "NO"))
  return n, rows


class _TimedExtractor(distributed._Extractor):  # pylint: disable=protected-access
  """The library's extraction actor, timing its own work per call."""

  def timed(self, video):
    start = time.perf_counter()
    result = self.run(video)
    return time.perf_counter() - start, result[0]

  def run_peak(self, video):
    """`run`'s result and this actor's peak RSS in MiB (VmHWM) after it."""
    result = self.run(video)
    with open("/proc/self/status") as f:
      peak = [int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")]
    return result, peak[0]


def _flow_overhead(vids, options, root):
  """[(video, work s, Ray latency s)]: lone calls to one warm extraction actor.

  The actor measures its own `run` (W: decode, TV-L1, writes); this process
  measures submit -> result in hand (L). Overhead = L - W. A first pass over
  every video compiles each frame size; the second pass, one call at a time
  into a fresh folder, is measured.
  """
  import ray  # pylint: disable=g-import-not-at-top

  def run():
    cls = ray.remote(num_cpus=1)(_TimedExtractor)
    actors = [cls.remote(os.path.join(root, f"over{i}"), options, None, "") for i in range(2)]
    ray.get([actors[0].timed.remote(v) for v in vids])  # compiles every size
    ray.kill(actors[0])
    out = []
    for v in vids:
      start = time.perf_counter()
      work, _ = ray.get(actors[1].timed.remote(v))
      out.append((v.name, work, time.perf_counter() - start))
    return out[1:]  # the first call of the second actor compiles; the rest are warm

  return _with_ray(1, run)[1]


def _flow(videos_root, real, root):
  # Here, not at the top: the local converter's spawned workers import this
  # module, and tsnet_tf.flow loads Keras and TensorFlow.
  from tsnet_tf.data import flow_extraction as extract  # pylint: disable=g-import-not-at-top
  options = extract.Options(preset="fast", new_short=FLAGS.flow_new_short, batch_size=8)
  vids = extract.find_videos(videos_root)
  vids = [v for v in vids if not v.name.startswith("real/")]
  clips = sorted(real, key=lambda p: video_lib.probe_video(p).num_frames)[:FLAGS.flow_real_clips]
  vids += [extract.Video(p, "real/" + os.path.splitext(os.path.basename(p))[0]) for p in clips]
  rows, ref = [], os.path.join(root, "flow_local")
  # Cold: the first TV-L1 calls of this process, so each frame size compiles (as a
  # fresh `extract_flow` would); then again with everything compiled.
  start = time.perf_counter()
  s = extract.extract_all(vids, ref, options, progress=False)
  wall = time.perf_counter() - start
  rows.append(("local `extract_flow`, cold (compiles)", "- (TF loaded)", wall,
               s.num_flows / wall, "reference"))
  start = time.perf_counter()
  extract.extract_all(vids, os.path.join(root, "flow_local2"), options, progress=False)
  wall = time.perf_counter() - start
  rows.append(("local `extract_flow`, compiled", "-", wall, s.num_flows / wall, "reference"))
  runs = [(w, "cold cache", True) for w in FLAGS.ray_workers]
  if FLAGS.flow_cache_variants:
    runs += [(FLAGS.ray_workers[-1], "cold cache, workers at Ray's default nice +15", True),
             (FLAGS.ray_workers[-1], "no cache, no size affinity", False),
             (FLAGS.ray_workers[-1], "warm cache", True)]
  cache_of = {}
  for i, (w, label, cache) in enumerate(runs):
    out = os.path.join(root, f"flow_ray{i}")
    if label == "warm cache":
      cache_dir = cache_of[w]
    else:
      cache_dir = os.path.join(root, f"xla_cache{i}") if cache else ""
      cache_of.setdefault(w, cache_dir)

    def run(out=out, w=w, cache_dir=cache_dir, cache=cache):
      timings = {}
      start = time.perf_counter()
      if cache:
        distributed.extract(vids, out, options, num_workers=int(w), progress=False,
                            compile_cache=cache_dir, timings=timings)
      else:
        with _no_size_affinity():
          distributed.extract(vids, out, options, num_workers=int(w), progress=False,
                              compile_cache="", timings=timings)
      return timings["actors_ready_s"], time.perf_counter() - start

    init, (startup, wall) = _with_ray(int(w), run, ray_niceness="nice +15" in label)
    rows.append((f"Ray, {w} actor(s), {label}",
                 f"{init:.1f} (ray.init + workers) + {startup:.1f} (actors)", wall - startup,
                 s.num_flows / max(1e-9, wall - startup),
                 "yes" if _same_tree(ref, out, ignore=(extract.SUMMARY_FILE,)) else "NO"))
  over = _flow_overhead(vids, options, root) if FLAGS.flow_overhead else []
  return len(vids), s.num_flows, rows, over


class _no_size_affinity:  # pylint: disable=invalid-name
  """The pool as before the size affinity: videos in list order (for the comparison)."""

  def __enter__(self):
    self._pick = distributed._SizeAffinity.pick  # pylint: disable=protected-access
    distributed._SizeAffinity.pick = lambda self, actor, node: self._queue.popleft()  # pylint: disable=protected-access

  def __exit__(self, *exc):
    distributed._SizeAffinity.pick = self._pick  # pylint: disable=protected-access


def _timed_encode(task, settings):
  start = time.perf_counter()
  result = tfrecords.encode_video(task, settings)
  return time.perf_counter() - start, result[0]


def _overhead(videos, splits, settings):
  """[(video, work s, Ray latency s)] per real clip: lone tasks on one warm worker."""
  import ray  # pylint: disable=g-import-not-at-top
  plan = tfrecords.build_plan(videos, splits, [1])
  tasks = [t for t in plan.videos if t.class_name == "real"]
  local = {t.file_name: _timed_encode(t, settings)[0] for t in tasks}

  def run():
    ray.get(distributed._encode_task.remote(_timed_encode, tasks[0], settings))  # warm-up
    out = []
    for t in tasks:
      start = time.perf_counter()
      work, _ = ray.get(distributed._encode_task.remote(_timed_encode, t, settings))
      out.append((t.file_name, local[t.file_name], work, time.perf_counter() - start))
    return out

  return _with_ray(1, run)[1]


def _descends_from_us(pid):
  """Whether process `pid` is a descendant of this one (our Ray instance, not another's)."""
  me = os.getpid()
  while pid > 1:
    with open(f"/proc/{pid}/stat") as f:
      pid = int(f.read().rsplit(")", 1)[1].split()[1])  # the parent
    if pid == me:
      return True
  return False


def _worker_peaks():
  """Peak RSS (MiB, VmHWM) of each live worker of this process's Ray instance.

  Only `ray::` workers started by this process's raylet: the machine is shared,
  and another job's Ray workers (or its agents) are not ours to count.
  """
  peaks = []
  for pid in os.listdir("/proc"):
    if not pid.isdigit():
      continue
    try:
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmd = f.read()
      if not cmd.startswith(b"ray::") or cmd.split(b"\0")[0].endswith(b"Agent"):
        continue
      if not _descends_from_us(int(pid)):
        continue
      with open(f"/proc/{pid}/status") as f:
        for line in f:
          if line.startswith("VmHWM:"):
            peaks.append(int(line.split()[1]) / 1024)
    except OSError:
      continue
  return peaks


def _pool_peaks(data, out, settings):
  """Peak RSS (MiB, VmHWM) of the local converter's 2 pool workers after converting `data`."""
  from tsnet_tf.utils import processes  # pylint: disable=g-import-not-at-top
  with tfrecords.spool_folder() as spool, processes.keras_free_pool(2) as pool:
    tfrecords.convert(os.path.join(data, "videos"), os.path.join(data, "splits"), out,
                      splits=[1], settings=settings, progress=False,
                      encoder=tfrecords.pool_encoder(pool, spool))
    peaks = []
    for child in multiprocessing.active_children():
      with open(f"/proc/{child.pid}/status") as f:
        peaks += [int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")]
  return peaks


def _memory(root, settings):
  # The shard writer loads TensorFlow in this process: loaded first, so that the
  # driver's growth is the run's, not the import's.
  import tensorflow as _  # pylint: disable=g-import-not-at-top
  rows = []
  for count in (int(c) for c in FLAGS.memory_counts):
    data = os.path.join(root, f"mem{count}")
    classes = 2
    synthetic.generate_dataset(data, num_classes=classes, videos_per_class=count // classes,
                               seed=1, height=96, width=128, min_seconds=1.0, max_seconds=1.0)
    out = os.path.join(root, f"mem{count}_out")
    peak, stop = [0], threading.Event()

    def sample():
      while not stop.is_set():
        with open("/proc/self/status") as f:
          for line in f:
            if line.startswith("VmRSS:"):
              peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.02)

    def run(data=data, out=out):
      before = _rss_kb()
      thread = threading.Thread(target=sample, daemon=True)
      thread.start()
      start = time.perf_counter()
      distributed.convert(os.path.join(data, "videos"), os.path.join(data, "splits"), out,
                          splits=[1], settings=settings, progress=False)
      wall = time.perf_counter() - start
      stop.set()
      thread.join()
      return wall, (peak[0] - before) / 1024, _worker_peaks()

    _, (wall, driver_growth, workers) = _with_ray(2, run)
    rows.append((count, wall, driver_growth, max(workers) if workers else float("nan"),
                 len(workers)))
  return rows


def _memory_lengths(root, settings):
  """Rows (seconds, Ray conversion worker peak MiB, local pool worker peak MiB, record MiB,
  flows, flow actor peak MiB): one length of generated video (128x96, 25 fps) at a time,
  each on a fresh Ray instance and a fresh pool."""
  from tsnet_tf.data import flow_extraction as extract  # pylint: disable=g-import-not-at-top
  rows = []
  for seconds in (float(x) for x in FLAGS.memory_seconds):
    data = os.path.join(root, f"len{seconds:g}")
    synthetic.generate_dataset(data, num_classes=2, videos_per_class=2, seed=2, height=96,
                               width=128, min_seconds=seconds, max_seconds=seconds, fps=(25.0,))
    out = os.path.join(root, f"len{seconds:g}_out")

    def convert(data=data, out=out):
      distributed.convert(os.path.join(data, "videos"), os.path.join(data, "splits"), out,
                          splits=[1], settings=settings, progress=False)
      return _worker_peaks()

    conv_peaks = _with_ray(2, convert)[1]
    pool_peaks = _pool_peaks(data, out + "_local", settings)
    records = sum(os.path.getsize(os.path.join(folder, n)) for folder, _, names in os.walk(out)
                  for n in names if ".tfrecord" in n) / 4
    vids = extract.find_videos(os.path.join(data, "videos"))[:1]

    def flow(vids=vids, seconds=seconds):
      # The library's extraction actor, asked for its own peak after the video
      # (distributed.extract kills its actors when done).
      import ray  # pylint: disable=g-import-not-at-top
      options = extract.Options(preset="fast", new_short=FLAGS.flow_new_short, batch_size=8)
      actor = ray.remote(num_cpus=1)(_TimedExtractor).remote(
          os.path.join(root, f"len{seconds:g}_flow"), options, None, "")
      result, peak = ray.get(actor.run_peak.remote(vids[0]))
      return result[1], peak

    flows, flow_peak = _with_ray(1, flow)[1]
    rows.append((seconds, max(conv_peaks), max(pool_peaks), records / 2**20, flows,
                 flow_peak))
  return rows


def _rss_kb():
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1])
  return 0


def _report_flow(videos, real, root, note):
  """Runs and prints the flow tables; returns their rows."""
  nv, flows, flow_rows, flow_over = _flow(videos, real, root)
  print(f"\n### Flow extraction (extract_flow, preset fast, --new_short="
        f"{FLAGS.flow_new_short}), {nv} videos, {flows} flows, {note}\n")
  print("| engine | start-up s | wall s after start-up | flow frames/s after start-up | "
        "identical to local |")
  print("|---|---|---|---|---|")
  for name, init, wall, rate, same in flow_rows:
    print(f"| {name} | {init} | {wall:.1f} | {rate:.2f} | {same} |")
  for name, _, _, rate, _ in flow_rows[2:]:
    ref = flow_rows[1] if "warm" in name else flow_rows[0]
    print(f"\n{name}: {rate / ref[3]:.2f}x {ref[0]}")
  if flow_over:
    print("\n### Per-video scheduling overhead of the flow actors (lone calls, warm actor)\n")
    print("| video | work in actor s | Ray latency s | overhead ms | % of work |")
    print("|---|---|---|---|---|")
    shares = []
    for name, work, latency in flow_over:
      shares.append((latency - work) / work)
      print(f"| {name} | {work:.3f} | {latency:.3f} | {1000 * (latency - work):.1f} | "
            f"{100 * shares[-1]:.2f} |")
    total = sum(w for _, w, _ in flow_over)
    print(f"\nmedian {100 * statistics.median(shares):.2f} %; all videos: "
          f"{100 * (sum(l for _, _, l in flow_over) - total) / total:.2f} % of the work")
  return flow_rows


def _report_memory(root, settings):
  """Runs and prints the memory tables (video count, video length)."""
  mem = _memory(root, settings)
  print(f"\n### Memory (Ray, 2 CPUs, 128x96 1 s videos)\n")
  print("| videos | wall s | driver RSS growth MiB | largest worker peak RSS MiB | workers |")
  print("|---|---|---|---|---|")
  for count, wall, growth, worker, k in mem:
    print(f"| {count} | {wall:.1f} | {growth:.0f} | {worker:.0f} | {k} |")
  lengths = _memory_lengths(root, settings)
  print("\n### Memory by video length (generated 128x96 25 fps videos; conversion: 4 videos, "
        "Ray on 2 CPUs and the local converter's pool of 2; flow: 1 Ray actor, 1 video, "
        "preset fast)\n")
  print("| video s | Ray conversion worker peak RSS MiB | local pool worker peak RSS MiB | "
        "record of one video MiB | flows | flow actor peak RSS MiB |")
  print("|---|---|---|---|---|---|")
  for seconds, conv, pool, record, flows, flow in lengths:
    print(f"| {seconds:g} | {conv:.0f} | {pool:.0f} | {record:.1f} | {flows} | {flow:.0f} |")


def main(argv):
  del argv
  note = FLAGS.note or "2-core VM (CPU shared with other jobs), no GPU"
  settings = tfrecords.ConversionSettings(short_side=FLAGS.short_side)
  root = tempfile.mkdtemp(prefix="bench_scale_")
  try:
    videos, splits, real = _hmdb_set(root)
    for path in video_lib.find_video_files(videos):  # page cache: no run reads cold files
      with open(path, "rb") as f:
        f.read()
    if FLAGS.only_flow:
      _report_flow(videos, real, root, note)
      return
    if FLAGS.only_memory:
      _report_memory(root, settings)
      return
    n, conv = _conversion(videos, splits, root, settings)
    print(f"\n### Conversion (prepare_hmdb51), {n} videos ({len(real)} real clips), {note}\n")
    print("| engine | start-up s | wall s | videos/s after start-up | identical to local |")
    print("|---|---|---|---|---|")
    for name, init, wall, rate, same in conv:
      print(f"| {name} | {init} | {wall:.1f} | {rate:.2f} | {same} |")
    ref_rate = conv[0][3]
    for name, _, _, rate, _ in conv[1:]:
      print(f"\n{name}: {rate / ref_rate:.2f}x the local converter")

    if FLAGS.only_conversion:
      return
    flow_rows = [] if FLAGS.skip_flow else _report_flow(videos, real, root, note)

    overhead = 0.0
    if real:
      over = _overhead(videos, splits, settings)
      print(f"\n### Per-video scheduling overhead (real clips, lone tasks, warm worker)\n")
      print("| clip | work here s | work in task s | Ray latency s | overhead ms | % of work |")
      print("|---|---|---|---|---|---|")
      shares = []
      for name, here, work, latency in over:
        shares.append((latency - work) / work)
        print(f"| {name} | {here:.3f} | {work:.3f} | {latency:.3f} | "
              f"{1000 * (latency - work):.1f} | {100 * shares[-1]:.2f} |")
      overhead = max(0.0, statistics.median(shares))
      print(f"\nmedian overhead: {100 * statistics.median(shares):.2f} % of a video's work")

    _report_memory(root, settings)

    # Projection from the measured per-worker rates.
    per_cpu_conv = conv[1][3] if len(conv) > 1 else conv[0][3]
    print(f"\n### PROJECTION (not measured): Kinetics-400, {FLAGS.kinetics_videos:.0f} clips "
          f"x {FLAGS.kinetics_frames:.0f} frames\n")
    print("Conversion rate per CPU worker = this run's Ray 1-worker videos/s (scaled by the "
          "frames of a Kinetics clip vs this set's mean); flow rate per CPU worker = the Ray "
          "1-actor flow frames/s at this size; GPU rate = --gpu_flow_rate (default: the README's "
          "H200 measurement, JAX, 320x240, accurate; not measured in this run). Linear in "
          "workers, times (1 + the median per-video overhead above).\n")
    mean_frames = _mean_frames(videos)
    conv_clip_s = (1 / per_cpu_conv) * FLAGS.kinetics_frames / max(1.0, mean_frames)
    flow_rate = flow_rows[2][3] if len(flow_rows) > 2 else float("nan")
    print("| workers | conversion hours | videos/h | flow hours |")
    print("|---|---|---|---|")
    total_frames = FLAGS.kinetics_videos * FLAGS.kinetics_frames
    k = 1 + overhead
    for w in (1, 8, 64):
      hours = FLAGS.kinetics_videos * conv_clip_s * k / w / 3600
      print(f"| {w} CPU | {hours:.1f} | {FLAGS.kinetics_videos / hours:.0f} | "
            f"{total_frames / flow_rate * k / w / 3600:.1f} (fast, short side "
            f"{FLAGS.flow_new_short}) |")
    for g in (1, 8):
      print(f"| {g} GPU | - | - | {total_frames / FLAGS.gpu_flow_rate * k / g / 3600:.1f} "
            f"(accurate, 320x240, {FLAGS.gpu_flow_rate:g} frames/s a GPU) |")
  finally:
    shutil.rmtree(root, ignore_errors=True)


def _mean_frames(videos):
  counts = []
  for path in video_lib.find_video_files(videos):
    try:
      counts.append(video_lib.probe_video(path).num_frames)
    except (ValueError, OSError):
      pass
  return statistics.mean(counts) if counts else 1.0


if __name__ == "__main__":
  app.run(main)
