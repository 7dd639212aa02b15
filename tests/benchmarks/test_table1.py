"""benchmarks/table1.py: its report on records with and without a fusion choice, its flags.

The module defines absl flags at import, so it is loaded in a subprocess (not
into the test process, where another module's flags of the same name clash).
"""

import json
import os
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))
TABLE1 = os.path.join(REPO, "benchmarks", "table1.py")

# Loads table1.py as a module and prints format_report of the records in argv[1].
_REPORT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("table1", sys.argv[2])
table1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table1)
from tsnet_tf import config
assert tuple(table1.FUSIONS) == config.FUSION_MODES, table1.FUSIONS
with open(sys.argv[1]) as f:
  records = json.load(f)
print(table1.format_report(records, table1.summarize(records)))
print(table1.check_targets(records, table1.summarize(records)))
"""


def _row(model, acc):
  return dict(model=model, clip_accuracy=acc, video_accuracy=acc, num_videos=10,
              video_accuracy_se=0.1, ms_per_clip=None, tflite_ms_per_clip=None,
              gflops_per_clip=0.1, params=1000)


def _record(seed, fusion=None):
  rows = [_row("rgb", 0.5), _row("flow", 0.6), _row("twostream", 0.7), _row("student", 0.65)]
  record = {"benchmark": "motion", "seed": seed, "validation_video_accuracy": {"0": 0.5},
            "chosen_lambda": 0.0, "rows": rows, "train_seconds": {}}
  if fusion is not None:  # records written before the choice have neither key
    rows[2]["fusion"] = fusion
    record.update(validation_fusion_accuracy={"mean": 0.5, fusion: 0.6},
                  chosen_fusion=fusion)
  return record


def _env():
  return dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")


def test_report_names_the_fusion_rule_per_seed_old_records_count_as_mean(tmp_path):
  path = tmp_path / "records.json"
  path.write_text(json.dumps([_record(0), _record(1, "geometric")]))
  proc = subprocess.run([sys.executable, "-c", _REPORT, str(path), TABLE1], env=_env(),
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "two-stream fusion rule chosen on validation: seed 0: mean, seed 1: geometric" in (
      proc.stdout)
  assert "student lambda chosen on validation: seed 0: 0, seed 1: 0" in proc.stdout
  assert "| two-stream late fusion | 70.0 ± 0.0 | 70.0 | 70.0 |" in proc.stdout


def test_cost_targets_from_the_timed_seed(tmp_path):
  record = _record(0)
  costs = {"rgb": (1.0, 0.1), "flow": (5.0, 1.5), "twostream": (12.0, 1.6),
           "student": (1.0, 0.1)}  # model: (TFLite ms, GFLOPs)
  for row in record["rows"]:
    row["tflite_ms_per_clip"], row["gflops_per_clip"] = costs[row["model"]]
    row["ms_per_clip"] = row["tflite_ms_per_clip"]
  untimed = _record(1)  # later seeds are not timed: no cost lines of their own
  path = tmp_path / "records.json"
  path.write_text(json.dumps([record, untimed]))
  proc = subprocess.run([sys.executable, "-c", _REPORT, str(path), TABLE1], env=_env(),
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [l for l in proc.stdout.splitlines() if "cheaper than" in l]
  assert lines == [
      "- [met] motion seed 0: student 15.0x cheaper than flow in GFLOPs >= 10x",
      "- [MISSED] motion seed 0: student 5.0x cheaper than flow in TFLite ms >= 10x",
      "- [met] motion seed 0: student 16.0x cheaper than twostream in GFLOPs >= 10x",
      "- [met] motion seed 0: student 12.0x cheaper than twostream in TFLite ms >= 10x"]


def test_unknown_fusion_is_refused_before_any_work(tmp_path):
  work_dir = tmp_path / "work"
  proc = subprocess.run([sys.executable, TABLE1, f"--work_dir={work_dir}",
                         "--fusions=mean,max"], env=_env(), capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode != 0
  assert "--fusions" in proc.stderr and "unknown: max" in proc.stderr
  assert not work_dir.exists()


# Prints, for each flag set in argv[2:], the stages' flow source and the
# conversion flags make_data would pass.
_STORED = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("table1", sys.argv[1])
table1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table1)
table1.flags.FLAGS(["table1"] + sys.argv[2:])
for stage in ("teacher", "student", "rgb"):
  print(stage, table1._load_config(stage, "motion").model.flow.source)
teacher = table1._load_config("teacher", "motion")
print("flags", " ".join(table1.stored_flow_flags(teacher.model.flow, teacher.data.frame_stride)))
try:
  table1.stored_flow_flags(teacher.model.flow.__class__(overrides={"num_warps": 2}), 3)
except table1.app.UsageError as e:
  print("refused", e)
"""


def _stored(*flags):
  proc = subprocess.run([sys.executable, "-c", _STORED, TABLE1, *flags], env=_env(),
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc.stdout.splitlines()


def test_stored_flow_trains_teacher_and_student_from_the_teachers_stored_flow(tmp_path):
  config = tmp_path / "c.yaml"
  config.write_text("data: {frame_stride: 2}\nmodel: {flow: {preset: fast, bound: 5.0}}\n")
  out = _stored(f"--config={config}")
  assert out[:3] == ["teacher stored", "student stored", "rgb graph"]
  # The conversion stores the teacher's preset and bound, between frames a clip's
  # stride apart.
  assert out[3] == "flags --flow_preset=fast --flow_stride=2 --flow_bound=5.0"
  assert out[4].startswith("refused --stored_flow") and "overrides" in out[4]
  out = _stored(f"--config={config}", "--nostored_flow")
  assert out[:3] == ["teacher graph", "student graph", "rgb graph"]


def test_a_teacher_whose_flow_cannot_be_stored_is_refused_before_any_work(tmp_path):
  config = tmp_path / "c.yaml"
  config.write_text("model: {flow: {preset: fast, overrides: {num_warps: 2}}}\n")
  work_dir = tmp_path / "work"
  proc = subprocess.run([sys.executable, TABLE1, f"--work_dir={work_dir}", f"--config={config}",
                         "--benchmarks=motion"], env=_env(), capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode != 0
  assert "--stored_flow" in proc.stderr and "--nostored_flow" in proc.stderr
  assert not work_dir.exists()


def test_reused_data_without_the_teachers_stored_flow_is_refused_before_training(tmp_path):
  # A work dir converted before --stored_flow: videos and data present, no stored flow.
  data = tmp_path / "work" / "motion" / "data"
  (tmp_path / "work" / "motion" / "videos").mkdir(parents=True)
  data.mkdir()
  (data / "summary.json").write_text(json.dumps({"num_classes": 4}))
  proc = subprocess.run([sys.executable, TABLE1, f"--work_dir={tmp_path / 'work'}",
                         "--benchmarks=motion"], env=_env(), capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode != 0
  assert "has no stored flow" in proc.stderr and "--nostored_flow" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "work" / "motion" / "seed0").exists()
