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


def first_and_median_ms(fn, repeats: int, warmup: int = 1):
  """`(ms of the first call, median_ms(fn, repeats, warmup))`.

  The first call of a compiled step traces and compiles; it is timed and
  reported apart, then `median_ms` times the steady state.
  """
  start = time.perf_counter()
  fn()
  first = 1e3 * (time.perf_counter() - start)
  return first, median_ms(fn, repeats, warmup)
