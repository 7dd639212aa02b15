r"""Benchmark: tsnet_tf.flow.tvl1 presets vs OpenCV DualTVL1, accuracy and speed.

On the same frames, in one run, side by side:
  * OpenCV's `DualTVL1OpticalFlow` (default parameters, `--opencv_threads`
    threads, uint8 grey input, one pair at a time, as it works); skipped
    when cv2 or its optflow contrib module is missing;
  * each preset of ours through the documented call `tvl1(frame0, frame1,
    preset)` on the batch of `--num_pairs` pairs (24 = one 25-frame clip):
    the first call's time (compilation included: the call compiles itself)
    is reported apart from the median of `--repeats` later calls;
  * with `--legacy`, `accurate` as it was before the robustness fixes
    (`tsnet_tf.flow.tvl1.LEGACY`).

Data, EPE against ground truth, mean AND worst pair:
  * a stress set per `--sizes` (W x H): random translations, rotations,
    zooms and smooth fields up to `--max_magnitude` px on analytic and noise
    textures, with real content or black past the frame's edge
    (`tsnet_tf.flow.evaluation.make_stress_set`);
  * the 8 Middlebury "other" training pairs (`--middlebury_dir`);
  * the MPI Sintel `final` pairs with ground truth (`--sintel_dir`: each
    sequence's frame_000N, N+1 and flow/frame_000N.flo, invalid pixels
    excluded).
Ends with the issue's targets, met or missed.

  .venv/bin/python benchmarks/bench_flow.py                  # everything
  .venv/bin/python benchmarks/bench_flow.py --sizes=112x112 --datasets=
  KERAS_BACKEND=jax python benchmarks/bench_flow.py --note="H200, JAX"

Imports no TensorFlow on the JAX backend and no OpenCV unless present.
"""

import json
import os
import time

from absl import flags
import keras
import numpy as np

from tsnet_tf.flow import evaluation
from tsnet_tf.flow import read_flo
from tsnet_tf.flow import tvl1
from tsnet_tf.flow import valid_mask
from tsnet_tf.flow.tvl1 import LEGACY
from tsnet_tf.utils import cli

_SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "..", "shared", "data")

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["112x112", "224x224", "320x240"],
                  "Stress-set frame sizes, WIDTHxHEIGHT.")
flags.DEFINE_list("presets", ["accurate", "fast"], "Presets of ours to test.")
flags.DEFINE_boolean("legacy", True, "Also run `accurate` with the pre-fix "
                     "behaviour (tvl1.LEGACY) on the stress sets.")
flags.DEFINE_integer("num_pairs", 24, "Stress pairs per size (24 = the pairs "
                     "of one 25-frame clip, one batch).")
flags.DEFINE_float("max_magnitude", 16.0, "Largest displacement of the "
                   "stress set, px.")
flags.DEFINE_integer("repeats", 3, "Timed calls after the first (median).")
flags.DEFINE_integer("seed", 0, "Seed of the stress set.")
flags.DEFINE_boolean("opencv", True, "Run OpenCV DualTVL1 too when cv2 with "
                     "the optflow module is importable.")
flags.DEFINE_integer("opencv_threads", 2, "cv2.setNumThreads for OpenCV.")
flags.DEFINE_list("datasets", ["middlebury", "sintel"], "Real benchmarks to "
                  "run (empty: none).")
flags.DEFINE_string("middlebury_dir", os.path.join(_SHARED, "middlebury"),
                    "Middlebury sequences (Seq/frame10.png, frame11.png, "
                    "flow10.flo).")
flags.DEFINE_string("sintel_dir", os.path.join(_SHARED, "sintel"),
                    "Sintel sequences (Seq/final/frame_%04d.png, "
                    "Seq/flow/frame_%04d.flo, Seq/invalid/frame_%04d.png).")
flags.DEFINE_string("real_preset", "accurate", "Preset of ours on Middlebury "
                    "and Sintel.")
flags.DEFINE_string("note", "", "Free text printed with the results "
                    "(machine, load).")
flags.DEFINE_string("output_json", "", "Also write the results here.")


def _opencv():
  return evaluation.load_opencv(FLAGS.opencv_threads) if FLAGS.opencv else None


def opencv_flow(cv2, frame0, frame1):
  """OpenCV DualTVL1 (defaults) pair by pair -> (flow [N,H,W,2], ms/pair)."""
  solver = cv2.optflow.DualTVL1OpticalFlow_create()

  def grey(frame):
    frame = np.asarray(frame, np.uint8)
    if frame.shape[-1] == 1:
      return frame[..., 0]
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

  flows = []
  start = time.perf_counter()
  for a, b in zip(frame0, frame1):
    # uint8: OpenCV reads float input as [0, 1] intensities.
    flows.append(solver.calc(grey(a), grey(b), None))
  ms = 1e3 * (time.perf_counter() - start) / len(frame0)
  return np.stack(flows), ms


