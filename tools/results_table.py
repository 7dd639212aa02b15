"""Prints the paper's Table 1 for trained runs: accuracy and inference cost side by side.

  python tools/results_table.py --rgb_dir=runs/rgb --flow_dir=runs/teacher \
      --student_dir=runs/student --data_dir=data/synth --output_dir=runs/table1 \
      [--split=1] [--num_clips=4] [--timing_runs=10] [--notflite] [--fusion=mean]

Evaluates each given run on the test subset (clip and video accuracy, K clips
per video), adds two-stream late fusion when both --rgb_dir and --flow_dir are
given (rule: --fusion, mean or geometric), and measures batch-1 milliseconds
per clip in TensorFlow and in float32 TFLite on this machine, and GFLOPs per
clip. Writes <output_dir>/table1.md, table1.json, <row>/eval.json,
<row>/confusion_matrix.png and <row>.tflite.
Each directory must hold a run of its row's stage (its config.yaml says so).
For timings worth quoting, run it with nothing else on the machine.
"""


from absl import app
from absl import flags

from tsnet_tf import config

_RGB_DIR = flags.DEFINE_string("rgb_dir", None, "Training directory of the rgb baseline.")
_FLOW_DIR = flags.DEFINE_string("flow_dir", None,
                                "Training directory of the flow network (the teacher).")
_STUDENT_DIR = flags.DEFINE_string("student_dir", None, "Training directory of the student.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Output of tools/prepare_hmdb51.py.",
                                required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the table and per-row results go.",
                                  required=True)
_SPLIT = flags.DEFINE_integer("split", 1, "Split (HMDB51: 1-3; a session layout has one per "
                              "session).", lower_bound=1)
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Test clips per video.", lower_bound=1)
_TIMING_RUNS = flags.DEFINE_integer("timing_runs", 10,
                                    "Timed batch-1 inferences per model and runtime.",
                                    lower_bound=1)
_TFLITE = flags.DEFINE_bool("tflite", True, "Also convert each model to TFLite and time it.")
# tsnet_tf.config loads no Keras, so --help stays fast.
_FUSION = flags.DEFINE_enum(
    "fusion", "mean", list(config.FUSION_MODES),
    "Two-stream late-fusion rule, applies with --rgb_dir and --flow_dir: mean = average of "
    "the softmax (classic), geometric = normalised product of the softmax. Choose it on "
    "validation, not on the test table.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show evaluation progress bars.")
# The stage each row's run must have trained (its config.yaml), so swapped
# directories do not print mislabelled rows.
_EXPECTED_STAGES = {"rgb": ("rgb",), "flow": ("teacher",), "student": ("student",)}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  run_dirs = {name: flag.value for name, flag in
              (("rgb", _RGB_DIR), ("flow", _FLOW_DIR), ("student", _STUDENT_DIR)) if flag.value}
  if not run_dirs:
    raise app.UsageError("give at least one of --rgb_dir, --flow_dir, --student_dir")
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import run_dir  # pylint: disable=g-import-not-at-top
  # RunDirError and EvaluationError end as one line (exit 2) in cli.run.
  for name, directory in run_dirs.items():
    run_dir.check_stage(directory, f"--{name}_dir", _EXPECTED_STAGES[name])
  rows = comparison.compare(run_dirs, _DATA_DIR.value, _OUTPUT_DIR.value, split=_SPLIT.value,
                            num_clips=_NUM_CLIPS.value, timing_runs=_TIMING_RUNS.value,
                            tflite=_TFLITE.value, progress=_PROGRESS.value,
                            fusion=_FUSION.value)
  caption = comparison.describe_protocol(run_dirs, _NUM_CLIPS.value, _SPLIT.value)
  print(comparison.write_results(rows, caption, _OUTPUT_DIR.value))
  ratios = comparison.format_ratios(rows)
  if ratios:
    print(ratios)
  return 0


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
