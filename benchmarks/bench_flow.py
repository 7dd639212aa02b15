"""Benchmark: OpenCV DualTVL1 vs tsnet_tf.flow.tvl1 presets, accuracy and speed.

On the same frames, side by side: OpenCV's `DualTVL1OpticalFlow` (default
parameters, `--opencv_threads` threads, one pair at a time, as it works) and
each preset of ours, compiled (XLA: `tf.function(jit_compile=True)` on the
TensorFlow backend, `jax.jit` on JAX) on the batch of the 24 pairs of one
25-frame clip. Reports mean endpoint error (EPE) against ground truth and
milliseconds per frame pair, at each `--sizes`, on synthetic pairs with known
smooth flows (benchmarks/_flow_data.py: translation, rotation, zoom, random
smooth fields, up to 12 px), and per pair on the Middlebury "other" training
sequences when `--middlebury_dir` exists. Ends with the targets, met or not.

  .venv/bin/python benchmarks/bench_flow.py
  KERAS_BACKEND=jax python benchmarks/bench_flow.py --opencv=false \
      --backend_note="H100, JAX"

TensorFlow is imported only on the TensorFlow backend, so the JAX run needs
no TensorFlow.
"""

import json
import os
import sys
import time

from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import _flow_data
import keras
from tsnet_tf.flow import read_flo
from tsnet_tf.flow import tvl1
from tsnet_tf.flow import valid_mask
from tsnet_tf.utils import cli

_DEFAULT_MIDDLEBURY = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
    "shared", "data", "middlebury")

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["112", "224"], "Square frame sizes to test.")
flags.DEFINE_list("presets", ["accurate", "fast"], "Presets of ours to test.")
flags.DEFINE_integer("num_pairs", 24, "Pairs per batch (24 = one 25-frame "
                     "clip).")
flags.DEFINE_integer("repeats", 5, "Timed runs per preset and size (the "
                     "median is reported); one untimed compile run first.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic pairs.")
flags.DEFINE_boolean("opencv", True, "Also run OpenCV DualTVL1 (needs cv2 "
                     "with the optflow contrib module).")
flags.DEFINE_integer("opencv_threads", 2, "cv2.setNumThreads for OpenCV.")
flags.DEFINE_string("middlebury_dir", _DEFAULT_MIDDLEBURY,
                    "Middlebury sequences (Seq/frame10.png, frame11.png, "
                    "flow10.flo); skipped when missing or empty string.")
flags.DEFINE_string("middlebury_preset", "accurate", "Preset of ours run on "
                    "Middlebury ('' to skip Middlebury).")
flags.DEFINE_string("backend_note", "", "Free text printed with the results "
                    "(machine, backend).")
flags.DEFINE_string("output_json", "", "Also write the results here.")


def compile_preset(preset, **overrides):
  """Returns a compiled `(frame0, frame1) -> numpy flow` for the backend."""
  backend = keras.backend.backend()
  if backend == "tensorflow":
    import tensorflow as tf
    fn = tf.function(lambda a, b: tvl1(a, b, preset, **overrides),
                     jit_compile=True)
    return lambda a, b: fn(a, b).numpy()
  if backend == "jax":
    import jax
    fn = jax.jit(lambda a, b: tvl1(a, b, preset, **overrides))
    return lambda a, b: np.asarray(jax.block_until_ready(fn(a, b)))
  raise ValueError(f"--backend: no compiled path for keras backend "
                   f"{backend!r}; use tensorflow or jax")


def time_ours(fn, frame0, frame1, repeats):
  """(flow, compile_s, median_ms_per_batch) of a compiled preset."""
  start = time.perf_counter()
  flow = fn(frame0, frame1)
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    flow = fn(frame0, frame1)
    times.append(time.perf_counter() - start)
  return flow, compile_s, 1e3 * float(np.median(times))


