"""Learning rate schedule and optimizer of every training stage (`train:` config keys)."""

import math
from typing import Sequence

import keras

from tsnet_tf import config as config_lib


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


def make_optimizer(train_cfg: config_lib.TrainConfig, steps_per_epoch: int,
                   gradient_accumulation_steps: int = 1) -> keras.optimizers.Optimizer:
  """SGD with momentum and the warm-up schedule.

  With `weight_decay_mode: decoupled` the optimizer applies the decay (not to
  biases or BatchNorm parameters); with `l2` the models carry it as a kernel
  regularizer and the optimizer applies none.

  Args:
    train_cfg: the `train:` section.
    steps_per_epoch: batches `fit` draws per epoch (micro-batches when
      accumulating): Keras evaluates the schedule at the micro-step count, so
      warm-up, decay and boundaries are laid out in these.
    gradient_accumulation_steps: micro-batches averaged per update (1: none).
  """
  decoupled = train_cfg.weight_decay_mode == "decoupled" and train_cfg.weight_decay > 0
  optimizer = keras.optimizers.SGD(
      learning_rate=make_learning_rate(train_cfg, steps_per_epoch),
      momentum=train_cfg.momentum, nesterov=train_cfg.nesterov,
      weight_decay=train_cfg.weight_decay if decoupled else None,
      gradient_accumulation_steps=(gradient_accumulation_steps
                                   if gradient_accumulation_steps > 1 else None))
  if decoupled:
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
  return optimizer
