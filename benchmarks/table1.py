"""The paper's Table 1 on three benchmarks, several seeds, choices on validation, test once.

  python benchmarks/table1.py --work_dir=/tmp/t1 [--benchmarks=appearance_motion,footage,motion]
      [--seeds=0,1,2] [--lambdas=0,10,30] [--fusions=mean,geometric]

On a real dataset (HMDB51, converted by tools/prepare_hmdb51.py; docs/hmdb51.md):

  .venv/bin/python benchmarks/table1.py --data_dir=data/hmdb51 --work_dir=runs/table1 \
      [--config=configs/hmdb51.yaml] [--splits=1,2,3] [--lambdas=10,30]

With --data_dir the rows are trained and tested on each official split of
--splits (seed --seeds, default 0) with --config (default configs/hmdb51.yaml),
and the table is the mean over splits (the paper's protocol). Before training
it times a few training steps of each stage at the config's shapes
(benchmarks/bench_train.py, --estimate_steps) and prints the hours the
training steps will take. Re-running the same command resumes: finished runs
and splits are reused, an interrupted run continues from its last epoch.

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

BENCHMARKS = ("appearance_motion", "footage", "motion", "real_motion")
# The benchmarks run by default; real_motion (leave-one-session-out, 4 splits) is
# asked for by name.
DEFAULT_BENCHMARKS = ("appearance_motion", "footage", "motion")
SHARED_REAL_MOTION = os.path.join(os.path.dirname(REPO), "shared", "data", "real_motion",
                                  "egogestar")
# A benchmark's own config when --config is not given (its shapes and options
# differ from the generated sets').
BENCHMARK_CONFIGS = {"real_motion": os.path.join(REPO, "configs", "real_motion.yaml")}
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
_BENCHMARKS = flags.DEFINE_list("benchmarks", list(DEFAULT_BENCHMARKS),
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
_REAL_MOTION_DIR = flags.DEFINE_string(
    "real_motion_dir", SHARED_REAL_MOTION, "Class folders of real recordings for `real_motion` "
    "(read only; laid out by tools/layout_sessions.py into --work_dir).")
_REAL_MOTION_SESSIONS = flags.DEFINE_string(
    "real_motion_sessions", "", "Session table of --real_motion_dir (default: its "
    "sessions.tsv).")
_REAL_MOTION_SESSION_COLUMN = flags.DEFINE_string(
    "real_motion_session_column", "session_label", "Session column of the table.")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Clips per video (validation and test); "
                                  "with --data_dir the config's eval.num_clips by default.")
_STORED_FLOW = flags.DEFINE_boolean(
    "stored_flow", True, "Convert each benchmark with the teacher's TV-L1 flow stored in the "
    "TFRecords (its preset and bound, data.frame_stride) and train the teacher and the "
    "student's Eq. 7 from it (model.flow.source=stored): the same models, evaluated with "
    "TV-L1 in the graph, without the flow in every training step.")
_TIMING_RUNS = flags.DEFINE_integer("timing_runs", 10, "Timed batch-1 inferences per model "
                                    "(first seed of each benchmark).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", "", "A converted real dataset (tools/prepare_hmdb51.py output, with the splits "
    "of --splits) instead of the generated benchmarks: trains and tests every row on each "
    "split; --config defaults to configs/hmdb51.yaml, --seeds to 0.")
_SPLITS = flags.DEFINE_list("splits", ["1", "2", "3"], "With --data_dir: official splits. "
                            "With real_motion: some of its session splits (default: all).")
_ESTIMATE_STEPS = flags.DEFINE_integer(
    "estimate_steps", 2, "With --data_dir: training steps timed per stage for the up-front "
    "time estimate (benchmarks/bench_train.py); 0 = no estimate.", lower_bound=0)

# The benchmark name of a --data_dir run.
REAL = "hmdb51"
HMDB51_CONFIG = os.path.join(REPO, "configs", "hmdb51.yaml")


def config_path(benchmark: str = "") -> str:
  """--config, or the benchmark's own (configs/hmdb51.yaml for a --data_dir run,
  BENCHMARK_CONFIGS) when --config is not given."""
  if not flags.FLAGS["config"].present:
    if _DATA_DIR.value:
      return HMDB51_CONFIG
    if benchmark in BENCHMARK_CONFIGS:
      return BENCHMARK_CONFIGS[benchmark]
  return _CONFIG.value


def num_clips() -> int:
  """--num_clips, or the config's eval.num_clips (10 for HMDB51) for a --data_dir run."""
  if _DATA_DIR.value and not flags.FLAGS["num_clips"].present:
    return _load_config("rgb", REAL).eval.num_clips
  return _NUM_CLIPS.value


