"""Benchmark: per-clip inference cost of the student vs the teacher vs two-stream.

Side by side in one run on this machine's CPU, with the same random-weight
models (latency does not depend on the weights):

  student   Keras (predict_on_batch), SavedModel serving_default (uint8
            240x320 frames in: resampling, resize/crop and softmax included),
            TFLite float32 / float16 / int8 (LiteRT, edge twin, batch 1)
  teacher   in-graph TV-L1 (`fast` preset) + M2, one Keras model
  twostream OpenCV DualTVL1 (default parameters, outside the graph, one pair at
            a time) + RGB network + flow network (the paper's baseline)

For each: median per-clip latency at batch 1, throughput (clips/s) at
`--batch_size` (TFLite models have batch 1: sequential clips), file size,
GFLOPs per clip (analytic, `tsnet_tf.models.count_flops`; OpenCV's TV-L1
estimated with the `accurate` preset's count) and achieved GFLOP/s against
the measured fp32 matmul peak. Ends with the issue's targets, met or not.

  .venv/bin/python benchmarks/bench_inference.py
  .venv/bin/python benchmarks/bench_inference.py --backbone=r3d18 --num_frames=16 \
      --crop_size=112 --repeats=5
"""

import os
import shutil
import sys
import tempfile
import time

from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import tensorflow as tf

from tsnet_tf.utils.timing import median_ms
from tsnet_tf.data import clip_spec
from tsnet_tf.export import saved_model as sm
from tsnet_tf.export import tflite as tfl
from tsnet_tf.flow.tvl1 import tvl1_flops
from tsnet_tf.models import backbones
from tsnet_tf.models import classifiers
from tsnet_tf.models import flops

FLAGS = flags.FLAGS
flags.DEFINE_enum("backbone", "r3d18", ["r3d18", "light"], "Backbone of every network.")
flags.DEFINE_integer("width", None, "First-stage channels of the student / RGB network "
                     "(default: the backbone's).")
flags.DEFINE_enum("teacher_backbone", None, ["r3d18", "light"],
                  "Backbone of the teacher's flow network and the two-stream flow branch "
                  "(default: --backbone). A teacher larger than the student is the "
                  "model-compression setting (e.g. MARS).")
flags.DEFINE_integer("teacher_width", None, "First-stage channels of the flow networks.")
flags.DEFINE_integer("num_frames", 16, "T, frames per clip.")
flags.DEFINE_integer("crop_size", 112, "S, crop side.")
flags.DEFINE_integer("num_classes", 51, "K (HMDB51).")
flags.DEFINE_integer("batch_size", 4, "Clips per batch for the throughput column.")
flags.DEFINE_integer("repeats", 5, "Timed runs per measurement (median); one warm-up first.")
flags.DEFINE_integer("calibration_clips", 8, "int8 representative clips (random frames).")
flags.DEFINE_integer("threads", 0, "TFLite/OpenCV threads (0: os.cpu_count()).")
flags.DEFINE_string("note", "", "Free text printed with the results (machine, load).")


def _median_time(fn, repeats):
  """Median seconds of `fn()` after one warm-up call (tracing, allocation)."""
  return median_ms(fn, repeats, warmup=1) / 1e3


def matmul_peak_gflops(n=1024, repeats=10):
  """Measured fp32 matmul GFLOP/s of TensorFlow on this CPU (best of `repeats`)."""
  a = tf.random.normal((n, n))
  b = tf.random.normal((n, n))
  f = tf.function(lambda: tf.linalg.matmul(a, b))
  f().numpy()
  best = min(_time_once(lambda: f().numpy()) for _ in range(repeats))
  return 2 * n ** 3 / best / 1e9


