"""benchmarks/table1.py: its report on records with and without a fusion choice, its flags.

The module defines absl flags at import, so it is loaded in a subprocess (not
into the test process, where another module's flags of the same name clash).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

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


# ---------------------------------------------------------------------------
# --data_dir: the protocol on a real (HMDB51-layout) converted set, splits 1-3.
# In-process with the trainer and the evaluations mocked: what is checked is the
# orchestration (each row per split, lambda and fusion chosen on validation, the
# mean over splits, resuming), not the training.


def _load_table1():
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("_table1_under_test", TABLE1)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _fake_data_dir(root, splits=(1, 2, 3)):
  os.makedirs(root)
  with open(os.path.join(root, "labels.txt"), "w") as f:
    f.write("brush_hair\ncartwheel\n")
  summary = {"splits": {str(s): {"train": 10, "validation": 2, "test": 4} for s in splits},
             "settings": {}}
  with open(os.path.join(root, "summary.json"), "w") as f:
    json.dump(summary, f)
  return str(root)


def test_data_dir_trains_every_row_per_split_and_prints_the_mean(tmp_path, monkeypatch, capsys):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  before = set(flags.FLAGS)
  try:
    table1 = _load_table1()
    data_dir = _fake_data_dir(tmp_path / "hmdb51")
    trained = []

    def fake_train(cfg, stage, run_dir, data_dir, split=1, teacher_dir=None, verbose=0):
      trained.append((stage, split, os.path.basename(run_dir), cfg.distill.lambda_,
                      cfg.distill.feature_layer, cfg.data.crop_size))
      os.makedirs(run_dir, exist_ok=True)
      open(os.path.join(run_dir, "model.keras"), "w").close()

    # Validation: lambda 30 wins on split 2 only; test: accuracy grows with the split.
    def fake_compare(runs, data_dir, out, split=1, subset="test", **kwargs):
      if subset == "validation":
        lam = os.path.basename(runs["rgb"]).replace("student_lambda", "")
        acc = {"rgb": 0.3, "10": 0.5, "30": 0.6 if split == 2 else 0.4}[lam]
        return [dict(model="rgb", video_accuracy=acc)]
      acc = {"rgb": 0.4, "flow": 0.5, "twostream": 0.6, "student": 0.55}
      return [dict(model=m, clip_accuracy=a, video_accuracy=a + 0.01 * split, num_videos=4,
                   video_accuracy_se=0.1, ms_per_clip=None, tflite_ms_per_clip=None,
                   gflops_per_clip=1.0, params=10) for m, a in acc.items()]

    monkeypatch.setattr(trainer, "train", fake_train)
    monkeypatch.setattr(comparison, "compare", fake_compare)
    monkeypatch.setattr(comparison, "validate_fusions",
                        lambda *a, **k: {"mean": 0.5, "geometric": 0.4})
    monkeypatch.setattr(comparison, "write_results", lambda *a, **k: None)
    argv = ["table1", f"--data_dir={data_dir}", f"--work_dir={tmp_path / 'work'}",
            "--lambdas=10,30", "--timing_runs=0", "--estimate_steps=0", "--nostored_flow"]
    flags.FLAGS(argv)
    assert table1.main(["table1"]) == 0
    out = capsys.readouterr().out
    # rgb, teacher and a student per lambda, on each split, with configs/hmdb51.yaml.
    assert sorted({(t[0], t[1]) for t in trained}) == sorted(
        (stage, s) for s in (1, 2, 3) for stage in ("rgb", "teacher", "student"))
    assert len(trained) == 12
    assert {t[5] for t in trained} == {224}
    assert {t[3] for t in trained if t[0] == "student"} == {10.0, 30.0}
    assert {t[4] for t in trained if t[0] == "student"} == {"features"}
    assert "mean ± std over 3 splits" in out
    assert "| model | mean ± std | split 1 | split 2 | split 3 |" in out
    assert "| 3D CNN on RGB (rgb) | 42.0 ± 0.8 | 41.0 | 42.0 | 43.0 |" in out
    assert "student lambda chosen on validation: split 1: 10, split 2: 30, split 3: 10" in out
    assert os.path.isfile(tmp_path / "work" / "hmdb51" / "split3" / "seed0" / "record.json")

    # A rerun (e.g. after a kill) trains nothing again and prints the same table.
    trained.clear()
    assert table1.main(["table1"]) == 0
    assert trained == []
    assert "mean ± std over 3 splits" in capsys.readouterr().out

    # A split the data directory lacks: one line, before any work.
    flags.FLAGS(argv[:1] + [f"--data_dir={_fake_data_dir(tmp_path / 'one', (1,))}"] + argv[2:])
    with pytest.raises(table1.app.UsageError, match="split 2 was not converted.*--splits=1,2,3"):
      table1.main(["table1"])
    assert trained == []

    # The estimate's arithmetic: clips x epochs / measured clips/s, per stage.
    rows = [dict(stage="rgb", status="ok", clips_per_s=10.0, batch=16),
            dict(stage="teacher", status="ok", clips_per_s=5.0, batch=16),
            dict(stage="student", status="ok", clips_per_s=4.0, batch=16)]
    hours = table1.estimate_hours(rows, 3600, {"rgb": 100, "teacher": 100, "student": 100}, 2)
    assert hours == pytest.approx({"rgb": 10.0, "teacher": 20.0, "student": 25.0,
                                   "split": 80.0})
    assert table1.estimate_hours(rows[:2], 3600, {"rgb": 1, "teacher": 1, "student": 1},
                                 1)["split"] is None
  finally:
    for name in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, name)


def test_real_motion_runs_every_session_split_and_seed_with_its_own_config(
    tmp_path, monkeypatch, capsys):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tsnet_tf import comparison  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import trainer  # pylint: disable=g-import-not-at-top
  before = set(flags.FLAGS)
  try:
    table1 = _load_table1()
    work = tmp_path / "work"
    # What tools/layout_sessions.py leaves: three sessions, so three splits.
    os.makedirs(work / "real_motion" / "videos")
    (work / "real_motion" / "videos" / "manifest.json").write_text(json.dumps(
        {"test_session_of_split": {"1": "A", "2": "B", "3": "C"}}))
    data_dir = _fake_data_dir(tmp_path / "data")
    monkeypatch.setattr(table1, "make_real_motion_data", lambda root: data_dir)
    trained = []

    def fake_train(cfg, stage, run_dir, data_dir, split=1, teacher_dir=None, verbose=0):
      trained.append((stage, split, cfg.train.seed, cfg.model.rgb_input))
      os.makedirs(run_dir, exist_ok=True)
      open(os.path.join(run_dir, "model.keras"), "w").close()

    def fake_compare(runs, data_dir, out, split=1, subset="test", **kwargs):
      if subset == "validation":
        return [dict(model="rgb", video_accuracy=0.5)]
      # Split 3: the student falls below rgb.
      acc = {"rgb": 0.2, "flow": 0.6, "twostream": 0.55,
             "student": 0.1 if split == 3 else 0.58}
      return [dict(model=m, clip_accuracy=a, video_accuracy=a, num_videos=4 + split,
                   video_accuracy_se=0.1, ms_per_clip=None, tflite_ms_per_clip=None,
                   gflops_per_clip=1.0, params=10) for m, a in acc.items()]

    monkeypatch.setattr(trainer, "train", fake_train)
    monkeypatch.setattr(comparison, "compare", fake_compare)
    monkeypatch.setattr(comparison, "validate_fusions",
                        lambda *a, **k: {"mean": 0.5, "geometric": 0.4})
    monkeypatch.setattr(comparison, "write_results", lambda *a, **k: None)
    flags.FLAGS(["table1", "--benchmarks=real_motion", f"--work_dir={work}", "--lambdas=10",
                 "--seeds=0,1", "--timing_runs=0", "--nostored_flow"])
    assert table1.main(["table1"]) == 0
    out = capsys.readouterr().out
    # rgb, teacher and student, for each session split and seed, with configs/real_motion.yaml.
    assert sorted({(t[0], t[1], t[2]) for t in trained}) == sorted(
        (stage, s, seed) for s in (1, 2, 3) for seed in (0, 1)
        for stage in ("rgb", "teacher", "student"))
    expected = table1._load_config("rgb", "real_motion").model.rgb_input
    assert {t[3] for t in trained} == {expected}
    assert ("mean ± std over 6 splits x seeds (18 test videos: split 1 5, split 2 6, "
            "split 3 7)") in out
    assert "| model | mean ± std | split 1 seed 0 | split 1 seed 1 | split 2 seed 0 |" in out
    assert "- [MISSED] real_motion split 3: student - rgb = -10.0 >= 0 (mean over 2 seeds)" in out
    assert "- [met] real_motion split 1: student - rgb = +38.0 >= 0 (mean over 2 seeds)" in out
    assert "real_motion: student 42.0 >= rgb + 20 = 40.0" in out
    assert os.path.isfile(work / "real_motion" / "split3" / "seed1" / "record.json")
    # --splits runs some of the sessions' splits; one the layout lacks is refused first.
    trained.clear()
    flags.FLAGS(["table1", f"--work_dir={tmp_path / 'again'}", "--splits=2", "--seeds=0"])
    shutil.copytree(work / "real_motion" / "videos", tmp_path / "again" / "real_motion" / "videos")
    assert table1.main(["table1"]) == 0
    assert {t[1] for t in trained} == {2}
    flags.FLAGS(["table1", "--splits=2,9"])
    with pytest.raises(table1.app.UsageError, match=r"real_motion has splits \[1, 2, 3\], not \['9'\]"):
      table1.main(["table1"])
  finally:
    for name in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, name)


@pytest.mark.slow
def test_data_dir_protocol_for_real_on_a_tiny_hmdb51_layout_set(tmp_path):
  """benchmarks/table1.py --data_dir, nothing mocked: a generated HMDB51-layout set of 3
  splits converted with stored flow, configs/hmdb51.yaml at tiny shapes, the time
  estimate from measured steps, then a rerun that trains nothing."""
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  videos = str(tmp_path / "videos")
  synthetic.generate_dataset(videos, num_classes=2, videos_per_class=5, seed=0, height=48,
                             width=64, min_seconds=0.5, max_seconds=0.6)
  data = str(tmp_path / "data")
  env = _env()
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "tools", "prepare_hmdb51.py"),
       f"--video_dir={videos}/videos", f"--split_dir={videos}/splits", f"--output_dir={data}",
       "--splits=1,2,3", "--short_side=0", "--num_workers=1", "--flow_preset=accurate",
       "--flow_bound=20", "--flow_stride=1"],
      env=env, capture_output=True, text=True, timeout=1200, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  tiny = ("data.num_frames=4,data.crop_size=32,data.batch_size=4,train.micro_batch_size=2,"
          "data.eval_batch_size=4,model.backbone=light,model.width=4,train.epochs=1,"
          "train.warmup_epochs=0,distill.mse_warmup_epochs=0,"
          "distill.feature_layer=stage3_block1_out,eval.num_clips=2")
  cmd = [sys.executable, TABLE1, f"--data_dir={data}", f"--work_dir={tmp_path / 'work'}",
         f"--params_override={tiny}", "--lambdas=0,10", "--timing_runs=0", "--estimate_steps=1"]
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3000, check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert "time estimate (measured here:" in proc.stdout
  assert "mean ± std over 3 splits" in proc.stdout
  assert "| model | mean ± std | split 1 | split 2 | split 3 |" in proc.stdout
  proc = subprocess.run(cmd[:-1] + ["--estimate_steps=0"], env=env, capture_output=True,
                        text=True, timeout=600, check=False)
  assert proc.returncode == 0 and "== train" not in proc.stdout, proc.stdout[-3000:]
