"""benchmarks/bench_stream.py end to end at a tiny clip (slow: builds its artifacts)."""

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "benchmarks", "bench_stream.py")


@pytest.mark.slow
def test_rows_for_each_model(tmp_path):
  with open(os.path.join(REPO, "configs", "synthetic.yaml")) as f:
    cfg = yaml.safe_load(f)
  cfg["data"].update(num_frames=4, crop_size=16, frame_stride=2)
  cfg["model"]["width"] = 4
  config = tmp_path / "tiny.yaml"
  config.write_text(yaml.safe_dump(cfg))
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=REPO)
  proc = subprocess.run(
      [sys.executable, BENCH, f"--config={config}", "--seconds=2", "--height=48",
       "--width=64", "--models=tflite_fp32,twostream_fast", "--hops=default,1",
       f"--work_dir={tmp_path / 'w'}"],
      env=env, capture_output=True, text=True, timeout=900, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  table = [l for l in proc.stdout.splitlines() if l.startswith("| ") and "---" not in l]
  assert table[0].startswith("| model | hop (frames) | labels / s | real-time factor |")
  rows = {tuple(c.strip() for c in l.split("|")[1:3]): [c.strip() for c in l.split("|")[3:-1]]
          for l in table[1:]}
  # every model at both hops, side by side: span 7 (T=4 frames 2 apart), default hop 3
  assert set(rows) == {(m, h) for m in ("tflite_fp32", "twostream_fast") for h in ("3", "1")}
  for (_, hop), cells in rows.items():
    assert float(cells[0]) == pytest.approx(25 / int(hop), abs=0.05)  # labels / s
    rtf = float(cells[1].rstrip("x"))
    assert rtf > 0
    assert cells[7] == ("yes" if rtf >= 1 else "no: below real time")
    classified, dropped = (int(v) for v in cells[6].split("/"))
    assert int(cells[2]) == classified + dropped  # the whole input timed (no --max_seconds)
    # 50 frames: hop 3 gives 15 windows and the one ending on the last frame; hop 1
    # gives 44, the last already ending on the last frame
    assert classified + dropped == ((50 - 7) // 3 + 1 + 1 if hop == "3" else 50 - 7 + 1)
