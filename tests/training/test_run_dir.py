"""Tests for tsnet_tf/training/run_dir.py: names, labels, the classifier and its clip contract."""

import os

import pytest

from tsnet_tf.data import clip_spec
from tsnet_tf.layers import clip_contract
from tsnet_tf.training import run_dir
from tsnet_tf.utils import errors
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
  assert clip_contract.from_model(best) == (spec, labels)


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
  # Keras would call a text file named model.keras "File not found".
  (tmp_path / "model.keras").write_text("not a model")
  with pytest.raises(errors.InputError, match="--teacher_dir .*: .*model.keras' is not a "
                     "Keras model file"):
    run_dir.load_classifier(str(tmp_path), flag="--teacher_dir")
  with pytest.raises(ValueError, match="non-empty"):
    run_dir.write_labels(str(tmp_path), ["a", ""])
  (tmp_path / "labels.txt").write_text("\n\n")
  with pytest.raises(ValueError, match="lists no classes"):
    run_dir.read_labels(str(tmp_path))


def _fake_run(directory, stage, finished=True, interrupted=False):
  """A run directory with the trainer's file names (contents are placeholders)."""
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  directory.mkdir(parents=True, exist_ok=True)
  config_lib.save_config(config_lib.load_config(None, stage), str(directory / run_dir.CONFIG_FILE))
  for name in run_dir.TRAINER_FILES[1:] if finished else ():
    (directory / name).write_text(name)
  for sub in run_dir.LOG_SUBDIRS:
    (directory / run_dir.LOGS_DIR / sub).mkdir(parents=True, exist_ok=True)
    (directory / run_dir.LOGS_DIR / sub / "events.out").write_text("x")
  if interrupted:
    (directory / run_dir.BACKUP_DIR).mkdir()
    (directory / run_dir.BACKUP_DIR / "training_metadata.json").write_text("{}")
  return directory


def test_finished_and_interrupted_runs(tmp_path):
  assert not run_dir.is_finished(str(tmp_path)) and not run_dir.is_interrupted(str(tmp_path))
  finished = str(_fake_run(tmp_path / "done", "rgb"))
  assert run_dir.is_finished(finished) and not run_dir.is_interrupted(finished)
  killed = str(_fake_run(tmp_path / "killed", "rgb", finished=False, interrupted=True))
  assert run_dir.is_interrupted(killed) and not run_dir.is_finished(killed)


def test_remove_training_outputs_keeps_other_files(tmp_path):
  d = _fake_run(tmp_path / "run", "rgb", interrupted=True)
  (d / "notes.txt").write_text("mine")
  (d / "eval.json").write_text("{}")
  (d / run_dir.LOGS_DIR / "mine.txt").write_text("mine")
  (d / ".model.tmp-abc.keras").write_text("partial")
  (d / ".worker-worker-1").mkdir()
  removed = run_dir.remove_training_outputs(str(d))
  assert set(removed) == set(run_dir.TRAINER_FILES) | {
      "backup", "logs/train", "logs/validation", ".model.tmp-abc.keras", ".worker-worker-1"}
  left = sorted(str(p.relative_to(d)) for p in d.rglob("*"))
  assert left == ["eval.json", "logs", "logs/mine.txt", "notes.txt"]
  d2 = _fake_run(tmp_path / "run2", "rgb")
  run_dir.remove_training_outputs(str(d2))
  assert list(d2.iterdir()) == []  # logs/ went too once empty


def test_check_stage_names_flag_directory_and_stage(tmp_path):
  flow = str(_fake_run(tmp_path / "flow", "flow"))
  assert run_dir.recorded_stage(flow) == "teacher"
  run_dir.check_stage(flow, "--teacher_dir", ("teacher",))
  with pytest.raises(run_dir.RunDirError,
                     match=r"^--rgb_dir '.*flow' holds a teacher run \(config.yaml: stage: "
                           r"teacher\), not a rgb run$"):
    run_dir.check_stage(flow, "--rgb_dir", ("rgb",))
  # No config.yaml (a bare model.keras): nothing recorded to check; missing dirs are
  # left to the loader's error.
  run_dir.check_stage(str(tmp_path), "--rgb_dir", ("rgb",))
  run_dir.check_stage(str(tmp_path / "nope"), "--rgb_dir", ("rgb",))
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "config.yaml").write_text("[1, 2]\n")
  with pytest.raises(run_dir.RunDirError, match="--flow_dir .*bad.*YAML mapping"):
    run_dir.check_stage(str(tmp_path / "bad"), "--flow_dir", ("teacher",))


def test_check_classes_names_the_first_differing_class(tmp_path):
  from tsnet_tf.training import run_dir  # pylint: disable=g-import-not-at-top
  run = str(tmp_path / "teacher")
  os.makedirs(run)
  run_dir.check_classes(run, "--teacher_dir", ["a", "b"])  # no labels.txt: nothing to compare
  run_dir.write_labels(run, ["clap", "walk", "wave"])
  run_dir.check_classes(run, "--teacher_dir", ["clap", "walk", "wave"])
  with pytest.raises(run_dir.RunDirError, match=r"--teacher_dir .*class 1 is 'walk' there and "
                     r"'run' here"):
    run_dir.check_classes(run, "--teacher_dir", ["clap", "run", "wave"])
  with pytest.raises(run_dir.RunDirError, match="trained on 3 classes, --data_dir has 2"):
    run_dir.check_classes(run, "--teacher_dir", ["clap", "walk"])
  # Classes the model carries win over the file.
  run_dir.check_classes(run, "--model_dir", ["x", "y"], labels_model=["x", "y"])
