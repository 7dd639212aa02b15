"""Worker processes that do not need TensorFlow."""

import contextlib
import multiprocessing
import os

import tsnet_tf


@contextlib.contextmanager
def keras_free_pool(processes: int):
  """A spawn-context `multiprocessing.Pool` whose workers skip TF and Keras.

  `import tsnet_tf` registers the Keras layers, which loads TensorFlow (~5 s
  and ~0.5 GB a process). Workers that only decode and encode video do not need
  it, so they are started with `tsnet_tf.KERAS_FREE_ENV` set. spawn, not fork:
  TensorFlow is not fork-safe once this process has imported it.
  """
  previous = os.environ.get(tsnet_tf.KERAS_FREE_ENV)
  os.environ[tsnet_tf.KERAS_FREE_ENV] = "1"
  try:
    pool = multiprocessing.get_context("spawn").Pool(processes)
  finally:
    # The children read the variable at start-up; this process keeps its own.
    if previous is None:
      del os.environ[tsnet_tf.KERAS_FREE_ENV]
    else:
      os.environ[tsnet_tf.KERAS_FREE_ENV] = previous
  with pool:
    yield pool
