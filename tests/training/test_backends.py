"""Training under the JAX and PyTorch backends (subprocesses with KERAS_BACKEND set).

The test process itself runs the TensorFlow backend; each check runs
backend_checks.py in a fresh interpreter, as a JAX or PyTorch user would.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = os.path.join(_HERE, "backend_checks.py")


def _load_checks():
  spec = importlib.util.spec_from_file_location("backend_checks", CHECKS)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


checks = _load_checks()


def _backend_param(name):
  missing = importlib.util.find_spec(name) is None
  # Slow: each backend's run is a process of its own that trains every stage (JAX ~80 s,
  # torch ~20 s on the 2-core CI machine); `make test` keeps JAX without TensorFlow through
  # tests/benchmarks/test_bench_train.py and tests/no_tensorflow, `make test-all` runs these.
  return pytest.param(name, marks=[pytest.mark.skipif(missing, reason=f"{name} not installed"),
                                   pytest.mark.slow])


BACKENDS = [_backend_param("jax"), _backend_param("torch")]


# A sitecustomize.py that makes `import tensorflow` fail, as where it is absent.
NO_TENSORFLOW = os.path.join(os.path.dirname(_HERE), "no_tensorflow")


def run_checks(backend, args, timeout=600, block_tf=False, **env):
  environ = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="",
                 TF_CPP_MIN_LOG_LEVEL="3", **env)
  if block_tf:
    environ["PYTHONPATH"] = os.pathsep.join(
        [NO_TENSORFLOW] + [p for p in [environ.get("PYTHONPATH")] if p])
  proc = subprocess.run([sys.executable, CHECKS] + list(args), env=environ,
                        capture_output=True, text=True, timeout=timeout, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  lines = [l for l in proc.stdout.splitlines() if l.startswith("@@result ")]
  assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
  result = json.loads(lines[-1][len("@@result "):])
  assert result["backend"] == backend
  return result


@pytest.fixture(scope="module")
def shared_weights(tmp_path_factory):
  """Weights and a batch written by TensorFlow, and TensorFlow's own first-step logs."""
  work = tmp_path_factory.mktemp("shared_weights")
  keras.utils.set_random_seed(3)
  student, teacher = checks.build_pair()
  student.save_weights(str(work / "student.weights.h5"))
  teacher.save_weights(str(work / "teacher.weights.h5"))
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  model = models.DistillationModel(student, teacher, distill_weight=checks.LAMBDA)
  kernel, bias = model.projection.get_weights()
  rng = np.random.RandomState(0)
  x = rng.uniform(0, 255, (4, checks.T, checks.S, checks.S, 3)).astype("float32")
  y = (np.arange(4) % checks.K).astype("int32")
  np.savez(str(work / "batch.npz"), x=x, y=y, proj_kernel=kernel, proj_bias=bias)
  return str(work), checks.check_loss(str(work))


def test_tensorflow_loss_is_ce_plus_lambda_mse_by_hand(shared_weights):
  _, tf_result = shared_weights
  _assert_by_hand(tf_result)


def _assert_by_hand(result):
  logs = result["logs"]
  np.testing.assert_allclose(logs["ce_loss"], result["ce"], rtol=1e-5)
  np.testing.assert_allclose(logs["distill_loss"], result["mse"], rtol=1e-5)
  np.testing.assert_allclose(
      logs["loss"], result["ce"] + checks.LAMBDA * result["mse"] + result["reg"], rtol=1e-5)
  assert result["reg"] > 1e-4 * logs["loss"]  # the L2 term is really in the sum


_RUNS = {}


@pytest.fixture
def backend_run(shared_weights, data_dir, tmp_path_factory):
  """One `train` subprocess per backend (cached): JAX gets 2 CPU devices."""

  def get(backend):
    if backend not in _RUNS:
      env = {}
      if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
      work = tmp_path_factory.mktemp(f"runs_{backend}")
      _RUNS[backend] = run_checks(backend, ["train", shared_weights[0], str(work), data_dir],
                                  **env)
    return _RUNS[backend]

  return get


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_by_hand_and_equal_to_tensorflow(backend, backend_run, shared_weights):
  _, tf_result = shared_weights
  result = backend_run(backend)["loss"]
  _assert_by_hand(result)
  # Same weights, same batch: the same loss as TensorFlow's to float32
  # accumulation-order noise (1e-5 relative allowed).
  for key in ("loss", "ce_loss", "distill_loss"):
    np.testing.assert_allclose(result["logs"][key], tf_result["logs"][key], rtol=1e-5,
                               err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_stage_trains(backend, backend_run):
  result = backend_run(backend)["stages"]
  for stage in ("teacher", "rgb", "student"):
    history = result[stage]["history"]
    assert history["epoch"] == ([0, 1] if stage == "student" else [0])
    assert all(math.isfinite(v) for v in history["loss"]), (stage, history)
    assert result[stage]["loaded_outputs"] == 2  # the tiny data's 2 classes
    assert result[stage]["num_replicas"] == 1
  student = result["student"]["history"]
  assert all(v > 0 for v in student["distill_loss"])
  assert "val_ce_loss" in student and "val_distill_loss" not in student


@pytest.mark.parametrize("backend", BACKENDS)
def test_warmup_epoch_is_mse_only(backend, backend_run):
  student = backend_run(backend)["stages"]["student"]["history"]
  # Epoch 0 is the MSE-only warm-up (lambda = 10 in configs/synthetic.yaml):
  # loss - lambda * MSE is the small L2 term then, and CE + L2 after.
  rest = [l - 10.0 * d for l, d in zip(student["loss"], student["distill_loss"])]
  assert 0 <= rest[0] < 0.5 * student["ce_loss"][0], student
  assert rest[1] > 0.9 * student["ce_loss"][1], student


@pytest.mark.slow
def test_jax_data_parallel_equals_one_device(backend_run):
  pytest.importorskip("jax")
  result = backend_run("jax")["data_parallel"]
  assert result["devices"] == 2 and result["mirrored_replicas"] == 2
  # The global batch split over 2 devices is one computation (BatchNorm sees
  # the whole batch): the same loss and update as on one device.
  np.testing.assert_allclose(result["parallel_loss"], result["single_loss"], rtol=1e-5)
  assert result["max_weight_diff"] < 1e-5


# Slow (~40 s, a JAX start-up and compile of its own); its parts run by default:
# numpy_input under JAX with TensorFlow blocked (tests/data/test_numpy_input.py::
# test_imports_without_tensorflow), VideoClips from video files (the same file), every
# stage trained without TensorFlow (tests/benchmarks/test_bench_train.py, torch) and
# training under JAX (test_every_stage_trains[jax] above).
@pytest.mark.slow
def test_jax_without_tensorflow_trains_from_videos(data_dir):
  pytest.importorskip("jax")
  videos = os.path.join(os.path.dirname(data_dir), "videos")
  result = run_checks("jax", ["tf_free", os.path.join(videos, "videos"),
                              os.path.join(videos, "splits")],
                      block_tf=True)
  assert not result["tensorflow_imported"]
  assert result["batch_shape"] == [2, checks.T, checks.S, checks.S, 3]
  assert result["batch_dtype"] == "float32"
  assert math.isfinite(result["rgb_loss"])
