"""tools/train.py as a command: help, errors naming the key/file/flag. (Training runs of
every stage, resume and distribution are in tests/training/.)"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "train.py")


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                        env=env, timeout=300)


def test_helpfull_documents_every_flag(run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import for --help.
  proc = run_tool_in_process("train.py", "--helpfull")
  assert proc.code == 0
  for flag in ("--config", "--params_override", "--stage", "--model_dir", "--data_dir",
               "--split", "--teacher_dir", "--rgb_dir", "--flow_dir", "--strategy",
               "mixed_precision", "--[no]overwrite"):
    assert flag in proc.out, flag


def test_unknown_config_key_names_key_and_file(tmp_path, run_tool_in_process):
  config = tmp_path / "bad.yaml"
  config.write_text("train:\n  epochz: 3\n")
  result = run_tool_in_process("train.py", f"--config={config}", "--stage=rgb",
                               f"--model_dir={tmp_path / 'm'}", f"--data_dir={tmp_path}")
  assert result.code == 2
  assert "bad.yaml" in result.err and "'train.epochz'" in result.err
  result = run_tool_in_process("train.py", "--stage=rgb", f"--model_dir={tmp_path / 'm'}",
                               f"--data_dir={tmp_path}", "--params_override=model.widht=2")
  assert result.code == 2
  assert "--params_override" in result.err and "'model.widht'" in result.err


@pytest.mark.slow
def test_student_trains_from_an_accurate_preset_teacher(tmp_path, tiny_data_dir):
  # The shapes of configs/synthetic_table1.yaml (8x64x64 clips, width-64 teacher,
  # `accurate` TV-L1): there the student's first step died with Grappler's
  # AddOpsRewrite AlreadyExistsError inside the teacher's while loops.
  override = ("train.epochs=1,train.steps_per_epoch=2,train.warmup_epochs=0,"
              "data.batch_size=8,train.validation_steps=1")
  config = os.path.join(REPO, "configs", "synthetic_table1.yaml")
  teacher = tmp_path / "teacher"
  proc = _run(f"--config={config}", "--stage=teacher", f"--model_dir={teacher}",
              f"--data_dir={tiny_data_dir}", f"--params_override={override}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  student = tmp_path / "student"
  proc = _run(f"--config={config}", "--stage=student", f"--model_dir={student}",
              f"--data_dir={tiny_data_dir}", f"--teacher_dir={teacher}",
              f"--params_override={override},distill.mse_warmup_epochs=0")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "AlreadyExistsError" not in proc.stderr
  assert (student / "model.keras").is_file()


def _fake_finished_run(directory, stage):
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  directory.mkdir()
  config_lib.save_config(config_lib.load_config(None, stage), str(directory / "config.yaml"))
  for name in ("model.keras", "best.keras", "history.json"):
    (directory / name).write_text(name)
  (directory / "notes.txt").write_text("mine")


def test_finished_run_is_refused_with_one_line(tmp_path, tiny_data_dir, run_tool_in_process):
  import hashlib  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / "done"
  _fake_finished_run(model_dir, "rgb")
  before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.iterdir()}
  # In-process (cli.run, as its __main__): the refusal comes before any training.
  proc = run_tool_in_process("train.py", "--stage=rgb", f"--model_dir={model_dir}",
                             f"--data_dir={tiny_data_dir}")
  assert proc.code == 2, proc.err[-3000:]
  lines = [l for l in proc.err.splitlines() if l.startswith("train: error:")]
  assert len(lines) == 1 and "Traceback" not in proc.err
  assert str(model_dir) in lines[0] and "finished run" in lines[0] and "--overwrite" in lines[0]
  after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.iterdir()}
  assert after == before


def test_teacher_dir_of_another_stage_is_refused(tmp_path, tiny_data_dir, run_tool_in_process):
  rgb = tmp_path / "rgb"
  _fake_finished_run(rgb, "rgb")
  # In-process (cli.run, as its __main__): the refusal comes before any training.
  proc = run_tool_in_process("train.py", "--stage=student", f"--model_dir={tmp_path / 'student'}",
                             f"--data_dir={tiny_data_dir}", f"--teacher_dir={rgb}")
  assert proc.code == 2, proc.err[-3000:]
  assert "Traceback" not in proc.err
  assert f"--teacher_dir '{rgb}' holds a rgb run" in proc.err
  assert not (tmp_path / "student").exists()


def test_truncated_shard_is_one_line_naming_it(tmp_path, tiny_data_dir, run_tool_in_process):
  import shutil  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import schema  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "data")
  shutil.copytree(tiny_data_dir, data_dir)
  for shard in schema.list_shards(data_dir):
    with open(shard, "r+b") as f:
      f.truncate(f.seek(0, 2) * 6 // 10)
  result = run_tool_in_process(
      "train.py", "--stage=rgb", f"--model_dir={tmp_path / 'm'}", f"--data_dir={data_dir}",
      "--params_override=data.num_frames=4,data.crop_size=16,model.backbone=light,"
      "model.width=4,train.epochs=1,train.steps_per_epoch=2,data.batch_size=2",
      "--progress=0")
  lines = [l for l in result.err.splitlines() if l.startswith("train: error")]
  assert result.code == 1 and "Traceback" not in result.err, result.err[-3000:]
  assert len(lines) == 1, result.err[-3000:]
  assert lines[0].startswith(
      f"train: error: --data_dir {data_dir!r}: truncated or corrupt shard: hmdb51-0"), lines
