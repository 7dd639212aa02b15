"""Benchmark: FrameConv2D vs Keras' TimeDistributed(Conv2D) in the light backbone.

The backbones build every 1 x k x k convolution as `tsnet_tf.layers.FrameConv2D`
(time folded into the batch, one Conv2D). Keras 3's `TimeDistributed` unrolls
a static time axis into T convolutions and a stack. This script builds the
same model both ways (same weights, same FLOPs: the TimeDistributed copy is a
clone with each FrameConv2D wrapped back), checks they agree, and times side
by side in one run, under whatever Keras backend is active (TensorFlow on the
development CPU; JAX on a GPU machine without TensorFlow):

  train step   median ms of one SGD step (`train_on_batch`, cross-entropy)
  inference    median ms of `predict_on_batch` at batch 1 and at `--batch_size`

  .venv/bin/python benchmarks/bench_frame_conv.py
  KERAS_BACKEND=jax python3 benchmarks/bench_frame_conv.py --num_frames=16 --crop_size=112
"""

import os
import sys

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import keras

from tsnet_tf.utils.timing import median_ms
from tsnet_tf.layers import FrameConv2D
from tsnet_tf.models import classifiers
from tsnet_tf.models import flops

_BACKBONE = flags.DEFINE_enum("backbone", "light", ["light", "r3d18"], "Backbone.")
_WIDTH = flags.DEFINE_integer("width", 16, "First-stage channels.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 8, "T, frames per clip.")
_CROP_SIZE = flags.DEFINE_integer("crop_size", 64, "S, crop side.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Clips per training step.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed runs per measurement (median).")


def time_distributed_twin(model: keras.Model) -> keras.Model:
  """A clone of `model` with every FrameConv2D as TimeDistributed(Conv2D), same weights."""

  def clone(layer):
    if type(layer) is FrameConv2D:  # pylint: disable=unidiomatic-typecheck
      config = layer.get_config()
      name = config.pop("name")
      return keras.layers.TimeDistributed(keras.layers.Conv2D(**config), name=name)
    return layer.__class__.from_config(layer.get_config())

  twin = keras.models.clone_model(model, clone_function=clone)
  for old, new in zip(model.layers, twin.layers):
    new.set_weights(old.get_weights())
  return twin


def measure(model, clips, labels, repeats):
  """(train step ms, batch-1 inference ms, batch inference ms) of `model`."""
  model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  train = median_ms(lambda: model.train_on_batch(clips, labels), repeats)
  one = clips[:1]
  infer1 = median_ms(lambda: np.asarray(model.predict_on_batch(one)), repeats)
  infer = median_ms(lambda: np.asarray(model.predict_on_batch(clips)), repeats)
  return train, infer1, infer


def main(argv):
  del argv
  t, s, b = _NUM_FRAMES.value, _CROP_SIZE.value, _BATCH_SIZE.value
  keras.utils.set_random_seed(0)
  model = classifiers.build_rgb_model(4, t, s, backbone=_BACKBONE.value, width=_WIDTH.value)
  unrolled = time_distributed_twin(model)
  rng = np.random.default_rng(0)
  clips = rng.uniform(0, 255, (b, t, s, s, 3)).astype(np.float32)
  labels = rng.integers(0, 4, b)
  diff = float(np.max(np.abs(np.asarray(model.predict_on_batch(clips[:2]))
                             - np.asarray(unrolled.predict_on_batch(clips[:2])))))
  n_frame = sum(type(l) is FrameConv2D for l in model.layers)  # pylint: disable=unidiomatic-typecheck
  print(f"{_BACKBONE.value} width {_WIDTH.value}, clips {t}x{s}x{s}, batch {b}, "
        f"{n_frame} per-frame convs, {flops.count_flops(model) / 1e9:.3f} GFLOPs/clip, "
        f"max |difference| of logits {diff:.1e}, keras {keras.__version__} "
        f"({keras.backend.backend()}), {os.cpu_count()} CPUs")
  rows = [("FrameConv2D (ours)",) + measure(model, clips, labels, _REPEATS.value),
          ("TimeDistributed(Conv2D)",) + measure(unrolled, clips, labels, _REPEATS.value)]
  print(f"| per-frame conv          | train step ms | inference ms, batch 1 | "
        f"inference ms, batch {b} |")
  print("|-------------------------|---------------|-----------------------|"
        "-----------------------|")
  for name, train, infer1, infer in rows:
    print(f"| {name:23} | {train:13.1f} | {infer1:21.2f} | {infer:21.2f} |")
  print(f"FrameConv2D speed-up: train step {rows[1][1] / rows[0][1]:.2f}x, inference "
        f"{rows[1][2] / rows[0][2]:.2f}x (batch 1), {rows[1][3] / rows[0][3]:.2f}x (batch {b})")
  return 0


if __name__ == "__main__":
  app.run(main)