def opencv_flow(frame0, frame1, threads):
  """OpenCV DualTVL1 (defaults) pair by pair; (flow [N,H,W,2], ms per pair)."""
  import cv2
  cv2.setNumThreads(threads)
  solver = cv2.optflow.DualTVL1OpticalFlow_create()
  grey = lambda f: (f[..., 0] if f.shape[-1] == 1 else cv2.cvtColor(
      f, cv2.COLOR_RGB2GRAY)).astype(np.uint8)
  flows = []
  start = time.perf_counter()
  for a, b in zip(frame0, frame1):
    # uint8: OpenCV reads float input as [0, 1] intensities.
    flows.append(solver.calc(grey(a), grey(b), None))
  ms = 1e3 * (time.perf_counter() - start) / len(frame0)
  return np.stack(flows), ms


def bench_synthetic(size, results):
  frame0, frame1, truth = _flow_data.make_batch(
      size=size, num_pairs=FLAGS.num_pairs, seed=FLAGS.seed)
  n = len(frame0)
  rows = []
  zero_epe = _flow_data.endpoint_error(np.zeros_like(truth), truth)
  rows.append(dict(size=size, method="zero flow", epe=zero_epe))
  if FLAGS.opencv:
    flow, ms = opencv_flow(frame0, frame1, FLAGS.opencv_threads)
    rows.append(dict(size=size, method="opencv", epe=_flow_data.endpoint_error(
        flow, truth), ms_per_pair=ms))
  for preset in FLAGS.presets:
    fn = compile_preset(preset)
    flow, compile_s, ms = time_ours(fn, frame0, frame1, FLAGS.repeats)
    rows.append(dict(size=size, method=preset,
                     epe=_flow_data.endpoint_error(flow, truth),
                     ms_per_pair=ms / n, compile_s=compile_s))
  for row in rows:
    print(_format_row(row), flush=True)
  results["synthetic"].extend(rows)


def _load_middlebury(root):
  from PIL import Image
  pairs = {}
  for seq in sorted(os.listdir(root)):
    path = os.path.join(root, seq)
    try:
      a = np.asarray(Image.open(os.path.join(path, "frame10.png")).convert(
          "RGB"))
      b = np.asarray(Image.open(os.path.join(path, "frame11.png")).convert(
          "RGB"))
      truth = read_flo(os.path.join(path, "flow10.flo"))
    except (OSError, ValueError) as e:
      print(f"middlebury: skipping {path}: {e}")
      continue
    pairs[seq] = (a, b, truth)
  return pairs


def bench_middlebury(results):
  root = FLAGS.middlebury_dir
  if not FLAGS.middlebury_preset:
    print("middlebury: skipped (--middlebury_preset is empty)")
    return
  if not root or not os.path.isdir(root):
    print(f"middlebury: skipped (no directory {root!r})")
    return
  pairs = _load_middlebury(root)
  compiled = {}
  for seq, (a, b, truth) in pairs.items():
    mask = valid_mask(truth)
    row = dict(sequence=seq, size=f"{a.shape[1]}x{a.shape[0]}")
    if FLAGS.opencv:
      flow, ms = opencv_flow(a[None], b[None], FLAGS.opencv_threads)
      row.update(opencv_epe=_flow_data.endpoint_error(flow[0], truth, mask),
                 opencv_ms=ms)
    # One compiled function per frame size (shapes are static).
    fn = compiled.setdefault(a.shape, compile_preset(FLAGS.middlebury_preset))
    a32, b32 = a[None].astype(np.float32), b[None].astype(np.float32)
    flow, _, ms = time_ours(fn, a32, b32, 1)
    row.update(ours_epe=_flow_data.endpoint_error(flow[0], truth, mask),
               ours_ms=ms)
    print(_format_mb_row(row), flush=True)
    results["middlebury"].append(row)


