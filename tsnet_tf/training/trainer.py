"""Training loop for every stage: optimizer, schedule, callbacks, strategy.

Stages (`--stage`):
  teacher (alias flow)  RGB clip -> in-graph TV-L1 -> 3D CNN, CE only (M1 + M2).
  rgb                   RGB 3D CNN, CE only (the RGB baseline).
  student               RGB 3D CNN (M3) trained with Eq. 7 against the frozen
                        teacher loaded from `teacher_dir`: optional MSE-only
                        warm-up epochs, then CE + lambda * MSE.
  twostream             late fusion of the rgb and flow networks' softmax.
                        With `rgb_dir` and `flow_dir` the trained networks are
                        loaded and fused (and fine-tuned only if epochs > 0);
                        without them both are built fresh and trained jointly
                        on the CE of the fused prediction.

Outputs in `model_dir` (docs/design.md): config.yaml, labels.txt, model.keras
(the student alone for `student`), best.keras (+ best.json), backup/ (resume
state, removed when training completes), logs/ (TensorBoard), history.json,
training_curves.png.

Distribution: `default` (one device), `mirrored` (all local devices) or
`multi_worker` (`TF_CONFIG`); the batch size in the config is global. Under
`multi_worker` the chief writes `model_dir`; other workers keep their resume
state in `model_dir/.worker-<type>-<index>/` and delete it when done.
That is tf.distribute under the TensorFlow backend; under JAX, `mirrored` is
`keras.distribution.DataParallel`, and torch trains on one device
(tsnet_tf/training/backend.py). The input is tf.data on every backend.
"""

import dataclasses
import json
import logging
import math
import os
import shutil
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from tsnet_tf import config as config_lib
from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.training import backend
from tsnet_tf.training import run_dir
from tsnet_tf.utils.io import atomic_write

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multi_worker")
# The run directory's file names (owned by run_dir).
MODEL_FILE = run_dir.MODEL_FILE
BEST_FILE = run_dir.BEST_FILE
BEST_INFO_FILE = run_dir.BEST_INFO_FILE
HISTORY_FILE = run_dir.HISTORY_FILE
CURVES_FILE = run_dir.CURVES_FILE
CONFIG_FILE = run_dir.CONFIG_FILE
LABELS_FILE = run_dir.LABELS_FILE


class TrainingError(ValueError):
  """Bad arguments to `train`: a missing or malformed directory or flag."""


# ----------------------------------------------------------------------------
# learning rate and optimizer


