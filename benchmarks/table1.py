"""The paper's Table 1 on a synthetic motion-only dataset: rgb, flow, two-stream, student.

  python benchmarks/table1.py --work_dir=/tmp/t1x

(defaults: configs/synthetic_table1.yaml, a width-64 teacher on `accurate` TV-L1
and width-16 rgb / student light backbones, 12 epochs, 4 classes x 80 videos of
64x80, 1-1.5 s; the tables in README.md and docs/training.md; 31-37 min on 2
cores, the teacher's training dominates)

1. Generates an HMDB51-format dataset whose classes differ only by motion
   (tools/make_synthetic.py) and converts split 1 (tools/prepare_hmdb51.py),
   unless --work_dir already holds them.
2. Trains, with the same config, budget (epochs x steps) and seed: `rgb` (RGB
   3D CNN), `flow` (the teacher: in-graph TV-L1 + 3D CNN) and `student` (RGB
   3D CNN trained with Eq. 7 against that teacher). `twostream` is the late
   fusion of the trained rgb and flow networks (no extra training).
3. Evaluates each on the test subset with `tsnet_tf.training.comparison` (as
   tools/results_table.py does): clip-level and video-level accuracy (K clips
   per video, mean softmax), inference ms per clip (batch 1, median of
   --timing_runs on this CPU) in TensorFlow and in TFLite (float32, the
   deployment runtime; the teacher's TV-L1 loops included), and analytic
   GFLOPs per clip.

Prints a Markdown table and writes it, with the raw numbers, to --work_dir.
"""

import os
import subprocess
import sys
import time

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
_WORK_DIR = flags.DEFINE_string("work_dir", "/tmp/tsnet_table1", "Dataset and runs go here.")
_CONFIG = flags.DEFINE_string("config", os.path.join(REPO, "configs", "synthetic_table1.yaml"),
                              "Training config (all stages).")
_PARAMS_OVERRIDE = flags.DEFINE_string("params_override", "",
                                       "Config overrides for every stage (see tools/train.py).")
_STUDENT_OVERRIDE = flags.DEFINE_string("student_override", "",
                                        "Extra overrides for the student only (e.g. "
                                        "distill.lambda=10).")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs per trained model (default: config).")
_STEPS = flags.DEFINE_integer("steps_per_epoch", None,
                              "Steps per epoch (default: training videos // batch).")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 4, "Motion classes to generate.")
_VIDEOS_PER_CLASS = flags.DEFINE_integer("videos_per_class", 80, "Videos per class.")
_MIN_SECONDS = flags.DEFINE_float("min_seconds", 1.0, "Shortest generated video (s).")
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 1.5, "Longest generated video (s).")
_HEIGHT = flags.DEFINE_integer("height", 64, "Generated frame height.")
_WIDTH = flags.DEFINE_integer("width", 80, "Generated frame width.")
_SEED = flags.DEFINE_integer("seed", 0, "Dataset and training seed.")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Test clips per video.")
_TIMING_RUNS = flags.DEFINE_integer("timing_runs", 10, "Timed batch-1 inferences per model.")
_STAGES = flags.DEFINE_list("stages", ["rgb", "flow", "student"],
                            "Stages to (re)train; trained runs in --work_dir are reused.")
_RETRAIN = flags.DEFINE_boolean("retrain", False, "Retrain even if a run exists.")


def _run_tool(args):
  cmd = [sys.executable] + args
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True, cwd=REPO)


def make_data(work_dir: str) -> str:
  """Generates and converts the dataset with the real tools (reused if present)."""
  videos = os.path.join(work_dir, "videos")
  data_dir = os.path.join(work_dir, "data")
  if not os.path.isdir(videos):
    _run_tool(["tools/make_synthetic.py", f"--output_dir={videos}",
               f"--num_classes={_NUM_CLASSES.value}",
               f"--videos_per_class={_VIDEOS_PER_CLASS.value}", f"--seed={_SEED.value}",
               f"--height={_HEIGHT.value}", f"--width={_WIDTH.value}",
               f"--min_seconds={_MIN_SECONDS.value}", f"--max_seconds={_MAX_SECONDS.value}",
               "--num_workers=2"])
  if not os.path.isfile(os.path.join(data_dir, "summary.json")):
    _run_tool(["tools/prepare_hmdb51.py", f"--video_dir={os.path.join(videos, 'videos')}",
               f"--split_dir={os.path.join(videos, 'splits')}", f"--output_dir={data_dir}",
               "--splits=1", "--short_side=0", "--num_workers=2"])
  return data_dir


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import comparison  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top

  work_dir = _WORK_DIR.value
  os.makedirs(work_dir, exist_ok=True)
  t0 = time.time()
  data_dir = make_data(work_dir)
  print(f"data ready in {time.time() - t0:.0f} s", flush=True)

  override = [o for o in (_PARAMS_OVERRIDE.value,) if o]
  if _EPOCHS.value is not None:
    override.append(f"train.epochs={_EPOCHS.value}")
  if _STEPS.value is not None:
    override.append(f"train.steps_per_epoch={_STEPS.value}")
  override.append(f"train.seed={_SEED.value},data.shuffle_seed={_SEED.value}")
  runs = {name: os.path.join(work_dir, name) for name in ("rgb", "flow", "student", "twostream")}
  train_seconds = {}
  for stage in ("rgb", "flow", "student"):
    done = os.path.isfile(os.path.join(runs[stage], trainer.MODEL_FILE))
    if done and not (_RETRAIN.value and stage in _STAGES.value):
      continue
    extra = [_STUDENT_OVERRIDE.value] if stage == "student" and _STUDENT_OVERRIDE.value else []
    cfg = config_lib.load_config(_CONFIG.value, stage, ",".join(override + extra))
    start = time.time()
    print(f"== train {stage}", flush=True)
    trainer.train(cfg, stage, runs[stage], data_dir, teacher_dir=runs["flow"], verbose=2)
    train_seconds[stage] = time.time() - start

  rows = comparison.compare(
      {name: runs[name] for name in ("rgb", "flow", "student")}, data_dir, work_dir,
      num_clips=_NUM_CLIPS.value, timing_runs=_TIMING_RUNS.value)
  for row in rows:
    row["train_seconds"] = train_seconds.get(row["model"])
  caption = comparison.describe_protocol(runs, _NUM_CLIPS.value, split=1)
  print(comparison.write_results(rows, caption, work_dir))
  print(comparison.format_ratios(rows))
  print("(issue #5 target: the student >= 10x cheaper than flow and two-stream)")
  print(f"total {time.time() - t0:.0f} s")
  return 0


if __name__ == "__main__":
  app.run(main)
