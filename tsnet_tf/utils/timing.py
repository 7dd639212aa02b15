"""The timing rule of every benchmark and results table: median wall time after warm-up."""

import time

import numpy as np


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
  """Median wall time (ms) of `fn()` over `repeats` calls.

  `warmup` untimed calls come first (tracing, compilation, allocation). The
  median, not the mean: a 2-core VM has occasional stalls that would dominate
  a mean of a few runs.
  """
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))
