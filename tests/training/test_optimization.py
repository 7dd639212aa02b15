"""Gradient accumulation (train.micro_batch_size): the effective batch's update and schedule."""

import keras
import numpy as np
import pytest

from tsnet_tf import config as config_lib
from tsnet_tf.training import optimization


def _fit(train_cfg, batch, micro, x, y, epochs):
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])  # no BatchNorm
  accumulation = batch // micro
  steps = len(x) // batch
  model.compile(optimizer=optimization.make_optimizer(
      train_cfg, steps * accumulation, gradient_accumulation_steps=accumulation), loss="mse")
  lrs = []

  class LogLr(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      lrs.append(float(self.model.optimizer.learning_rate))

  model.fit(x, y, batch_size=micro, epochs=epochs, shuffle=False, verbose=0,
            callbacks=[LogLr()])
  return model, lrs


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_micro_batches_accumulate_to_the_effective_batch(schedule):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")
  cfg = config_lib.TrainConfig(learning_rate=0.1, momentum=0.9, lr_schedule=schedule,
                               warmup_epochs=1 if schedule == "cosine" else 0, epochs=4)
  full, full_lrs = _fit(cfg, 8, 8, x, y, 4)
  micro, micro_lrs = _fit(cfg, 8, 2, x, y, 4)
  # Optimizer steps count effective batches: 2 per epoch either way.
  assert int(micro.optimizer.iterations) == int(full.optimizer.iterations) == 8
  if schedule == "constant":
    for a, b in zip(micro.get_weights(), full.get_weights()):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  else:
    # The schedule is laid out in micro-steps: warm-up ends and cosine reaches its
    # floor at the same epochs (the rate at an update is that of its last micro-step).
    np.testing.assert_allclose(micro_lrs, full_lrs, atol=0.1 * 3 / 8 / 2)
    assert micro_lrs[-1] == pytest.approx(0.0, abs=1e-7)


def test_micro_batch_size_must_divide_the_batch():
  cfg = config_lib.from_dict({"data": {"batch_size": 32}, "train": {"micro_batch_size": 8}})
  assert config_lib.accumulation_steps(cfg.train, 32) == 4
  assert config_lib.accumulation_steps(config_lib.TrainConfig(), 32) == 1
  with pytest.raises(config_lib.ConfigError, match="micro_batch_size.*12.*must divide.*32"):
    config_lib.from_dict({"data": {"batch_size": 32}, "train": {"micro_batch_size": 12}})
  for ok in (True, False, "auto"):
    config_lib.from_dict({"train": {"mixed_precision": ok}})
  with pytest.raises(config_lib.ConfigError, match="mixed_precision.*true, false or auto"):
    config_lib.from_dict({"train": {"mixed_precision": "sometimes"}})
