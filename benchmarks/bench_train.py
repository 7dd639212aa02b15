"""Benchmark: training step time and memory of every stage at the paper's shapes.

Times Keras training steps (`train_on_batch`: forward, Eq. 7 or CE, backward,
SGD update) of the three stages of configs/hmdb51.yaml on generated clips:

  teacher   in-graph TV-L1 (the config's preset, `accurate`) + R3D-18 on flow
  student   R3D-18 on RGB + the frozen teacher's forward (TV-L1 + R3D-18), Eq. 7
  rgb       R3D-18 on RGB, CE only

for each batch size and with mixed precision off and on, and prints a
markdown table: median step time, clips/s, peak device memory, and the hours
one HMDB51 split (3570 training clips) takes for 100 epochs at that rate
(steps only: no input pipeline, no validation). The first step (tracing and
compiling) is reported apart and excluded, as is one more warm-up step.

Any Keras backend; under JAX or PyTorch it needs no TensorFlow (nothing on
this path imports it). Each (stage, precision) group runs in its own process
by default, so a group that runs out of memory or crashes costs only its rows
(marked OOM / error), the peak memory of each group is its own, and a time
budget bounds the whole run. Batch sizes run in increasing order within a
group; the JAX peak is the process's, hence the largest batch's so far.

The paper's shapes on a GPU (JAX, no TensorFlow; about 6 minutes on an H200):
  KERAS_BACKEND=jax python benchmarks/bench_train.py
On CPU, at small shapes (CI runs this at tiny shapes, tests/benchmarks):
  KERAS_BACKEND=jax .venv/bin/python benchmarks/bench_train.py --batch_sizes=2 \
      --params_override="data.num_frames=8,data.crop_size=32,model.backbone=light,model.width=8"
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("teacher", "student", "rgb")
ROW_PREFIX = "@@row "

_CONFIG = flags.DEFINE_string("config", os.path.join(_REPO, "configs", "hmdb51.yaml"),
                              "Experiment config giving the shapes, backbone, TV-L1 preset.")
_PARAMS_OVERRIDE = flags.DEFINE_string(
    "params_override", "", "Config overrides, `a.b=1,c=2` (as tools/train.py).")
_STAGES = flags.DEFINE_list("stages", list(STAGES), "Stages to time.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["8", "16", "32"], "Batch sizes, ascending.")
_PRECISIONS = flags.DEFINE_list(
    "precisions", ["on", "off"], "Mixed precision on and/or off (`on` first: on a GPU "
    "the setting a run would use).")
_MIXED_POLICY = flags.DEFINE_string(
    "mixed_policy", "auto", "Policy for mixed precision `on`: auto = the trainer's "
    "(mixed_float16 on GPU, mixed_bfloat16 elsewhere), or a Keras policy name.")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps per row (median).", lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after the compiling first step.",
                               lower_bound=0)
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 51, "K (HMDB51).")
_TRAIN_CLIPS = flags.DEFINE_integer("train_clips", 3570,
                                    "Training clips per epoch (HMDB51: 3570 per split).")
_EPOCHS = flags.DEFINE_integer("epochs", 100, "Epochs for the projected hours.")
_ISOLATE = flags.DEFINE_boolean(
    "isolate", True, "Run each (stage, precision) group in its own process.")
_BUDGET_S = flags.DEFINE_float(
    "budget_s", 330.0, "Wall-time budget of the whole run (isolated groups): a group gets "
    "what is left; rows not reached are marked `budget`.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", "", "Also write the rows here.")
_WORKER = flags.DEFINE_string("worker", "", "Internal: run one `stage:precision` group.")


# ----------------------------------------------------------------------------
# one group, in this process


def _device_description() -> str:
  import keras  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  if backend == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    device = jax.local_devices()[0]
    return f"jax {jax.__version__}, {device.platform}: {device.device_kind}"
  if backend == "torch":
    import torch  # pylint: disable=g-import-not-at-top
    if torch.cuda.is_available():
      return f"torch {torch.__version__}, cuda: {torch.cuda.get_device_name(0)}"
    return f"torch {torch.__version__}, cpu"
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_logical_devices("GPU")
  return f"tensorflow {tf.__version__}, {'gpu' if gpus else 'cpu'}"


def _peak_device_bytes():
  """Peak device memory of this process so far, or None (CPU / not reported)."""
  import keras  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  try:
    if backend == "jax":
      import jax  # pylint: disable=g-import-not-at-top
      stats = jax.local_devices()[0].memory_stats()
      return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None
    if backend == "torch":
      import torch  # pylint: disable=g-import-not-at-top
      return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if tf.config.list_logical_devices("GPU"):
      return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
  except Exception:  # pylint: disable=broad-except
    return None
  return None


def _reset_peak():
  import keras  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  try:
    if backend == "torch":
      import torch  # pylint: disable=g-import-not-at-top
      if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    elif backend == "tensorflow":
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      if tf.config.list_logical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")
  except Exception:  # pylint: disable=broad-except
    pass  # JAX has no reset: its peak is the process's


def _build(stage, cfg, num_classes):
  """The stage's Keras model, as tools/train.py builds it (random weights)."""
  import keras  # pylint: disable=g-import-not-at-top
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import tf_graph  # pylint: disable=g-import-not-at-top
  m = cfg.model
  kwargs = config_lib.backbone_kwargs(cfg)
  t, s = cfg.data.num_frames, cfg.data.crop_size

  def teacher(name):
    return models.build_teacher(num_classes, t, s, flow_preset=m.flow.preset,
                                flow_overrides=dict(m.flow.overrides), flow_bound=m.flow.bound,
                                name=name, **kwargs)

  if stage == "teacher":
    model = teacher("flow")
  elif stage == "rgb":
    model = models.build_rgb_model(num_classes, t, s, name="rgb", **kwargs)
  else:
    student = models.build_rgb_model(num_classes, t, s, name="student", **kwargs)
    model = models.DistillationModel(student, teacher("flow"),
                                     distill_weight=cfg.distill.lambda_,
                                     feature_layer=cfg.distill.feature_layer,
                                     projection=cfg.distill.projection,
                                     confidence_weighting=cfg.distill.confidence_weighting)
  decoupled = cfg.train.weight_decay_mode == "decoupled" and cfg.train.weight_decay > 0
  optimizer = keras.optimizers.SGD(cfg.train.learning_rate, momentum=cfg.train.momentum,
                                   nesterov=cfg.train.nesterov,
                                   weight_decay=cfg.train.weight_decay if decoupled else None)
  if stage == "student":
    model.compile(optimizer=optimizer)
  else:
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
  if stage == "teacher":
    # As the trainer does for a model with TV-L1 in its graph (TensorFlow only).
    tf_graph.keras_functions_without_add_ops_rewrite(model)
  return model