def ours_flow(frame0, frame1, preset, repeats, **overrides):
  """The documented call -> (flow, first-call s, median ms per call)."""
  start = time.perf_counter()
  flow = np.asarray(tvl1(frame0, frame1, preset, **overrides))
  first_s = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    flow = np.asarray(tvl1(frame0, frame1, preset, **overrides))
    times.append(time.perf_counter() - start)
  return flow, first_s, 1e3 * float(np.median(times)) if times else None


def _summary(errors, names):
  worst = int(np.argmax(errors))
  return dict(mean_epe=float(np.mean(errors)), worst_epe=float(errors[worst]),
              worst_pair=names[worst])


def bench_stress(width, height, cv2, results):
  frame0, frame1, truth, names = evaluation.make_stress_set(
      height, width, FLAGS.num_pairs, FLAGS.max_magnitude, seed=FLAGS.seed)
  n = len(frame0)
  label = f"{width}x{height}"
  rows = [dict(size=label, method="zero flow", **_summary(
      evaluation.endpoint_errors(np.zeros_like(truth), truth), names))]
  if cv2 is not None:
    flow, ms = opencv_flow(cv2, frame0, frame1)
    rows.append(dict(size=label, method="opencv", ms_per_pair=ms,
                     **_summary(evaluation.endpoint_errors(flow, truth),
                                names)))
  runs = [(preset, preset, {}) for preset in FLAGS.presets]
  if FLAGS.legacy:
    runs.append(("accurate (legacy)", "accurate", LEGACY))
  for method, preset, overrides in runs:
    flow, first_s, ms = ours_flow(frame0, frame1, preset, FLAGS.repeats,
                                  **overrides)
    rows.append(dict(size=label, method=method, first_call_s=first_s,
                     ms_per_pair=ms / n if ms is not None else None,
                     max_flow=float(np.abs(flow).max()),
                     **_summary(evaluation.endpoint_errors(flow, truth),
                                names)))
  for row in rows:
    print(_format_row(row), flush=True)
  results["stress"].extend(rows)


def _format_row(row):
  ms = row.get("ms_per_pair")
  first = row.get("first_call_s")
  return (f"| {row['size']:>7} | {row['method']:<17} | "
          f"{row['mean_epe']:8.3f} | {row['worst_epe']:5.2f} | "
          f"{row['worst_pair']:<31} | "
          + (f"{ms:9.2f} |" if ms is not None else "        - |")
          + (f" {first:12.1f} |" if first is not None else "            - |"))


