"""Checks run in a subprocess under a given KERAS_BACKEND (see test_backends.py).

  python backend_checks.py train WEIGHTS_DIR WORK_DIR DATA_DIR
      Eq. 7 by hand from the shared weights (`loss`), the trainer's teacher,
      rgb and student stages (`stages`), and under JAX with 2 or more devices
      DataParallel against one device (`data_parallel`): one interpreter, so
      the backend's start-up is paid once.
  python backend_checks.py tf_free VIDEO_DIR SPLIT_DIR
      numpy_input batches from the videos train a model (run with TF blocked).

Each prints one line `@@result <json>`. `tsnet_tf` is imported from the
environment, as the tools import it (`make test` installs the package; or
PYTHONPATH=<repo>).
"""

import contextlib
import json
import os
import sys

import numpy as np

import keras

from tsnet_tf import models

_HERE = os.path.dirname(os.path.abspath(__file__))

K, T, S = 3, 4, 16
LAMBDA = 0.7
WD = 1e-3


def build_pair():
  """The student (with L2) and teacher of the loss check; sizes differ: a projection."""
  student = models.build_rgb_model(K, T, S, backbone="light", width=16, dropout_rate=0.0,
                                   weight_decay=WD, name="student")
  teacher = models.build_rgb_model(K, T, S, backbone="light", width=8, dropout_rate=0.0,
                                   name="teacher")
  return student, teacher


def _np(x):
  return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def expected_loss(model, x, y):
  """Eq. 7 + L2 in numpy from the networks' raw outputs at the current weights."""
  s_feat, logits = models.feature_and_logits(model.student)(x, training=True)
  t_feat, _ = models.feature_and_logits(model.teacher)(x, training=False)
  s_feat = _np(s_feat) @ _np(model.projection.kernel) + _np(model.projection.bias)
  logits = _np(logits)
  z = logits - logits.max(axis=-1, keepdims=True)
  log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
  ce = -log_p[np.arange(len(y)), y].mean()
  mse = np.mean((s_feat - _np(t_feat)) ** 2)
  kernels = [w for w in model.student.trainable_weights if w.path.endswith("kernel")]
  reg = WD / 2 * sum(np.sum(_np(w) ** 2) for w in kernels)
  return ce, mse, reg


def check_loss(work_dir):
  """Loads the weights the test wrote, compares train_on_batch with numpy."""
  student, teacher = build_pair()
  student.load_weights(os.path.join(work_dir, "student.weights.h5"))
  teacher.load_weights(os.path.join(work_dir, "teacher.weights.h5"))
  data = np.load(os.path.join(work_dir, "batch.npz"))
  x, y = data["x"], data["y"]
  model = models.DistillationModel(student, teacher, distill_weight=LAMBDA)
  model.projection.set_weights([data["proj_kernel"], data["proj_bias"]])
  model.compile(optimizer=keras.optimizers.SGD(0.1))
  ce, mse, reg = expected_loss(model, x, y)
  logs = model.train_on_batch(x, y, return_dict=True)
  return dict(logs={k: float(v) for k, v in logs.items()}, ce=ce, mse=mse, reg=reg)


def check_stages(work_dir, data_dir):
  """Teacher, rgb, then student (against that teacher) through trainer.train."""
  import importlib.util
  from tsnet_tf import config as config_lib
  from tsnet_tf.training import trainer
  spec = importlib.util.spec_from_file_location("tiny_data", os.path.join(_HERE, "tiny_data.py"))
  tiny = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tiny)
  repo = os.path.dirname(os.path.dirname(_HERE))
  # Compiled steps (run_eagerly=false): under JAX, eager TV-L1 is the slower path.
  extra = {"teacher": ",data.validation_subset=none",
           "rgb": ",data.validation_subset=none",
           # Plain Eq. 7 (the config's projection and confidence weighting off):
           # the test reads the warm-up epoch's loss as lambda * MSE + L2.
           "student": ",train.epochs=2,train.steps_per_epoch=1,distill.mse_warmup_epochs=1,"
                      "distill.projection=auto,distill.confidence_weighting=false"}
  result = {}
  for stage in ("teacher", "rgb", "student"):
    cfg = config_lib.load_config(os.path.join(repo, "configs", "synthetic.yaml"), stage,
                                 tiny.TINY_OVERRIDE + ",train.run_eagerly=false" + extra[stage])
    run = trainer.train(cfg, stage, os.path.join(work_dir, stage), data_dir,
                        teacher_dir=os.path.join(work_dir, "teacher"), verbose=0)
    loaded = keras.saving.load_model(os.path.join(work_dir, stage, trainer.MODEL_FILE))
    result[stage] = dict(history=run.history, num_replicas=run.num_replicas,
                         loaded_outputs=int(loaded.output_shape[-1]))
  return result


def check_data_parallel():
  """One fit step under keras.distribution.DataParallel on 2 CPU devices vs one device."""
  x = np.random.RandomState(0).uniform(0, 255, (4, T, S, S, 3)).astype("float32")
  y = np.arange(4) % K

  def step(distribution):
    keras.utils.set_random_seed(1)
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    with scope:
      student, teacher = build_pair()
      model = models.DistillationModel(student, teacher, distill_weight=LAMBDA)
      model.compile(optimizer=keras.optimizers.SGD(0.1))
      history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0], [_np(w) for w in model.student.trainable_weights]

  devices = keras.distribution.list_devices()
  single_loss, single_weights = step(None)
  parallel_loss, parallel_weights = step(keras.distribution.DataParallel(devices=devices))
  diff = max(float(np.max(np.abs(a - b))) for a, b in zip(single_weights, parallel_weights))
  from tsnet_tf.training import distribute
  strategy = distribute.make_strategy("mirrored")
  return dict(devices=len(devices), single_loss=float(single_loss),
              parallel_loss=float(parallel_loss), max_weight_diff=diff,
              mirrored_replicas=strategy.num_replicas_in_sync)


def check_tf_free(video_dir, split_dir):
  """numpy_input batches from the videos train the rgb model."""
  from tsnet_tf.data import numpy_input
  videos, names = numpy_input.hmdb51_videos(video_dir, split_dir, split=1, subset="train")
  train = numpy_input.VideoClips(videos, batch_size=2, num_frames=T, crop_size=S, seed=0)
  clips, labels = train[0]
  rgb = models.build_rgb_model(len(names), T, S, backbone="light", width=4, name="rgb")
  rgb.compile(optimizer=keras.optimizers.SGD(0.01),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  rgb_loss = rgb.fit(train, epochs=1, steps_per_epoch=2, verbose=0).history["loss"][0]
  return dict(batch_shape=list(clips.shape), batch_dtype=str(clips.dtype),
              labels=labels.tolist(), rgb_loss=float(rgb_loss),
              tensorflow_imported="tensorflow" in sys.modules)


def main(argv):
  keras.utils.set_random_seed(0)
  check = argv[1]
  if check == "train":
    result = dict(loss=check_loss(argv[2]), stages=check_stages(argv[3], argv[4]))
    if keras.backend.backend() == "jax" and len(keras.distribution.list_devices()) > 1:
      result["data_parallel"] = check_data_parallel()
  elif check == "tf_free":
    result = check_tf_free(argv[2], argv[3])
  else:
    raise SystemExit(f"unknown check {check!r}")
  result["backend"] = keras.backend.backend()
  print("@@result " + json.dumps(result), flush=True)


if __name__ == "__main__":
  main(sys.argv)
