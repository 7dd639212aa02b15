"""Runs a tool's `main` in this process through `cli.run`, as its `__main__` does.

A subprocess would pay ~5 s of TensorFlow import per probe; in-process a probe
costs what the tool does before it fails. Each call loads the tool module
afresh and removes its absl flags afterwards, so tools whose flags share names
run one after another.
"""

import dataclasses
import hashlib
import importlib.util
import itertools
import os

from absl import flags
import pytest

from tsnet_tf.utils import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_COUNTER = itertools.count()


@dataclasses.dataclass
class Result:
  code: int
  out: str
  err: str

  @property
  def lines(self):
    """stderr lines, without TF's C++ start-up chatter."""
    return [l for l in self.err.splitlines()
            if l.strip() and not l.startswith(("WARNING: All log messages", "I0000", "W0000"))]


def run_tool(capsys, tool: str, *args: str) -> Result:
  """`python tools/<tool> *args`, in-process: (exit code, stdout, stderr)."""
  path = os.path.join(REPO, "tools", tool)
  before = set(flags.FLAGS)
  spec = importlib.util.spec_from_file_location(f"_tool_{next(_COUNTER)}", path)
  module = importlib.util.module_from_spec(spec)
  capsys.readouterr()
  try:
    spec.loader.exec_module(module)
    try:
      cli.run(module.main, argv=[path, *args])
      code = 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  finally:
    for name in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, name)
  captured = capsys.readouterr()
  return Result(code, captured.out, captured.err)


@pytest.fixture
def tool(capsys):
  return lambda name, *args: run_tool(capsys, name, *args)


def tree_digest(root) -> dict:
  """{relative path: sha1} of every file under `root` (or of `root` if a file)."""
  root = os.fspath(root)
  if os.path.isfile(root):
    return {".": hashlib.sha1(open(root, "rb").read()).hexdigest()}
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      p = os.path.join(d, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
  return out


@pytest.fixture
def digest():
  return tree_digest


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory):
  """An untrained 2-class light classifier carrying its clip spec: T=4, S=16."""
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import clip_spec  # pylint: disable=g-import-not-at-top
  from tsnet_tf.layers import clip_contract  # pylint: disable=g-import-not-at-top
  model = models.build_rgb_model(2, 4, 16, backbone="light", width=4)
  model = clip_contract.attach(model, clip_spec.ClipSpec(num_frames=4, crop_size=16),
                               ["left", "right"])
  path = tmp_path_factory.mktemp("model") / "model.keras"
  model.save(str(path))
  return str(path)


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
  """{kind: path}: a good 10-frame video and the bad ones users feed the tools."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("videos")
  rng = np.random.default_rng(0)
  out = {}
  for kind, n in (("good", 10), ("one_frame", 1), ("two_frames", 2)):
    out[kind] = str(root / f"{kind}.avi")
    video.write_video(out[kind], rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), fps=25)
  out["empty"] = str(root / "empty.avi")
  open(out["empty"], "wb").close()
  out["garbage"] = str(root / "garbage.avi")
  with open(out["garbage"], "wb") as f:
    f.write(rng.bytes(5000))
  return out


@pytest.fixture(autouse=True)
def _fresh_flags():
  """Flags defined during a test (the tool's, cli.run's --verbose) are removed after it."""
  before = set(flags.FLAGS)
  yield
  for name in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, name)
