"""Where training runs: tf.distribute strategies (or keras.distribution), multi-worker glue.

`default` (one device), `mirrored` (all local devices) or `multi_worker`
(`TF_CONFIG`); the batch size in the config is global. Under JAX and torch,
`backend.make_distribution` stands in for the strategy.
"""

import os

import tensorflow as tf

from tsnet_tf.data import pipeline
from tsnet_tf.training import backend
from tsnet_tf.training.errors import TrainingError

STRATEGIES = ("default", "mirrored", "multi_worker")


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


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  """Whether `strategy` spans several worker processes."""
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


def worker_role(strategy: tf.distribute.Strategy):
  """(is_chief, "type-index") of this process."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not is_multi_worker(strategy):
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


def prepare_for_multi_worker(model, strategy, sample_batch):
  """Builds the compiled state up front and installs the multi-worker step functions.

  Keras' `fit` would build it from the first batch with `strategy.reduce` over
  the `(x, y)` tuple, which `MultiWorkerMirroredStrategy` does not accept.
  """
  with strategy.scope():
    model._symbolic_build(data_batch=sample_batch)  # pylint: disable=protected-access
  model._maybe_symbolic_build = lambda *args, **kwargs: None  # pylint: disable=protected-access
  model.train_function = _multi_worker_function(strategy, model.train_step)
  model.test_function = _multi_worker_function(strategy, model.test_step)


def dataset(strategy, distribute: bool, global_batch: int, **kwargs):
  """`pipeline.make_dataset`, one input pipeline per worker when `distribute`."""
  if not distribute:
    return pipeline.make_dataset(batch_size=global_batch, **kwargs)
  return strategy.distribute_datasets_from_function(
      lambda ctx: pipeline.make_dataset(batch_size=global_batch, input_context=ctx, **kwargs))
