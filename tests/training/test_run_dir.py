"""Tests for tsnet_tf/training/run_dir.py: names, labels, the classifier and its clip contract."""

import pytest

from tsnet_tf.data import clip_spec
from tsnet_tf.training import run_dir
from tsnet_tf.utils import labels as labels_lib


def test_trained_classifier_carries_the_runs_clip_contract(teacher_dir, data_dir):
  model = run_dir.load_classifier(teacher_dir)
  spec, labels = run_dir.clip_contract(teacher_dir, model)
  # configs/synthetic.yaml (data.frame_stride 3) on TFRecords kept at their size, JPEG q90.
  assert (spec.num_frames, spec.crop_size, spec.frame_stride) == (4, 16, 3)
  assert spec.stored_frames == clip_spec.StoredFrames(stride=1, short_side=0, jpeg_quality=90)
  assert labels == run_dir.read_labels(teacher_dir) == labels_lib.read_labels(
      f"{data_dir}/labels.txt")
  best = run_dir.load_classifier(teacher_dir, run_dir.BEST_FILE)
  assert clip_spec.from_model(best) == (spec, labels)


def test_a_model_without_contract_falls_back_to_the_run_config(tmp_path, teacher_dir):
  from tsnet_tf.models import build_rgb_model  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copy(f"{teacher_dir}/{run_dir.CONFIG_FILE}", tmp_path / run_dir.CONFIG_FILE)
  run_dir.write_labels(str(tmp_path), ["a", "b"])
  build_rgb_model(2, 4, 16, backbone="light", width=4).save(str(tmp_path / "model.keras"))
  spec, labels = run_dir.clip_contract(str(tmp_path), run_dir.load_classifier(str(tmp_path)))
  assert spec.frame_stride == 3 and labels == ["a", "b"]


def test_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="--teacher_dir .* has no model.keras"):
    run_dir.load_classifier(str(tmp_path), flag="--teacher_dir")
  with pytest.raises(FileNotFoundError, match="not a directory"):
    run_dir.load_classifier(str(tmp_path / "nope"))
  with pytest.raises(ValueError, match="non-empty"):
    run_dir.write_labels(str(tmp_path), ["a", ""])
  (tmp_path / "labels.txt").write_text("\n\n")
  with pytest.raises(ValueError, match="lists no classes"):
    run_dir.read_labels(str(tmp_path))
