r"""Benchmark: flow extraction with tsnet_tf vs an OpenCV-DualTVL1 extraction.

One run, three parts, each printing a table:

1. Flow throughput (no I/O): `tsnet_tf.flow.batching.video_flow` on a
   synthetic `--width` x `--height` clip of `--num_frames` frames, for each
   `--batch_sizes`; flow frames/s after the first call (whose compile time is
   reported apart). Needs only Keras, numpy and the backend: this is the part
   to run on a GPU (`KERAS_BACKEND=jax`, no TensorFlow, no OpenCV needed).
2. Extraction end to end on real videos (`--video_dir`, the first
   `--num_videos`, `--max_frames` frames each, shorter side resized to
   `--new_short`): `extract_all` writing the MMAction2 rawframes layout, once
   with our TV-L1 and once with OpenCV's DualTVL1 (defaults, uint8 grey, pair
   by pair) as the flow function. Decoding, quantisation and JPEG writing are
   the same code for both, so the ratio is the flow's. Skipped when PyAV,
   Pillow or cv2 (for the OpenCV row) is missing.
3. Accuracy in the output format: stress pairs of that size with known flow
   (`evaluation.make_stress_set`), each flow quantised to the rawframes
   uint8 (+-`--bound`) and back, mean and worst EPE for ours and OpenCV's.

  .venv/bin/python benchmarks/bench_extract.py
  KERAS_BACKEND=jax python benchmarks/bench_extract.py --video_dir= \
      --batch_sizes=32,128,256 --num_frames=513 --note="H200, JAX"

Neither TensorFlow nor OpenCV is imported unless present and needed.
"""

import itertools
import os
import shutil
import tempfile
import time

from absl import flags
import keras
import numpy as np

from tsnet_tf.data import flow_extraction
from tsnet_tf.data import video
from tsnet_tf.flow import batching
from tsnet_tf.flow import evaluation
from tsnet_tf.flow import quantize
from tsnet_tf.utils import cli

_SHARED_VIDEOS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "..", "shared", "data", "video", "kinetics")

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "accurate", "Our TV-L1 preset.")
flags.DEFINE_integer("width", 320, "Frame width of parts 1 and 3.")
flags.DEFINE_integer("height", 240, "Frame height of parts 1 and 3.")
flags.DEFINE_integer("num_frames", 97, "Frames of the synthetic clip (part "
                     "1); flows = num_frames - 1.")
flags.DEFINE_list("batch_sizes", ["16", "48"], "Pairs per tvl1 call, part 1.")
flags.DEFINE_integer("repeats", 2, "Timed passes over the clip (median), "
                     "part 1.")
flags.DEFINE_string("video_dir", _SHARED_VIDEOS, "Videos for part 2 ('' "
                    "skips it).")
flags.DEFINE_integer("num_videos", 2, "Videos used in part 2.")
flags.DEFINE_integer("max_frames", 17, "Frames decoded per video, part 2 "
                     "(0 = all).")
flags.DEFINE_integer("new_short", 240, "Shorter side in part 2 (HMDB51's "
                     "320x240; 0 keeps).")
flags.DEFINE_integer("batch_size", 16, "Pairs per tvl1 call, part 2.")
flags.DEFINE_integer("num_pairs", 8, "Stress pairs in part 3 (0 skips).")
flags.DEFINE_float("bound", 20.0, "Rawframes clip bound, px.")
flags.DEFINE_boolean("opencv", True, "Run the OpenCV rows when cv2 with "
                     "optflow is importable.")
flags.DEFINE_integer("opencv_threads", 2, "cv2.setNumThreads.")
flags.DEFINE_string("note", "", "Free text printed with the results.")


def _opencv():
  return evaluation.load_opencv(FLAGS.opencv_threads) if FLAGS.opencv else None


