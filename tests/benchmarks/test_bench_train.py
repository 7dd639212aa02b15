"""benchmarks/bench_train.py at tiny shapes, with TensorFlow blocked."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))
BENCH = os.path.join(REPO, "benchmarks", "bench_train.py")
# A sitecustomize.py that makes `import tensorflow` fail, as where it is absent.
NO_TENSORFLOW = os.path.join(REPO, "tests", "no_tensorflow")
TINY = ("data.num_frames=4,data.crop_size=16,model.backbone=light,model.width=4,"
        "model.flow.overrides={num_scales: 1, finest_scale: 0, num_warps: 1, num_iters: 2, "
        "median_size: 0}")


def _run(backend, tmp_path, *flags):
  env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="",
             PYTHONPATH=os.pathsep.join([NO_TENSORFLOW, REPO]))
  out = tmp_path / "rows.json"
  proc = subprocess.run([sys.executable, BENCH, f"--params_override={TINY}", "--steps=1",
                         f"--output_json={out}"] + list(flags),
                        env=env, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(out, encoding="utf-8") as f:
    return proc.stdout, json.load(f)


def _check_table(stdout, rows, measured):
  assert "| stage | batch | mixed precision | step (ms) | clips/s |" in stdout
  table = [l for l in stdout.splitlines() if l.startswith("| ") and "---" not in l][1:]
  assert len(table) == rows
  rates = [r["clips_per_s"] for r in measured if r.get("status") == "ok"]
  assert len(rates) == rows
  for line, rate in zip(table, rates):
    cells = [c.strip() for c in line.strip("|").split("|")]
    step_ms, clips_per_s, hours = float(cells[3]), float(cells[4]), float(cells[6])
    batch = int(cells[1])
    # clips/s is batch / step time (the step printed to whole ms: a tiny step's
    # rounding moves the ratio by more than 5 %); hours are 3570 clips x 100
    # epochs at that rate.
    low = 1e3 * batch / (step_ms + 0.5)
    high = 1e3 * batch / max(step_ms - 0.5, 1e-3)
    assert low * 0.99 - 0.2 <= clips_per_s <= high * 1.01 + 0.2
    # From the unrounded rate: at a loaded machine's ~0.5 clips/s the printed
    # one-decimal rate alone is 10 % off.
    assert clips_per_s == pytest.approx(rate, abs=0.051)
    assert hours == pytest.approx(3570 * 100 / rate / 3600, rel=0.01, abs=0.051)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_every_stage_and_precision_without_tensorflow(tmp_path):
  # torch runs eagerly: no compile, so all 6 groups fit in seconds.
  stdout, measured = _run("torch", tmp_path, "--isolate=false", "--batch_sizes=2",
                          "--warmup=0")
  _check_table(stdout, rows=6, measured=measured)
  assert "mixed_bfloat16" in stdout and "| off |" in stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_jax_isolated_groups_as_on_the_gpu(tmp_path):
  stdout, measured = _run("jax", tmp_path, "--batch_sizes=2,4", "--precisions=off")
  _check_table(stdout, rows=6, measured=measured)
