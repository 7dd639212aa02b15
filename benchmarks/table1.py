"""The paper's Table 1 on three benchmarks, several seeds, choices on validation, test once.

  python benchmarks/table1.py --work_dir=/tmp/t1 [--benchmarks=appearance_motion,footage,motion]
      [--seeds=0,1,2] [--lambdas=0,10,30] [--fusions=mean,geometric]

Benchmarks (HMDB51 layout, so every tool runs on them unchanged; each with
train / validation / test, validation held out of the training list by
tools/prepare_hmdb51.py):
  appearance_motion  generated: object colour (red, green, blue) x direction
                     (move_left, move_right), 6 classes. A frame tells the
                     colour, only motion the direction: rgb and flow are each
                     partly right, as on HMDB51.
  footage            real clips (../shared/data/video, every video) x playback
                     direction (forwards / backwards), 20 classes, temporally
                     disjoint windows (tools/make_footage_set.py).
  motion             generated, classes differ only by motion (4 classes).

With --stored_flow (the default) each benchmark is converted with the
teacher's TV-L1 flow stored in its TFRecords, and the teacher and the
student's Eq. 7 train from it (model.flow.source=stored): the saved models are
the same, RGB clips in and TV-L1 in the graph, and every evaluation runs them
so; only the training steps skip the flow.

For each benchmark and seed (the data are the same for every seed; the seed
changes initialisation, sampling and augmentation):
1. Trains `rgb`, `flow` (the teacher) and, for each lambda > 0 of --lambdas, a
   `student` (Eq. 7 against that teacher), all with --config.
2. Chooses the student's lambda on the validation subset (video accuracy;
   lambda = 0 is the rgb run itself: a student that distillation would make
   worse than rgb on validation is not distilled).
3. Chooses the two-stream late-fusion rule among --fusions on the validation
   subset (video accuracy of the fused rgb and flow runs; ties go to `mean`,
   the classic rule): `mean` of the softmax or `geometric` (normalised
   product, tsnet_tf.layers.LateFusion).
4. Evaluates rgb, flow, two-stream (late fusion, the chosen rule) and the
   chosen student on the test subset, once (tsnet_tf.comparison, as
   tools/results_table.py), and times them (batch-1 TF and float32 TFLite ms,
   GFLOPs) on the first seed.

Prints, per benchmark, every seed's rows and the mean ± std over seeds, the
lambda and fusion rule chosen per seed, the targets of issue #12, and writes
everything to --work_dir/table1.{md,json}. A seed's record.json is reused as
it stands; records written before the fusion choice existed count as `mean`
(delete a seed's record.json to redo its choices and test evaluation; its
trained runs are reused).
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_VIDEO = os.path.join(os.path.dirname(REPO), "shared", "data", "video")

BENCHMARKS = ("appearance_motion", "footage", "motion")
# Per-benchmark budget chosen on validation (docs/training.md): on motion only the
# student needs 60 epochs to learn motion from RGB (45 % -> 95 % on validation);
# rgb gets the same budget so the comparison stays fair. Applied before
# --params_override.
BENCHMARK_OVERRIDES = {
    "motion": "stages.rgb.train.epochs=60,stages.student.train.epochs=60",
}
_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/tsnet_table1", "Datasets and runs go here "
                                "(reused: trained runs are not retrained).")
_CONFIG = flags.DEFINE_string("config", os.path.join(REPO, "configs", "table1.yaml"),
                              "Training config (all stages).")
_BENCHMARKS = flags.DEFINE_list("benchmarks", list(BENCHMARKS),
                                f"Benchmarks to run, of: {', '.join(BENCHMARKS)}.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Training seeds.")
_LAMBDAS = flags.DEFINE_list("lambdas", ["0", "10", "30"], "Student lambdas chosen among on "
                             "validation; 0 stands for the rgb run (no distillation).")
# tsnet_tf.config.FUSION_MODES, spelled out: this script puts the repo on sys.path in main().
FUSIONS = ("mean", "geometric")
_FUSIONS = flags.DEFINE_list("fusions", list(FUSIONS),
                             "Two-stream late-fusion rules chosen among on validation, of: "
                             f"{', '.join(FUSIONS)}.")
_PARAMS_OVERRIDE = flags.DEFINE_string("params_override", "",
                                       "Config overrides for every stage (see tools/train.py).")
_VIDEOS_PER_CLASS = flags.DEFINE_integer("videos_per_class", 40,
                                         "Generated videos per class.")
_FOOTAGE_DIR = flags.DEFINE_string("footage_dir", SHARED_VIDEO, "Real videos for `footage`.")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Clips per video (validation and test).")
_STORED_FLOW = flags.DEFINE_boolean(
    "stored_flow", True, "Convert each benchmark with the teacher's TV-L1 flow stored in the "
    "TFRecords (its preset and bound, data.frame_stride) and train the teacher and the "
    "student's Eq. 7 from it (model.flow.source=stored): the same models, evaluated with "
    "TV-L1 in the graph, without the flow in every training step.")
_TIMING_RUNS = flags.DEFINE_integer("timing_runs", 10, "Timed batch-1 inferences per model "
                                    "(first seed of each benchmark).")


def _run_tool(args):
  cmd = [sys.executable] + args
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True, cwd=REPO)


# Stages whose training steps read the stored flow under --stored_flow.
_STORED_FLOW_STAGES = ("teacher", "student")


def _load_config(stage, benchmark, extra=""):
  """--config for `stage` with the benchmark's, --params_override's and `extra` overrides."""
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  override = [o for o in (BENCHMARK_OVERRIDES.get(benchmark, ""), _PARAMS_OVERRIDE.value, extra)
              if o]
  if _STORED_FLOW.value and stage in _STORED_FLOW_STAGES:
    override.append("model.flow.source=stored")
  return config_lib.load_config(_CONFIG.value, stage, ",".join(override))


def stored_flow_flags(flow_cfg, frame_stride: int):
  """tools/prepare_hmdb51.py flags storing the flow a teacher with `flow_cfg` trains on."""
  if flow_cfg.overrides:
    raise app.UsageError("--stored_flow: the teacher's model.flow.overrides cannot be stored "
                         "(prepare_hmdb51.py stores presets); pass --nostored_flow")
  return [f"--flow_preset={flow_cfg.preset}", f"--flow_stride={frame_stride}",
          f"--flow_bound={flow_cfg.bound}"]


def conversion_flow_flags(benchmark: str):
  """The benchmark's stored-flow conversion flags under --stored_flow, else none."""
  if not _STORED_FLOW.value:
    return []
  teacher = _load_config("teacher", benchmark)
  return stored_flow_flags(teacher.model.flow, teacher.data.frame_stride)


