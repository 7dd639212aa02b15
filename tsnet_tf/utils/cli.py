"""The one error path of the absl tools in tools/: every tool's `__main__` is `cli.run(main)`.

An expected failure (bad flag value, missing or unreadable file, bad config,
unreachable server, Ctrl-C) ends with ONE line on stderr,
`<tool>: error: <what is wrong, naming the file, flag or key>`, and exit code
2 (the user's input: flags, config) or 1 (the environment: files, videos,
servers); Ctrl-C prints `<tool>: interrupted` and exits 130. `--verbose`
(defined here for every tool) adds the traceback. Anything else is a bug and
keeps Python's traceback.

Library code signals an expected failure by raising one of its own error
classes (subclasses of `errors.InputError`, exit 2, or `errors.ResourceError`,
exit 1), an `OSError`, or `cli.ToolError`; tools turn a flag they reject into
`app.UsageError`. TensorFlow's file and device failures (`tf.errors` named in
`errors.TF_ENVIRONMENT_ERRORS`: not found, permission denied, disk or memory
exhausted, data loss, ...) are expected too (exit 1); other `tf.errors` (e.g.
InvalidArgumentError) are bugs. TF is never imported here just to check.
"""

import http.client
import os
import sys
import traceback
import urllib.error
from typing import Callable, List, Optional, Tuple

from absl import app
from absl import flags

from tsnet_tf.utils import errors

_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")

USAGE_EXIT = 2  # The flags or config given are wrong.
FAILURE_EXIT = 1  # A file, video or server is missing, unreadable or unreachable.
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports Ctrl-C.


class ToolError(Exception):
  """An expected failure whose message is the whole report.

  Attributes:
    exit_code: the tool's exit status (`FAILURE_EXIT` unless given).
  """

  def __init__(self, message: str, exit_code: int = FAILURE_EXIT):
    super().__init__(message)
    self.exit_code = exit_code


def check_dir_flag(flag: str, path: Optional[str]) -> None:
  """Refuses a `--flag` directory `path` that exists as a file.

  Raises:
    app.UsageError: `--<flag> '<path>' is a file, not a directory`.
  """
  if path and os.path.exists(path) and not os.path.isdir(path):
    raise app.UsageError(f"--{flag} {path!r} is a file, not a directory")


def _os_error_message(e: OSError) -> str:
  # "[Errno 2] No such file or directory: 'x'" -> "x: No such file or directory".
  if e.filename is not None and e.strerror:
    return f"{e.filename}: {e.strerror}"
  return e.strerror or str(e) or type(e).__name__


def describe(e: BaseException) -> Optional[Tuple[str, int]]:
  """(one-line message, exit code) if `e` is an expected failure, else None."""
  if isinstance(e, ToolError):
    return str(e), e.exit_code
  if isinstance(e, app.UsageError):
    return str(e), USAGE_EXIT
  if isinstance(e, flags.Error):
    return str(e), USAGE_EXIT
  if isinstance(e, errors.InputError):
    return str(e), USAGE_EXIT
  if isinstance(e, errors.ResourceError):
    return str(e), FAILURE_EXIT
  # Connection problems first: URLError and the socket errors are OSErrors too.
  if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
    reason = e.reason
    return (f"cannot reach the server: "
            f"{_os_error_message(reason) if isinstance(reason, OSError) else reason}"), FAILURE_EXIT
  if isinstance(e, (TimeoutError, ConnectionError)):
    return f"server connection failed: {_os_error_message(e)}", FAILURE_EXIT
  if isinstance(e, http.client.HTTPException):
    return (f"the server's answer is not HTTP ({type(e).__name__}: {e}); is it the gRPC port?",
            FAILURE_EXIT)
  grpc = sys.modules.get("grpc")
  if grpc is not None and isinstance(e, grpc.RpcError):
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    return f"gRPC call failed ({code}): {details}", FAILURE_EXIT
  if isinstance(e, OSError):
    return _os_error_message(e), FAILURE_EXIT
  # TF reports file and device failures as tf.errors.OpError, not OSError; only
  # those of the environment are expected (errors.TF_ENVIRONMENT_ERRORS).
  tf_environment = errors.tf_environment_errors()
  if tf_environment and isinstance(e, tf_environment):
    return errors.tf_error_text(e), FAILURE_EXIT
  return None


def _one_line(text: str) -> str:
  return " ".join(str(text).split())


def _tool_name(argv: List[str]) -> str:
  return os.path.splitext(os.path.basename(argv[0] if argv else ""))[0] or "tool"


def _verbose() -> bool:
  try:
    return bool(flags.FLAGS["verbose"].value)
  except (KeyError, AttributeError):
    return False


def _guarded(main: Callable[[List[str]], Optional[int]], name: str):
  """`main` with expected failures turned into one line and an exit code."""
  def wrapped(argv):
    try:
      return main(argv)
    except KeyboardInterrupt:
      if _verbose():
        traceback.print_exc()
      print(f"{name}: interrupted", file=sys.stderr)
      sys.exit(INTERRUPTED_EXIT)
    except Exception as e:  # pylint: disable=broad-except
      known = describe(e)
      if known is None:
        raise  # A bug: Python's traceback.
      message, code = known
      if _verbose():
        traceback.print_exc()
      print(f"{name}: error: {_one_line(message)}", file=sys.stderr)
      sys.exit(code)

  return wrapped


def _parse_flags(argv: List[str]) -> List[str]:
  """absl's parser, but a bad flag is one line (absl prints two) and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"{_tool_name(argv)}: error: {_one_line(e)}", file=sys.stderr)
    sys.exit(USAGE_EXIT)


def run(main: Callable[[List[str]], Optional[int]], argv: Optional[List[str]] = None) -> None:
  """Runs a tool's `main` under absl with the shared error path; exits.

  Args:
    main: the tool's `main(argv)`; its return value is the exit code.
    argv: command line including the program name (default: `sys.argv`).

  Asking for --help/--helpfull exits 0 (absl exits 1, which scripts and CI
  that check the help text would take for a failure).
  """
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_boolean("verbose", False, "On an error, print the traceback too.",
                         module_name=getattr(main, "__module__", None) or "__main__")
  args = sys.argv if argv is None else argv
  try:
    app.run(_guarded(main, _tool_name(args)), argv=args, flags_parser=_parse_flags)
  except SystemExit as e:
    asked_for_help = any(arg.lstrip("-").split("=")[0] in _HELP_FLAGS for arg in args[1:])
    if e.code == 1 and asked_for_help:
      sys.exit(0)
    raise