def seeds():
  if _DATA_DIR.value and not flags.FLAGS["seeds"].present:
    return [0]
  return [int(s) for s in _SEEDS.value]


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
  return config_lib.load_config(config_path(benchmark), stage, ",".join(override))


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
  if benchmark == "real_motion":
    return make_real_motion_data(root)
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
  # Generated frames are stored as made (64x80); real footage at 72 px, the
  # same scale for a 64x64 crop.
  short_side = "72" if benchmark == "footage" else "0"
  return _convert(benchmark, videos, data_dir, ["--splits=1", f"--short_side={short_side}"])


def _convert(benchmark: str, layout: str, data_dir: str, flags_: list) -> str:
  """tools/prepare_hmdb51.py of an HMDB51-layout `layout` into `data_dir` with `flags_`
  and the benchmark's stored flow; a finished conversion is reused (and checked)."""
  if not os.path.isfile(os.path.join(data_dir, "summary.json")):
    _run_tool(["tools/prepare_hmdb51.py", f"--video_dir={os.path.join(layout, 'videos')}",
               f"--split_dir={os.path.join(layout, 'splits')}", f"--output_dir={data_dir}",
               "--num_workers=2"] + flags_ + conversion_flow_flags(benchmark))
  elif _STORED_FLOW.value:
    check_reused_data(benchmark, data_dir)
  return data_dir


def make_real_motion_data(root: str) -> str:
  """Lays out --real_motion_dir by session and converts every split (reused if present).

  Split k tests on session k; validation is whole training sessions, the same in
  every class, as many as fit in 30 % of the split's training videos
  (--validation_groups=shared); frames at 72 px, the scale of a 64 px crop.
  """
  videos = os.path.join(root, "videos")
  data_dir = os.path.join(root, "data")
  if not os.path.isdir(videos):
    sessions = _REAL_MOTION_SESSIONS.value or os.path.join(_REAL_MOTION_DIR.value,
                                                          "sessions.tsv")
    _run_tool(["tools/layout_sessions.py", f"--video_dir={_REAL_MOTION_DIR.value}",
               f"--sessions={sessions}", f"--output_dir={videos}",
               f"--session_column={_REAL_MOTION_SESSION_COLUMN.value}"])
  splits = ",".join(str(k) for k in layout_splits(videos))
  return _convert("real_motion", videos, data_dir,
                  [f"--splits={splits}", "--short_side=72", "--validation_fraction=0.3",
                   "--validation_groups=shared"])


def layout_splits(layout_dir: str):
  """The splits of a tools/layout_sessions.py layout: one per session."""
  with open(os.path.join(layout_dir, "manifest.json"), encoding="utf-8") as f:
    return [int(k) for k in sorted(json.load(f)["test_session_of_split"], key=int)]


def benchmark_splits(benchmark: str, work_dir: str):
  """The splits a benchmark runs: --splits for --data_dir, every session of
  real_motion, split 1 of the generated and footage sets."""
  if benchmark == REAL:
    return [int(s) for s in _SPLITS.value]
  if benchmark == "real_motion":
    every = layout_splits(os.path.join(work_dir, benchmark, "videos"))
    if not _SPLITS.present:
      return every
    unknown = [s for s in _SPLITS.value if not s.isdigit() or int(s) not in every]
    if unknown:
      raise app.UsageError(f"--splits: real_motion has splits {every}, not {unknown}")
    return [int(s) for s in _SPLITS.value]
  return [1]


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


def _train(stage, run_dir, data_dir, seed, teacher_dir=None, extra="", benchmark="", split=1):
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  if os.path.isfile(os.path.join(run_dir, trainer.MODEL_FILE)):
    return None
  seeds = f"train.seed={seed},data.shuffle_seed={seed}"
  cfg = _load_config(stage, benchmark, ",".join(o for o in (extra, seeds) if o))
  start = time.time()
  print(f"== train {stage} -> {run_dir}", flush=True)
  trainer.train(cfg, stage, run_dir, data_dir, split=split, teacher_dir=teacher_dir, verbose=2)
  return time.time() - start