def _error_kind(error: BaseException) -> str:
  text = f"{type(error).__name__}: {error}"
  if any(s in text for s in ("RESOURCE_EXHAUSTED", "out of memory", "OutOfMemory", "OOM")):
    return "OOM"
  return "error: " + text.splitlines()[0][:160]


def run_group(stage: str, precision: str, batch_sizes, emit) -> None:
  """Times `stage` at each batch size; calls `emit(row_dict)` per row."""
  import keras  # pylint: disable=g-import-not-at-top
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import numpy_input  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import backend  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import timing  # pylint: disable=g-import-not-at-top

  cfg = config_lib.load_config(_CONFIG.value, stage, _PARAMS_OVERRIDE.value or None)
  policy = "float32"
  if precision == "on":
    policy = backend.mixed_policy() if _MIXED_POLICY.value == "auto" else _MIXED_POLICY.value
  base = dict(stage=stage, precision=precision, policy=policy, backend=backend.name(),
              device=_device_description(), num_frames=cfg.data.num_frames,
              crop_size=cfg.data.crop_size, backbone=cfg.model.backbone,
              flow_preset=cfg.model.flow.preset)
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(policy)
  try:
    keras.utils.set_random_seed(0)
    try:
      model = _build(stage, cfg, _NUM_CLASSES.value)
    except Exception as e:  # pylint: disable=broad-except
      for batch in batch_sizes:
        emit(dict(base, batch=batch, status=_error_kind(e)))
      return
    for i, batch in enumerate(batch_sizes):
      row = dict(base, batch=batch)
      x = y = None
      try:
        _reset_peak()
        clips, labels = numpy_input.generated_clips(batch, cfg.data.num_frames,
                                                    cfg.data.crop_size, _NUM_CLASSES.value)
        # On the device before timing: the step, not the host-to-device copy.
        x = keras.ops.convert_to_tensor(clips)
        y = keras.ops.convert_to_tensor(labels)
        first, step = (ms / 1e3 for ms in timing.first_and_median_ms(
            lambda: model.train_on_batch(x, y), _STEPS.value, _WARMUP.value))
        logs = model.train_on_batch(x, y, return_dict=True)  # untimed: the loss column
        row.update(status="ok", step_s=step, clips_per_s=batch / step,
                   compile_s=max(0.0, first - step), peak_bytes=_peak_device_bytes(),
                   loss=float(logs["loss"]))
      except Exception as e:  # pylint: disable=broad-except
        row.update(status=_error_kind(e))
        emit(row)
        del x, y
        if row["status"] == "OOM":
          for later in batch_sizes[i + 1:]:
            emit(dict(base, batch=later, status="OOM (smaller batch did)"))
          return
        continue
      emit(row)
  finally:
    keras.config.set_dtype_policy(previous)


# ----------------------------------------------------------------------------
# driver


def _hours(clips_per_s: float) -> float:
  return _TRAIN_CLIPS.value * _EPOCHS.value / clips_per_s / 3600.0