@keras.saving.register_keras_serializable(package="tsnet_tf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up from 0 to `peak`, then cosine, step or constant decay.

  lr(s) = peak * s / warmup_steps                          for s < warmup_steps
  cosine: peak * (alpha + (1 - alpha) * (1 + cos(pi * p)) / 2),
          p = (s - warmup_steps) / (total_steps - warmup_steps) clipped to [0, 1]
  step:   peak * decay_rate ** (number of boundaries <= s)
  constant: peak

  Args:
    peak: learning rate at the end of warm-up.
    total_steps: steps of the whole run (cosine reaches `alpha * peak` there).
    warmup_steps: warm-up length in steps (0 = none).
    decay: "cosine", "step" or "constant".
    boundaries: step decay boundaries in steps.
    decay_rate: step decay factor.
    alpha: cosine floor as a fraction of `peak`.
  """

  def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0,
               decay: str = "cosine", boundaries: Sequence[int] = (),
               decay_rate: float = 0.1, alpha: float = 0.0):
    if decay not in ("cosine", "step", "constant"):
      raise ValueError(f"decay must be cosine, step or constant, got {decay!r}")
    self.peak = float(peak)
    self.total_steps = max(1, int(total_steps))
    self.warmup_steps = max(0, int(warmup_steps))
    self.decay = decay
    self.boundaries = [int(b) for b in boundaries]
    self.decay_rate = float(decay_rate)
    self.alpha = float(alpha)

  def __call__(self, step):
    step = keras.ops.cast(step, "float32")
    warm = keras.ops.cast(max(1, self.warmup_steps), "float32")
    warmup_lr = self.peak * (step + 1.0) / warm
    if self.decay == "cosine":
      span = float(max(1, self.total_steps - self.warmup_steps))
      progress = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
      cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
      decayed = self.peak * (self.alpha + (1.0 - self.alpha) * cosine)
    elif self.decay == "step":
      passed = keras.ops.zeros((), "float32")
      for b in self.boundaries:
        passed = passed + keras.ops.cast(step >= b, "float32")
      decayed = self.peak * keras.ops.power(self.decay_rate, passed)
    else:
      decayed = keras.ops.convert_to_tensor(self.peak, "float32")
    if self.warmup_steps == 0:
      return decayed
    return keras.ops.where(step < self.warmup_steps, warmup_lr, decayed)

  def get_config(self):
    return dict(peak=self.peak, total_steps=self.total_steps,
                warmup_steps=self.warmup_steps, decay=self.decay,
                boundaries=list(self.boundaries), decay_rate=self.decay_rate,
                alpha=self.alpha)


def make_learning_rate(train_cfg: config_lib.TrainConfig,
                       steps_per_epoch: int) -> WarmupDecay:
  """The config's schedule in optimizer steps."""
  return WarmupDecay(
      peak=train_cfg.learning_rate,
      total_steps=max(1, train_cfg.epochs * steps_per_epoch),
      warmup_steps=int(round(train_cfg.warmup_epochs * steps_per_epoch)),
      decay=train_cfg.lr_schedule,
      boundaries=[e * steps_per_epoch for e in train_cfg.decay_epochs],
      decay_rate=train_cfg.decay_rate,
      alpha=train_cfg.min_lr_ratio)


def make_optimizer(train_cfg: config_lib.TrainConfig,
                   steps_per_epoch: int) -> keras.optimizers.Optimizer:
  """SGD with momentum and the warm-up schedule.

  With `weight_decay_mode: decoupled` the optimizer applies the decay (not to
  biases or BatchNorm parameters); with `l2` the models carry it as a kernel
  regularizer and the optimizer applies none.
  """
  decoupled = train_cfg.weight_decay_mode == "decoupled" and train_cfg.weight_decay > 0
  optimizer = keras.optimizers.SGD(
      learning_rate=make_learning_rate(train_cfg, steps_per_epoch),
      momentum=train_cfg.momentum, nesterov=train_cfg.nesterov,
      weight_decay=train_cfg.weight_decay if decoupled else None)
  if decoupled:
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
  return optimizer


# ----------------------------------------------------------------------------
# strategy


def make_strategy(name: str) -> tf.distribute.Strategy:
  """`default` (current strategy), `mirrored` (local devices) or `multi_worker`.

  `multi_worker` reads the cluster from `TF_CONFIG`; create it before any other
  TF operation of the process (a `tf.distribute` requirement). Under the JAX
  and torch backends: `backend.make_distribution` (keras.distribution).
  """
  if name in STRATEGIES and not backend.uses_tf_distribute():
    try:
      return backend.make_distribution(name)
    except backend.BackendError as e:
      raise TrainingError(str(e)) from e
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if not devices:
      devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise TrainingError("--strategy=multi_worker needs the TF_CONFIG environment variable")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise TrainingError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def _is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


def _worker_role(strategy: tf.distribute.Strategy):
  """(is_chief, "type-index") of this process."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not _is_multi_worker(strategy):
    return True, "chief-0"
  task_type, task_id = resolver.task_type, resolver.task_id
  cluster = resolver.cluster_spec().as_dict()
  is_chief = task_type == "chief" or (
      task_type == "worker" and task_id == 0 and "chief" not in cluster)
  return is_chief, f"{task_type}-{task_id}"


def _multi_worker_function(strategy, step_fn):
  """A Keras `train_function`/`test_function` for multi-worker runs.

  Keras 3.15's own reduces the scalar metrics with `strategy.reduce(..., axis=0)`,
  which `MultiWorkerMirroredStrategy` rejects for scalars; here they are reduced
  with `axis=None`. Keras calls it with the distributed iterator.
  """

  @tf.function(reduce_retracing=True)
  def one_step(data):
    outputs = strategy.run(step_fn, args=(data,))
    return tf.nest.map_structure(
        lambda v: strategy.reduce("MEAN", v, axis=None), outputs)

  def function(iterator):
    optional = iterator.get_next_as_optional()
    if not optional.has_value():
      raise StopIteration
    return one_step(optional.get_value())

  return function


def _prepare_for_multi_worker(model, strategy, sample_batch):
  """Builds the compiled state up front and installs the multi-worker step functions.

  Keras' `fit` would build it from the first batch with `strategy.reduce` over
  the `(x, y)` tuple, which `MultiWorkerMirroredStrategy` does not accept.
  """
  with strategy.scope():
    model._symbolic_build(data_batch=sample_batch)  # pylint: disable=protected-access
  model._maybe_symbolic_build = lambda *args, **kwargs: None  # pylint: disable=protected-access
  model.train_function = _multi_worker_function(strategy, model.train_step)
  model.test_function = _multi_worker_function(strategy, model.test_step)


# ----------------------------------------------------------------------------
# inputs


def check_data_dir(data_dir: str, split: int) -> List[str]:
  """Checks `data_dir` is a converted data directory with `split`; returns labels.

  Raises:
    TrainingError: naming the directory and what is missing.
  """
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  if not data_dir:
    raise TrainingError("--data_dir is required")
  if not os.path.isdir(data_dir):
    raise TrainingError(f"--data_dir {data_dir!r} is not a directory")
  try:
    labels = pipeline.load_labels(data_dir)
    pipeline.count_videos(data_dir, split, "train")
  except (FileNotFoundError, ValueError, KeyError) as e:
    raise TrainingError(f"--data_dir {data_dir!r}: {e}") from e
  return labels


def _dataset(strategy, distribute: bool, global_batch: int, **kwargs):
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  if not distribute:
    return pipeline.make_dataset(batch_size=global_batch, **kwargs)
  return strategy.distribute_datasets_from_function(
      lambda ctx: pipeline.make_dataset(batch_size=global_batch, input_context=ctx, **kwargs))


def _check_run_dir(model_dir: str, cfg: config_lib.ExperimentConfig, overwrite: bool,
                   may_delete: bool) -> None:
  """Refuses to train over a finished run, or to resume under another config.

  With `overwrite`, the trainer's own files there (an interrupted run's resume
  state included) are deleted, by the chief only (`may_delete`), and training
  starts afresh.

  Raises:
    TrainingError: naming the directory (and the differing keys), suggesting --overwrite.
  """
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise TrainingError(f"--model_dir {model_dir!r} is not a directory")
  if run_dir.is_interrupted(model_dir):
    try:
      started = config_lib.load_run_config(model_dir)
    except config_lib.ConfigError as e:
      started, problem = None, f"its {CONFIG_FILE} cannot be read ({e})"
    else:
      problem = None if started else f"it has no {CONFIG_FILE}"
    if started is not None:
      diffs = config_lib.config_differences(started, cfg)
      if diffs:
        problem = "the config differs from the one it started with: " + "; ".join(
            f"{key}: {old!r} (run) vs {new!r} (now)" for key, old, new in diffs)
    if problem and not overwrite:
      raise TrainingError(f"--model_dir {model_dir!r} holds an interrupted run that cannot be "
                          f"resumed: {problem}; resume with the same config, or pass "
                          "--overwrite to start afresh")
    if not problem and not overwrite:
      return  # Resume.
  elif run_dir.is_finished(model_dir) and not overwrite:
    raise TrainingError(f"--model_dir {model_dir!r} holds a finished run ({MODEL_FILE}); "
                        "pass --overwrite to replace it, or choose another --model_dir")
  if overwrite and may_delete and os.path.isdir(model_dir):
    removed = run_dir.remove_training_outputs(model_dir)
    if removed:
      log.warning("--overwrite: removed %s from %s", ", ".join(sorted(removed)), model_dir)


def _check_input_runs(stage, teacher_dir, rgb_dir, flow_dir) -> None:
  """The runs a stage builds on hold the stages it expects (their config.yaml)."""
  expected = {"student": [(teacher_dir, "--teacher_dir", ("teacher",))],
              "twostream": [(rgb_dir, "--rgb_dir", ("rgb", "student")),
                            (flow_dir, "--flow_dir", ("teacher",))]}.get(stage, [])
  for directory, flag, stages in expected:
    try:
      run_dir.check_stage(directory, flag, stages)
    except run_dir.RunDirError as e:
      raise TrainingError(str(e)) from e


# ----------------------------------------------------------------------------
# models


def _load_classifier(model_dir: str, flag: str) -> keras.Model:
  """Loads `model_dir/model.keras` (a trained classifier)."""
  if not model_dir:
    raise TrainingError(f"{flag} is required for this stage")
  try:
    return run_dir.load_classifier(model_dir, MODEL_FILE, flag)
  except FileNotFoundError as e:
    raise TrainingError(str(e)) from e


def build_rgb(cfg: config_lib.ExperimentConfig, num_classes: int,
              name: str = "rgb") -> keras.Model:
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  return models.build_rgb_model(num_classes, cfg.data.num_frames, cfg.data.crop_size,
                                name=name, **config_lib.backbone_kwargs(cfg))


def build_flow(cfg: config_lib.ExperimentConfig, num_classes: int,
               name: str = "flow") -> keras.Model:
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  f = cfg.model.flow
  return models.build_teacher(num_classes, cfg.data.num_frames, cfg.data.crop_size,
                              flow_preset=f.preset, flow_overrides=dict(f.overrides),
                              flow_bound=f.bound, name=name, **config_lib.backbone_kwargs(cfg))


def _check_input(model: keras.Model, cfg: config_lib.ExperimentConfig, num_classes: int,
                 what: str) -> None:
  expected = (cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size, 3)
  got = tuple(model.input_shape[1:])
  if got != expected:
    raise TrainingError(
        f"{what} takes clips of shape {got} but the config gives {expected} "
        "(data.num_frames, data.crop_size); use the teacher's settings")
  if model.output_shape[-1] != num_classes:
    raise TrainingError(
        f"{what} has {model.output_shape[-1]} classes but the data directory has {num_classes}")


def _uncompiled(model: keras.Model) -> keras.Model:
  """The same layers and weights in a new, uncompiled functional model.

  Saving it leaves the optimizer (and our schedule class) out of the
  `.keras` file, so it loads anywhere `tsnet_tf.models` is importable.
  """
  return keras.Model(model.input, model.output, name=model.name)


@dataclasses.dataclass
class _Stage:
  model: keras.Model  # what `fit` trains
  export: Callable[[], keras.Model]  # the classifier saved as model/best.keras
  callbacks: List[keras.callbacks.Callback]
  compile_kwargs: Dict[str, Any]


def _build_stage(cfg, stage, num_classes, teacher_dir, rgb_dir, flow_dir) -> _Stage:
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  classifier_compile = dict(loss=ce, metrics=["accuracy"])
  if stage == "rgb":
    model = build_rgb(cfg, num_classes, "rgb")
    return _Stage(model, lambda: _uncompiled(model), [], classifier_compile)
  if stage == "teacher":
    model = build_flow(cfg, num_classes, "flow")
    return _Stage(model, lambda: _uncompiled(model), [], classifier_compile)
  if stage == "student":
    teacher = _load_classifier(teacher_dir, "--teacher_dir")
    _check_input(teacher, cfg, num_classes, f"the teacher in {teacher_dir!r}")
    student = build_rgb(cfg, num_classes, "student")
    model = models.DistillationModel(
        student, teacher, distill_weight=cfg.distill.lambda_,
        feature_layer=cfg.distill.feature_layer, projection=cfg.distill.projection,
        confidence_weighting=cfg.distill.confidence_weighting,
        logit_weight=cfg.distill.logit_weight, temperature=cfg.distill.temperature,
        name="distillation")
    model.build((None,) + tuple(student.input_shape[1:]))
    callbacks = []
    if cfg.distill.mse_warmup_epochs:
      callbacks.append(models.MseWarmup(cfg.distill.mse_warmup_epochs))
    return _Stage(model, lambda: model.student, callbacks, {})
  if stage == "twostream":
    if bool(rgb_dir) != bool(flow_dir):
      raise TrainingError("--rgb_dir and --flow_dir go together (or neither: train both)")
    if rgb_dir:
      rgb = _load_classifier(rgb_dir, "--rgb_dir")
      flow = _load_classifier(flow_dir, "--flow_dir")
      _check_input(rgb, cfg, num_classes, f"the rgb model in {rgb_dir!r}")
      _check_input(flow, cfg, num_classes, f"the flow model in {flow_dir!r}")
      if rgb.name == flow.name:
        flow.name = f"{flow.name}_flow"
    else:
      if cfg.train.epochs == 0:
        raise TrainingError(
            "twostream without --rgb_dir/--flow_dir trains both streams jointly: "
            "set train.epochs > 0 (e.g. --params_override=train.epochs=10)")
      rgb = build_rgb(cfg, num_classes, "rgb")
      flow = build_flow(cfg, num_classes, "flow")
    model = models.build_two_stream(rgb, flow, name="twostream")
    return _Stage(model, lambda: _uncompiled(model), [], classifier_compile)
  raise TrainingError(f"unknown stage {stage!r}")


def _with_contract(built: _Stage, spec, labels: Sequence[str]) -> _Stage:
  """The stage whose exported classifier carries the run's clip spec and class names."""
  export = built.export
  return dataclasses.replace(
      built, export=lambda: clip_spec_lib.attach(export(), spec, labels))


