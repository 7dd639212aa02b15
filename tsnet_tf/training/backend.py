"""What training does differently on each Keras backend.

One place for the backend-specific choices of `trainer.train` and
benchmarks/bench_train.py; the models and Eq. 7 are backend-agnostic.

| backend    | distribution                                   | steps_per_execution |
| ---------- | ---------------------------------------------- | ------------------- |
| tensorflow | tf.distribute (default, mirrored, multi_worker) | as configured       |
| jax        | keras.distribution.DataParallel (mirrored)     | as configured       |
| torch      | one device                                     | 1 (Keras' limit)    |

Nothing here imports TensorFlow unless the backend is TensorFlow.
"""

import contextlib
import logging
import os
import sys
from typing import Optional

import keras

from tsnet_tf.utils import errors

log = logging.getLogger(__name__)


class BackendError(errors.InputError, ValueError):
  """A strategy or option the current Keras backend does not support."""


def name() -> str:
  """The Keras backend: `tensorflow`, `jax` or `torch`."""
  return keras.backend.backend()


def uses_tf_distribute() -> bool:
  """Whether distribution goes through `tf.distribute` (TensorFlow backend)."""
  return name() == "tensorflow"


def accelerator() -> Optional[str]:
  """`gpu`, `tpu` or None (CPU only), as the current backend sees it."""
  backend = name()
  if backend == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    platform = jax.devices()[0].platform
    return platform if platform in ("gpu", "tpu") else None
  if backend == "torch":
    import torch  # pylint: disable=g-import-not-at-top
    return "gpu" if torch.cuda.is_available() else None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if tf.config.list_logical_devices("GPU"):
    return "gpu"
  return "tpu" if tf.config.list_logical_devices("TPU") else None


def use_mixed_precision(setting) -> bool:
  """`train.mixed_precision` (true, false or "auto") -> whether to train in mixed precision.

  `auto`: on where it saves memory and time (a GPU or TPU), off on CPU (whose
  bfloat16 kernels are often slower than float32).
  """
  if setting == "auto":
    return accelerator() is not None
  return bool(setting)


class OutOfMemoryError(errors.ResourceError, MemoryError):
  """The accelerator ran out of memory; the message names the setting to change."""


def is_out_of_memory(e: BaseException) -> bool:
  """Whether `e` is an accelerator out-of-memory error of TF, JAX/XLA or PyTorch."""
  tf = sys.modules.get("tensorflow")
  tf_errors = getattr(tf, "errors", None)
  if tf_errors is not None and isinstance(e, tf_errors.ResourceExhaustedError):
    return True
  kind = type(e).__name__
  if kind in ("XlaRuntimeError", "JaxRuntimeError"):
    return "RESOURCE_EXHAUSTED" in str(e)
  return kind == "OutOfMemoryError" and type(e).__module__.startswith("torch")


@contextlib.contextmanager
def out_of_memory_hint(hint: str):
  """Turns an accelerator out-of-memory error inside into `OutOfMemoryError(hint)`."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if is_out_of_memory(e):
      raise OutOfMemoryError(hint) from e
    raise


def mixed_policy() -> str:
  """`mixed_float16` on a GPU (Keras adds loss scaling), `mixed_bfloat16` elsewhere."""
  return "mixed_float16" if accelerator() == "gpu" else "mixed_bfloat16"


def devices() -> list:
  """The devices a data-parallel run spreads over (JAX: accelerators, else CPUs)."""
  return keras.distribution.list_devices()


class KerasDistribution:
  """The trainer's strategy on JAX and PyTorch: `keras.distribution` or one device.

  Offers what `trainer.train` uses of a `tf.distribute.Strategy`:
  `num_replicas_in_sync` and `scope()`. The distribution itself (a
  `keras.distribution.DataParallel`, or None for one device) is made current
  by `enter`/`exit` around the whole run: the JAX trainer shards each batch
  of `fit` by the distribution current at that time.

  Args:
    distribution: a `keras.distribution.Distribution` or None.
  """

  def __init__(self, distribution=None):
    self.distribution = distribution

  @property
  def num_replicas_in_sync(self) -> int:
    if self.distribution is None:
      return 1
    return int(self.distribution.device_mesh.devices.size)

  def scope(self):
    if self.distribution is None:
      return contextlib.nullcontext()
    return self.distribution.scope()


def make_distribution(strategy: str) -> KerasDistribution:
  """The JAX/PyTorch counterpart of `distribute.make_strategy`.

  `default`: one device. `mirrored`: under JAX, data parallel over all local
  devices (`keras.distribution.DataParallel`; the batch is global and
  sharded along its first axis, so BatchNorm sees the whole batch).

  Raises:
    BackendError: a strategy the backend does not have.
  """
  if strategy == "default":
    return KerasDistribution(None)
  backend = name()
  if strategy == "mirrored":
    if backend != "jax":
      raise BackendError(
          f"--strategy=mirrored needs the tensorflow or jax backend (KERAS_BACKEND={backend})")
    found = devices()
    if len(found) == 1:
      return KerasDistribution(None)
    return KerasDistribution(keras.distribution.DataParallel(devices=found))
  if strategy == "multi_worker":
    raise BackendError(
        f"--strategy=multi_worker needs the tensorflow backend (KERAS_BACKEND={backend})")
  raise BackendError(f"unknown strategy {strategy!r}")


def enter(strategy):
  """Makes `strategy`'s Keras distribution current; returns what `exit` restores."""
  previous = keras.distribution.distribution() if name() == "jax" else None
  if isinstance(strategy, KerasDistribution) and strategy.distribution is not None:
    keras.distribution.set_distribution(strategy.distribution)
  return previous


def exit(previous) -> None:  # pylint: disable=redefined-builtin
  """Restores the Keras distribution `enter` returned."""
  if name() == "jax":
    keras.distribution.set_distribution(previous)


def steps_per_execution(requested: int) -> int:
  """`requested`, or 1 under PyTorch (Keras' torch trainer runs one step a call)."""
  if name() == "torch" and requested != 1:
    log.warning("steps_per_execution=%d: the torch backend runs 1", requested)
    return 1
  return requested


def split_cpu(count: int) -> None:
  """Presents the CPU as `count` devices (to try data parallelism without GPUs).

  TensorFlow: logical devices; JAX: XLA's host platform device count, which
  must be set before JAX first uses a device (do it first thing).

  Raises:
    BackendError: JAX had already started with another count, or torch.
  """
  backend = name()
  if backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    return
  if backend == "jax":
    flag = f"--xla_force_host_platform_device_count={count}"
    flags = os.environ.get("XLA_FLAGS", "")
    if flag not in flags:
      os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()
    import jax  # pylint: disable=g-import-not-at-top
    if len(jax.devices("cpu")) != count:
      raise BackendError(
          f"--logical_cpus={count}: JAX already started with {len(jax.devices('cpu'))} CPU "
          f"device(s); set XLA_FLAGS={flag} before starting Python")
    return
  raise BackendError(f"--logical_cpus needs the tensorflow or jax backend (KERAS_BACKEND={backend})")
