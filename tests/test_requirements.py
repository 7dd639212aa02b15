"""The pins: requirements-runtime.lock (`make demo`) is requirements.lock's runtime part."""

import configparser
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The runtime tree takes TensorFlow's CPU-only wheel: same version, same Python package.
_RUNTIME_NAMES = {"tensorflow": "tensorflow-cpu"}


def _name(requirement: str) -> str:
  return re.split(r"[=<>!~ ;\[]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _pins(path: str) -> dict:
  pins = {}
  with open(os.path.join(REPO, path), encoding="utf-8") as f:
    for line in f:
      line = line.split("#", 1)[0].strip()
      if line:
        name, version = line.split("==")
        pins[_name(name)] = version.strip()
  return pins


def _install_requires() -> dict:
  parser = configparser.ConfigParser()
  parser.read(os.path.join(REPO, "setup.cfg"))
  lines = [l.split("#", 1)[0].strip() for l in parser["options"]["install_requires"].splitlines()]
  return {_name(l): l.split("==")[1] for l in lines if l}


def test_runtime_lock_pins_what_the_development_lock_pins():
  dev, runtime = _pins("requirements.lock"), _pins("requirements-runtime.lock")
  to_dev = {v: k for k, v in _RUNTIME_NAMES.items()}
  for name, version in runtime.items():
    assert dev.get(to_dev.get(name, name)) == version, (name, version)
  assert "tensorflow" not in runtime and "pytest" not in runtime and "torch" not in runtime


def test_runtime_lock_holds_every_install_requires_pin():
  runtime, dev = _pins("requirements-runtime.lock"), _pins("requirements.lock")
  for name, version in _install_requires().items():
    assert runtime.get(_RUNTIME_NAMES.get(name, name)) == version, (name, version)
    assert dev.get(name) == version, (name, version)
