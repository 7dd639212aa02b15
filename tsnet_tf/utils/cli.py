"""Shared entry point for the absl tools in tools/."""

import sys

from absl import app

_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")


def run(main):
  """`absl.app.run(main)`, except that asking for help exits 0.

  absl exits 1 after printing --help/--helpfull; scripts and CI that check the
  help text should not see a failure.
  """
  try:
    app.run(main)
  except SystemExit as e:
    asked_for_help = any(arg.lstrip("-").split("=")[0] in _HELP_FLAGS for arg in sys.argv[1:])
    if e.code == 1 and asked_for_help:
      sys.exit(0)
    raise