def _load_rgb(path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return np.asarray(Image.open(path).convert("RGB"))


def _middlebury_pairs(root):
  for seq in sorted(os.listdir(root)):
    path = os.path.join(root, seq)
    try:
      truth = read_flo(os.path.join(path, "flow10.flo"))
      yield (seq, _load_rgb(os.path.join(path, "frame10.png")),
             _load_rgb(os.path.join(path, "frame11.png")), truth,
             valid_mask(truth))
    except (OSError, ValueError) as e:
      print(f"middlebury: skipping {path}: {e}")


def _sintel_pairs(root):
  for seq in sorted(os.listdir(root)):
    flow_dir = os.path.join(root, seq, "flow")
    if not os.path.isdir(flow_dir):
      continue
    for name in sorted(os.listdir(flow_dir)):
      index = int(name.split("_")[1].split(".")[0])
      try:
        truth = read_flo(os.path.join(flow_dir, name))
        frames = [_load_rgb(os.path.join(root, seq, "final",
                                         f"frame_{i:04d}.png"))
                  for i in (index, index + 1)]
        invalid_path = os.path.join(root, seq, "invalid", f"frame_{index:04d}"
                                    ".png")
        mask = valid_mask(truth)
        if os.path.exists(invalid_path):
          from PIL import Image  # pylint: disable=g-import-not-at-top
          mask &= np.asarray(Image.open(invalid_path).convert("L")) == 0
      except (OSError, ValueError) as e:
        print(f"sintel: skipping {seq}/{name}: {e}")
        continue
      yield f"{seq}/{index}", frames[0], frames[1], truth, mask


def bench_real(name, pairs, cv2, results):
  print(f"\n{name} (EPE over valid pixels; ours = {FLAGS.real_preset} "
        "through tvl1(), one pair per call; first call compiles per size)\n")
  print("| sequence    |    size | OpenCV EPE | OpenCV ms | ours EPE | "
        "ours ms | ours first s |")
  print("| :---------- | ------: | ---------: | --------: | -------: | "
        "------: | -----------: |")
  for seq, a, b, truth, mask in pairs:
    row = dict(dataset=name, sequence=seq, size=f"{a.shape[1]}x{a.shape[0]}")
    if cv2 is not None:
      flow, ms = opencv_flow(cv2, a[None], b[None])
      row.update(opencv_epe=evaluation.endpoint_error(flow[0], truth, mask),
                 opencv_ms=ms)
    flow, first_s, ms = ours_flow(a[None].astype(np.float32),
                                  b[None].astype(np.float32),
                                  FLAGS.real_preset, 1)
    row.update(ours_epe=evaluation.endpoint_error(flow[0], truth, mask),
               ours_ms=ms, ours_first_s=first_s)
    cv = (f"{row['opencv_epe']:10.3f} | {row['opencv_ms']:9.0f}"
          if "opencv_epe" in row else "         - |         -")
    print(f"| {seq:<11} | {row['size']:>7} | {cv} | {row['ours_epe']:8.3f} | "
          f"{row['ours_ms']:7.0f} | {first_s:12.1f} |", flush=True)
    results["real"].append(row)


def check_targets(results):
  """Prints each target of issue 15 and whether this run met it."""
  lines = []
  by_size = {}
  for row in results["stress"]:
    by_size.setdefault(row["size"], {})[row["method"]] = row
  targets = {"accurate": (1.1, 0.05, 5.0, True), "fast": (2.0, 0.25, 30.0,
                                                          False)}
  for size, rows in by_size.items():
    cv = rows.get("opencv")
    if cv is None:
      continue
    for preset, (mult, add, speed, worst) in targets.items():
      ours = rows.get(preset)
      if ours is None:
        continue
      bound = mult * cv["mean_epe"] + add
      ratio = cv["ms_per_pair"] / ours["ms_per_pair"]
      line = (f"{size} {preset}: mean EPE {ours['mean_epe']:.3f} <= "
              f"{mult}*{cv['mean_epe']:.3f}+{add} = {bound:.3f}: "
              f"{'met' if ours['mean_epe'] <= bound else 'MISSED'}")
      if worst:
        line += (f"; worst {ours['worst_epe']:.2f} <= OpenCV's worst "
                 f"{cv['worst_epe']:.2f}: "
                 f"{'met' if ours['worst_epe'] <= cv['worst_epe'] else 'MISSED'}")
      line += (f"; speed {ratio:.1f}x OpenCV >= {speed:g}x: "
               f"{'met' if ratio >= speed else 'MISSED'}")
      lines.append(line)
  for name in ("middlebury", "sintel"):
    rows = [r for r in results["real"]
            if r["dataset"] == name and "opencv_epe" in r]
    if not rows:
      continue
    bad = [r["sequence"] for r in rows
           if r["ours_epe"] > 1.1 * r["opencv_epe"] + 0.05]
    lines.append(
        f"{name} {FLAGS.real_preset}: every pair EPE <= 1.1*OpenCV+0.05: "
        f"{'met' if not bad else 'MISSED on ' + ', '.join(bad)} (mean ours "
        f"{np.mean([r['ours_epe'] for r in rows]):.3f}, OpenCV "
        f"{np.mean([r['opencv_epe'] for r in rows]):.3f})")
  print("\nTargets (issue 15):")
  for line in lines:
    print("  " + line)
  results["targets"] = lines


def main(argv):
  del argv
  cv2 = _opencv()
  results = dict(stress=[], real=[], backend=keras.backend.backend(),
                 note=FLAGS.note)
  print(f"keras backend: {keras.backend.backend()}  {FLAGS.note}")
  print(f"OpenCV DualTVL1: "
        f"{'defaults, %d threads, pair by pair' % FLAGS.opencv_threads if cv2 else 'not available (skipped)'}")
  if FLAGS.sizes:
    print(f"stress set: {FLAGS.num_pairs} pairs per size, motions up to "
          f"{FLAGS.max_magnitude:g} px, seed {FLAGS.seed}; ours through "
          f"tvl1() on the whole batch, median of {FLAGS.repeats} calls after "
          "the first\n")
    print("|    size | method            | mean EPE | worst | worst pair   "
          "                   | ms / pair | first call s |")
    print("| ------: | :---------------- | -------: | ----: | :------------"
          "------------------ | --------: | -----------: |")
  for size in FLAGS.sizes:
    width, height = (int(v) for v in size.lower().split("x"))
    bench_stress(width, height, cv2, results)
  if "middlebury" in FLAGS.datasets and os.path.isdir(FLAGS.middlebury_dir):
    bench_real("middlebury", _middlebury_pairs(FLAGS.middlebury_dir), cv2,
               results)
  if "sintel" in FLAGS.datasets and os.path.isdir(FLAGS.sintel_dir):
    bench_real("sintel", _sintel_pairs(FLAGS.sintel_dir), cv2, results)
  check_targets(results)
  if FLAGS.output_json:
    from tsnet_tf.utils import io  # pylint: disable=g-import-not-at-top
    with io.atomic_write(FLAGS.output_json) as tmp:
      with open(tmp, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
  cli.run(main)