def _time_once(fn):
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def _size(path):
  if os.path.isfile(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _flow_network(num_classes, t, s, backbone, width=None):
  """M2 alone (flow in): the two-stream's flow branch."""
  flow = keras.Input((t - 1, s, s, 2), name="flow")
  x = classifiers.FlowScaling(20.0)(flow)
  multiplier = classifiers._resolve_width(backbone, width, 1.0)  # pylint: disable=protected-access
  features = backbones.apply_backbone(x, backbone, width_multiplier=multiplier)
  logits = keras.layers.Dense(num_classes)(features)
  return keras.Model(flow, logits, name="flow_net")


def _opencv_flows(frames, threads):
  import cv2  # pylint: disable=g-import-not-at-top
  cv2.setNumThreads(threads)
  tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
  grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
  return np.stack([tvl1.calc(grey[i], grey[i + 1], None) for i in range(len(grey) - 1)])


def _width_kwargs(width):
  return {} if width is None else {"width": width}


def run_benchmark(backbone, t, s, num_classes, batch_size, repeats, calibration_clips,
                  threads, log=print, width=None, teacher_backbone=None, teacher_width=None):
  """Runs every measurement; returns the rows and the peak."""
  rng = np.random.default_rng(0)
  raw = rng.integers(0, 256, (batch_size, t, 240, 320, 3), dtype=np.uint8)
  clips = tf.image.resize(tf.cast(raw.reshape(-1, 240, 320, 3), tf.float32)[:, :, 40:280],
                          (s, s)).numpy().reshape(batch_size, t, s, s, 3)
  one = clips[:1]
  keras.utils.set_random_seed(0)
  teacher_backbone = teacher_backbone or backbone
  student = classifiers.build_rgb_model(num_classes, t, s, backbone=backbone,
                                        **_width_kwargs(width))
  teacher = classifiers.build_teacher(num_classes, t, s, backbone=teacher_backbone,
                                     flow_preset="fast", **_width_kwargs(teacher_width))
  flow_net = _flow_network(num_classes, t, s, teacher_backbone, teacher_width)
  peak = matmul_peak_gflops()
  log(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
  rows = []
  scratch = tempfile.mkdtemp(prefix="bench_inference_")
  try:
    keras_path = os.path.join(scratch, "student.keras")
    student.save(keras_path)
    gflops_student = flops.count_flops(student) / 1e9

    def add(name, latency, throughput, size, gflops):
      rows.append(dict(name=name, latency_ms=latency * 1e3, throughput=throughput,
                       size_mb=None if size is None else size / 2 ** 20, gflops=gflops,
                       gflops_per_s=gflops / latency, peak_frac=gflops / latency / peak))
      log(f"  {name}: {latency * 1e3:.1f} ms/clip")

    log("student, Keras")
    lat = _median_time(lambda: student.predict_on_batch(one), repeats)
    thr = batch_size / _median_time(lambda: student.predict_on_batch(clips), repeats)
    add("student Keras fp32", lat, thr, _size(keras_path), gflops_student)

    log("student, SavedModel (export)")
    export_dir = os.path.join(scratch, "student", "1")
    # Raw frames in; a spec without a stored size: the graph samples, crops and resizes.
    sm.export_saved_model(student, [f"c{i}" for i in range(num_classes)], export_dir,
                          spec=clip_spec.ClipSpec.for_model(student))
    serve = tf.saved_model.load(export_dir).signatures[sm.SERVING_SIGNATURE]
    raw1, rawb = tf.constant(raw[:1]), tf.constant(raw)
    lat = _median_time(lambda: serve(frames=raw1)["probabilities"].numpy(), repeats)
    thr = batch_size / _median_time(lambda: serve(frames=rawb)["probabilities"].numpy(),
                                    repeats)
    add("student SavedModel fp32", lat, thr,
        _size(export_dir) - _size(os.path.join(export_dir, sm.KERAS_FILE)), gflops_student)

    def rep():
      for i in range(calibration_clips):
        yield [clips[i % batch_size][None]]

    for q, label in (("none", "fp32"), ("float16", "fp16"), ("int8", "int8")):
      log(f"student, TFLite {label} (convert)")
      flatbuffer, used = tfl.convert_keras_model(student, q, rep if q == "int8" else None)
      path = os.path.join(scratch, f"student_{label}.tflite")
      with open(path, "wb") as f:
        f.write(flatbuffer)
      runner = tfl.TFLiteRunner(path, num_threads=threads)
      lat = _median_time(lambda: runner(one), repeats)
      name = f"student TFLite {label}" + ("" if used == q else f" ({used})")
      add(name, lat, 1.0 / lat, len(flatbuffer), gflops_student)

    log("teacher: in-graph TV-L1 fast + M2")
    lat = _median_time(lambda: teacher.predict_on_batch(one), repeats)
    thr = batch_size / _median_time(lambda: teacher.predict_on_batch(clips), repeats)
    teacher_path = os.path.join(scratch, "teacher.keras")
    teacher.save(teacher_path)
    add("teacher (TV-L1 fast in graph + M2)", lat, thr, _size(teacher_path),
        flops.count_flops(teacher) / 1e9)

    log("two-stream: OpenCV TV-L1 + RGB net + flow net")
    frames_u8 = tf.cast(tf.clip_by_value(clips, 0, 255), tf.uint8).numpy()

    def two_stream(batch):
      for clip in batch:
        flow = _opencv_flows(clip, threads)[None]
        p = tf.nn.softmax(student.predict_on_batch(clip[None].astype(np.float32)))
        p += tf.nn.softmax(flow_net.predict_on_batch(flow))
      return p

    lat = _median_time(lambda: two_stream(frames_u8[:1]), max(1, repeats // 2))
    opencv_gflops = (t - 1) * tvl1_flops(s, s, "accurate") / 1e9
    flow_path = os.path.join(scratch, "flow_net.keras")
    flow_net.save(flow_path)
    add("two-stream (OpenCV TV-L1 + RGB + flow)", lat, 1.0 / lat,
        _size(keras_path) + _size(flow_path),
        gflops_student + flops.count_flops(flow_net) / 1e9 + opencv_gflops)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return rows, peak


def format_table(rows):
  head = (f"| {'model':<40s} | {'ms/clip':>9s} | {'clips/s':>8s} | {'size MB':>8s} | "
          f"{'GFLOPs':>7s} | {'GFLOP/s':>8s} | {'% peak':>6s} |")
  sep = "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"
  lines = [head, sep]
  for r in rows:
    size = "-" if r["size_mb"] is None else f"{r['size_mb']:.2f}"
    lines.append(f"| {r['name']:<40s} | {r['latency_ms']:9.1f} | {r['throughput']:8.2f} | "
                 f"{size:>8s} | {r['gflops']:7.2f} | {r['gflops_per_s']:8.1f} | "
                 f"{100 * r['peak_frac']:5.1f}% |")
  return "\n".join(lines)


def targets(rows):
  by = {r["name"]: r for r in rows}
  student = by["student SavedModel fp32"]["latency_ms"]
  best_student = min(r["latency_ms"] for r in rows if r["name"].startswith("student"))
  teacher = by["teacher (TV-L1 fast in graph + M2)"]["latency_ms"]
  two = by["two-stream (OpenCV TV-L1 + RGB + flow)"]["latency_ms"]
  fp32 = next(r for r in rows if r["name"] == "student TFLite fp32")
  int8 = next(r for r in rows if r["name"].startswith("student TFLite int8"))
  checks = [
      ("student (SavedModel) >= 20x faster than two-stream+OpenCV",
       two / student, two / student >= 20),
      ("student (fastest artifact) >= 20x faster than two-stream+OpenCV",
       two / best_student, two / best_student >= 20),
      ("student (SavedModel) >= 5x faster than teacher (fast TV-L1)",
       teacher / student, teacher / student >= 5),
      ("int8 file <= 30% of fp32 file", int8["size_mb"] / fp32["size_mb"],
       int8["size_mb"] / fp32["size_mb"] <= 0.30),
      ("int8 faster than fp32 (TFLite)", fp32["latency_ms"] / int8["latency_ms"],
       int8["latency_ms"] < fp32["latency_ms"]),
  ]
  return "\n".join(f"- {name}: {value:.2f} -> {'MET' if ok else 'MISSED'}"
                   for name, value, ok in checks)


def main(argv):
  del argv
  threads = FLAGS.threads or os.cpu_count()
  rows, peak = run_benchmark(FLAGS.backbone, FLAGS.num_frames, FLAGS.crop_size,
                             FLAGS.num_classes, FLAGS.batch_size, FLAGS.repeats,
                             FLAGS.calibration_clips, threads, width=FLAGS.width,
                             teacher_backbone=FLAGS.teacher_backbone,
                             teacher_width=FLAGS.teacher_width)
  print()
  print(f"bench_inference: backbone={FLAGS.backbone} width={FLAGS.width} "
        f"teacher_backbone={FLAGS.teacher_backbone or FLAGS.backbone} "
        f"teacher_width={FLAGS.teacher_width} T={FLAGS.num_frames} "
        f"S={FLAGS.crop_size} K={FLAGS.num_classes} batch={FLAGS.batch_size} "
        f"repeats={FLAGS.repeats} threads={threads} cpus={os.cpu_count()} "
        f"tf={tf.__version__} peak={peak:.1f} GFLOP/s {FLAGS.note}")
  print(format_table(rows))
  print(targets(rows))


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
