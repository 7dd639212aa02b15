"""Shared fixtures: a tiny student trained on generated videos, and its export.

The helpers beside this file (deploy_data.py, fake_model_server.py,
rtsp_server.py) are not importable by name under `--import-mode=importlib`;
they are loaded from their paths here and handed to the tests as the `deploy`,
`fake_server` and `rtsp` fixtures.
"""

import importlib.util
import os

import pytest

from tsnet_tf.export import saved_model as sm

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_helper(name):
  spec = importlib.util.spec_from_file_location(f"tests_export_{name}",
                                                os.path.join(_HERE, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


deploy_data = _load_helper("deploy_data")


@pytest.fixture(scope="session")
def deploy():
  """tests/export/deploy_data.py: the dataset's constants (CLASSES, T, S) and helpers."""
  return deploy_data


@pytest.fixture(scope="session")
def fake_server():
  """tests/export/fake_model_server.py: the TF-Serving test double (needs grpc)."""
  return _load_helper("fake_model_server")


@pytest.fixture(scope="session")
def rtsp():
  """tests/export/rtsp_server.py: a minimal RTSP server on 127.0.0.1 (`rtsp.RtspServer`)."""
  return _load_helper("rtsp_server")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
  """(video_dir, data_dir) of the generated dataset."""
  return deploy_data.write_dataset(str(tmp_path_factory.mktemp("deploy_data")))


@pytest.fixture(scope="session")
def trained(dataset):
  """A light student trained for a few dozen steps."""
  return deploy_data.train_student(dataset[1])


@pytest.fixture(scope="session")
def eval_clips(dataset):
  """float32 [N, T, S, S, 3] evaluation clips (test videos, 3 clips each)."""
  return deploy_data.load_clips(dataset[1], "test", num_clips=3)[0]


@pytest.fixture(scope="session")
def export_dir(trained, dataset, tmp_path_factory):
  """The trained student exported as saved_models/student/1."""
  path = str(tmp_path_factory.mktemp("saved_models") / "student" / "1")
  return sm.export_saved_model(trained, list(deploy_data.CLASSES), path,
                               spec=deploy_data.spec(dataset[1]))


@pytest.fixture(scope="session")
def converted(export_dir, dataset, tmp_path_factory):
  """{quantize: convert_saved_model info} for none, float16 and int8 (calibrated on the TFRecords)."""
  from tsnet_tf.export import tflite as tfl  # pylint: disable=g-import-not-at-top
  out = tmp_path_factory.mktemp("tflite")
  return {q: tfl.convert_saved_model(export_dir, str(out / f"student_{q}.tflite"), q,
                                     data_dir=dataset[1], num_calibration_clips=24)
          for q in ("none", "float16", "int8")}
