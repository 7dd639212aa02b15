"""The two kinds of expected failure the package raises.

A library error class derives from one of these (and from the builtin it
behaves like, e.g. `ValueError`); the tools report any of them as one line and
an exit code (`tsnet_tf/utils/cli.py`), everything else as a bug.
"""

import re
import sys


class ExpectedError(Exception):
  """A failure its message fully explains: no traceback needed."""


class InputError(ExpectedError):
  """The flags, config or arguments given are wrong (tools exit 2)."""


class ResourceError(ExpectedError):
  """A file, video or server is missing, unreadable or unreachable (tools exit 1)."""


# tf.errors.OpError subclasses that report the environment (a file missing,
# unreadable, corrupt or not writable, a full disk or device memory, a service
# down), not a bug: tools report them as one line, exit 1. The others
# (InvalidArgumentError, InternalError, UnimplementedError, ...) usually mean a
# wrong shape, dtype or graph, i.e. a bug whose traceback is needed.
TF_ENVIRONMENT_ERRORS = ("NotFoundError", "PermissionDeniedError", "ResourceExhaustedError",
                         "DataLossError", "FailedPreconditionError", "AlreadyExistsError",
                         "UnavailableError")


def tf_environment_errors() -> tuple:
  """The `tf.errors` classes named in `TF_ENVIRONMENT_ERRORS`; () if TF is not loaded.

  Never imports TensorFlow (tools that do not use it must not pay for it, nor
  fail without it): a process that has not loaded TF cannot raise its errors.
  """
  tf = sys.modules.get("tensorflow")
  tf_errors = getattr(tf, "errors", None)
  if tf_errors is None:
    return ()
  return tuple(getattr(tf_errors, name) for name in TF_ENVIRONMENT_ERRORS
               if hasattr(tf_errors, name))


def tf_error_text(e: BaseException) -> str:
  """A TF error's message without the op decoration TF adds around it.

  '{{function_node __wrapped__IteratorGetNext_...}} x.tfrecord; No such file
  [Op:IteratorGetNext] name: ' -> 'x.tfrecord; No such file'.
  """
  text = str(getattr(e, "message", None) or e)
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", text.strip())
  return text.strip() or type(e).__name__
