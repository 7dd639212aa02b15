"""Tests for tsnet_tf/comparison.py: Table 1 rows, ratios, table and files."""

import json
import os

import pytest

from tsnet_tf import comparison
from tsnet_tf.training import evaluation


def _row(model, ms, tflite_ms, gflops, acc=0.5):
  return dict(model=model, clip_accuracy=acc, video_accuracy=acc, ms_per_clip=ms,
              tflite_ms_per_clip=tflite_ms, gflops_per_clip=gflops, params=1_000_000)


def test_cost_ratios_and_table_by_hand():
  rows = [_row("rgb", 10.0, 3.0, 0.1), _row("flow", 200.0, 150.0, 2.0),
          _row("twostream", 210.0, None, 2.1), _row("student", 8.0, 2.5, 0.1, acc=0.75)]
  ratios = comparison.cost_ratios(rows)
  assert ratios["flow"] == pytest.approx(
      {"ms_per_clip": 25.0, "tflite_ms_per_clip": 60.0, "gflops_per_clip": 20.0})
  assert ratios["twostream"]["ms_per_clip"] == pytest.approx(26.25)
  assert ratios["twostream"]["tflite_ms_per_clip"] is None  # not measured
  assert comparison.cost_ratios(rows[:3]) == {}  # no student row
  lines = comparison.format_ratios(rows).splitlines()
  assert lines[0] == ("student vs flow: 25.0x cheaper in TF ms, 60.0x in TFLite ms, "
                      "20.0x in GFLOPs")
  assert "n/a in TFLite ms" in lines[1]
  table = comparison.format_table(rows, "caption line").splitlines()
  assert table[0] == "caption line"
  assert len(table) == 4 + len(rows)
  assert table[-1] == "| teacher-student (student) | 75.0 % | 75.0 % | 8.0 | 2.5 | 0.100 | 1.00 M |"
  assert "| n/a |" in table[-2]


def test_standard_error_and_student_gain_by_hand():
  assert comparison.standard_error(0.5, 100) == pytest.approx(0.05)
  assert comparison.standard_error(1.0, 10) == 0.0
  rgb = dict(_row("rgb", 1, 1, 1, acc=0.5), num_videos=100, video_accuracy_se=0.05)
  student = dict(_row("student", 1, 1, 1, acc=0.7), num_videos=100,
                 video_accuracy_se=comparison.standard_error(0.7, 100))
  line = comparison.student_gain([rgb, student])
  # sqrt(0.05^2 + 0.0458^2) = 0.0678
  assert line.startswith("student - rgb: +20.0 points of video accuracy ± 6.8 ")
  assert line.endswith("beyond one SE")
  close = dict(student, video_accuracy=0.52)
  assert comparison.student_gain([rgb, close]).endswith("within one SE")
  assert comparison.student_gain([rgb]) is None
  table = comparison.format_table([rgb, student])
  assert "| 50.0 ± 5.0 % |" in table and "| 70.0 ± 4.6 % |" in table


def test_compare_evaluates_times_and_writes_every_row(rgb_run, teacher_dir, data_dir, tmp_path):
  rgb_dir, _ = rgb_run
  out = str(tmp_path / "table")
  # The rgb run stands in for the student too: the same network must give the same row.
  rows = comparison.compare({"rgb": rgb_dir, "flow": teacher_dir, "student": rgb_dir},
                            data_dir, out, num_clips=2, timing_runs=1, tflite=True)
  by_name = {r["model"]: r for r in rows}
  assert [r["model"] for r in rows] == list(comparison.ROWS)
  for name, row in by_name.items():
    assert 0.0 <= row["clip_accuracy"] <= 1.0 and 0.0 <= row["video_accuracy"] <= 1.0
    assert row["video_accuracy_se"] == pytest.approx(comparison.standard_error(
        row["video_accuracy"], row["num_videos"]))
    assert row["ms_per_clip"] > 0 and row["tflite_ms_per_clip"] > 0
    assert os.path.getsize(os.path.join(out, f"{name}.tflite")) > 0
    with open(os.path.join(out, name, "eval.json")) as f:
      assert json.load(f)["clip_accuracy"] == row["clip_accuracy"]
  assert by_name["student"]["clip_accuracy"] == by_name["rgb"]["clip_accuracy"]
  assert by_name["student"]["gflops_per_clip"] == by_name["rgb"]["gflops_per_clip"]
  # Two-stream runs both networks (the fusion itself has no FLOPs counted).
  assert by_name["twostream"]["gflops_per_clip"] == pytest.approx(
      by_name["rgb"]["gflops_per_clip"] + by_name["flow"]["gflops_per_clip"])
  assert by_name["twostream"]["params"] == by_name["rgb"]["params"] + by_name["flow"]["params"]
  caption = comparison.describe_protocol({"rgb": rgb_dir}, 2, 1)
  assert caption.startswith("clips 4x16x16, backbone light") and "2 clips/video" in caption
  table = comparison.write_results(rows, caption, out)
  with open(os.path.join(out, comparison.TABLE_FILE)) as f:
    assert f.read() == table + "\n"
  with open(os.path.join(out, comparison.ROWS_FILE)) as f:
    assert [r["model"] for r in json.load(f)] == list(comparison.ROWS)


