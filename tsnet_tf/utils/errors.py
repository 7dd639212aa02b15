"""The two kinds of expected failure the package raises.

A library error class derives from one of these (and from the builtin it
behaves like, e.g. `ValueError`); the tools report any of them as one line and
an exit code (`tsnet_tf/utils/cli.py`), everything else as a bug.
"""


class ExpectedError(Exception):
  """A failure its message fully explains: no traceback needed."""


class InputError(ExpectedError):
  """The flags, config or arguments given are wrong (tools exit 2)."""


class ResourceError(ExpectedError):
  """A file, video or server is missing, unreadable or unreachable (tools exit 1)."""
