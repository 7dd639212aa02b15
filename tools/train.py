"""Trains one stage of the teacher-student pipeline (or a baseline).

  python tools/train.py --config=configs/synthetic.yaml --stage=teacher \
      --model_dir=runs/teacher --data_dir=data/synth [--split=1]
  python tools/train.py --config=configs/synthetic.yaml --stage=student \
      --model_dir=runs/student --data_dir=data/synth --teacher_dir=runs/teacher
  python tools/train.py --config=configs/synthetic.yaml --stage=twostream \
      --model_dir=runs/twostream --data_dir=data/synth \
      --rgb_dir=runs/rgb --flow_dir=runs/teacher

Stages: teacher (alias flow), student, rgb, twostream. Re-running the same
command after the process was killed resumes from the last completed epoch
(a changed config is refused, naming the keys). A --model_dir holding a
finished run is refused unless --overwrite. --teacher_dir must hold a teacher
run, --rgb_dir an rgb (or student) run, --flow_dir a teacher run.
Outputs in --model_dir: config.yaml, labels.txt, model.keras, best.keras,
history.json, training_curves.png, logs/ (TensorBoard), backup/ (while
training). See docs/training.md.
"""

import os

from absl import app
from absl import flags

from tsnet_tf.utils import cli

_CONFIG = flags.DEFINE_string("config", None, "YAML config (e.g. configs/synthetic.yaml); "
                              "omit for the built-in defaults.")
_PARAMS_OVERRIDE = flags.DEFINE_string(
    "params_override", "", "Overrides applied last: `a.b=1,c.d=x`, a YAML mapping string, or "
    "a YAML file; `stages.<stage>.…` keys are allowed.")
_STAGE = flags.DEFINE_enum("stage", None, ["teacher", "flow", "student", "rgb", "twostream",
                                           "two_stream"],
                           "What to train; flow = teacher.", required=True)
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Output directory.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Output of tools/prepare_hmdb51.py.",
                                required=True)
_SPLIT = flags.DEFINE_integer("split", 1, "Split (HMDB51: 1-3; a session layout has one per "
                              "session).", lower_bound=1)
_TEACHER_DIR = flags.DEFINE_string("teacher_dir", None,
                                   "student: --model_dir of the trained teacher.")
_RGB_DIR = flags.DEFINE_string("rgb_dir", None, "twostream: --model_dir of a trained rgb model.")
_FLOW_DIR = flags.DEFINE_string("flow_dir", None,
                                "twostream: --model_dir of a trained teacher (flow) model.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                              "tf.distribute strategy (TensorFlow backend; multi_worker reads "
                              "TF_CONFIG); under JAX, mirrored = keras.distribution.DataParallel.")
_MIXED_PRECISION = flags.DEFINE_boolean(
    "mixed_precision", None, "Mixed precision (float16 on GPU, bfloat16 on CPU); "
    "default: the config's train.mixed_precision.")
_LOGICAL_CPUS = flags.DEFINE_integer(
    "logical_cpus", 0, "Split the CPU into N logical devices (to try --strategy=mirrored "
    "without GPUs); 0 = leave as is.", lower_bound=0)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Train afresh in a --model_dir that holds a finished run, or an "
    "interrupted one under another config: deletes the files training writes there "
    "(config.yaml, labels.txt, model.keras, best.*, history.json, training_curves.png, "
    "logs/{train,validation}, backup/), nothing else.")
_PROGRESS = flags.DEFINE_enum("progress", "auto", ["auto", "0", "1", "2"],
                              "Keras progress output: 0 = none, 1 = progress bar, 2 = one line "
                              "per epoch. (--verbose prints tracebacks on errors.)")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  # A ConfigError (naming the key and file) ends the run before anything is written.
  cfg = config_lib.load_config(_CONFIG.value, _STAGE.value, _PARAMS_OVERRIDE.value)
  # Imported here so --helpfull and config errors do not pay for TensorFlow.
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import backend  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import distribute  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top

  cli.check_dir_flag("model_dir", _MODEL_DIR.value)
  if _LOGICAL_CPUS.value:
    backend.split_cpu(_LOGICAL_CPUS.value)
  # The strategy first: multi-worker collectives must be set up before other ops.
  strategy = distribute.make_strategy(_STRATEGY.value)
  progress = _PROGRESS.value if _PROGRESS.value == "auto" else int(_PROGRESS.value)
  # Expected failures (TrainingError, BackendError, a missing file) end as one line in
  # cli.run; `reading` names a truncated or corrupt shard of --data_dir.
  with pipeline.reading(_DATA_DIR.value):
    result = trainer.train(cfg, _STAGE.value, _MODEL_DIR.value, _DATA_DIR.value,
                           split=_SPLIT.value, teacher_dir=_TEACHER_DIR.value,
                           rgb_dir=_RGB_DIR.value, flow_dir=_FLOW_DIR.value,
                           strategy=strategy, mixed_precision=_MIXED_PRECISION.value,
                           verbose=progress, overwrite=_OVERWRITE.value)
  best = "n/a" if result.best_value is None else f"{result.best_value:.4f}"
  print(f"{result.stage}: {os.path.join(result.model_dir, trainer.MODEL_FILE)} "
        f"(best {result.best_metric} {best} at epoch "
        f"{'n/a' if result.best_epoch is None else result.best_epoch + 1}; "
        f"{result.num_replicas} replica(s))")
  return 0


if __name__ == "__main__":
  cli.run(main)
