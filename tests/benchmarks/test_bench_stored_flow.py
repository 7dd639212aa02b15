"""benchmarks/bench_stored_flow.py at tiny shapes under JAX, with TensorFlow blocked
(the lent GPU machine has no TensorFlow)."""

import os
import subprocess
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))
BENCH = os.path.join(REPO, "benchmarks", "bench_stored_flow.py")
NO_TENSORFLOW = os.path.join(REPO, "tests", "no_tensorflow")


@pytest.mark.slow  # ~50 s on 2 cores: JAX compiles 4 models
def test_times_both_sources_of_both_steps_without_tensorflow():
  env = dict(os.environ, KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="",
             PYTHONPATH=os.pathsep.join([NO_TENSORFLOW, REPO]))
  proc = subprocess.run([sys.executable, BENCH, "--shapes=4x16", "--steps=1", "--warmup=0",
                         "--batch_size=2", "--params_override=model.width=4"],
                        env=env, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  for what in ("teacher", "student"):
    for source in ("graph", "stored"):
      assert f"4x16: {what} {source}: " in proc.stdout
    assert f"| 4x16x16, 2 | {what} | " in proc.stdout
  assert "(jax)" in proc.stdout