def format_table(rows) -> str:
  """The markdown table of `rows` (dicts from `run_group`)."""
  lines = [
      f"| stage | batch | mixed precision | step (ms) | clips/s | peak device memory (GiB) "
      f"| h / split ({_EPOCHS.value} epochs) | compile (s) |",
      "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in rows:
    mp = r["policy"] if r["precision"] == "on" else "off"
    if r.get("status") != "ok":
      lines.append(f"| {r['stage']} | {r['batch']} | {mp} | {r.get('status')} | | | | |")
      continue
    peak = "n/a" if r.get("peak_bytes") is None else f"{r['peak_bytes'] / 2**30:.1f}"
    lines.append(
        f"| {r['stage']} | {r['batch']} | {mp} | {1e3 * r['step_s']:.0f} "
        f"| {r['clips_per_s']:.1f} | {peak} | {_hours(r['clips_per_s']):.1f} "
        f"| {r['compile_s']:.0f} |")
  return "\n".join(lines)


def _worker_args(group: str):
  args = [sys.executable, os.path.abspath(__file__), f"--worker={group}"]
  for flag in (_CONFIG, _PARAMS_OVERRIDE, _BATCH_SIZES, _MIXED_POLICY, _STEPS, _WARMUP,
               _NUM_CLASSES):
    value = flag.value
    if isinstance(value, list):
      value = ",".join(value)
    args.append(f"--{flag.name}={value}")
  return args


def _run_isolated(stage, precision, batch_sizes, timeout, rows):
  """Runs one group in a subprocess; fills in rows it did not report."""
  got = []
  status = None
  try:
    proc = subprocess.run(_worker_args(f"{stage}:{precision}"), capture_output=True, text=True,
                          timeout=max(1.0, timeout), check=False)
    out, err = proc.stdout, proc.stderr
    if proc.returncode != 0:
      lines = [l for l in err.strip().splitlines() if l.strip()]
      status = f"crashed (exit {proc.returncode}): {lines[-1][:120] if lines else ''}"
  except subprocess.TimeoutExpired as e:
    out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    status = "budget"
  for line in out.splitlines():
    if line.startswith(ROW_PREFIX):
      got.append(json.loads(line[len(ROW_PREFIX):]))
  rows.extend(got)
  done = {r["batch"] for r in got}
  for batch in batch_sizes:
    if batch not in done:
      rows.append(dict(stage=stage, precision=precision, policy="?", batch=batch,
                       status=status or "no result"))
  for r in got:
    print(f"  {stage:8s} batch {r['batch']:3d} precision {precision}: {r.get('status')}"
          + (f", {1e3 * r['step_s']:.0f} ms/step, compile {r['compile_s']:.0f} s"
             if r.get("status") == "ok" else ""), flush=True)


def main(argv):
  del argv
  batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  if _WORKER.value:
    stage, precision = _WORKER.value.split(":")
    run_group(stage, precision, batch_sizes,
              lambda row: print(ROW_PREFIX + json.dumps(row), flush=True))
    return 0
  for stage in _STAGES.value:
    if stage not in STAGES:
      raise app.UsageError(f"--stages: unknown stage {stage!r} (one of {', '.join(STAGES)})")
  for precision in _PRECISIONS.value:
    if precision not in ("on", "off"):
      raise app.UsageError(f"--precisions: {precision!r} is not on or off")
  # Cheapest stage first within a precision: rows that fit in the budget are
  # the ones a shortened run still reports.
  order = [s for s in ("rgb", "student", "teacher") if s in _STAGES.value]
  groups = [(s, p) for p in _PRECISIONS.value for s in order]
  backend_name = os.environ.get("KERAS_BACKEND", "tensorflow")
  print(f"bench_train: backend {backend_name}, config {os.path.relpath(_CONFIG.value)}"
        f"{' + ' + _PARAMS_OVERRIDE.value if _PARAMS_OVERRIDE.value else ''}, "
        f"batches {batch_sizes}, {_STEPS.value} timed steps after {_WARMUP.value} warm-up",
        flush=True)
  rows = []
  start = time.perf_counter()
  for stage, precision in groups:
    if _ISOLATE.value:
      left = _BUDGET_S.value - (time.perf_counter() - start)
      if left < 5:
        rows.extend(dict(stage=stage, precision=precision, policy="?", batch=b,
                         status="budget") for b in batch_sizes)
        continue
      _run_isolated(stage, precision, batch_sizes, left, rows)
    else:
      run_group(stage, precision, batch_sizes, rows.append)
  ok = [r for r in rows if r.get("status") == "ok"]
  device = ok[0]["device"] if ok else "?"
  shape = (f"{ok[0]['backbone']}, {ok[0]['num_frames']}x{ok[0]['crop_size']}x"
           f"{ok[0]['crop_size']}, TV-L1 {ok[0]['flow_preset']}" if ok else "?")
  print(f"\nDevice: {device}; {shape}; {time.perf_counter() - start:.0f} s in all\n")
  print(format_table(rows))
  print(f"\nh / split: {_TRAIN_CLIPS.value} clips x {_EPOCHS.value} epochs at the row's "
        "clips/s (training steps only). compile: first step minus a timed step.")
  if _OUTPUT_JSON.value:
    with open(_OUTPUT_JSON.value, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=1)
  return 0 if ok else 1


if __name__ == "__main__":
  app.run(main)