def _format_row(row):
  ms = row.get("ms_per_pair")
  compile_s = row.get("compile_s")
  return (f"| {row['size']:>4} | {row['method']:<9} | {row['epe']:6.3f} | "
          + (f"{ms:9.2f} |" if ms is not None else "        - |")
          + (f" {compile_s:7.1f} |" if compile_s is not None else "       - |"))


def _format_mb_row(row):
  cv = (f"{row['opencv_epe']:6.3f} | {row['opencv_ms']:8.0f}"
        if "opencv_epe" in row else "     - |        -")
  return (f"| {row['sequence']:<11} | {row['size']:>7} | {cv} | "
          f"{row['ours_epe']:6.3f} | {row['ours_ms']:8.0f} |")


def check_targets(results):
  """Prints each target of issue 3 and whether this run met it."""
  lines = []
  by_size = {}
  for row in results["synthetic"]:
    by_size.setdefault(row["size"], {})[row["method"]] = row
  targets = {"accurate": (1.1, 0.05, 3.0), "fast": (2.0, 0.25, 30.0)}
  for size, rows in sorted(by_size.items()):
    cv = rows.get("opencv")
    if cv is None:
      continue
    for preset, (mult, add, speed) in targets.items():
      if preset not in rows:
        continue
      ours = rows[preset]
      epe_ok = ours["epe"] <= mult * cv["epe"] + add
      ratio = cv["ms_per_pair"] / ours["ms_per_pair"]
      lines.append(
          f"{size}px {preset}: EPE {ours['epe']:.3f} <= {mult}*{cv['epe']:.3f}"
          f"+{add} = {mult * cv['epe'] + add:.3f}: "
          f"{'met' if epe_ok else 'MISSED'}; throughput {ratio:.1f}x OpenCV "
          f">= {speed}x: {'met' if ratio >= speed else 'MISSED'}")
  mb = [r for r in results["middlebury"] if "opencv_epe" in r]
  if mb:
    bad = [r["sequence"] for r in mb
           if r["ours_epe"] > 1.1 * r["opencv_epe"] + 0.05]
    lines.append(
        f"middlebury {FLAGS.middlebury_preset}: per-pair EPE <= "
        f"1.1*OpenCV+0.05: {'met' if not bad else 'MISSED on ' + ', '.join(bad)}"
        f" (mean ours {np.mean([r['ours_epe'] for r in mb]):.3f}, OpenCV "
        f"{np.mean([r['opencv_epe'] for r in mb]):.3f})")
  print("\nTargets (issue 3):")
  for line in lines:
    print("  " + line)
  results["targets"] = lines


def main(argv):
  del argv
  results = dict(synthetic=[], middlebury=[], backend=keras.backend.backend(),
                 note=FLAGS.backend_note)
  print(f"keras backend: {keras.backend.backend()}  {FLAGS.backend_note}")
  print(f"synthetic: {FLAGS.num_pairs} pairs per batch, flows up to 12 px; "
        f"OpenCV DualTVL1 defaults, {FLAGS.opencv_threads} threads, "
        "pair by pair; ours compiled, whole batch; median of "
        f"{FLAGS.repeats} runs\n")
  print("| size | method    |    EPE | ms / pair | compile s |")
  print("| ---: | :-------- | -----: | --------: | --------: |")
  for size in FLAGS.sizes:
    bench_synthetic(int(size), results)
  if FLAGS.middlebury_dir and FLAGS.middlebury_preset:
    print(f"\nMiddlebury (EPE over known pixels; ours = "
          f"{FLAGS.middlebury_preset}, one pair per call)\n")
    print("| sequence    |    size | OpenCV EPE |  OpenCV ms | ours EPE |"
          "  ours ms |")
    print("| :---------- | ------: | ---------: | ---------: | -------: |"
          " -------: |")
  bench_middlebury(results)
  check_targets(results)
  if FLAGS.output_json:
    from tsnet_tf.utils import io
    with io.atomic_write(FLAGS.output_json) as tmp:
      with open(tmp, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
  cli.run(main)