# ----------------------------------------------------------------------------
# callbacks


def _to_float(value) -> Optional[float]:
  try:
    value = float(np.asarray(value))
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) else None


def _write_json(path: str, obj) -> None:
  with atomic_write(path) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(obj, f, indent=1)


class HistoryLogger(keras.callbacks.Callback):
  """Appends each epoch's logs and learning rate to `history.json`.

  A resumed run starts at the restored epoch and drops any later records left
  by the interrupted run, so the file always holds one record per epoch.
  """

  def __init__(self, path: str, write: bool = True):
    super().__init__()
    self.path = path
    self.write = write
    self.history: Dict[str, List] = {}
    self._started = False

  def on_epoch_begin(self, epoch, logs=None):
    if self._started:
      return
    self._started = True
    self.history = {}
    if epoch > 0 and os.path.isfile(self.path):
      with open(self.path, encoding="utf-8") as f:
        old = json.load(f)
      keep = [i for i, e in enumerate(old.get("epoch", [])) if e < epoch]
      self.history = {k: [v[i] for i in keep] for k, v in old.items()}

  def on_epoch_end(self, epoch, logs=None):
    record = {"epoch": epoch}
    record.update({k: _to_float(v) for k, v in (logs or {}).items()})
    record["learning_rate"] = _to_float(self.model.optimizer.learning_rate)
    n = len(self.history.get("epoch", []))
    for key in set(self.history) | set(record):
      column = self.history.setdefault(key, [None] * n)
      column.append(record.get(key))
    if self.write:
      _write_json(self.path, self.history)


