"""benchmarks/gpu_checks.sh is ready for a lent GPU: valid shell, and its dry run on CPU.

A GPU session has minutes: the script must not fail there for a reason a CPU could
have shown. GPU_CHECKS_DRY_RUN=1 runs every part (bench_train of every stage of
configs/hmdb51.yaml with both precisions, TV-L1 throughput, stored vs graph flow,
the memory table) at tiny shapes on CPU.
"""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "benchmarks", "gpu_checks.sh")


def test_the_script_is_valid_shell():
  proc = subprocess.run(["bash", "-n", SCRIPT], capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr


def test_the_dry_runs_shapes_are_a_valid_hmdb51_config():
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  with open(SCRIPT, encoding="utf-8") as f:
    text = f.read()
  override = re.search(r'SHAPES="--params_override=([^"]+)"', text).group(1)
  for stage in ("rgb", "teacher", "student"):
    cfg = config_lib.load_config(os.path.join(REPO, "configs", "hmdb51.yaml"), stage, override)
    assert (cfg.data.num_frames, cfg.data.crop_size) == (4, 32)


@pytest.mark.slow
def test_the_dry_run_runs_every_part_and_prints_every_stages_numbers(tmp_path):
  env = dict(os.environ, GPU_CHECKS_DRY_RUN="1", OUT=str(tmp_path), PY=sys.executable,
             TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(["bash", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=2400, check=False)
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, out[-4000:]
  log = (tmp_path / "bench_train.log").read_text()
  assert "| stage | batch | mixed precision | step (ms) | clips/s | peak device memory" in log
  assert "h / split" in log
  for stage in ("rgb", "teacher", "student"):
    for precision in ("off", "mixed_"):
      assert re.search(rf"^\| {stage} \| 2 \| {precision}\S* \| \d+ \|", log, re.M), (stage, log)
  assert "flow frames/s" in (tmp_path / "bench_extract.log").read_text()
  assert re.search(r"^\| 4x32x32, 2 \| teacher \| \d+ \| \d+ \|",
                   (tmp_path / "bench_stored_flow.log").read_text(), re.M)
  assert "| stage | precision | micro-batch | peak GiB |" in (
      tmp_path / "memory_table.log").read_text()