def make_data(benchmark: str, root: str) -> str:
  """Generates and converts a benchmark's dataset with the real tools (reused if present)."""
  videos = os.path.join(root, "videos")
  data_dir = os.path.join(root, "data")
  synthetic = ["--videos_per_class=%d" % _VIDEOS_PER_CLASS.value, "--seed=0", "--height=64",
               "--width=80", "--min_seconds=1", "--max_seconds=1.5", "--num_workers=2"]
  if not os.path.isdir(videos):
    if benchmark == "appearance_motion":
      _run_tool(["tools/make_synthetic.py", f"--output_dir={videos}", "--num_classes=2",
                 "--appearances=red,green,blue"] + synthetic)
    elif benchmark == "motion":
      _run_tool(["tools/make_synthetic.py", f"--output_dir={videos}", "--num_classes=4"]
                + synthetic)
    else:
      _run_tool(["tools/make_footage_set.py", f"--video_dir={_FOOTAGE_DIR.value}",
                 f"--output_dir={videos}", "--factor=direction"])
  if not os.path.isfile(os.path.join(data_dir, "summary.json")):
    # Generated frames are stored as made (64x80); real footage at 72 px, the
    # same scale for a 64x64 crop.
    short_side = "72" if benchmark == "footage" else "0"
    _run_tool(["tools/prepare_hmdb51.py", f"--video_dir={os.path.join(videos, 'videos')}",
               f"--split_dir={os.path.join(videos, 'splits')}", f"--output_dir={data_dir}",
               "--splits=1", f"--short_side={short_side}", "--num_workers=2"]
              + conversion_flow_flags(benchmark))
  elif _STORED_FLOW.value:
    check_reused_data(benchmark, data_dir)
  return data_dir


def check_reused_data(benchmark: str, data_dir: str) -> None:
  """Refuses, in one line and before any training, a reused conversion without the stored
  flow the teacher trains on (e.g. a work dir from before --stored_flow)."""
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import stored_flow  # pylint: disable=g-import-not-at-top
  teacher = _load_config("teacher", benchmark)
  flow = teacher.model.flow
  try:
    stored_flow.check_summary(pipeline.load_summary(data_dir), data_dir, flow.preset, flow.bound,
                              teacher.data.frame_stride, flow.overrides)
  except stored_flow.StoredFlowError as e:
    raise app.UsageError(f"{e}. Convert it again into a new --work_dir, or pass "
                         "--nostored_flow") from None


def _train(stage, run_dir, data_dir, seed, teacher_dir=None, extra="", benchmark=""):
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  if os.path.isfile(os.path.join(run_dir, trainer.MODEL_FILE)):
    return None
  seeds = f"train.seed={seed},data.shuffle_seed={seed}"
  cfg = _load_config(stage, benchmark, ",".join(o for o in (extra, seeds) if o))
  start = time.time()
  print(f"== train {stage} -> {run_dir}", flush=True)
  trainer.train(cfg, stage, run_dir, data_dir, teacher_dir=teacher_dir, verbose=2)
  return time.time() - start