class EpochSummaries(keras.callbacks.Callback):
  """Per-epoch scalars as TensorBoard event files in `log_dir/{train,validation}`.

  Written with TF's core summary ops and the scalars plugin's metadata, so it
  needs no `tensorboard` package at training time (Keras' TensorBoard callback
  does); `tensorboard --logdir=log_dir` reads them as usual. Keys `val_*` go to
  `validation/`, the rest (and the learning rate) to `train/`.
  """

  def __init__(self, log_dir: str):
    super().__init__()
    self.log_dir = log_dir
    self._writers = {}

  def _writer(self, name):
    if name not in self._writers:
      self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
    return self._writers[name]

  def on_epoch_end(self, epoch, logs=None):
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    values = dict(logs or {})
    values["learning_rate"] = self.model.optimizer.learning_rate
    for key, value in values.items():
      value = _to_float(value)
      if value is None:
        continue
      name, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
      with self._writer(name).as_default():
        tf.summary.write(f"epoch_{tag}", tf.constant(value, tf.float32), step=epoch,
                         metadata=metadata)
    for writer in self._writers.values():
      writer.flush()

  def on_train_end(self, logs=None):
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


class BestModelCheckpoint(keras.callbacks.Callback):
  """Saves the classifier to `best.keras` whenever `monitor` improves.

  The best value so far lives in `best.json` next to it, so a resumed run
  keeps comparing against the interrupted run's best (a fresh run, starting
  at epoch 0, forgets it). Both files are written atomically.
  """

  def __init__(self, model_dir: str, export: Callable[[], keras.Model],
               monitor: str = "val_accuracy", write: bool = True):
    super().__init__()
    self.model_path = os.path.join(model_dir, BEST_FILE)
    self.info_path = os.path.join(model_dir, BEST_INFO_FILE)
    self.export = export
    self.monitor = monitor
    self.write = write
    self.best: Optional[float] = None
    self.best_epoch: Optional[int] = None
    self._started = False

  def on_epoch_begin(self, epoch, logs=None):
    if self._started:
      return
    self._started = True
    if epoch > 0 and os.path.isfile(self.info_path):
      with open(self.info_path, encoding="utf-8") as f:
        info = json.load(f)
      if info.get("monitor") == self.monitor and info.get("epoch", epoch) < epoch:
        self.best, self.best_epoch = info["value"], info["epoch"]

  def on_epoch_end(self, epoch, logs=None):
    value = _to_float((logs or {}).get(self.monitor))
    if value is None:
      return
    if self.best is not None and value <= self.best:
      return
    self.best, self.best_epoch = value, epoch
    if not self.write:
      return
    with atomic_write(self.model_path) as tmp:
      self.export().save(tmp)
    _write_json(self.info_path, {"monitor": self.monitor, "value": value, "epoch": epoch})