def opencv_video_flow(cv2):
  """A `flow_fn` for `extract`: OpenCV DualTVL1 pair by pair (as denseflow)."""
  solver = cv2.optflow.DualTVL1OpticalFlow_create()

  def flow_fn(frames):  # pulls frames one at a time, as extract expects
    previous = None
    for frame in frames:
      grey = cv2.cvtColor(np.asarray(frame, np.uint8), cv2.COLOR_RGB2GRAY)
      if previous is not None:
        yield solver.calc(previous, grey, None)[None]
      previous = grey

  return flow_fn


def _synthetic_clip(num_frames, height, width, seed=0):
  """uint8 RGB frames of an analytic texture drifting and rotating slowly."""
  texture = evaluation.Texture(np.random.default_rng(seed),
                               extent=float(max(height, width)))
  y, x = np.mgrid[0:height, 0:width].astype(np.float64)
  frames = []
  for t in range(num_frames):
    angle = 0.004 * t
    cx, cy = width / 2, height / 2
    xs = np.cos(angle) * (x - cx) - np.sin(angle) * (y - cy) + cx - 1.5 * t
    ys = np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy) + cy - 0.5 * t
    frames.append(np.repeat(np.round(texture(xs, ys))[..., None], 3, -1))
  return np.asarray(frames, np.uint8)


def part_throughput():
  print(f"\n1. Flow throughput, {FLAGS.width}x{FLAGS.height}, preset "
        f"{FLAGS.preset}, {FLAGS.num_frames - 1} flows per pass, no I/O\n")
  frames = _synthetic_clip(FLAGS.num_frames, FLAGS.height, FLAGS.width)
  print("| batch | first pass s (compiles) | flow frames/s | ms / flow |")
  print("| ----: | ----------------------: | ------------: | --------: |")
  rows = []
  for batch in (int(b) for b in FLAGS.batch_sizes):
    start = time.perf_counter()
    for _ in batching.video_flow(frames, FLAGS.preset, batch):
      pass
    first = time.perf_counter() - start
    times = []
    for _ in range(FLAGS.repeats):
      start = time.perf_counter()
      for _ in batching.video_flow(frames, FLAGS.preset, batch):
        pass
      times.append(time.perf_counter() - start)
    rate = (len(frames) - 1) / float(np.median(times))
    rows.append(rate)
    print(f"| {batch:5d} | {first:23.1f} | {rate:13.1f} | "
          f"{1e3 / rate:9.2f} |", flush=True)
  return max(rows) if rows else None


