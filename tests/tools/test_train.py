"""tools/train.py as a command: help, errors naming the key/file/flag. (Training runs of
every stage, resume and distribution are in tests/training/.)"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "train.py")


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                        env=env, timeout=300)


def test_helpfull_documents_every_flag():
  proc = _run("--helpfull")
  assert proc.returncode == 0
  for flag in ("--config", "--params_override", "--stage", "--model_dir", "--data_dir",
               "--split", "--teacher_dir", "--rgb_dir", "--flow_dir", "--strategy",
               "mixed_precision"):
    assert flag in proc.stdout, flag


def test_unknown_config_key_names_key_and_file(tmp_path):
  config = tmp_path / "bad.yaml"
  config.write_text("train:\n  epochz: 3\n")
  proc = _run(f"--config={config}", "--stage=rgb", f"--model_dir={tmp_path / 'm'}",
              f"--data_dir={tmp_path}")
  assert proc.returncode == 2
  assert "bad.yaml" in proc.stderr and "'train.epochz'" in proc.stderr
  proc = _run("--stage=rgb", f"--model_dir={tmp_path / 'm'}", f"--data_dir={tmp_path}",
              "--params_override=model.widht=2")
  assert proc.returncode == 2
  assert "--params_override" in proc.stderr and "'model.widht'" in proc.stderr