# ----------------------------------------------------------------------------
# train


@dataclasses.dataclass
class TrainResult:
  """What `train` did.

  Attributes:
    model_dir: output directory.
    stage: canonical stage.
    history: `history.json` contents (per-epoch metrics, all epochs so far).
    best_metric: name of the metric that picked `best.keras`.
    best_value: its best value (None if no epoch was run).
    best_epoch: 0-based epoch of the best value.
    model: the final classifier (the student alone for `student`).
    num_replicas: replicas the batch was split over (all workers).
  """
  model_dir: str
  stage: str
  history: Dict[str, List]
  best_metric: str
  best_value: Optional[float]
  best_epoch: Optional[int]
  model: keras.Model
  num_replicas: int = 1


def train(config: config_lib.ExperimentConfig,
          stage: str,
          model_dir: str,
          data_dir: str,
          split: int = 1,
          teacher_dir: Optional[str] = None,
          rgb_dir: Optional[str] = None,
          flow_dir: Optional[str] = None,
          strategy: Union[str, tf.distribute.Strategy, None] = "default",
          mixed_precision: Optional[bool] = None,
          verbose: Union[int, str] = "auto",
          callbacks: Sequence[keras.callbacks.Callback] = (),
          overwrite: bool = False) -> TrainResult:
  """Trains one stage and writes its outputs to `model_dir`.

  Re-running with the same `model_dir` and config after the process was killed
  resumes from the last completed epoch (weights, optimizer state, schedule
  step, MSE warm-up phase, history and best-so-far). A `model_dir` holding a
  finished run, or an interrupted one whose config.yaml differs from `config`,
  is refused unless `overwrite`.

  Args:
    config: resolved config (`config_lib.load_config(path, stage, override)`).
    stage: `teacher` (alias `flow`), `student`, `rgb` or `twostream`.
    model_dir: output directory.
    data_dir: output of tools/prepare_hmdb51.py (labels.txt, summary.json,
      TFRecords); the classes come from here.
    split: official split (1-3).
    teacher_dir: `student` stage: model_dir of a trained teacher.
    rgb_dir, flow_dir: `twostream` stage: model_dirs of trained rgb and flow
      (teacher) networks to fuse; omit both to train the two streams jointly.
    strategy: `default`, `mirrored`, `multi_worker` or a `tf.distribute.Strategy`.
    mixed_precision: overrides `config.train.mixed_precision`.
    verbose: Keras progress bar setting (`auto`, 0, 1, 2).
    callbacks: extra Keras callbacks (run after the built-in ones).
    overwrite: start afresh: delete the files a previous run (finished or
      interrupted) wrote in `model_dir` (`run_dir.remove_training_outputs`);
      other files stay.

  Returns:
    TrainResult.

  Raises:
    TrainingError: bad data_dir / teacher_dir / rgb_dir / flow_dir / strategy; a
      finished run in model_dir, or an interrupted one under another config.
    config_lib.ConfigError: unknown stage or bad config values.
  """
  stage = config_lib.canonical_stage(stage)
  cfg = dataclasses.replace(config, stage=stage, stages={})
  if split not in (1, 2, 3):
    raise TrainingError(f"--split must be 1, 2 or 3, got {split!r}")
  if not model_dir:
    raise TrainingError("--model_dir is required")
  labels = check_data_dir(data_dir, split)
  num_classes = len(labels)
  if isinstance(strategy, str) or strategy is None:
    strategy = make_strategy(strategy or "default")
  is_chief, role = _worker_role(strategy)
  _check_input_runs(stage, teacher_dir, rgb_dir, flow_dir)
  _check_run_dir(model_dir, cfg, overwrite, may_delete=is_chief)
  multi_worker = _is_multi_worker(strategy)
  distribute = isinstance(strategy, tf.distribute.Strategy) and (
      strategy.num_replicas_in_sync > 1 or multi_worker)
  # Non-chief workers keep their own resume state; everything else they write
  # is thrown away when training completes.
  out_dir = model_dir if is_chief else os.path.join(model_dir, f".worker-{role}")
  os.makedirs(out_dir, exist_ok=True)

  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  batch = cfg.data.batch_size
  if batch % strategy.num_replicas_in_sync:
    raise TrainingError(
        f"data.batch_size={batch} is not divisible by {strategy.num_replicas_in_sync} replicas")
  num_train = pipeline.count_videos(data_dir, split, "train")
  steps_per_epoch = cfg.train.steps_per_epoch or max(1, num_train // batch)
  validation_subset = cfg.data.validation_subset
  if validation_subset != "none" and pipeline.count_videos(data_dir, split, validation_subset) == 0:
    log.warning("split %d has no %s videos: no validation", split, validation_subset)
    validation_subset = "none"
  monitor = "val_accuracy" if validation_subset != "none" else "accuracy"
  validation_steps = cfg.train.validation_steps
  if validation_steps is None and validation_subset != "none" and not multi_worker:
    # The whole subset; known up front so Keras does not run into the end of
    # the (unknown-cardinality) dataset and warn. Multi-worker runs leave it to
    # the distributed iterator, which agrees across workers on the last batch.
    num_val = pipeline.count_videos(data_dir, split, validation_subset)
    validation_steps = max(1, math.ceil(num_val * cfg.data.validation_clips
                                        / cfg.data.eval_batch_size))

  # The clip contract every classifier saved by this run carries.
  spec = clip_spec_lib.ClipSpec.from_training(
      cfg.data, pipeline.load_summary(data_dir).get("settings", {}))

  if is_chief:
    config_lib.save_config(cfg, os.path.join(out_dir, CONFIG_FILE))
    run_dir.write_labels(out_dir, labels)

  use_mixed = cfg.train.mixed_precision if mixed_precision is None else mixed_precision
  previous_policy = keras.config.dtype_policy()
  if use_mixed:
    keras.config.set_dtype_policy(backend.mixed_policy())
  previous_distribution = backend.enter(strategy)
  try:
    keras.utils.set_random_seed(cfg.train.seed)
    with strategy.scope():
      built = _build_stage(cfg, stage, num_classes, teacher_dir, rgb_dir, flow_dir)
      built = _with_contract(built, spec, labels)
      model = built.model
      model.compile(optimizer=make_optimizer(cfg.train, steps_per_epoch),
                    steps_per_execution=backend.steps_per_execution(
                        cfg.train.steps_per_execution),
                    run_eagerly=cfg.train.run_eagerly,
                    **built.compile_kwargs)

    data_kwargs = dict(data_dir=data_dir, split=split, num_frames=cfg.data.num_frames,
                       crop_size=cfg.data.crop_size, frame_stride=cfg.data.frame_stride)
    train_ds = _dataset(strategy, distribute, batch, subset="train", training=True,
                        seed=cfg.data.shuffle_seed, flip=cfg.data.random_flip, **data_kwargs)
    val_ds = None
    if validation_subset != "none":
      val_ds = _dataset(strategy, distribute, cfg.data.eval_batch_size,
                        subset=validation_subset, training=False,
                        num_clips=cfg.data.validation_clips, **data_kwargs)
    if multi_worker:
      per_replica = batch // strategy.num_replicas_in_sync
      shape = (per_replica, cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size, 3)
      _prepare_for_multi_worker(
          model, strategy, (np.zeros(shape, "float32"), np.zeros((per_replica,), "int32")))

    history_cb = HistoryLogger(os.path.join(out_dir, HISTORY_FILE), write=is_chief)
    best_cb = BestModelCheckpoint(out_dir, built.export, monitor=monitor, write=is_chief)
    # Order matters: BackupAndRestore restores the epoch before the others start.
    cbs = [keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup"),
                                            double_checkpoint=True)]
    cbs += built.callbacks
    cbs += [history_cb, best_cb,
            EpochSummaries(os.path.join(out_dir, "logs"))]
    cbs += list(callbacks)

    if cfg.train.epochs > 0:
      model.fit(train_ds, epochs=cfg.train.epochs, steps_per_epoch=steps_per_epoch,
                validation_data=val_ds, validation_steps=validation_steps,
                callbacks=cbs, verbose=verbose, shuffle=False)
    elif val_ds is not None:
      # Nothing to train (e.g. fusing trained streams): record the validation.
      logs = model.evaluate(val_ds, steps=validation_steps, verbose=0,
                            return_dict=True)
      logs = {f"val_{k}": v for k, v in logs.items()}
      history_cb.set_model(model)
      history_cb.on_epoch_begin(0)
      history_cb.on_epoch_end(0, logs)
      best_cb.set_model(model)
      best_cb.on_epoch_begin(0)
      best_cb.on_epoch_end(0, logs)

    final = built.export()
    if is_chief:
      with atomic_write(os.path.join(out_dir, MODEL_FILE)) as tmp:
        final.save(tmp)
      if not os.path.isfile(best_cb.model_path):
        # No epoch had the monitored metric: the final model is the best known.
        shutil.copyfile(os.path.join(out_dir, MODEL_FILE), best_cb.model_path)
      if history_cb.history:
        from tsnet_tf.training import plots  # pylint: disable=g-import-not-at-top
        plots.plot_history(history_cb.history, os.path.join(out_dir, CURVES_FILE),
                           title=f"{stage} (split {split})")
    else:
      shutil.rmtree(out_dir, ignore_errors=True)
  finally:
    keras.config.set_dtype_policy(previous_policy)
    backend.exit(previous_distribution)

  return TrainResult(model_dir=model_dir, stage=stage, history=history_cb.history,
                     best_metric=monitor, best_value=best_cb.best,
                     best_epoch=best_cb.best_epoch, model=final,
                     num_replicas=strategy.num_replicas_in_sync)