def part_extraction(cv2):
  if not FLAGS.video_dir:
    print("\n2. Extraction end to end: skipped (--video_dir is empty)")
    return None
  try:
    from tsnet_tf.data import video as video_io  # pylint: disable=g-import-not-at-top
    import PIL  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    print(f"\n2. Extraction end to end: skipped ({e})")
    return None
  if not os.path.isdir(FLAGS.video_dir):
    print(f"\n2. Extraction end to end: skipped (no {FLAGS.video_dir!r})")
    return None
  videos = flow_extraction.find_videos(FLAGS.video_dir)[:FLAGS.num_videos]
  max_frames = FLAGS.max_frames or None
  # Streams, as extract's default reader: frames decoded as the flow needs them.
  read = lambda path: itertools.islice(video_io.iter_frames(path), max_frames)
  options = flow_extraction.Options(preset=FLAGS.preset, bound=FLAGS.bound,
                                    batch_size=FLAGS.batch_size,
                                    new_short=FLAGS.new_short)
  # Compile outside the timing, as a long extraction run amortises it.
  first = np.stack([video.resize_frame(f, video.short_side_size(*f.shape[:2], FLAGS.new_short))
                    for f in
                    itertools.islice(read(videos[0].path), FLAGS.batch_size + 1)])
  start = time.perf_counter()
  for _ in batching.video_flow(first, FLAGS.preset, FLAGS.batch_size,
                               options.max_batch_pixels):
    pass
  compile_s = time.perf_counter() - start
  size = f"{first.shape[2]}x{first.shape[1]}"
  print(f"\n2. Extraction end to end: {len(videos)} videos of "
        f"{FLAGS.video_dir}, {max_frames or 'all'} frames each, {size}, "
        f"rawframes (img + flow_x + flow_y JPEGs); same decoding and writing "
        f"for both; our first call (compile, {compile_s:.1f} s) excluded\n")
  print("| method                  | flows | flow s | flow frames/s | "
        "total s | frames/s end to end |")
  print("| :---------------------- | ----: | -----: | ------------: | "
        "------: | ------------------: |")
  solvers = [(f"tsnet_tf {FLAGS.preset}", None)]
  if cv2 is not None:
    solvers.append(("OpenCV DualTVL1", opencv_video_flow(cv2)))
  rates = {}
  for name, flow_fn in solvers:
    out = tempfile.mkdtemp(prefix="bench_extract_")
    try:
      summary = flow_extraction.extract_all(videos, out, options, progress=False,
                                            read_video=read, flow_fn=flow_fn)
    finally:
      shutil.rmtree(out, ignore_errors=True)
    flow_rate = summary.num_flows / max(summary.flow_seconds, 1e-9)
    total_rate = summary.num_flows / max(summary.seconds, 1e-9)
    rates[name] = (flow_rate, total_rate)
    print(f"| {name:<23} | {summary.num_flows:5d} | "
          f"{summary.flow_seconds:6.1f} | {flow_rate:13.2f} | "
          f"{summary.seconds:7.1f} | {total_rate:19.2f} |", flush=True)
    for failed, reason in summary.failed.items():
      print(f"   skipped {failed}: {reason}")
  if len(rates) == 2:
    ours, cv = rates.values()
    print(f"\nratio ours / OpenCV: {ours[0] / cv[0]:.1f}x in flow, "
          f"{ours[1] / cv[1]:.1f}x end to end (target >= 10x)")
  return rates


def part_accuracy(cv2):
  if FLAGS.num_pairs <= 0:
    return
  f0, f1, truth, names = evaluation.make_stress_set(
      FLAGS.height, FLAGS.width, FLAGS.num_pairs, seed=1)
  print(f"\n3. Accuracy in the rawframes format: {FLAGS.num_pairs} stress "
        f"pairs {FLAGS.width}x{FLAGS.height} (up to 16 px), flow quantised "
        f"to uint8 at +-{FLAGS.bound:g} px and back\n")
  print("| method                  | mean EPE | worst EPE |")
  print("| :---------------------- | -------: | --------: |")
  rgb = lambda f: np.repeat(f, 3, -1).astype(np.uint8)
  frames = [(f"tsnet_tf {FLAGS.preset}", lambda a, b: next(iter(
      batching.video_flow(np.stack([a, b]), FLAGS.preset, 1))))]
  if cv2 is not None:
    flow_fn = opencv_video_flow(cv2)
    frames.append(("OpenCV DualTVL1",
                   lambda a, b: next(iter(flow_fn(np.stack([a, b]))))))
  for name, solve in frames:
    errors = []
    for a, b, t in zip(rgb(f0), rgb(f1), truth):
      flow = solve(a, b)[0]
      coded = quantize.uint8_to_flow(quantize.flow_to_uint8(flow, FLAGS.bound),
                                     FLAGS.bound)
      errors.append(evaluation.endpoint_error(coded, t))
    print(f"| {name:<23} | {np.mean(errors):8.3f} | {np.max(errors):9.2f} |",
          flush=True)


def main(argv):
  del argv
  cv2 = _opencv()
  print(f"keras backend: {keras.backend.backend()}  {FLAGS.note}")
  print("OpenCV: " + ("DualTVL1 defaults, %d threads" % FLAGS.opencv_threads
                      if cv2 else "not available (its rows are skipped)"))
  part_throughput()
  part_extraction(cv2)
  part_accuracy(cv2)


if __name__ == "__main__":
  cli.run(main)
