"""Kill a conversion or a training run at a random point, re-run it: the result is an uninterrupted run's.

The interrupted run is a real process (tools/*.py), killed with SIGINT (Ctrl-C:
one line, exit 130) or SIGKILL; the reference and the resume run in-process
where they can, to keep the cost down.
"""

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_SHARDS = 8


# A shell starts a background job (`make test &`, nohup) with SIGINT ignored, and
# Python keeps an ignored SIGINT, so Ctrl-C would never reach the tool: restore
# the KeyboardInterrupt handler a terminal's foreground process has.
_WITH_CTRL_C = ("import runpy, signal, sys; "
                "signal.signal(signal.SIGINT, signal.default_int_handler); "
                "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def _tool_cmd(tool, *args):
  """`tools/<tool> args` in a fresh Python whose Ctrl-C raises KeyboardInterrupt."""
  return [sys.executable, "-c", _WITH_CTRL_C, os.path.join(REPO, "tools", tool), *args]


def _env():
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
              PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("kill") / "set"
  # 24 videos of 64x48 (8 shards of 3): long enough to be killed mid-conversion.
  synthetic.generate_dataset(str(root), num_classes=3, videos_per_class=8, height=48, width=64,
                             min_seconds=1.0, max_seconds=1.5, fps=(25,))
  return root


def _settings():
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  return tfrecords.ConversionSettings(short_side=0)


def _records(data_dir):
  """{shard name: [serialized record bytes]}."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {os.path.basename(p): [r.numpy() for r in tf.data.TFRecordDataset(p)]
          for p in sorted(glob.glob(os.path.join(data_dir, "hmdb51-*.tfrecord")))}


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory):
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  out = str(tmp_path_factory.mktemp("ref") / "data")
  tfrecords.convert(str(videos / "videos"), str(videos / "splits"), out, splits=[1],
                    settings=_settings(), num_workers=0, num_shards=NUM_SHARDS, progress=False)
  return _records(out)


def _complete_shards(out):
  if not os.path.isdir(out):
    return 0
  return len(glob.glob(os.path.join(out, "hmdb51-*.tfrecord")))


def _kill_conversion_then_resume(videos, tmp_path, sig, seed):
  """Starts tools/prepare_hmdb51.py, sends `sig` once k shards are complete, resumes."""
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  k = random.Random(seed).randint(1, NUM_SHARDS - 2)
  out = str(tmp_path / "data")
  proc = subprocess.Popen(
      _tool_cmd("prepare_hmdb51.py", f"--video_dir={videos / 'videos'}",
                f"--split_dir={videos / 'splits'}", f"--output_dir={out}", "--splits=1",
                "--short_side=0", "--num_workers=1", f"--num_shards={NUM_SHARDS}"),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
  deadline = time.time() + 240
  while _complete_shards(out) < k and proc.poll() is None and time.time() < deadline:
    time.sleep(0.005)
  proc.send_signal(sig)
  _, err = proc.communicate(timeout=120)
  done = _complete_shards(out)
  assert done < NUM_SHARDS, f"the run finished before the kill (k={k}): make it longer"
  tfrecords.convert(str(videos / "videos"), str(videos / "splits"), out, splits=[1],
                    settings=_settings(), num_workers=0, num_shards=NUM_SHARDS, progress=False)
  return proc.returncode, err, out, done


def test_ctrl_c_during_conversion_then_resume(videos, reference, tmp_path):
  seed = int(time.time())
  code, err, out, done = _kill_conversion_then_resume(videos, tmp_path, signal.SIGINT, seed)
  lines = [l for l in err.splitlines() if l.strip() and not l.startswith(("W0000", "I0000",
                                                                           "WARNING: All log"))]
  assert code == 130, (seed, err[-2000:])
  assert "Traceback" not in err, err[-2000:]
  assert lines[-1] == "prepare_hmdb51: interrupted", (seed, err[-2000:])
  assert 1 <= done < NUM_SHARDS
  assert _records(out) == reference, f"seed {seed}"
  # No temporary file of the interrupted run is left.
  assert not [n for n in os.listdir(out) if ".tmp-" in n]
  with open(os.path.join(out, "summary.json")) as f:
    assert json.load(f)["num_videos"] == sum(len(r) for r in reference.values())


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_during_conversion_then_resume(videos, reference, tmp_path, attempt):
  seed = int(time.time()) + attempt
  code, _, out, _ = _kill_conversion_then_resume(videos, tmp_path, signal.SIGKILL, seed)
  assert code == -signal.SIGKILL
  assert _records(out) == reference, f"seed {seed}"


# ---------------------------------------------------------------------------
# Training: SIGKILL after a random epoch, re-run the same command.

_TINY = ("data.num_frames=4,data.crop_size=16,data.batch_size=2,data.eval_batch_size=4,"
         "train.epochs=4,train.steps_per_epoch=2,train.warmup_epochs=0,"
         "model.backbone=light,model.width=4,data.validation_subset=none,"
         "data.random_flip=false")


def _train_cmd(model_dir, data_dir):
  return _tool_cmd("train.py", "--stage=rgb", f"--model_dir={model_dir}",
                   f"--data_dir={data_dir}", f"--params_override={_TINY}", "--progress=0")


def _weights(model_dir):
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)
  return [w.numpy() for w in model.weights]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill9", "ctrl_c"])
def test_kill_during_training_then_resume(tmp_path, sig):
  spec_path = os.path.join(REPO, "tests", "training", "tiny_data.py")
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("tiny_data", spec_path)
  tiny = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tiny)
  data_dir = tiny.make_tiny_data_dir(str(tmp_path / "tiny"))

  ref = tmp_path / "ref"
  proc = subprocess.run(_train_cmd(ref, data_dir), capture_output=True, text=True, env=_env(),
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]

  seed = int(time.time())
  kill_after = random.Random(seed).randint(1, 3)  # epochs backed up before the kill
  run = tmp_path / "run"
  proc = subprocess.Popen(_train_cmd(run, data_dir), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=_env())
  history = run / "history.json"
  deadline = time.time() + 600
  while proc.poll() is None and time.time() < deadline:
    try:
      with open(history) as f:
        if len(json.load(f).get("epoch", [])) >= kill_after:
          break
    except (OSError, ValueError):
      pass
    time.sleep(0.01)
  proc.send_signal(sig)
  _, err = proc.communicate(timeout=120)
  assert not (run / "model.keras").exists() or proc.returncode == 0, "killed too late"
  if sig == signal.SIGINT and proc.returncode != 0:
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
  proc = subprocess.run(_train_cmd(run, data_dir), capture_output=True, text=True, env=_env(),
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(run / "history.json") as f, open(ref / "history.json") as g:
    assert json.load(f)["epoch"] == json.load(g)["epoch"]
  for a, b in zip(_weights(run), _weights(ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"seed {seed}")


# ---------------------------------------------------------------------------
# Training: Ctrl-C or kill -9 at 20 random instants, many of them while a
# backup, history.json or best.keras is being written (issue #25): every rerun
# resumes, and the run ends with an uninterrupted run's weights.

_WRITES = _TINY.replace("train.epochs=4", "train.epochs=6").replace(
    "data.validation_subset=none", "data.validation_subset=validation")


def _writing(model_dir):
  """Whether a temporary file of an atomic write exists in the run (a write in progress)."""
  for d in (model_dir, os.path.join(model_dir, "backup")):
    try:
      if any(n.startswith(".") and ".tmp-" in n or n.startswith(".tmp-")
             for n in os.listdir(d)):
        return True
    except OSError:
      pass
  return False


@pytest.mark.slow
def test_training_resumes_after_kills_at_20_random_instants_including_writes(tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "tiny_data", os.path.join(REPO, "tests", "training", "tiny_data.py"))
  tiny = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tiny)
  data_dir = tiny.make_tiny_data_dir(str(tmp_path / "tiny"))

  def cmd(model_dir):
    return _tool_cmd("train.py", "--stage=rgb", f"--model_dir={model_dir}",
                     f"--data_dir={data_dir}", f"--params_override={_WRITES}", "--progress=0")

  start = time.time()
  ref = tmp_path / "ref"
  proc = subprocess.run(cmd(ref), capture_output=True, text=True, env=_env(), timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  wall = time.time() - start
  ref_weights = _weights(ref)

  seed = int(time.time())
  rng = random.Random(seed)
  runs, kills, in_write, run = 0, 0, 0, None
  while kills < 20:
    if run is None:
      runs += 1
      run = tmp_path / f"run{runs}"
    sig = rng.choice([signal.SIGINT, signal.SIGKILL])
    at_write = rng.random() < 0.6  # else a uniformly random instant
    delay = rng.uniform(0.2 * wall, 1.0 * wall)
    proc = subprocess.Popen(cmd(run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=_env())
    t0, hit = time.time(), False
    while proc.poll() is None and time.time() - t0 < (2 * wall if at_write else delay):
      if at_write and _writing(run):
        hit = True
        break
      time.sleep(0.0005 if at_write else 0.01)
    if proc.poll() is None:
      proc.send_signal(sig)
      kills += 1
      in_write += hit
    _, err = proc.communicate(timeout=300)
    # Killed by us (-9, Ctrl-C's 130, or -2: a Ctrl-C during Python's imports, before
    # the tool's handler exists), or finished: never an error of its own.
    assert proc.returncode in (0, 130, -signal.SIGINT, -signal.SIGKILL), (
        seed, kills, err[-3000:])
    if proc.returncode == 130:
      assert "Traceback" not in err, (seed, err[-3000:])
    finished = (run / "model.keras").exists() and not (run / "backup").exists()
    if proc.returncode == 0 or finished:  # (a kill can land after the last write)
      for a, b in zip(_weights(run), ref_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"seed {seed}")
      run = None
  if run is not None:
    proc = subprocess.run(cmd(run), capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, (seed, proc.stderr[-3000:])
    for a, b in zip(_weights(run), ref_weights):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"seed {seed}")
    with open(run / "history.json") as f, open(ref / "history.json") as g:
      assert json.load(f)["epoch"] == json.load(g)["epoch"]
  print(f"seed {seed}: {kills} kills ({in_write} during a write) over {runs} run(s)")
  assert in_write >= 3, f"too few kills landed in a write ({in_write}); seed {seed}"