def test_compare_without_flow_has_no_twostream_and_rejects_bad_input(rgb_run, data_dir,
                                                                      tmp_path):
  rgb_dir, _ = rgb_run
  rows = comparison.compare({"rgb": rgb_dir}, data_dir, str(tmp_path / "t"), num_clips=1,
                            timing_runs=1, tflite=False)
  assert [r["model"] for r in rows] == ["rgb"] and rows[0]["tflite_ms_per_clip"] is None
  with pytest.raises(ValueError, match="twostream"):
    comparison.compare({"twostream": rgb_dir}, data_dir, str(tmp_path / "t"))
  with pytest.raises(ValueError, match="timing_runs"):
    comparison.compare({"rgb": rgb_dir}, data_dir, str(tmp_path / "t"), timing_runs=-1)
  # Accuracy only, on validation (how choices are made before the test set).
  rows = comparison.compare({"rgb": rgb_dir}, data_dir, str(tmp_path / "v"), num_clips=1,
                            timing_runs=0, subset="validation")
  assert rows[0]["ms_per_clip"] is None and rows[0]["tflite_ms_per_clip"] is None
  with open(os.path.join(tmp_path, "v", "rgb", "eval.json")) as f:
    assert json.load(f)["subset"] == "validation"
  with pytest.raises(evaluation.EvaluationError, match="does not exist"):
    comparison.compare({"rgb": str(tmp_path / "missing")}, data_dir, str(tmp_path / "t"))


def test_choose_fusion_takes_the_best_and_breaks_ties_towards_mean():
  assert comparison.choose_fusion({"mean": 0.5, "geometric": 0.6}) == "geometric"
  assert comparison.choose_fusion({"mean": 0.7, "geometric": 0.6}) == "mean"
  assert comparison.choose_fusion({"geometric": 0.6, "mean": 0.6}) == "mean"
  assert comparison.choose_fusion({"geometric": 0.4}) == "geometric"
  with pytest.raises(ValueError, match="no fusion rule"):
    comparison.choose_fusion({})


def test_row_label_names_a_fusion_other_than_mean():
  assert comparison.row_label(_row("twostream", 1, 1, 1)) == "two-stream late fusion"
  assert comparison.row_label(dict(_row("twostream", 1, 1, 1), fusion="mean")) == (
      "two-stream late fusion")
  geometric = dict(_row("twostream", 1, 1, 1), fusion="geometric")
  assert comparison.row_label(geometric) == "two-stream late fusion (geometric)"
  assert "| two-stream late fusion (geometric) |" in comparison.format_table([geometric])


def test_fusion_rules_on_validation_and_in_compare(rgb_run, teacher_dir, data_dir, tmp_path):
  rgb_dir, _ = rgb_run
  accuracy = comparison.validate_fusions(rgb_dir, teacher_dir, data_dir, str(tmp_path / "v"),
                                         ["mean", "geometric"], num_clips=1)
  assert list(accuracy) == ["mean", "geometric"]
  for rule in accuracy:
    with open(tmp_path / "v" / f"fusion_{rule}" / "eval.json") as f:
      saved = json.load(f)
    assert (saved["fusion"], saved["subset"]) == (rule, "validation")
    assert saved["video_accuracy"] == accuracy[rule]
  # compare's twostream row is the same fused evaluation under the same rule.
  rows = comparison.compare({"rgb": rgb_dir, "flow": teacher_dir}, data_dir, str(tmp_path / "c"),
                            num_clips=1, timing_runs=0, subset="validation", fusion="geometric")
  row = next(r for r in rows if r["model"] == "twostream")
  assert row["fusion"] == "geometric" and row["video_accuracy"] == accuracy["geometric"]
  assert all("fusion" not in r for r in rows if r["model"] != "twostream")
  with open(tmp_path / "c" / "twostream" / "eval.json") as f:
    assert json.load(f)["fusion"] == "geometric"
  with pytest.raises(ValueError, match="unknown fusion 'max'"):
    comparison.compare({"rgb": rgb_dir}, data_dir, str(tmp_path / "t"), fusion="max")
