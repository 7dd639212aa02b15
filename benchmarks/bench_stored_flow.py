r"""Benchmark: training step time with the teacher's flow in the graph vs stored.

Times Keras training steps (`train_on_batch`: forward, loss, backward, SGD
update; the trainer's own stage models and optimizer) side by side, in one
process, for each clip shape:

  teacher graph    RGB clips -> in-graph TV-L1 -> flow network (model.flow.source: graph)
  teacher stored   stored flow -> the same flow network (model.flow.source: stored)
  student graph    Eq. 7: student on RGB + the frozen teacher's forward with TV-L1
  student stored   Eq. 7: student on RGB + the frozen teacher's layers after TV-L1
                   on the stored flow

on generated clips and flows (steps only: no input pipeline, no validation).
The first step (tracing, compiling) and `--warmup` more are excluded; the
table gives the median of `--steps` and the ratio graph / stored.

With `--data_dir` (a conversion with stored flow, e.g. `prepare_hmdb51.py
--flow_preset=fast --flow_stride=3 --flow_bound=4` for configs/table1.yaml),
the input pipeline's own cost is timed too, for each shape: training clips/s
of `pipeline.make_dataset` yielding RGB clips (graph), stored flow alone (the
teacher's stored input) and both (the student's), decoding and augmenting
only, no model.

  .venv/bin/python benchmarks/bench_stored_flow.py \
      [--config=configs/table1.yaml] [--shapes=8x64,16x112] [--batch_size=8]
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = flags.DEFINE_string("config", os.path.join(_REPO, "configs", "table1.yaml"),
                              "Experiment config: backbone, TV-L1 preset, optimizer.")
_PARAMS_OVERRIDE = flags.DEFINE_string("params_override", "",
                                       "Config overrides, `a.b=1,c=2` (as tools/train.py).")
_SHAPES = flags.DEFINE_list("shapes", ["8x64", "16x112"],
                            "Clip shapes TxS (frames x crop side) to time.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Clips per step.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per row (median).", lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after the compiling first step.",
                               lower_bound=0)
_STUDENT = flags.DEFINE_boolean("student", True, "Also time the student's Eq. 7 step.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", "", "A converted data directory with stored flow: also time the input "
    "pipeline of each source.")
_PIPELINE_BATCHES = flags.DEFINE_integer("pipeline_batches", 20,
                                         "Batches timed per input pipeline row.", lower_bound=1)
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 51, "K.")


def _parse_shape(text):
  try:
    t, s = (int(v) for v in text.lower().split("x"))
  except ValueError:
    raise app.UsageError(f"--shapes: {text!r} is not TxS (e.g. 8x64)")
  return t, s


def _time_steps(model, x, y):
  """(first step s, median step s) of `model.train_on_batch(x, y)`."""
  from tsnet_tf.utils import timing  # pylint: disable=g-import-not-at-top
  first, median = timing.first_and_median_ms(lambda: model.train_on_batch(x, y),
                                             _STEPS.value, _WARMUP.value)
  return first / 1e3, median / 1e3


def _stage_model(cfg, stage_name, teacher_dir=None):
  """The trainer's model of `stage_name` under `cfg`, compiled as the trainer does."""
  from tsnet_tf.training import optimization  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import stages  # pylint: disable=g-import-not-at-top
  stage = stages.make_stage(stage_name, cfg, _NUM_CLASSES.value, teacher_dir=teacher_dir)
  model = stage.build()
  model.compile(optimizer=optimization.make_optimizer(cfg.train, 100),
                **stage.compile_kwargs())
  return model, stage


