"""cli.describe's typed expected errors and the shared directory-flag check.

(The tools' bad-input lines and exit codes are replayed in tests/reliability.)
"""

import importlib
import sys

from absl import app
import pytest

from tsnet_tf.utils import cli
from tsnet_tf.utils import errors


@pytest.mark.parametrize("module, name, builtin, code", [
    ("tsnet_tf.config", "ConfigError", ValueError, 2),
    ("tsnet_tf.training.run_dir", "RunDirError", ValueError, 2),
    ("tsnet_tf.training.errors", "TrainingError", ValueError, 2),
    ("tsnet_tf.training.evaluation", "EvaluationError", ValueError, 2),
    ("tsnet_tf.training.backend", "BackendError", ValueError, 2),
    ("tsnet_tf.data.clip_spec", "ClipSpecError", ValueError, 2),
    ("tsnet_tf.data.hmdb51", "LayoutError", ValueError, 1),
])
def test_package_errors_are_one_line_with_their_exit_code(module, name, builtin, code):
  cls = getattr(importlib.import_module(module), name)
  assert issubclass(cls, builtin)  # callers catching the builtin still do
  assert cli.describe(cls("'x.yaml': bad key 'a.b'")) == ("'x.yaml': bad key 'a.b'", code)


def test_video_decode_error_is_a_failure():
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  error = video.VideoDecodeError("clap.avi", "no video stream")
  message, code = cli.describe(error)
  assert "clap.avi" in message and "no video stream" in message and code == cli.FAILURE_EXIT


def test_serving_error_is_a_resource_error():
  from tsnet_tf.export import serving  # pylint: disable=g-import-not-at-top
  error = serving.ServingError("NOT_FOUND", "no model 'm'")
  assert isinstance(error, RuntimeError) and isinstance(error, errors.ResourceError)
  assert cli.describe(error) == ("NOT_FOUND: no model 'm'", cli.FAILURE_EXIT)


def test_only_expected_errors_are_described():
  assert cli.describe(errors.InputError("bad flag")) == ("bad flag", cli.USAGE_EXIT)
  assert cli.describe(errors.ResourceError("gone")) == ("gone", cli.FAILURE_EXIT)
  assert cli.describe(ValueError("a bug")) is None
  assert cli.describe(RuntimeError("a bug")) is None


def test_check_dir_flag_refuses_a_file_only(tmp_path):
  a_file = tmp_path / "afile"
  a_file.write_text("x")
  with pytest.raises(app.UsageError) as info:
    cli.check_dir_flag("output_dir", str(a_file))
  assert str(info.value) == f"--output_dir {str(a_file)!r} is a file, not a directory"
  for fine in (str(tmp_path), str(tmp_path / "new"), "", None):
    cli.check_dir_flag("output_dir", fine)


@pytest.mark.parametrize("name", ["ResourceExhaustedError", "DataLossError", "NotFoundError",
                                  "PermissionDeniedError", "FailedPreconditionError"])
def test_tf_environment_errors_are_one_line_failures(name):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  error = getattr(tf.errors, name)(
      None, None, "{{function_node __wrapped__IteratorGetNext_device_/job:localhost}} "
      "/data/x.tfrecord; No space left on device [Op:IteratorGetNext] name: ")
  assert cli.describe(error) == ("/data/x.tfrecord; No space left on device", cli.FAILURE_EXIT)


def test_tf_errors_of_a_bug_keep_their_traceback():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for cls in (tf.errors.InvalidArgumentError, tf.errors.InternalError,
              tf.errors.UnimplementedError):
    assert cli.describe(cls(None, None, "shape mismatch")) is None


def test_tf_errors_are_not_looked_for_without_tensorflow(monkeypatch):
  # A tool that never imported TF has no TF error to describe; describe must not import it.
  monkeypatch.setitem(sys.modules, "tensorflow", None)
  assert errors.tf_environment_errors() == ()
  assert cli.describe(RuntimeError("a bug")) is None