def record_label(record) -> str:
  """`seed s` (generated benchmarks), `split n` (a --data_dir run; `split n seed s` when
  seeds other than 0 are run)."""
  if record["benchmark"] == "real_motion":
    return f"split {record['split']} seed {record['seed']}"
  if record["benchmark"] != REAL:
    return f"seed {record['seed']}"
  label = f"split {record.get('split', 1)}"
  return label if record["seed"] == 0 else f"{label} seed {record['seed']}"


def record_fusion(record):
  """The two-stream fusion rule of a seed's record (`mean` for records that predate it)."""
  return record.get("chosen_fusion", "mean")


def run_seed(benchmark, data_dir, seed, out, timing_runs, fusions=("mean",), split=1):
  """Trains, chooses lambda and fusion on validation, evaluates on test; returns the record."""
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  runs = {name: os.path.join(out, name) for name in ("rgb", "flow")}
  seconds = {"rgb": _train("rgb", runs["rgb"], data_dir, seed, benchmark=benchmark, split=split),
             "flow": _train("teacher", runs["flow"], data_dir, seed, benchmark=benchmark,
                            split=split)}
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
                                             benchmark=benchmark, split=split)
    candidates[lam] = run_dir
  for lam, run_dir in candidates.items():
    row, = comparison.compare({"rgb": run_dir}, data_dir,
                              os.path.join(out, "validation", f"lambda{lam}"),
                              num_clips=num_clips(), timing_runs=0, subset="validation",
                              split=split)
    validation[lam] = row["video_accuracy"]
  # Highest validation accuracy; ties go to the larger lambda (the method).
  chosen = max(validation, key=lambda lam: (validation[lam], float(lam)))
  runs["student"] = candidates[chosen]
  # Highest validation accuracy of the fused rgb + flow; ties go to mean.
  fusion_validation = comparison.validate_fusions(
      runs["rgb"], runs["flow"], data_dir, os.path.join(out, "validation"), fusions,
      split=split, num_clips=num_clips())
  fusion = comparison.choose_fusion(fusion_validation)
  rows = comparison.compare(runs, data_dir, os.path.join(out, "test"),
                            num_clips=num_clips(), timing_runs=timing_runs,
                            tflite=bool(timing_runs), fusion=fusion, split=split)
  caption = comparison.describe_protocol(runs, num_clips(), split=split)
  comparison.write_results(rows, caption, os.path.join(out, "test"))
  return {"benchmark": benchmark, "seed": seed, "split": split,
          "validation_video_accuracy": validation,
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
    if bench == "real_motion":
      line(mean["student"] >= 0.9 * mean["flow"],
           f"real_motion: student {mean['student']:.1f} >= 0.9 x teacher = "
           f"{0.9 * mean['flow']:.1f}")
      line(mean["student"] >= mean["twostream"] - 5,
           f"real_motion: student {mean['student']:.1f} >= two-stream - 5 = "
           f"{mean['twostream'] - 5:.1f}")
      line(mean["student"] >= mean["rgb"] + 20,
           f"real_motion: student {mean['student']:.1f} >= rgb + 20 = {mean['rgb'] + 20:.1f}")
      by_split = {}
      for rec in (r for r in records if r["benchmark"] == bench):
        acc = {r["model"]: r["video_accuracy"] for r in rec["rows"]}
        by_split.setdefault(rec["split"], []).append(acc["student"] - acc["rgb"])
      for split, gaps in sorted(by_split.items()):
        gap = 100 * float(np.mean(gaps))
        line(gap >= 0, f"real_motion split {split}: student - rgb = {gap:+.1f} >= 0 "
                       f"(mean over {len(gaps)} seeds)")
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
          line(x >= 10, f"{bench} {record_label(timed)}: student {x:.1f}x cheaper than {other} "
                        f"in {what} >= 10x")
  for rec in records:
    acc = {r["model"]: 100 * r["video_accuracy"] for r in rec["rows"]}
    line(acc["student"] >= acc["rgb"] - 1,
         f"{rec['benchmark']} {record_label(rec)}: student {acc['student']:.1f} >= rgb - 1 = "
         f"{acc['rgb'] - 1:.1f} (lambda {rec['chosen_lambda']:g})")
  return "\n".join(lines)


def format_report(records, summary):
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  out = []
  for bench in summary:
    recs = [r for r in records if r["benchmark"] == bench]
    # Test videos of each split (the same for every seed of it).
    per_split = {r.get("split", 1): r["rows"][0]["num_videos"] for r in recs}
    n = sum(per_split.values())
    if len(per_split) > 1:
      n = f"{n} test videos: " + ", ".join(f"split {k} {v}" for k, v in sorted(per_split.items()))
    else:
      n = f"{n} test videos"
    over = {REAL: "splits", "real_motion": "splits x seeds"}.get(bench, "seeds")
    out.append(f"### {bench}: test video accuracy, mean ± std over {len(recs)} {over} "
               f"({n})")
    out.append("")
    columns = " | ".join(record_label(r) for r in recs)
    out.append(f"| model | mean ± std | {columns} |")
    out.append("| --- | ---: |" + " ---: |" * len(recs))
    for model in comparison.ROWS:
      mean, std, _ = summary[bench][model]
      per_seed = " | ".join(
          f"{100 * next(x for x in r['rows'] if x['model'] == model)['video_accuracy']:.1f}"
          for r in recs)
      out.append(f"| {comparison.LABELS[model]} | {100 * mean:.1f} ± {100 * std:.1f} | "
                 f"{per_seed} |")
    chosen = ", ".join(f"{record_label(r)}: {r['chosen_lambda']:g}" for r in recs)
    out.append(f"\nstudent lambda chosen on validation: {chosen}")
    fusions = ", ".join(f"{record_label(r)}: {record_fusion(r)}" for r in recs)
    out.append(f"two-stream fusion rule chosen on validation: {fusions}")
    timed = next((r for r in recs if r["rows"][0]["ms_per_clip"] is not None), None)
    if timed is not None:
      out.append("\n" + comparison.format_table(timed["rows"], f"costs ({record_label(timed)})"))
      out.append(comparison.format_ratios(timed["rows"]))
    out.append("")
  return "\n".join(out)


def check_real_data(data_dir: str, splits) -> None:
  """A --data_dir run: the directory holds every split of --splits and, under
  --stored_flow, the flow the teacher trains on; one line otherwise, before any work."""
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import stored_flow  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  for split in splits:
    try:
      trainer.check_data_dir(data_dir, split)
    except trainer.TrainingError as e:
      raise app.UsageError(f"{e} (convert every split of --splits with "
                           "tools/prepare_hmdb51.py --splits=1,2,3)") from None
  if _STORED_FLOW.value:
    teacher = _load_config("teacher", REAL)
    flow = teacher.model.flow
    try:
      stored_flow.check_summary(pipeline.load_summary(data_dir), data_dir, flow.preset,
                                flow.bound, teacher.data.frame_stride, flow.overrides)
    except stored_flow.StoredFlowError as e:
      flags_text = " ".join(stored_flow_flags(flow, teacher.data.frame_stride))
      raise app.UsageError(f"{e}. Convert with tools/prepare_hmdb51.py {flags_text}, or pass "
                           "--nostored_flow (TV-L1 in every teacher and student step)") from None


def estimate_hours(step_rows, train_clips: int, epochs, num_students: int) -> dict:
  """Hours of training steps for one split, from measured step times.

  Args:
    step_rows: benchmarks/bench_train.py rows (`stage`, `status`, `clips_per_s`).
    train_clips: training clips of the split (videos; one clip each per epoch).
    epochs: `{stage: epochs}` (rgb, teacher, student).
    num_students: students trained (one per lambda > 0).

  Returns:
    `{stage: hours of one run}` plus `split`: all runs of one split; None where
    the stage has no measured row.
  """
  rate = {r["stage"]: r["clips_per_s"] for r in step_rows if r.get("status") == "ok"}
  hours = {stage: (train_clips * epochs[stage] / rate[stage] / 3600.0 if stage in rate else None)
           for stage in ("rgb", "teacher", "student")}
  known = [h for h in hours.values() if h is not None]
  hours["split"] = (None if len(known) < 3 else
                    hours["rgb"] + hours["teacher"] + num_students * hours["student"])
  return hours


def measure_steps(num_classes: int, steps: int) -> list:
  """bench_train.py rows: `steps` training steps of rgb, teacher and student at the
  config's shapes, micro-batch and precision (as tools/train.py would train them)."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import backend  # pylint: disable=g-import-not-at-top
  cfg = _load_config("student", REAL)
  micro = cfg.data.batch_size // config_lib.accumulation_steps(cfg.train, cfg.data.batch_size)
  precision = "on" if backend.use_mixed_precision(cfg.train.mixed_precision) else "off"
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "rows.json")
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "bench_train.py"),
           f"--config={config_path()}", "--stages=rgb,teacher,student",
           f"--batch_sizes={micro}", f"--precisions={precision}", f"--steps={steps}",
           "--warmup=0", f"--num_classes={num_classes}", f"--output_json={out}",
           # bench_train's default 330 s (sized for a lent GPU's session) lost the
           # estimate on a loaded 2-core CPU, where 3 compiles took longer; it runs once.
           "--budget_s=1800"]
    if _PARAMS_OVERRIDE.value:
      cmd.append(f"--params_override={_PARAMS_OVERRIDE.value}")
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=False)
    if not os.path.isfile(out):
      return []
    with open(out, encoding="utf-8") as f:
      return json.load(f)


def print_estimate(data_dir: str, splits) -> None:
  """Times a few steps per stage and prints the hours the protocol's training takes."""
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  summary = pipeline.load_summary(data_dir)
  num_classes = len(pipeline.load_labels(data_dir))
  rows = measure_steps(num_classes, _ESTIMATE_STEPS.value)
  epochs = {stage: _load_config(stage, REAL).train.epochs
            for stage in ("rgb", "teacher", "student")}
  students = sum(1 for lam in _LAMBDAS.value if float(lam) > 0)
  total = 0.0
  for split in splits:
    clips = pipeline.subset_size(summary, data_dir, split, "train")
    hours = estimate_hours(rows, clips, epochs, students)
    if hours["split"] is None:
      print("time estimate: a stage's steps could not be timed (see above); none given")
      return
    total += hours["split"]
  per = ", ".join(f"{s} {1e3 / r['clips_per_s'] * r['batch']:.0f} ms/step of {r['batch']} clips"
                  for s in ("rgb", "teacher", "student") for r in rows
                  if r["stage"] == s and r.get("status") == "ok")
  print(f"time estimate (measured here: {per}; {rows[0].get('device', '?')}): training steps "
        f"take ~{total:.1f} h for splits {','.join(map(str, splits))} (rgb, teacher, "
        f"{students} student(s); validation, evaluation and the input pipeline not "
        "included)", flush=True)


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
  real = bool(_DATA_DIR.value)
  if real and any(int(s) < 1 for s in _SPLITS.value):
    raise app.UsageError(f"--splits: splits are numbered from 1, got {_SPLITS.value}")
  splits = [int(s) for s in _SPLITS.value] if real else [1]
  benches = [REAL] if real else _BENCHMARKS.value
  for bench in benches:
    conversion_flow_flags(bench)  # a teacher whose flow cannot be stored stops here, before any work
  if real:
    check_real_data(_DATA_DIR.value, splits)
  from tsnet_tf.utils.io import atomic_write  # pylint: disable=g-import-not-at-top
  work_dir = _WORK_DIR.value
  os.makedirs(work_dir, exist_ok=True)
  t0 = time.time()
  records = []
  if real and _ESTIMATE_STEPS.value:
    print_estimate(_DATA_DIR.value, splits)
  for bench in benches:
    data_dir = _DATA_DIR.value if real else make_data(bench, os.path.join(work_dir, bench))
    first = True
    for split in benchmark_splits(bench, work_dir):
      for seed in seeds():
        per_split = real or bench == "real_motion"
        out = os.path.join(work_dir, bench, *([f"split{split}"] if per_split else []),
                           f"seed{seed}")
        record_path = os.path.join(out, "record.json")
        if os.path.isfile(record_path):
          with open(record_path, encoding="utf-8") as f:
            records.append(json.load(f))
          first = False
          continue
        record = run_seed(bench, data_dir, seed, out, _TIMING_RUNS.value if first else 0,
                          fusions=_FUSIONS.value, split=split)
        first = False
        with atomic_write(record_path) as tmp:
          with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        records.append(record)
        print(f"[{time.time() - t0:.0f} s] {bench} {record_label(record)} done", flush=True)
  summary = summarize(records)
  report = format_report(records, summary)
  targets = check_targets(records, summary)
  text = f"{report}\nTargets (issues #12, #24):\n{targets}\n"
  if real:
    text = (f"Table 1 on {_DATA_DIR.value} ({os.path.relpath(config_path(), REPO)}), "
            f"splits {','.join(map(str, splits))}\n\n{text}")
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