def time_shape(num_frames: int, crop_size: int):
  """Rows {what, source, step_s, first_s} for one clip shape."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import numpy_input  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data.stored_flow import CLIP_KEY, FLOW_KEY  # pylint: disable=g-import-not-at-top
  override = f"data.num_frames={num_frames},data.crop_size={crop_size}"
  if _PARAMS_OVERRIDE.value:
    override += "," + _PARAMS_OVERRIDE.value
  batch = _BATCH_SIZE.value
  clips, labels = numpy_input.generated_clips(batch, num_frames, crop_size, _NUM_CLASSES.value)
  rng = np.random.default_rng(0)
  flows = rng.normal(0.0, 2.0, (batch, num_frames - 1, crop_size, crop_size, 2)).astype("float32")
  x_rgb = keras.ops.convert_to_tensor(clips)
  x_flow = {FLOW_KEY: keras.ops.convert_to_tensor(flows)}
  y = keras.ops.convert_to_tensor(labels)
  rows = []
  for source in ("graph", "stored"):
    cfg = config_lib.load_config(_CONFIG.value, "teacher",
                                 override + f",model.flow.source={source}")
    keras.utils.set_random_seed(0)
    model, _ = _stage_model(cfg, "teacher")
    first, step = _time_steps(model, x_rgb if source == "graph" else x_flow, y)
    rows.append(dict(what="teacher", source=source, step_s=step, first_s=first,
                     preset=cfg.model.flow.preset, backbone=cfg.model.backbone))
    del model
  if not _STUDENT.value:
    return rows
  with tempfile.TemporaryDirectory() as teacher_dir:
    # A teacher run's model.keras (random weights), loaded by the student stage.
    from tsnet_tf.training import run_dir  # pylint: disable=g-import-not-at-top
    from tsnet_tf.training import stages  # pylint: disable=g-import-not-at-top
    cfg = config_lib.load_config(_CONFIG.value, "teacher", override)
    stages.build_flow(cfg, _NUM_CLASSES.value).save(os.path.join(teacher_dir, run_dir.MODEL_FILE))
    x_both = {CLIP_KEY: x_rgb, **x_flow}
    for source in ("graph", "stored"):
      cfg = config_lib.load_config(_CONFIG.value, "student",
                                   override + f",model.flow.source={source}")
      keras.utils.set_random_seed(0)
      model, _ = _stage_model(cfg, "student", teacher_dir)
      first, step = _time_steps(model, x_rgb if source == "graph" else x_both, y)
      rows.append(dict(what="student", source=source, step_s=step, first_s=first,
                       preset=cfg.model.flow.preset, backbone=cfg.model.backbone))
      del model
  return rows


def time_pipeline(num_frames: int, crop_size: int):
  """{mode: training clips/s} of the input pipeline on `--data_dir`."""
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  cfg = config_lib.load_config(_CONFIG.value, "teacher", _PARAMS_OVERRIDE.value or None)
  out = {}
  for mode in ("",) + pipeline.STORED_FLOW_MODES:
    ds = pipeline.make_dataset(_DATA_DIR.value, training=True, num_frames=num_frames,
                               crop_size=crop_size, batch_size=_BATCH_SIZE.value, seed=0,
                               frame_stride=cfg.data.frame_stride, flip=cfg.data.random_flip,
                               stored_flow=mode)
    it = iter(ds)
    next(it)  # tracing, buffers
    start = time.perf_counter()
    for _ in range(_PIPELINE_BATCHES.value):
      next(it)
    out[mode] = _PIPELINE_BATCHES.value * _BATCH_SIZE.value / (time.perf_counter() - start)
  return out


def format_pipeline_table(results) -> str:
  lines = ["| shape (T x S, batch) | RGB clips (graph: teacher, student) | stored flow "
           "(teacher) | RGB + stored flow (student) |", "|---|---|---|---|"]
  for (t, s), rates in results:
    lines.append(f"| {t}x{s}x{s}, {_BATCH_SIZE.value} | {rates['']:.0f} clips/s | "
                 f"{rates['flow']:.0f} clips/s | {rates['clip_and_flow']:.0f} clips/s |")
  return "\n".join(lines)


def format_table(results) -> str:
  lines = ["| shape (T x S, batch) | step | flow in graph (ms) | stored flow (ms) | "
           "graph / stored | saved per step (ms) |",
           "|---|---|---|---|---|---|"]
  for (t, s), rows in results:
    by = {(r["what"], r["source"]): r for r in rows}
    for what in sorted({r["what"] for r in rows}, reverse=True):
      g, st = by[(what, "graph")]["step_s"], by[(what, "stored")]["step_s"]
      lines.append(f"| {t}x{s}x{s}, {_BATCH_SIZE.value} | {what} | {1e3 * g:.0f} | "
                   f"{1e3 * st:.0f} | {g / st:.2f}x | {1e3 * (g - st):.0f} |")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import keras  # pylint: disable=g-import-not-at-top
  shapes = [_parse_shape(s) for s in _SHAPES.value]
  results = []
  for t, s in shapes:
    rows = time_shape(t, s)
    results.append(((t, s), rows))
    for r in rows:
      print(f"{t}x{s}: {r['what']} {r['source']}: {1e3 * r['step_s']:.0f} ms/step "
            f"(first step {r['first_s']:.1f} s)", flush=True)
  first = results[0][1][0]
  print(f"\nconfig {os.path.relpath(_CONFIG.value, _REPO)}"
        f"{' + ' + _PARAMS_OVERRIDE.value if _PARAMS_OVERRIDE.value else ''}: backbone "
        f"{first['backbone']}, TV-L1 {first['preset']}; Keras {keras.__version__} "
        f"({keras.backend.backend()}), {os.cpu_count()} CPUs visible; median of "
        f"{_STEPS.value} steps\n")
  print(format_table(results))
  if _DATA_DIR.value:
    rates = [((t, s), time_pipeline(t, s)) for t, s in shapes]
    print(f"\ninput pipeline on {_DATA_DIR.value} (training clips/s over "
          f"{_PIPELINE_BATCHES.value} batches; tf.data, no model)\n")
    print(format_pipeline_table(rates))
  return 0


if __name__ == "__main__":
  app.run(main)
