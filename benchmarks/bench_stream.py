"""Benchmark: recognition over a 25 fps stream, student vs two-stream with TV-L1.

On the same generated 25 fps input, side by side in one run, through
`tsnet_tf.export.recognize` (decoder and classifier threads, the clip of
configs/synthetic.yaml: T=8 frames 3 apart, S=64):

  real-time factor   video seconds recognised per wall second, the file read
                     as fast as it decodes (every window classified);
  latency            frame-in -> label-out (ms from the arrival of a window's
                     last frame to its label, median and p95), the file
                     released at 25 fps as a camera would (`realtime`), with
                     the windows the model could not keep up with dropped;
  models             the student as TFLite fp32 and int8 (`--num_threads`) and
                     as a SavedModel; the two-stream model (student + teacher,
                     late fusion) with in-graph TV-L1 `fast` and `accurate`,
                     and with OpenCV's DualTVL1 (cv2.optflow, default
                     parameters) computing the teacher's flow as a reference.

Artifacts are built here with the project's own functions from a small
generated set (tsnet_tf.data.synthetic -> TFRecords -> export_saved_model ->
convert_saved_model, int8 calibrated on those TFRecords); weights are random
(latency does not depend on them). `--rss` also runs the TFLite student over
a generated 1-minute and a 10-minute input in fresh processes and reports each
one's peak RSS.

  .venv/bin/python benchmarks/bench_stream.py --seconds=12 --rss

Each model runs at every `--hops` value (default: recognize's default hop, half
a clip's span, and hop 1, a label for every new frame), side by side in one run;
the last column says whether it keeps up with the 25 fps input (real-time factor
>= 1) or runs below real time. `--config=configs/hmdb51.yaml` gives the paper's
clip (25 frames of 224x224, R3D-18); with `--max_seconds` the real-time factor is
taken over the windows read within that many seconds (the first few for a slow
row, which takes seconds per window):

  .venv/bin/python benchmarks/bench_stream.py --config=configs/hmdb51.yaml \
      --models=tflite_fp32,twostream_accurate --seconds=4 --width=320 --height=240 \
      --max_seconds=15 --no_arithmetic_optimization
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = flags.DEFINE_string("config", os.path.join(REPO, "configs", "synthetic.yaml"),
                              "Config whose data section gives the clip (T, S, stride).")
_SECONDS = flags.DEFINE_float("seconds", 12.0, "Length of the 25 fps input.")
_HEIGHT = flags.DEFINE_integer("height", 120, "Input frame height.")
_WIDTH = flags.DEFINE_integer("width", 160, "Input frame width.")
_THREADS = flags.DEFINE_integer("num_threads", 2, "TFLite interpreter threads.")
_MODELS = flags.DEFINE_list(
    "models", ["tflite_fp32", "tflite_int8", "saved_model", "twostream_fast",
               "twostream_accurate", "twostream_opencv"], "Rows to run.")
_HOPS = flags.DEFINE_list(
    "hops", ["default", "1"], "Frames between window starts, one set of rows per value, side "
    "by side: `default` (half a clip's span, tools/recognize.py's default) and 1 (a label for "
    "every new frame, what a live recognizer showing the current action does).")
_MAX_SECONDS = flags.DEFINE_float(
    "max_seconds", 0.0, "Stop reading the input after this many wall seconds in the "
    "real-time-factor run (0: the whole input): the slow rows (OpenCV TV-L1, hop 1, R3D-18 "
    "at configs/hmdb51.yaml's clip) are then measured on the input's first windows.",
    lower_bound=0.0)
_RSS = flags.DEFINE_boolean("rss", False, "Also measure peak RSS on 1- and 10-minute inputs.")
_RSS_MINUTES = flags.DEFINE_list("rss_minutes", ["1", "10"], "Input lengths for --rss.")
_NO_ARITHMETIC = flags.DEFINE_boolean(
    "no_arithmetic_optimization", False, "Turn off Grappler's arithmetic optimizer: at "
    "configs/hmdb51.yaml's clip its AddOpsRewrite inside the in-graph TV-L1 loops can fail "
    "with AlreadyExistsError (TemporaryVariableOp tmp_var; tensorflow/tensorflow#23780).")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Where to build (default: a temp dir).")
_NOTE = flags.DEFINE_string("note", "", "Free text printed with the results (machine, load).")
_RSS_CHILD = flags.DEFINE_string("rss_child", None, "Internal: MODEL,VIDEO for one RSS run.")

FPS = 25
CLASSES = ("pan_down", "pan_left", "pan_right", "pan_up")


def _frames(seconds, height, width, seed=0, segment_seconds=2.0):
  """Yields uint8 frames: synthetic pan classes, one after another, 2 s each."""
  from tsnet_tf.data import synthetic_render
  rng = np.random.default_rng(seed)
  left = int(round(seconds * FPS))
  i = 0
  while left > 0:
    n = min(left, int(segment_seconds * FPS))
    frames, _ = synthetic_render.render_video(CLASSES[i % len(CLASSES)], rng, max(n, 2),
                                              height, width)
    yield from frames[:n]
    left -= n
    i += 1


def write_input(path, seconds, height, width):
  """A generated 25 fps AVI of `seconds`, streamed (memory: one 2 s segment)."""
  from tsnet_tf.data import video
  video.write_video(path, _frames(seconds, height, width), fps=FPS)
  return path


def build_artifacts(work, cfg, names):
  """What the rows `names` need: student SavedModel, TFLite fp32/int8, two-stream models.

  Only what a row needs is built (R3D-18 at configs/hmdb51.yaml's clip takes minutes to
  convert and calibrate on this CPU).
  """
  import keras
  from tsnet_tf import models
  from tsnet_tf.data import clip_spec
  from tsnet_tf.layers import clip_contract
  from tsnet_tf.data import synthetic
  from tsnet_tf.data import tfrecords
  from tsnet_tf.export import saved_model as sm
  from tsnet_tf.export import tflite as tfl
  data = cfg.data
  videos = os.path.join(work, "videos")
  records = os.path.join(work, "tfrecords")
  if not os.path.exists(os.path.join(records, "summary.json")):  # a --work_dir run before
    synthetic.generate_dataset(videos, num_classes=len(CLASSES), videos_per_class=4,
                               height=64, width=80, min_seconds=1.0, max_seconds=1.5,
                               fps=(FPS,), overwrite=True)
    tfrecords.convert(os.path.join(videos, "videos"), os.path.join(videos, "splits"), records,
                      splits=(1,), settings=tfrecords.ConversionSettings(short_side=0),
                      num_workers=1, progress=False, overwrite=True)
  from tsnet_tf.data import pipeline
  settings = pipeline.load_summary(records)["settings"]
  spec = clip_spec.ClipSpec.from_training(data, settings)
  labels = [l.strip() for l in open(os.path.join(records, "labels.txt")) if l.strip()]
  keras.utils.set_random_seed(0)
  t, s = data.num_frames, data.crop_size
  width = cfg.model.width
  student = models.build_rgb_model(len(labels), t, s, backbone=cfg.model.backbone, width=width,
                                   name="rgb")
  student_c = clip_contract.attach(student, spec, labels)
  export = sm.export_saved_model(student_c, labels, os.path.join(work, "student", "1"),
                                 spec=spec, overwrite=True)
  out = {"spec": spec, "labels": labels, "saved_model": export}
  for q in ("none", "int8"):
    if f"tflite_{'fp32' if q == 'none' else q}" not in names:
      continue
    out[f"tflite_{q}"] = tfl.convert_saved_model(
        export, os.path.join(work, f"student_{q}.tflite"), q, data_dir=records,
        num_calibration_clips=16)["output"]
  teachers = {}
  for preset in ("fast", "accurate"):
    if f"twostream_{preset}" not in names and not (preset == "fast" and
                                                    "twostream_opencv" in names):
      continue
    keras.utils.set_random_seed(0)
    teachers[preset] = models.build_teacher(len(labels), t, s, backbone=cfg.model.backbone,
                                            width=width, flow_preset=preset,
                                            flow_bound=cfg.model.flow.bound, name="flow")
    out[f"twostream_{preset}"] = models.build_two_stream(student, teachers[preset])
  if "twostream_opencv" in names:
    out["flow_net"] = models.flow_network(teachers["fast"])
  out["student_keras"] = student
  return out


class KerasClassifier:
  """A Keras model on preprocessed clips (compiled with tf.function), softmax out."""

  kind = "keras"

  def __init__(self, model, spec, labels):
    import tensorflow as tf
    self.spec, self.labels = spec, list(labels)
    self._fn = tf.function(lambda x: tf.nn.softmax(model(x, training=False)),
                           reduce_retracing=True)

  def classify(self, clips):
    import tensorflow as tf
    return self._fn(tf.constant(self.spec.preprocess(clips))).numpy()


class OpenCVTwoStream:
  """Student + teacher's flow network, the flow from cv2's DualTVL1 (the reference)."""

  kind = "keras+opencv"

  def __init__(self, student, flow_net, spec, labels):
    import cv2
    import tensorflow as tf
    self.spec, self.labels = spec, list(labels)
    self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    self._rgb = tf.function(lambda x: tf.nn.softmax(student(x, training=False)))
    self._flow = tf.function(lambda f: tf.nn.softmax(flow_net(f, training=False)))

  def classify(self, clips):
    import cv2
    import tensorflow as tf
    x = np.asarray(self.spec.preprocess(clips))  # float32 [1, T, S, S, 3] in [0, 255]
    grey = [cv2.cvtColor(f.astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in x[0]]
    flow = np.stack([self._tvl1.calc(a, b, None) for a, b in zip(grey[:-1], grey[1:])])
    p_rgb = self._rgb(tf.constant(x)).numpy()
    p_flow = self._flow(tf.constant(flow[None])).numpy()
    return (p_rgb + p_flow) / 2


def classifiers(art, names, num_threads):
  from tsnet_tf.export import predict
  from tsnet_tf.data import streams
  from tsnet_tf.export import recognize as rec
  spec, labels = art["spec"], art["labels"]
  made = {}
  for name in names:
    if name == "tflite_fp32":
      made[name] = rec.PredictorClassifier(predict.load_predictor(art["tflite_none"],
                                                                  num_threads=num_threads))
    elif name == "tflite_int8":
      made[name] = rec.PredictorClassifier(predict.load_predictor(art["tflite_int8"],
                                                                  num_threads=num_threads))
    elif name == "saved_model":
      made[name] = rec.PredictorClassifier(predict.load_predictor(art["saved_model"]))
    elif name in ("twostream_fast", "twostream_accurate"):
      made[name] = KerasClassifier(art[name], spec, labels)
    elif name == "twostream_opencv":
      made[name] = OpenCVTwoStream(art["student_keras"], art["flow_net"], spec, labels)
    else:
      raise app.UsageError(f"--models: unknown {name!r}")
  return made


def _first_frames(source, seconds):
  """`source` cut after `seconds` of wall time (the real-time factor of its first windows).

  The file decoder waits for the classifier, so a slow model reads only the first
  windows' frames before the cut; the windows decoded by then are all classified.
  """
  from tsnet_tf.data import streams

  class FirstFrames(streams.FrameSource):

    def __init__(self):
      super().__init__(source.name, source.fps, source.live, source.expected_frames)

    def frames(self):
      deadline = None
      for frame in source.frames():
        deadline = deadline or time.monotonic() + seconds
        if time.monotonic() > deadline:
          return
        yield frame

    def close(self):
      source.close()

  return FirstFrames()


def measure(classifier, path, hop):
  """(real-time factor, windows, latency median, p95, windows classified / dropped live).

  `hop`: decoded frames between window starts, None for recognize's default.
  """
  from tsnet_tf.data import streams
  from tsnet_tf.export import recognize as rec
  quiet = dict(print_windows=False, progress=False)
  slicer = streams.WindowSlicer(classifier.spec, hop)
  # warm-up: the first call traces / allocates
  classifier.classify(_first_clip(classifier, path))
  source = streams.open_source(path)
  if _MAX_SECONDS.value:
    source = _first_frames(source, _MAX_SECONDS.value)
  thr = rec.recognize(classifier, source, None, hop=hop, **quiet)
  live = rec.recognize(classifier, streams.open_source(path, realtime=True), None, hop=hop,
                       queue_size=1, **quiet)
  lat = np.asarray(live.latencies_ms)
  return {"hop": slicer.hop, "labels_per_s": FPS / slicer.hop, "rtf": thr.realtime_factor,
          "video_s": thr.frames / FPS,
          "windows": thr.windows, "ms_per_window": 1000 * thr.elapsed_s / max(thr.windows, 1),
          "latency_median_ms": float(np.median(lat)), "latency_p95_ms":
          float(np.percentile(lat, 95)), "live_classified": live.windows,
          "live_dropped": live.dropped}


def _first_clip(classifier, path):
  from tsnet_tf.data import streams
  slicer = streams.WindowSlicer(classifier.spec)
  source = streams.open_source(path)
  try:
    for frame in source.frames():
      clips = slicer.push(frame)
      if clips:
        return clips[0].frames[None]
  finally:
    source.close()
  raise ValueError(f"{path} is shorter than a clip")


def rss_child(model, path):
  """One recognition of `path` with the TFLite student; prints peak RSS (MiB) as JSON."""
  from tsnet_tf.data import streams
  from tsnet_tf.export import predict
  from tsnet_tf.export import recognize as rec
  classifier = rec.PredictorClassifier(predict.load_predictor(model, num_threads=2))
  r = rec.recognize(classifier, streams.open_source(path), None, print_windows=False,
                    progress=False)
  print(json.dumps({"frames": r.frames, "windows": r.windows, "rtf": r.realtime_factor,
                    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main(argv):
  del argv
  if _RSS_CHILD.value:
    model, path = _RSS_CHILD.value.split(",", 1)
    rss_child(model, path)
    return
  import yaml
  from tsnet_tf import config as config_lib
  if _NO_ARITHMETIC.value:
    import tensorflow as tf
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
  with open(_CONFIG.value) as f:
    cfg = config_lib.from_dict(yaml.safe_load(f), _CONFIG.value)
  work = _WORK_DIR.value or tempfile.mkdtemp(prefix="bench_stream_")
  os.makedirs(work, exist_ok=True)
  started = time.time()
  # --rss runs the TFLite fp32 student whatever the rows
  art = build_artifacts(work, cfg, list(_MODELS.value) + (["tflite_fp32"] if _RSS.value else []))
  spec = art["spec"]
  path = write_input(os.path.join(work, "input.avi"), _SECONDS.value, _HEIGHT.value,
                     _WIDTH.value)
  hops = [None if h == "default" else int(h) for h in _HOPS.value]
  span = spec.video_span
  cut = (f"; real-time factor: input cut after {_MAX_SECONDS.value:g} s" if _MAX_SECONDS.value
         else "")
  print(f"clip: {spec.describe()}; window {span} frames = {1000 * span / FPS:.0f} ms of "
        f"video; hops {', '.join(_HOPS.value)}; input {_SECONDS.value:g} s at {FPS} fps, "
        f"{_WIDTH.value}x{_HEIGHT.value}{cut}; built in {time.time() - started:.0f} s",
        flush=True)
  rows = []
  for name, classifier in classifiers(art, _MODELS.value, _THREADS.value).items():
    for hop in hops:
      row = {"model": name, **measure(classifier, path, hop)}
      rows.append(row)
      print(json.dumps(row), flush=True)
  print()
  print("| model | hop (frames) | labels / s | real-time factor | windows timed | ms / window "
        "| latency median (ms) | latency p95 (ms) | live: classified / dropped | keeps up |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    # Keeping up = every window classified in less video time than the hop brings.
    print(f"| {r['model']} | {r['hop']} | {r['labels_per_s']:.1f} | {r['rtf']:.3g}x | "
          f"{r['windows']} | {r['ms_per_window']:.0f} | {r['latency_median_ms']:.0f} | "
          f"{r['latency_p95_ms']:.0f} | {r['live_classified']} / {r['live_dropped']} | "
          f"{'yes' if r['rtf'] >= 1 else 'no: below real time'} |")
  if _RSS.value:
    print()
    print("| input | frames | windows | real-time factor | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for minutes in _RSS_MINUTES.value:
      long_path = write_input(os.path.join(work, f"input_{minutes}min.avi"),
                              60 * float(minutes), _HEIGHT.value, _WIDTH.value)
      out = subprocess.run(
          [sys.executable, os.path.abspath(__file__), f"--rss_child={art['tflite_none']},"
           f"{long_path}"], capture_output=True, text=True, check=True,
          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
      r = json.loads(out.stdout.strip().splitlines()[-1])
      print(f"| {minutes} min | {r['frames']} | {r['windows']} | {r['rtf']:.1f}x | "
            f"{r['peak_rss_mib']:.0f} |", flush=True)
  if _NOTE.value:
    print(f"\nnote: {_NOTE.value}")


if __name__ == "__main__":
  app.run(main)