def record_fusion(record):
  """The two-stream fusion rule of a seed's record (`mean` for records that predate it)."""
  return record.get("chosen_fusion", "mean")


def run_seed(benchmark, data_dir, seed, out, timing_runs, fusions=("mean",)):
  """Trains, chooses lambda and fusion on validation, evaluates on test; returns the record."""
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  runs = {name: os.path.join(out, name) for name in ("rgb", "flow")}
  seconds = {"rgb": _train("rgb", runs["rgb"], data_dir, seed, benchmark=benchmark),
             "flow": _train("teacher", runs["flow"], data_dir, seed, benchmark=benchmark)}
  validation = {}
  candidates = {}
  for lam in _LAMBDAS.value:
    if float(lam) == 0:
      candidates[lam] = runs["rgb"]
      continue
    run_dir = os.path.join(out, f"student_lambda{lam}")
    seconds[f"student_lambda{lam}"] = _train("student", run_dir, data_dir, seed,
                                             teacher_dir=runs["flow"],
                                             extra=f"distill.lambda={lam}",
                                             benchmark=benchmark)
    candidates[lam] = run_dir
  for lam, run_dir in candidates.items():
    row, = comparison.compare({"rgb": run_dir}, data_dir,
                              os.path.join(out, "validation", f"lambda{lam}"),
                              num_clips=_NUM_CLIPS.value, timing_runs=0, subset="validation")
    validation[lam] = row["video_accuracy"]
  # Highest validation accuracy; ties go to the larger lambda (the method).
  chosen = max(validation, key=lambda lam: (validation[lam], float(lam)))
  runs["student"] = candidates[chosen]
  # Highest validation accuracy of the fused rgb + flow; ties go to mean.
  fusion_validation = comparison.validate_fusions(
      runs["rgb"], runs["flow"], data_dir, os.path.join(out, "validation"), fusions,
      num_clips=_NUM_CLIPS.value)
  fusion = comparison.choose_fusion(fusion_validation)
  rows = comparison.compare(runs, data_dir, os.path.join(out, "test"),
                            num_clips=_NUM_CLIPS.value, timing_runs=timing_runs,
                            tflite=bool(timing_runs), fusion=fusion)
  caption = comparison.describe_protocol(runs, _NUM_CLIPS.value, split=1)
  comparison.write_results(rows, caption, os.path.join(out, "test"))
  return {"benchmark": benchmark, "seed": seed, "validation_video_accuracy": validation,
          "chosen_lambda": float(chosen), "validation_fusion_accuracy": fusion_validation,
          "chosen_fusion": fusion, "rows": rows, "train_seconds": seconds}


def summarize(records):
  """Mean and std (over seeds) of each row's video accuracy, per benchmark."""
  summary = {}
  for rec in records:
    bench = summary.setdefault(rec["benchmark"], {})
    for row in rec["rows"]:
      bench.setdefault(row["model"], []).append(row["video_accuracy"])
  return {b: {m: (float(np.mean(v)), float(np.std(v)), len(v)) for m, v in rows.items()}
          for b, rows in summary.items()}


def check_targets(records, summary):
  """Issue #12's targets, one line each: 'met' or 'MISSED' with the numbers."""
  lines = []

  def line(ok, text):
    lines.append(f"- [{'met' if ok else 'MISSED'}] {text}")

  for bench, rows in summary.items():
    mean = {m: 100 * v[0] for m, v in rows.items()}
    if bench in ("appearance_motion", "footage"):
      best_single = max(mean["rgb"], mean["flow"])
      line(mean["twostream"] >= best_single + 5,
           f"{bench}: two-stream {mean['twostream']:.1f} >= max(rgb, flow) + 5 = "
           f"{best_single + 5:.1f}")
      line(mean["student"] >= mean["twostream"] - 2,
           f"{bench}: student {mean['student']:.1f} >= two-stream - 2 = "
           f"{mean['twostream'] - 2:.1f}")
      line(mean["student"] >= mean["rgb"] + 15,
           f"{bench}: student {mean['student']:.1f} >= rgb + 15 = {mean['rgb'] + 15:.1f}")
    if bench == "motion":
      line(mean["student"] >= 0.9 * mean["flow"],
           f"motion: student {mean['student']:.1f} >= 0.9 x teacher = {0.9 * mean['flow']:.1f}")
  # Cost: the student >= 10x cheaper than flow and two-stream in GFLOPs and TFLite ms,
  # on each benchmark's timed seed (the first).
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  for bench in summary:
    timed = next((r for r in records if r["benchmark"] == bench
                  and r["rows"][0].get("tflite_ms_per_clip") is not None), None)
    if timed is None:
      continue
    ratios = comparison.cost_ratios(timed["rows"])
    for other in ("flow", "twostream"):
      for key, what in (("gflops_per_clip", "GFLOPs"), ("tflite_ms_per_clip", "TFLite ms")):
        x = ratios.get(other, {}).get(key)
        if x is not None:
          line(x >= 10, f"{bench} seed {timed['seed']}: student {x:.1f}x cheaper than {other} "
                        f"in {what} >= 10x")
  for rec in records:
    acc = {r["model"]: 100 * r["video_accuracy"] for r in rec["rows"]}
    line(acc["student"] >= acc["rgb"] - 1,
         f"{rec['benchmark']} seed {rec['seed']}: student {acc['student']:.1f} >= rgb - 1 = "
         f"{acc['rgb'] - 1:.1f} (lambda {rec['chosen_lambda']:g})")
  return "\n".join(lines)


