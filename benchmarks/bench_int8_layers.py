"""Benchmark: where int8 TFLite beats float32 on this CPU, layer by layer.

`bench_inference.py` times whole students; this script explains its int8
column. Each row is one convolution as the edge twin (`tsnet_tf/export/edge.py`)
hands it to TFLite, at a clip of T = 16 frames of 112 x 112 (time folded into
the batch), converted twice from the same random weights, float32 and
full-integer int8 (per-channel weights, calibrated on random inputs), and run
side by side with LiteRT's default XNNPACK delegate. Two stacked copies of the
conv are timed so that the int8 model's input/output conversions are a small
part of the work.

The rows span the reduction size K = kh * kw * C_in of the networks we ship:
the light (2+1)D backbone at width 16 (K = 27 ... 288), the same at width 32,
and R3D-18, whose 3x3x3 convolutions become 3x3 Conv2Ds over 3 * C stacked
temporal taps (K = 1,728 ... 6,912). On a CPU without int8 dot-product
instructions (AVX-VNNI / AVX512-VNNI), XNNPACK's int8 kernels widen int8 to
int16 and multiply-add pairs, which is roughly the throughput of float32 FMA:
int8 then pays only where K is large enough to amortise requantisation.

  .venv/bin/python benchmarks/bench_int8_layers.py
  .venv/bin/python benchmarks/bench_int8_layers.py --threads=1 --repeats=20
"""

import contextlib
import io
import os
import sys

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import tensorflow as tf

from tsnet_tf.utils.timing import median_ms
from tsnet_tf.export import tflite as tfl
from tsnet_tf.models import flops

FLAGS = flags.FLAGS
flags.DEFINE_integer("frames", 16, "T: frames folded into the batch of every layer "
                     "(a multiple of 4: later stages run on T/2 and T/4).", lower_bound=4)
flags.register_validator("frames", lambda t: t % 4 == 0,
                         message="--frames must be a multiple of 4 (stages 2-3 use T/2, T/4)")
flags.DEFINE_integer("repeats", 15, "Timed runs per model (median); one warm-up first.")
flags.DEFINE_integer("threads", 0, "TFLite threads (0: os.cpu_count()).")

# (network, layer, H = W of the input, C_in, C_out, (kh, kw), stride, frames divisor):
# the shapes the edge twin produces for a 16 x 112 x 112 clip.
LAYERS = (
    ("light w16", "stem spatial 3x3/2", 112, 3, 16, (3, 3), 2, 1),
    ("light w16", "temporal 3x1 (T x HW)", None, 16, 16, (3, 1), 1, 1),
    ("light w16", "stage1 spatial 3x3", 56, 16, 16, (3, 3), 1, 1),
    ("light w16", "stage2 spatial 3x3", 28, 32, 32, (3, 3), 1, 1),
    ("light w32", "stage1 spatial 3x3", 56, 32, 32, (3, 3), 1, 1),
    ("light w32", "stage3 spatial 3x3", 14, 128, 128, (3, 3), 1, 2),
    ("r3d18 w32", "stage1 3x3x3 (3C taps)", 56, 96, 32, (3, 3), 1, 1),
    ("r3d18 w64", "stage1 3x3x3 (3C taps)", 56, 192, 64, (3, 3), 1, 1),
    ("r3d18 w64", "stage3 3x3x3 (3C taps)", 14, 768, 256, (3, 3), 1, 4),
)


def _layer_model(h, c_in, c_out, kernel, stride, batch, frames):
  """Two stacked copies of the conv (the second at stride 1, c_out -> c_out)."""
  if h is None:  # temporal (3, 1) conv over [1, T, H*W, C] (light blocks at 56 x 56)
    inp = keras.Input((frames, 56 * 56, c_in), batch_size=1)
  else:
    inp = keras.Input((h, h, c_in), batch_size=batch)
  y = keras.layers.Conv2D(c_out, kernel, stride, padding="same", activation="relu")(inp)
  y = keras.layers.Conv2D(c_out, kernel, 1, padding="same", activation="relu")(y)
  return keras.Model(inp, y)


def _macs(model):
  """Multiply-adds of one call of `model`, its whole (fixed) batch included."""
  return flops.count_flops(model) // 2 * model.input_shape[0]


def _convert(model, int8):
  conv = tf.lite.TFLiteConverter.from_keras_model(model)
  if int8:
    shape = tuple(model.input_shape)
    rng = np.random.default_rng(0)

    def rep():
      for _ in range(3):
        yield [rng.uniform(0, 1, shape).astype(np.float32)]

    # The shipped recipe (tools/convert_tflite.py), with int8 rather than
    # uint8 pixels in and int8 out: a lone layer has neither pixels nor logits.
    tfl._configure(conv, "int8", rep)  # pylint: disable=protected-access
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
  with contextlib.redirect_stdout(io.StringIO()):
    return conv.convert()


def time_tflite(flatbuffer, threads, repeats):
  """Median ms of one inference (LiteRT, default delegates), after a warm-up."""
  from ai_edge_litert.interpreter import Interpreter
  runner = Interpreter(model_content=flatbuffer, num_threads=threads).get_signature_runner()
  name, detail = next(iter(runner.get_input_details().items()))
  x = np.zeros(detail["shape"], detail["dtype"])
  return median_ms(lambda: runner(**{name: x}), repeats, warmup=1)


def main(argv):
  del argv
  threads = FLAGS.threads or os.cpu_count()
  print(f"LiteRT XNNPACK, {threads} thread(s), T = {FLAGS.frames}, median of {FLAGS.repeats}")
  header = ("| network   | layer (x2)              |     K | GMAC  | fp32 ms | int8 ms "
            "| int8 speed-up |")
  print(header)
  print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
  for net, name, h, c_in, c_out, kernel, stride, divisor in LAYERS:
    frames = FLAGS.frames // divisor
    model = _layer_model(h, c_in, c_out, kernel, stride, frames, frames)
    ms = {q: time_tflite(_convert(model, q == "int8"), threads, FLAGS.repeats)
          for q in ("fp32", "int8")}
    k = kernel[0] * kernel[1] * c_in
    print(f"| {net:9} | {name:23} | {k:5d} | {_macs(model) / 1e9:5.2f} | {ms['fp32']:7.2f} "
          f"| {ms['int8']:7.2f} | {ms['fp32'] / ms['int8']:12.2f}x |", flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
