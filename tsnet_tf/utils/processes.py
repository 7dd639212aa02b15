"""Worker processes that do not need TensorFlow."""

import contextlib
import multiprocessing


@contextlib.contextmanager
def keras_free_pool(processes: int):
  """A spawn-context `multiprocessing.Pool` for workers that skip TF and Keras.

  A spawned worker imports only the module of the function it runs (and
  `tsnet_tf`'s root, which loads nothing), so workers running a TF-free module
  (e.g. `data.tfrecords.encode_video`: PyAV, PIL) never pay TensorFlow's start
  (~5 s and ~0.5 GB a process); tests/test_package.py checks that such modules
  import without it. spawn, not fork: TensorFlow is not fork-safe once this
  process has imported it.
  """
  pool = multiprocessing.get_context("spawn").Pool(processes)
  with pool:
    yield pool