def format_report(records, summary):
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  out = []
  for bench in summary:
    recs = [r for r in records if r["benchmark"] == bench]
    n = recs[0]["rows"][0]["num_videos"]
    out.append(f"### {bench}: test video accuracy, mean ± std over {len(recs)} seeds "
               f"({n} test videos)")
    out.append("")
    seeds = " | ".join(f"seed {r['seed']}" for r in recs)
    out.append(f"| model | mean ± std | {seeds} |")
    out.append("| --- | ---: |" + " ---: |" * len(recs))
    for model in comparison.ROWS:
      mean, std, _ = summary[bench][model]
      per_seed = " | ".join(
          f"{100 * next(x for x in r['rows'] if x['model'] == model)['video_accuracy']:.1f}"
          for r in recs)
      out.append(f"| {comparison.LABELS[model]} | {100 * mean:.1f} ± {100 * std:.1f} | "
                 f"{per_seed} |")
    chosen = ", ".join(f"seed {r['seed']}: {r['chosen_lambda']:g}" for r in recs)
    out.append(f"\nstudent lambda chosen on validation: {chosen}")
    fusions = ", ".join(f"seed {r['seed']}: {record_fusion(r)}" for r in recs)
    out.append(f"two-stream fusion rule chosen on validation: {fusions}")
    timed = next((r for r in recs if r["rows"][0]["ms_per_clip"] is not None), None)
    if timed is not None:
      out.append("\n" + comparison.format_table(timed["rows"], f"costs (seed {timed['seed']})"))
      out.append(comparison.format_ratios(timed["rows"]))
    out.append("")
  return "\n".join(out)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  unknown = [b for b in _BENCHMARKS.value if b not in BENCHMARKS]
  if unknown:
    raise app.UsageError(f"--benchmarks: unknown {unknown}; known: {', '.join(BENCHMARKS)}")
  unknown = [f for f in _FUSIONS.value if f not in FUSIONS]
  if unknown or not _FUSIONS.value:
    raise app.UsageError(f"--fusions: give rules among {', '.join(FUSIONS)}"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
  for bench in _BENCHMARKS.value:
    conversion_flow_flags(bench)  # a teacher whose flow cannot be stored stops here, before any work
  from tsnet_tf.utils.io import atomic_write  # pylint: disable=g-import-not-at-top
  work_dir = _WORK_DIR.value
  os.makedirs(work_dir, exist_ok=True)
  t0 = time.time()
  records = []
  for bench in _BENCHMARKS.value:
    data_dir = make_data(bench, os.path.join(work_dir, bench))
    for i, seed in enumerate(int(s) for s in _SEEDS.value):
      out = os.path.join(work_dir, bench, f"seed{seed}")
      record_path = os.path.join(out, "record.json")
      if os.path.isfile(record_path):
        with open(record_path, encoding="utf-8") as f:
          records.append(json.load(f))
        continue
      record = run_seed(bench, data_dir, seed, out, _TIMING_RUNS.value if i == 0 else 0,
                        fusions=_FUSIONS.value)
      with atomic_write(record_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
          json.dump(record, f, indent=1)
      records.append(record)
      print(f"[{time.time() - t0:.0f} s] {bench} seed {seed} done", flush=True)
  summary = summarize(records)
  report = format_report(records, summary)
  targets = check_targets(records, summary)
  text = f"{report}\nTargets (issue #12):\n{targets}\n"
  with atomic_write(os.path.join(work_dir, "table1.md")) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
  with atomic_write(os.path.join(work_dir, "table1.json")) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump({"records": records, "summary": summary}, f, indent=1)
  print(text)
  print(f"total {time.time() - t0:.0f} s")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, REPO)
  app.run(main)
