"""The paper's Table 1 for trained runs: accuracy and inference cost side by side.

Given the training directories of an `rgb` network, a `flow` network (the
teacher) and a `student`, `compare` evaluates each on the same test clips,
adds the two-stream late fusion of rgb and flow (no training), and measures
what each costs per clip at inference: batch-1 milliseconds in TensorFlow and
in float32 TFLite (the deployment runtime) on this machine, and analytic
GFLOPs. `format_table` renders the rows as Markdown. `tools/results_table.py`
and `benchmarks/table1.py` are thin wrappers over these functions.
"""

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tsnet_tf import config as config_lib
from tsnet_tf import models
from tsnet_tf.export import tflite as tfl
from tsnet_tf.training import evaluation
from tsnet_tf.training import run_dir
from tsnet_tf.utils import tf_graph
from tsnet_tf.utils.io import atomic_write
from tsnet_tf.utils.timing import median_ms

# Row order and labels of the paper's Table 1.
ROWS = ("rgb", "flow", "twostream", "student")
LABELS = {
    "rgb": "3D CNN on RGB (rgb)",
    "flow": "3D CNN on TV-L1 flow (flow = teacher)",
    "twostream": "two-stream late fusion",
    "student": "teacher-student (student)",
}
TABLE_FILE = "table1.md"
ROWS_FILE = "table1.json"
_TRAINED_ROWS = ("rgb", "flow", "student")


def _random_clip(shape) -> np.ndarray:
  # Timing only: the values do not matter, a fixed seed keeps runs identical.
  return np.random.default_rng(0).uniform(0, 255, (1,) + tuple(shape)).astype("float32")


def time_tensorflow(model, runs: int) -> float:
  """Median ms of one batch-1 forward pass as a `tf.function`, after warm-up.

  Args:
    model: a classifier taking float32 `[1, T, S, S, 3]` in [0, 255].
    runs: timed calls.
  """
  clip = tf.constant(_random_clip(model.input_shape[1:]))
  # As evaluation.predict_clips: in-graph TV-L1 at the paper's clip needs it.
  forward = tf_graph.without_add_ops_rewrite(tf.function(lambda x: model(x, training=False)))
  return median_ms(lambda: forward(clip).numpy(), runs)


