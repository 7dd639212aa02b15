"""tools/train.py under MirroredStrategy (2 logical CPUs) and MultiWorkerMirroredStrategy
(2 local worker processes on 127.0.0.1): tiny 2-step runs."""

import json
import math
import os
import socket
import subprocess
import sys

import pytest

from tsnet_tf.training import trainer

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))
TRAIN = os.path.join(REPO, "tools", "train.py")


def _override():
  import importlib.util
  spec = importlib.util.spec_from_file_location("tiny_data", os.path.join(_HERE, "tiny_data.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.TINY_OVERRIDE + ",train.steps_per_epoch=2,data.validation_subset=none"


def _args(model_dir, data_dir, strategy):
  return [sys.executable, TRAIN, "--config=" + os.path.join(REPO, "configs", "synthetic.yaml"),
          "--stage=rgb", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
          f"--strategy={strategy}", f"--params_override={_override()}", "--progress=0"]


def _env(**extra):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  env.update(extra)
  return env


def _check_run(model_dir):
  with open(os.path.join(model_dir, "history.json")) as f:
    history = json.load(f)
  assert history["epoch"] == [0]
  assert math.isfinite(history["loss"][0])
  assert os.path.isfile(os.path.join(model_dir, trainer.MODEL_FILE))


def test_mirrored_on_two_logical_cpus(data_dir, tmp_path):
  model_dir = str(tmp_path / "mirrored")
  proc = subprocess.run(_args(model_dir, data_dir, "mirrored") + ["--logical_cpus=2"],
                        env=_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "2 replica(s)" in proc.stdout
  _check_run(model_dir)


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


@pytest.mark.slow  # ~14 s: two worker processes; MirroredStrategy stays in make test
def test_multi_worker_with_two_local_workers(data_dir, tmp_path):
  model_dir = str(tmp_path / "multi_worker")
  cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
  procs = []
  for index in range(2):
    tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    procs.append(subprocess.Popen(_args(model_dir, data_dir, "multi_worker"),
                                  env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=300))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, (out, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
    assert "2 replica(s)" in out
  _check_run(model_dir)
  # The non-chief worker cleaned up its private directory.
  assert not [n for n in os.listdir(model_dir) if n.startswith(".worker-")]
