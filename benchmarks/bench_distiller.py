"""Benchmark: our Eq. 7 `DistillationModel` against Keras' own `keras.distillation.Distiller`.

Same student, teacher, weights and batch on the current backend. The Distiller
gets what it can express of Eq. 7: `FeatureDistillation("mse")` on the
"features" layers (equal sizes: it has no projection) and
`student_loss_weight = 1 / (1 + lambda)`, so its loss times (1 + lambda) is
CE + lambda * MSE. Printed: that rescaled loss next to ours (the gap is the
L2 regularizer, which `Distiller.compute_loss` leaves out) and the median
training step time of each (the Distiller runs the student forward twice per
step: once for the logits, once more for the features).

  KERAS_BACKEND=jax .venv/bin/python benchmarks/bench_distiller.py
"""

import os
import sys

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import keras

from tsnet_tf import models
from tsnet_tf.utils import timing

_BACKBONE = flags.DEFINE_enum("backbone", "light", ["light", "r3d18"], "Backbone of both.")
_WIDTH = flags.DEFINE_integer("width", 16, "First-stage channels of both.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 8, "T.")
_CROP_SIZE = flags.DEFINE_integer("crop_size", 64, "S.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 4, "Clips per step.")
_LAMBDA = flags.DEFINE_float("lambda_", 1.0, "lambda of Eq. 7.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 5e-4, "L2 on the student's kernels.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed steps (median) after 2 warm-up steps.")


def _pair():
  keras.utils.set_random_seed(0)
  kwargs = dict(backbone=_BACKBONE.value, width=_WIDTH.value, dropout_rate=0.0)
  student = models.build_rgb_model(51, _NUM_FRAMES.value, _CROP_SIZE.value, name="student",
                                   weight_decay=_WEIGHT_DECAY.value, **kwargs)
  teacher = models.build_rgb_model(51, _NUM_FRAMES.value, _CROP_SIZE.value, name="teacher",
                                   **kwargs)
  return student, teacher


def _time(model, x, y):
  """(logs of the first step, median ms of the steps after one more warm-up step)."""
  first = model.train_on_batch(x, y, return_dict=True)
  return first, timing.median_ms(lambda: model.train_on_batch(x, y), _REPEATS.value, warmup=1)


def main(argv):
  del argv
  rng = np.random.RandomState(0)
  x = rng.uniform(0, 255, (_BATCH_SIZE.value, _NUM_FRAMES.value, _CROP_SIZE.value,
                           _CROP_SIZE.value, 3)).astype("float32")
  y = (np.arange(_BATCH_SIZE.value) % 51).astype("int32")
  lam = _LAMBDA.value

  student, teacher = _pair()
  ours = models.DistillationModel(student, teacher, distill_weight=lam)
  ours.compile(optimizer=keras.optimizers.SGD(0.01))
  ours_logs, ours_ms = _time(ours, x, y)

  student, teacher = _pair()
  theirs = keras.distillation.Distiller(
      teacher=teacher, student=student,
      distillation_losses=keras.distillation.FeatureDistillation(
          loss="mse", teacher_layer_name="features", student_layer_name="features"),
      student_loss_weight=1.0 / (1.0 + lam))
  theirs.compile(optimizer=keras.optimizers.SGD(0.01),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  theirs_logs, theirs_ms = _time(theirs, x, y)

  reg = sum(float(keras.ops.convert_to_numpy(l)) for l in _pair()[0].losses)
  print(f"backend {keras.backend.backend()}, {_BACKBONE.value} width {_WIDTH.value}, "
        f"{_NUM_FRAMES.value}x{_CROP_SIZE.value}x{_CROP_SIZE.value}, batch {_BATCH_SIZE.value}, "
        f"lambda {lam}, weight decay {_WEIGHT_DECAY.value}\n")
  print("| | first-step loss (CE + lambda MSE scale) | step (ms, median) |")
  print("| --- | ---: | ---: |")
  print(f"| tsnet_tf DistillationModel | {ours_logs['loss']:.5f} | {ours_ms:.0f} |")
  print(f"| keras.distillation.Distiller x (1 + lambda) | "
        f"{theirs_logs['loss'] * (1.0 + lam):.5f} | {theirs_ms:.0f} |")
  print(f"\nL2 term of the student at these weights: {reg:.5f} "
        f"(ours - Distiller x (1 + lambda) = "
        f"{ours_logs['loss'] - theirs_logs['loss'] * (1.0 + lam):.5f})")
  return 0


if __name__ == "__main__":
  app.run(main)