def time_tflite(model, runs: int, path: str) -> float:
  """Median ms of one batch-1 float32 TFLite inference, after warm-up.

  The model is converted as tools/convert_tflite.py does (through its edge
  twin, TV-L1 loops included) and the file is kept at `path`.
  """
  flatbuffer, _ = tfl.convert_keras_model(model, "none")
  with atomic_write(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(flatbuffer)
  runner = tfl.TFLiteRunner(path)
  clip = _random_clip(model.input_shape[1:])
  return median_ms(lambda: runner(clip), runs)


def describe_protocol(run_dirs: Mapping[str, str], num_clips: int, split: int) -> str:
  """One line on what the rows were trained and tested with (the student's config)."""
  source = run_dirs.get("student") or run_dirs.get("rgb") or run_dirs["flow"]
  cfg = run_dir.load_run_config(source)
  if cfg is None:
    return f"{num_clips} clips/video, split {split} test"
  return (f"clips {cfg.data.num_frames}x{cfg.data.crop_size}x{cfg.data.crop_size}, backbone "
          f"{cfg.model.backbone}, {cfg.train.epochs} epochs, lambda {cfg.distill.lambda_}, "
          f"{num_clips} clips/video, split {split} test")


def standard_error(accuracy: float, num_videos: int) -> float:
  """Binomial standard error of an accuracy measured on `num_videos` videos."""
  if num_videos <= 0:
    return float("nan")
  return float(np.sqrt(accuracy * (1.0 - accuracy) / num_videos))


def compare(run_dirs: Mapping[str, str], data_dir: str, output_dir: str,
            split: int = 1, num_clips: int = 4, timing_runs: int = 10,
            tflite: bool = True, progress: bool = False,
            subset: str = "test", fusion: str = "mean") -> List[Dict[str, object]]:
  """Evaluates and times trained runs; returns one dict per Table 1 row.

  Args:
    run_dirs: `{"rgb" | "flow" | "student": training directory}`; at least
      one. The `twostream` row is added when both rgb and flow are given.
    data_dir: output of tools/prepare_hmdb51.py.
    output_dir: each row's eval.json and confusion_matrix.png go to
      `output_dir/<row>/`, its TFLite file to `output_dir/<row>.tflite`.
    split: official split.
    num_clips: clips per video (video level = mean softmax).
    timing_runs: timed batch-1 inferences per model and runtime; 0 skips
      timing (accuracy only, e.g. for choosing on validation).
    tflite: also convert each model to float32 TFLite and time it.
    progress: show evaluation progress bars.
    subset: the subset evaluated: `test` for the table, `validation` for
      choices made before it.
    fusion: the twostream row's late-fusion rule (`tsnet_tf.layers.LateFusion`
      mode: `mean` or `geometric`), for its accuracy and its timed model.

  Returns:
    In `ROWS` order, dicts with `model`, `clip_accuracy`, `video_accuracy`
    (fractions), `num_videos`, `video_accuracy_se` (binomial standard
    error), `ms_per_clip` (TensorFlow; None without timing),
    `tflite_ms_per_clip` (None without `tflite` or timing),
    `gflops_per_clip` and `params`; the twostream row also has `fusion`.

  Raises:
    ValueError: no runs, a key other than rgb/flow/student, an unknown fusion.
    evaluation.EvaluationError: a missing run or data, mismatched models.
  """
  unknown = sorted(set(run_dirs) - set(_TRAINED_ROWS))
  if unknown or not run_dirs:
    raise ValueError(f"run_dirs needs keys among {_TRAINED_ROWS}, got {sorted(run_dirs)}")
  if timing_runs < 0:
    raise ValueError(f"timing_runs must be >= 0, got {timing_runs}")
  if fusion not in config_lib.FUSION_MODES:
    raise ValueError(f"unknown fusion {fusion!r}; expected one of: "
                     f"{', '.join(config_lib.FUSION_MODES)}")
  names = [n for n in ROWS if n in run_dirs
           or (n == "twostream" and "rgb" in run_dirs and "flow" in run_dirs)]
  loaded = {}
  rows = []
  for name in names:
    if name == "twostream":
      model_dir, fuse = run_dirs["rgb"], [run_dirs["flow"]]
    else:
      model_dir, fuse = run_dirs[name], []
    result = evaluation.evaluate(model_dir, data_dir, split=split, num_clips=num_clips,
                                 subset=subset, fuse_dirs=fuse, fusion=fusion,
                                 output_dir=os.path.join(output_dir, name), progress=progress)
    if name == "twostream":
      model = models.build_two_stream(loaded["rgb"], loaded["flow"], fusion=fusion)
    else:
      # evaluate() has checked that the file exists and matches the data.
      model = run_dir.load_classifier(model_dir)
      loaded[name] = model
    row = dict(
        model=name, clip_accuracy=result["clip_accuracy"],
        video_accuracy=result["video_accuracy"], num_videos=result["num_videos"],
        video_accuracy_se=standard_error(result["video_accuracy"], result["num_videos"]),
        ms_per_clip=time_tensorflow(model, timing_runs) if timing_runs else None,
        tflite_ms_per_clip=(time_tflite(model, timing_runs,
                                        os.path.join(output_dir, f"{name}.tflite"))
                            if tflite and timing_runs else None),
        gflops_per_clip=models.count_flops(model) / 1e9,
        params=models.count_params(model))
    if name == "twostream":
      row["fusion"] = fusion
    rows.append(row)
  return rows


def row_label(row: Mapping[str, object]) -> str:
  """A row's Table 1 label; a two-stream row names its fusion rule unless it is `mean`.

  Rows written before the rule was recorded have no `fusion` key: they are `mean`.
  """
  fusion = row.get("fusion", "mean")
  return LABELS[row["model"]] + ("" if fusion == "mean" else f" ({fusion})")


def validate_fusions(rgb_dir: str, flow_dir: str, data_dir: str, output_dir: str,
                     fusions: Sequence[str], split: int = 1, num_clips: int = 4,
                     progress: bool = False) -> Dict[str, float]:
  """Video accuracy of the fused rgb and flow runs on validation, per fusion rule.

  Only the twostream row matters for this choice, so each rule is one
  `evaluation.evaluate` of the fused pair (not a whole `compare`).

  Args:
    rgb_dir, flow_dir: training directories of the two streams.
    data_dir: output of tools/prepare_hmdb51.py (with a validation subset).
    output_dir: each rule's eval.json goes to `output_dir/fusion_<rule>/`.
    fusions: rules to try, each a `tsnet_tf.config.FUSION_MODES` entry.
    split: official split.
    num_clips: clips per video.
    progress: show evaluation progress bars.

  Returns:
    `{rule: validation video accuracy}`, in the order of `fusions`.
  """
  accuracy = {}
  for rule in fusions:
    result = evaluation.evaluate(rgb_dir, data_dir, split=split, num_clips=num_clips,
                                 subset="validation", fuse_dirs=[flow_dir], fusion=rule,
                                 output_dir=os.path.join(output_dir, f"fusion_{rule}"),
                                 progress=progress)
    accuracy[rule] = result["video_accuracy"]
  return accuracy


def choose_fusion(validation_accuracy: Mapping[str, float]) -> str:
  """The fusion rule with the highest validation accuracy.

  Ties go to `mean` (the classic rule), then to the rule listed first.

  Args:
    validation_accuracy: `{rule: video accuracy on validation}` (e.g. from
      `validate_fusions`), non-empty.

  Raises:
    ValueError: an empty mapping.
  """
  if not validation_accuracy:
    raise ValueError("no fusion rule to choose from")
  order = list(validation_accuracy)
  return max(order, key=lambda rule: (validation_accuracy[rule], rule == "mean",
                                      -order.index(rule)))


def format_table(rows: List[Dict[str, object]], caption: str = "") -> str:
  """Markdown table of `compare` rows, with `caption` (a line) above it."""
  def ms(value):
    return "n/a" if value is None else f"{value:.1f}"

  lines = [
      caption,
      "",
      "| model | clip acc | video acc ± SE | ms / clip (TF, CPU) | ms / clip (TFLite, CPU) | "
      "GFLOPs / clip | params |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in rows:
    se = r.get("video_accuracy_se")
    se_text = "" if se is None else f" ± {100 * se:.1f}"
    lines.append(f"| {row_label(r)} | {100 * r['clip_accuracy']:.1f} % | "
                 f"{100 * r['video_accuracy']:.1f}{se_text} % | {ms(r['ms_per_clip'])} | "
                 f"{ms(r['tflite_ms_per_clip'])} | "
                 f"{r['gflops_per_clip']:.3f} | {r['params'] / 1e6:.2f} M |")
  return "\n".join(lines)


def cost_ratios(rows: List[Dict[str, object]]) -> Dict[str, Dict[str, Optional[float]]]:
  """How many times cheaper the student is than flow and two-stream, per cost.

  Returns:
    `{"flow" | "twostream": {"ms_per_clip": x, "tflite_ms_per_clip": x,
    "gflops_per_clip": x}}` for the rows present (a ratio is None where a
    cost was not measured); empty without a student row.
  """
  by_name = {r["model"]: r for r in rows}
  student = by_name.get("student")
  if student is None:
    return {}
  ratios = {}
  for name in ("flow", "twostream"):
    if name not in by_name:
      continue
    ratios[name] = {
        key: (None if by_name[name][key] is None or not student[key]
              else by_name[name][key] / student[key])
        for key in ("ms_per_clip", "tflite_ms_per_clip", "gflops_per_clip")}
  return ratios


def student_gain(rows: List[Dict[str, object]]) -> Optional[str]:
  """One line: the student's video-accuracy gain over rgb and its standard error.

  The two rows are scored on the same videos; the error of the difference is
  taken as sqrt(SE_rgb^2 + SE_student^2), which overstates it when the models'
  mistakes are correlated (a conservative bound for a single run).
  """
  by_name = {r["model"]: r for r in rows}
  if "rgb" not in by_name or "student" not in by_name:
    return None
  rgb, student = by_name["rgb"], by_name["student"]
  gain = student["video_accuracy"] - rgb["video_accuracy"]
  se = float(np.hypot(rgb.get("video_accuracy_se", 0.0) or 0.0,
                      student.get("video_accuracy_se", 0.0) or 0.0))
  verdict = "beyond" if gain > se else "within"
  return (f"student - rgb: {100 * gain:+.1f} points of video accuracy ± {100 * se:.1f} "
          f"(standard error, {student.get('num_videos', '?')} videos): {verdict} one SE")


def format_ratios(rows: List[Dict[str, object]]) -> str:
  """`cost_ratios` as one line per compared row, e.g. for a target check."""
  def x(value):
    return "n/a" if value is None else f"{value:.1f}x"

  return "\n".join(
      f"student vs {name}: {x(r['ms_per_clip'])} cheaper in TF ms, "
      f"{x(r['tflite_ms_per_clip'])} in TFLite ms, {x(r['gflops_per_clip'])} in GFLOPs"
      for name, r in cost_ratios(rows).items())


def write_results(rows: List[Dict[str, object]], caption: str, output_dir: str) -> str:
  """Writes `table1.md` and `table1.json` (the rows) atomically; returns the table.

  The Markdown ends with the student's gain over rgb and its standard error
  (`student_gain`) when both rows are present.
  """
  table = format_table(rows, caption)
  gain = student_gain(rows)
  if gain:
    table += "\n\n" + gain
  os.makedirs(output_dir, exist_ok=True)
  with atomic_write(os.path.join(output_dir, TABLE_FILE)) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(table + "\n")
  with atomic_write(os.path.join(output_dir, ROWS_FILE)) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=1)
  return table
