"""`train`: one stage from a config and a data directory to a finished run directory.

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

Each stage is a `stages.Stage` (its model, compile arguments, callbacks and
exported classifier); `train` only orchestrates: checks, strategy
(`distribute.py`), optimizer (`optimization.py`), input, callbacks
(`callbacks.py`), `fit`, and the run directory's files (`run_dir.py`).

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
import logging
import math
import os
import shutil
from typing import Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tsnet_tf import config as config_lib
from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.data import pipeline
from tsnet_tf.data import stored_flow
from tsnet_tf.layers import TVL1Flow
from tsnet_tf.training import backend
from tsnet_tf.training import callbacks as callbacks_lib
from tsnet_tf.training import distribute
from tsnet_tf.training import optimization
from tsnet_tf.training import plots
from tsnet_tf.training import run_dir
from tsnet_tf.training import stages as stages_lib
from tsnet_tf.training.errors import TrainingError
from tsnet_tf.utils import tf_graph
from tsnet_tf.utils.io import atomic_write

log = logging.getLogger(__name__)

# The run directory's file names (owned by run_dir).
MODEL_FILE = run_dir.MODEL_FILE
HISTORY_FILE = run_dir.HISTORY_FILE
CURVES_FILE = run_dir.CURVES_FILE
CONFIG_FILE = run_dir.CONFIG_FILE


# ----------------------------------------------------------------------------
# checks before anything is written


def check_data_dir(data_dir: str, split: int) -> Tuple[List[str], dict]:
  """Checks `data_dir` is a converted data directory with `split`.

  Returns:
    (class names in label order, its summary.json as `pipeline.load_summary`
    reads it).

  Raises:
    TrainingError: naming the directory and what is missing.
  """
  if not data_dir:
    raise TrainingError("--data_dir is required")
  if not os.path.isdir(data_dir):
    raise TrainingError(f"--data_dir {data_dir!r} is not a directory")
  try:
    labels = pipeline.load_labels(data_dir)
    summary = pipeline.load_summary(data_dir)
    pipeline.subset_size(summary, data_dir, split, "train")
  except (FileNotFoundError, ValueError, KeyError) as e:
    raise TrainingError(f"--data_dir {data_dir!r}: {e}") from e
  return labels, summary


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
      started = run_dir.load_run_config(model_dir)
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


def _check_stored_flow(stage: stages_lib.Stage, summary: dict, data_dir: str) -> None:
  """`model.flow.source: stored`: the data directory stores the flow the teacher computes."""
  f, owner = stage.flow_config()
  try:
    stored_flow.check_summary(summary, data_dir, f.preset, f.bound, stage.cfg.data.frame_stride,
                              f.overrides, owner=owner)
  except stored_flow.StoredFlowError as e:
    raise TrainingError(str(e)) from e


# ----------------------------------------------------------------------------
# train


@dataclasses.dataclass
class _Steps:
  """How long an epoch is and what validates it."""
  steps_per_epoch: int  # optimizer steps (data.batch_size clips each)
  validation_subset: str  # "none": no validation
  validation_steps: Optional[int]
  monitor: str  # the metric that picks best.keras
  accumulation: int = 1  # micro-batches per optimizer step
  micro_batch: int = 0  # clips per micro-batch (0: data.batch_size)

  @property
  def fit_steps_per_epoch(self) -> int:
    """Batches `fit` draws per epoch: micro-batches."""
    return self.steps_per_epoch * self.accumulation


def _computes_tvl1(model: keras.Model) -> bool:
  """Whether TV-L1 runs in `model`'s graph (itself or a nested model's layer)."""
  return any(isinstance(layer, TVL1Flow)
             for layer in model._flatten_layers(include_self=False))  # pylint: disable=protected-access


def _plan_steps(cfg: config_lib.ExperimentConfig, summary: dict, data_dir: str, split: int,
                multi_worker: bool) -> _Steps:
  """From the data directory's summary (`pipeline.load_summary(data_dir)`)."""
  def count(subset):
    return pipeline.subset_size(summary, data_dir, split, subset)

  num_train = count("train")
  steps_per_epoch = cfg.train.steps_per_epoch or max(1, num_train // cfg.data.batch_size)
  if not cfg.train.steps_per_epoch and cfg.train.min_steps and cfg.train.epochs:
    steps_per_epoch = max(steps_per_epoch, math.ceil(cfg.train.min_steps / cfg.train.epochs))
  validation_subset = cfg.data.validation_subset
  if validation_subset != "none" and count(validation_subset) == 0:
    log.warning("split %d has no %s videos: no validation", split, validation_subset)
    validation_subset = "none"
  monitor = "val_accuracy" if validation_subset != "none" else "accuracy"
  validation_steps = cfg.train.validation_steps
  if validation_steps is None and validation_subset != "none" and not multi_worker:
    # The whole subset; known up front so Keras does not run into the end of
    # the (unknown-cardinality) dataset and warn. Multi-worker runs leave it to
    # the distributed iterator, which agrees across workers on the last batch.
    num_val = count(validation_subset)
    validation_steps = max(1, math.ceil(num_val * cfg.data.validation_clips
                                        / cfg.data.eval_batch_size))
  accumulation = config_lib.accumulation_steps(cfg.train, cfg.data.batch_size)
  return _Steps(steps_per_epoch, validation_subset, validation_steps, monitor,
                accumulation=accumulation, micro_batch=cfg.data.batch_size // accumulation)


def _early_stopping(cfg: config_lib.ExperimentConfig, stage: str, steps: _Steps) -> list:
  """[EarlyStopping] under `train.early_stopping_patience`, else []."""
  patience = cfg.train.early_stopping_patience
  if not patience:
    return []
  if steps.validation_subset == "none":
    log.warning("train.early_stopping_patience=%d needs a validation subset; not stopping "
                "early", patience)
    return []
  # Not before the warm-ups end: a student's MSE-only epochs have chance accuracy.
  start = math.ceil(cfg.train.warmup_epochs)
  if stage == "student":
    start = max(start, cfg.distill.mse_warmup_epochs)
  return [keras.callbacks.EarlyStopping(monitor=steps.monitor, mode="max", patience=patience,
                                        start_from_epoch=start, restore_best_weights=True)]


def _datasets(cfg: config_lib.ExperimentConfig, data_dir: str, split: int, steps: _Steps,
              strategy, distribute_input: bool, initial_epoch: int = 0, stored_flow: str = ""):
  """(train, validation or None) datasets of the run; the training stream starts
  where epoch `initial_epoch` of an uninterrupted run starts. `stored_flow`: the
  training input's stored flow mode (`stages.Stage.stored_flow`)."""
  data_kwargs = dict(data_dir=data_dir, split=split, num_frames=cfg.data.num_frames,
                     crop_size=cfg.data.crop_size, frame_stride=cfg.data.frame_stride)
  # Micro-batches of the same clip stream: batch b of an unaccumulated run is
  # micro-batches b*k .. b*k+k-1 here.
  train_ds = distribute.dataset(strategy, distribute_input, steps.micro_batch or
                                cfg.data.batch_size, subset="train",
                                training=True, seed=cfg.data.shuffle_seed,
                                flip=cfg.data.random_flip,
                                color_jitter=cfg.data.color_jitter,
                                background_mix=cfg.data.background_mix,
                                skip_steps=initial_epoch * steps.fit_steps_per_epoch,
                                stored_flow=stored_flow, **data_kwargs)
  val_ds = None
  if steps.validation_subset != "none":
    val_ds = distribute.dataset(strategy, distribute_input, cfg.data.eval_batch_size,
                                subset=steps.validation_subset, training=False,
                                num_clips=cfg.data.validation_clips, **data_kwargs)
  return train_ds, val_ds


def _record_validation(model, val_ds, validation_steps, history_cb, best_cb) -> None:
  """Nothing to train (e.g. fusing trained streams): record one validation as epoch 0."""
  logs = model.evaluate(val_ds, steps=validation_steps, verbose=0, return_dict=True)
  logs = {f"val_{k}": v for k, v in logs.items()}
  for cb in (history_cb, best_cb):
    cb.set_model(model)
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0, logs)


def _write_final(final: keras.Model, out_dir: str, best_cb, history_cb, title: str) -> None:
  """model.keras, best.keras (the final model if no epoch was scored), the curves."""
  with atomic_write(os.path.join(out_dir, MODEL_FILE)) as tmp:
    final.save(tmp)
  if not os.path.isfile(best_cb.model_path):
    # No epoch had the monitored metric: the final model is the best known.
    with atomic_write(best_cb.model_path) as tmp:
      shutil.copyfile(os.path.join(out_dir, MODEL_FILE), tmp)
  if history_cb.history:
    plots.plot_history(history_cb.history, os.path.join(out_dir, CURVES_FILE), title=title)


def _memory_hint(cfg: config_lib.ExperimentConfig, steps: _Steps, mixed: bool) -> str:
  """What to change when the accelerator runs out of memory (one line)."""
  micro = steps.micro_batch or cfg.data.batch_size
  smaller = max(1, micro // 2)
  while smaller > 1 and cfg.data.batch_size % smaller:
    smaller -= 1
  hint = (f"training {micro} clips of {cfg.data.num_frames}x{cfg.data.crop_size}x"
          f"{cfg.data.crop_size} per step (mixed precision {'on' if mixed else 'off'}) ran out "
          f"of accelerator memory: lower train.micro_batch_size (e.g. "
          f"--params_override=train.micro_batch_size={smaller}; the effective batch stays "
          f"data.batch_size={cfg.data.batch_size})")
  if not mixed:
    hint += " or turn mixed precision on (--mixed_precision)"
  return hint + "; docs/hmdb51.md has a memory table"


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
  if not isinstance(split, int) or split < 1:
    # HMDB51 has splits 1-3; a session layout has one per session. A split the
    # data directory lacks is named by check_data_dir.
    raise TrainingError(f"--split must be a split number >= 1, got {split!r}")
  if not model_dir:
    raise TrainingError("--model_dir is required")
  labels, summary = check_data_dir(data_dir, split)
  if isinstance(strategy, str) or strategy is None:
    strategy = distribute.make_strategy(strategy or "default")
  is_chief, role = distribute.worker_role(strategy)
  # The clip contract every classifier saved by this run carries.
  spec = clip_spec_lib.ClipSpec.from_training(cfg.data, summary.get("settings", {}))
  the_stage = stages_lib.make_stage(stage, cfg, len(labels), spec=spec, labels=labels,
                                    teacher_dir=teacher_dir, rgb_dir=rgb_dir,
                                    flow_dir=flow_dir)
  the_stage.check_input_runs()
  if the_stage.stored_flow():
    _check_stored_flow(the_stage, summary, data_dir)
  _check_run_dir(model_dir, cfg, overwrite, may_delete=is_chief)
  multi_worker = distribute.is_multi_worker(strategy)
  distribute_input = isinstance(strategy, tf.distribute.Strategy) and (
      strategy.num_replicas_in_sync > 1 or multi_worker)
  # Non-chief workers keep their own resume state; everything else they write
  # is thrown away when training completes.
  out_dir = model_dir if is_chief else os.path.join(model_dir, f".worker-{role}")
  os.makedirs(out_dir, exist_ok=True)

  steps = _plan_steps(cfg, summary, data_dir, split, multi_worker)
  batch = steps.micro_batch or cfg.data.batch_size
  if batch % strategy.num_replicas_in_sync:
    raise TrainingError(
        f"{'train.micro_batch_size' if steps.accumulation > 1 else 'data.batch_size'}={batch} "
        f"is not divisible by {strategy.num_replicas_in_sync} replicas")

  if is_chief:
    config_lib.save_config(cfg, os.path.join(out_dir, CONFIG_FILE))
    run_dir.write_labels(out_dir, labels)

  use_mixed = backend.use_mixed_precision(
      cfg.train.mixed_precision if mixed_precision is None else mixed_precision)
  previous_policy = keras.config.dtype_policy()
  if use_mixed:
    keras.config.set_dtype_policy(backend.mixed_policy())
  previous_distribution = backend.enter(strategy)
  try:
    keras.utils.set_random_seed(cfg.train.seed)
    with strategy.scope():
      model = the_stage.build()
      # The schedule counts micro-batches (Keras' optimizer calls it with every
      # micro-step's iteration count), so it is given the micro-steps per epoch.
      model.compile(optimizer=optimization.make_optimizer(
          cfg.train, steps.fit_steps_per_epoch, gradient_accumulation_steps=steps.accumulation),
                    steps_per_execution=backend.steps_per_execution(
                        cfg.train.steps_per_execution),
                    run_eagerly=cfg.train.run_eagerly,
                    **the_stage.compile_kwargs())
      if _computes_tvl1(model):
        tf_graph.keras_functions_without_add_ops_rewrite(model)

    # A resumed run continues the input stream where the killed one stopped, so
    # it sees the batches (and ends with the weights) of an uninterrupted run.
    backup_dir = os.path.join(out_dir, run_dir.BACKUP_DIR)
    initial_epoch = callbacks_lib.backed_up_epoch(backup_dir)
    train_ds, val_ds = _datasets(cfg, data_dir, split, steps, strategy, distribute_input,
                                 initial_epoch, stored_flow=the_stage.stored_flow())
    if multi_worker:
      per_replica = batch // strategy.num_replicas_in_sync
      shape = (per_replica, cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size, 3)
      distribute.prepare_for_multi_worker(
          model, strategy, (np.zeros(shape, "float32"), np.zeros((per_replica,), "int32")))

    history_cb = callbacks_lib.HistoryLogger(os.path.join(out_dir, HISTORY_FILE),
                                             write=is_chief)
    best_cb = callbacks_lib.BestModelCheckpoint(out_dir, the_stage.export,
                                                monitor=steps.monitor, write=is_chief)
    # Order matters: the backup is restored before the others start, and
    # written after they have written the epoch's files (the commit point).
    cbs = [callbacks_lib.RestoreBackup(backup_dir),
           callbacks_lib.ResumedEpochCheck(initial_epoch)]
    cbs += the_stage.callbacks()
    cbs += [history_cb, best_cb,
            callbacks_lib.EpochSummaries(os.path.join(out_dir, run_dir.LOGS_DIR))]
    cbs += _early_stopping(cfg, stage, steps)
    cbs += list(callbacks)
    cbs += [callbacks_lib.SaveBackup(backup_dir)]

    with backend.out_of_memory_hint(_memory_hint(cfg, steps, use_mixed)):
      if cfg.train.epochs > 0:
        model.fit(train_ds, epochs=cfg.train.epochs, steps_per_epoch=steps.fit_steps_per_epoch,
                  validation_data=val_ds, validation_steps=steps.validation_steps,
                  callbacks=cbs, verbose=verbose, shuffle=False)
      elif val_ds is not None:
        _record_validation(model, val_ds, steps.validation_steps, history_cb, best_cb)

    final = the_stage.export()
    if is_chief:
      _write_final(final, out_dir, best_cb, history_cb, title=f"{stage} (split {split})")
      # Only now: a kill before this resumes (after the last epoch) and rewrites them.
      callbacks_lib.remove_backup(backup_dir)
    else:
      shutil.rmtree(out_dir, ignore_errors=True)
  finally:
    keras.config.set_dtype_policy(previous_policy)
    backend.exit(previous_distribution)

  return TrainResult(model_dir=model_dir, stage=stage, history=history_cb.history,
                     best_metric=steps.monitor, best_value=best_cb.best,
                     best_epoch=best_cb.best_epoch, model=final,
                     num_replicas=strategy.num_replicas_in_sync)
