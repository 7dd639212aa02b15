"""Benchmark: inference latency of the student vs the teacher, on any Keras backend.

The paper's point is that the student answers without computing optical flow.
This script times, side by side in one run, the student (RGB 3D CNN) and the
teacher (in-graph TV-L1 + 3D CNN on flow) with each TV-L1 preset, under
whatever Keras backend is active (`KERAS_BACKEND=tensorflow|jax`), so the
same comparison runs on a CPU with TensorFlow and on a GPU machine that has
JAX but no TensorFlow. Random weights (latency does not depend on them).

  .venv/bin/python benchmarks/bench_latency.py --backbone=light --num_frames=8 --crop_size=64
  KERAS_BACKEND=jax python3 benchmarks/bench_latency.py --backbone=r3d18 \\
      --num_frames=25 --crop_size=224 --batch_sizes=1,8

For each model: median ms per batch of `predict_on_batch` (the backend's
compiled predict function) at each batch size, ms per clip, and analytic
GFLOPs per clip (`tsnet_tf.models.count_flops`, TV-L1 included).
"""

import os
import sys

from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import keras

from tsnet_tf.utils.timing import median_ms
from tsnet_tf import models

_BACKBONE = flags.DEFINE_enum("backbone", "r3d18", ["r3d18", "light"], "Student backbone.")
_WIDTH = flags.DEFINE_integer("width", None, "Student first-stage channels (default: backbone's).")
_TEACHER_BACKBONE = flags.DEFINE_enum("teacher_backbone", None, ["r3d18", "light"],
                                      "Teacher flow-network backbone (default: --backbone).")
_TEACHER_WIDTH = flags.DEFINE_integer("teacher_width", None, "Teacher first-stage channels.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 25, "T, frames per clip.")
_CROP_SIZE = flags.DEFINE_integer("crop_size", 224, "S, crop side.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 51, "K (HMDB51).")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1"], "Batch sizes to time.")
_PRESETS = flags.DEFINE_list("presets", ["fast", "accurate"], "TV-L1 presets of the teacher.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed runs per measurement (median).")
_NOTE = flags.DEFINE_string("note", "", "Free text printed with the results (machine, load).")


def _width(width):
  return {} if width is None else {"width": width}


def build_models(num_classes, t, s, backbone, width, teacher_backbone, teacher_width, presets):
  """[(name, model)] for the student and one teacher per TV-L1 preset."""
  built = [("student (RGB only)", models.build_rgb_model(
      num_classes, t, s, backbone=backbone, **_width(width)))]
  for preset in presets:
    built.append((f"teacher (TV-L1 {preset} + flow net)", models.build_teacher(
        num_classes, t, s, backbone=teacher_backbone or backbone, flow_preset=preset,
        **_width(teacher_width))))
  return built


def run(num_classes, t, s, backbone, width, teacher_backbone, teacher_width, presets,
        batch_sizes, repeats, log=print):
  """Times every model at every batch size; returns result rows."""
  rng = np.random.default_rng(0)
  rows = []
  for name, model in build_models(num_classes, t, s, backbone, width, teacher_backbone,
                                  teacher_width, presets):
    gflops = models.count_flops(model) / 1e9
    for b in batch_sizes:
      x = rng.uniform(0, 255, (b, t, s, s, 3)).astype("float32")
      ms = median_ms(lambda: np.asarray(model.predict_on_batch(x)), repeats)
      rows.append(dict(model=name, batch=b, ms_batch=ms, ms_clip=ms / b, gflops=gflops))
      log(f"  {name}, batch {b}: {ms:.2f} ms")
  return rows


def format_table(rows):
  lines = ["| model | batch | ms / batch | ms / clip | GFLOPs / clip | student speed-up |",
           "| :--- | ---: | ---: | ---: | ---: | ---: |"]
  student = {r["batch"]: r["ms_clip"] for r in rows if r["model"].startswith("student")}
  for r in rows:
    lines.append(f"| {r['model']} | {r['batch']} | {r['ms_batch']:.2f} | {r['ms_clip']:.2f} | "
                 f"{r['gflops']:.2f} | {r['ms_clip'] / student[r['batch']]:.1f}x |")
  return "\n".join(lines)


def main(argv):
  del argv
  batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  rows = run(_NUM_CLASSES.value, _NUM_FRAMES.value, _CROP_SIZE.value, _BACKBONE.value,
             _WIDTH.value, _TEACHER_BACKBONE.value, _TEACHER_WIDTH.value, _PRESETS.value,
             batch_sizes, _REPEATS.value)
  print()
  print(f"bench_latency: keras {keras.__version__} backend={keras.backend.backend()} "
        f"student={_BACKBONE.value} width={_WIDTH.value} "
        f"teacher={_TEACHER_BACKBONE.value or _BACKBONE.value} width={_TEACHER_WIDTH.value} "
        f"T={_NUM_FRAMES.value} S={_CROP_SIZE.value} K={_NUM_CLASSES.value} {_NOTE.value}")
  print(format_table(rows))


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
