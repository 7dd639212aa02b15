"""The HMDB51 commands of README.md and docs/hmdb51.md work as written.

The commands are read from the Markdown itself (the code blocks of README.md's
"Train on HMDB51" section and of docs/hmdb51.md), so the docs cannot drift from
this test:

- fast: every block is valid shell (`bash -n`); every command runs a script of
  this repository whose absl flags accept the command's flags (parsed by the
  tool's own flag definitions, in this process, without TensorFlow); every
  --config exists and every --params_override resolves to a valid config;
  every run or data directory a command reads was written by an earlier command
  of the same document; the shell commands that cannot run here (unpacking the
  RAR archives, TF-Serving) are an explicit skip-list, and the unpacking leaves
  the videos and split files where the conversion command reads them.
- slow: README's commands then docs/hmdb51.md's run in order, as written, in one
  fresh directory that holds the repository's tools, benchmarks, configs and package
  (what a fresh clone has) and a tiny generated HMDB51-layout set placed where
  the commands read HMDB51 (and a clip where they read `clip.avi`); only
  `.venv/bin/python` becomes this interpreter and train.py / table1.py get
  docs/hmdb51.md's documented shortening override (its `TINY=`) appended. Each command
  must exit 0 and write its outputs.
"""

import dataclasses
import importlib.util
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from absl import flags
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (document, the heading of the section whose code blocks are read; None = all).
DOCS = (("README.md", "## Train on HMDB51"), ("docs/hmdb51.md", None))
PYTHON = ".venv/bin/python"

# Shell commands the tests cannot run, each with why. Keys are the start of the
# command as the docs write it (after joining `\` continuations); every entry
# must match a command of the docs, and every command that is not
# `.venv/bin/python <script>` must match an entry.
SKIPPED = {
    "mkdir -p hmdb51/videos && mv hmdb51_org.rar": "needs the downloaded archives (not here)",
    "unrar x hmdb51_org.rar": "needs hmdb51_org.rar (not here) and unrar",
    "for f in *.rar;": "needs the 51 class archives",
    "unrar x test_train_splits.rar": "needs test_train_splits.rar",
    "cd ..": "goes with the unpacking",
    "docker run": "needs Docker and the tensorflow/serving image",
    ".venv/bin/python tools/serve_client.py": "needs the TF-Serving server above",
}

# The shortening override docs/hmdb51.md documents (its `TINY=` line) for trying
# the commands in minutes: appended to every train.py and table1.py command in the
# slow test.
SHORTENED = ("tools/train.py", "benchmarks/table1.py")

# Flags whose value is a directory or file a command writes, and those it reads
# from an earlier command (a user's own data: --video_dir, --split_dir, --video).
WRITES = {"tools/prepare_hmdb51.py": ("output_dir",), "tools/train.py": ("model_dir",),
          "tools/export.py": ("export_dir",), "benchmarks/table1.py": ("work_dir",),
          "tools/evaluate.py": ("output_dir",), "tools/results_table.py": ("output_dir",)}
READS = ("data_dir", "teacher_dir", "rgb_dir", "flow_dir", "student_dir", "model")
READS_RUN = {"tools/evaluate.py": ("model_dir",), "tools/export.py": ("model_dir",)}
USER_DATA = ("video_dir", "split_dir", "video")


@dataclasses.dataclass
class Command:
  doc: str
  line: int
  text: str            # as written (continuations joined, variables not expanded)
  words: List[str]     # shell words after expanding the block's `VAR="..."` assignments

  @property
  def where(self) -> str:
    return f"{self.doc}:{self.line}: {self.text[:80]}"

  @property
  def script(self) -> Optional[str]:
    return self.words[1] if self.words[:1] == [PYTHON] and len(self.words) > 1 else None

  @property
  def flags(self) -> Dict[str, str]:
    out = {}
    for w in self.words[2:]:
      if w.startswith("--"):
        name, _, value = w[2:].partition("=")
        out[name] = value
    return out

  def skip_reason(self) -> Optional[str]:
    for prefix, why in SKIPPED.items():
      if self.text.startswith(prefix):
        return why
    return None


def _section(lines, heading):
  if heading is None:
    return list(enumerate(lines, 1))
  start = next(i for i, l in enumerate(lines) if l.startswith(heading))
  level = heading.split(" ")[0] + " "
  end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(level)), len(lines))
  return [(i + 1, lines[i]) for i in range(start, end)]


def code_blocks(doc: str, heading: Optional[str] = None):
  """[(first line number, [lines])]: the indented and fenced (non-Python) code blocks."""
  with open(os.path.join(REPO, doc), encoding="utf-8") as f:
    numbered = _section(f.read().splitlines(), heading)
  blocks, cur, fence, prev_blank = [], None, None, True
  for n, line in numbered:
    if fence is not None:
      if line.strip().startswith("```"):
        if fence not in ("python", "py", "yaml"):
          blocks.append(cur)
        fence, cur = None, None
      else:
        cur[1].append(line)
      continue
    if line.strip().startswith("```"):
      fence, cur = line.strip()[3:].strip(), (n + 1, [])
      continue
    if line.startswith("    ") and (cur is not None or prev_blank):
      if cur is None:
        cur = (n, [])
      cur[1].append(line[4:])
    elif cur is not None and not line.strip():
      cur[1].append("")
    else:
      if cur is not None:
        blocks.append(cur)
      cur = None
    prev_blank = not line.strip()
  if cur is not None and fence is None:
    blocks.append(cur)
  return [(n, [l for l in ls]) for n, ls in blocks if any(l.strip() for l in ls)]


def commands(doc: str, heading: Optional[str] = None, variables: Optional[dict] = None
             ) -> List[Command]:
  """The document's commands in order, `\\` continuations joined, comments dropped;
  `variables` receives the blocks' `NAME=value` assignments."""
  out = []
  for first, lines in code_blocks(doc, heading):
    vars_ = {}
    i = 0
    while i < len(lines):
      start, text = first + i, lines[i]
      while text.rstrip().endswith("\\") and i + 1 < len(lines):  # as the shell joins them
        i += 1
        text = text.rstrip()[:-1] + lines[i]
      i += 1
      text = text.strip()
      if not text or text.startswith("#"):
        continue
      m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(\S.*)", text)
      if m:  # `C="--config=... --data_dir=..."`: expanded (unquoted, so split) below
        vars_[m.group(1)] = " ".join(shlex.split(m.group(2)))
        if variables is not None:
          variables[m.group(1)] = vars_[m.group(1)]
        continue
      expanded = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                        lambda v: vars_.get(v.group(1), v.group(0)), text)
      words = shlex.split(expanded, comments=True)
      out.append(Command(doc, start, " ".join(shlex.split(text, comments=True)), words))
  return out


def tiny_override() -> str:
  """docs/hmdb51.md's `TINY=...`: the documented shortening override."""
  variables = {}
  commands("docs/hmdb51.md", variables=variables)
  assert "TINY" in variables, "docs/hmdb51.md no longer documents TINY=..."
  return variables["TINY"]


def all_commands():
  return [c for doc, heading in DOCS for c in commands(doc, heading)]


_COUNTER = itertools.count()


def parse_tool_flags(script: str, args: List[str]) -> flags.FlagValues:
  """The script's absl flags parsed from `args` (its own definitions, required and
  enum checks included); raises flags.Error. Loads the script afresh and removes
  its flags from absl's registry afterwards, so scripts sharing flag names coexist."""
  before = set(flags.FLAGS)
  spec = importlib.util.spec_from_file_location(f"_doc_tool_{next(_COUNTER)}",
                                                os.path.join(REPO, script))
  module = importlib.util.module_from_spec(spec)
  own = flags.FlagValues()
  try:
    spec.loader.exec_module(module)
    for name in set(flags.FLAGS) - before:
      if flags.FLAGS[name].name == name:  # not a short name (absl's -v), registered with its flag
        own[name] = flags.FLAGS[name]
  finally:
    for name in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, name)
  own([script, *args])
  return own


# --- fast ---------------------------------------------------------------------------------


def test_the_docs_have_the_protocols_commands():
  scripts = [c.script for c in all_commands() if c.script]
  for script in ("tools/prepare_hmdb51.py", "benchmarks/table1.py", "tools/train.py",
                 "tools/evaluate.py", "tools/export.py", "tools/predict.py",
                 "tools/results_table.py"):
    assert script in scripts, f"no `{PYTHON} {script}` command in {[d for d, _ in DOCS]}"


@pytest.mark.parametrize("doc,heading", DOCS)
def test_every_block_is_valid_shell(doc, heading):
  for first, lines in code_blocks(doc, heading):
    proc = subprocess.run(["bash", "-n"], input="\n".join(lines) + "\n", text=True,
                          capture_output=True, check=False)
    assert proc.returncode == 0, f"{doc}:{first}: {proc.stderr}"


def test_every_command_runs_a_script_of_the_repo_or_is_skipped_with_a_reason():
  used = set()
  for c in all_commands():
    why = c.skip_reason()
    if why:
      used.update(p for p in SKIPPED if c.text.startswith(p))
      continue
    assert c.script, f"{c.where}: neither `{PYTHON} <script>` nor in SKIPPED"
    assert os.path.isfile(os.path.join(REPO, c.script)), f"{c.where}: no {c.script}"
  assert used == set(SKIPPED), f"SKIPPED entries no doc command matches: {set(SKIPPED) - used}"


def test_every_flag_is_the_tools_and_every_config_and_override_is_valid():
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  for c in all_commands():
    if c.skip_reason():
      continue
    try:
      parsed = parse_tool_flags(c.script, c.words[2:])
    except flags.Error as e:
      pytest.fail(f"{c.where}: {e}")
    given = c.flags
    if "config" in given:
      assert os.path.isfile(os.path.join(REPO, given["config"])), f"{c.where}: no config"
    if "params_override" in given or "config" in given:
      path = os.path.join(REPO, given.get("config") or "configs/hmdb51.yaml")
      stages = ([parsed["stage"].value] if "stage" in parsed
                else ["rgb", "teacher", "student", "twostream"])
      for stage in stages:
        try:
          config_lib.load_config(path, stage, given.get("params_override", ""))
        except config_lib.ConfigError as e:
          pytest.fail(f"{c.where}: {e}")


@pytest.mark.parametrize("doc,heading", DOCS)
def test_every_run_a_command_reads_was_written_before_in_the_same_doc(doc, heading):
  written = set()
  for c in commands(doc, heading):
    if c.skip_reason():
      continue
    given = c.flags
    reads = [f for f in READS + READS_RUN.get(c.script, ()) if f in given]
    for name in reads:
      path = given[name]
      assert any(path == w or path.startswith(w + "/") for w in written), (
          f"{c.where}: --{name}={path} is not written by an earlier command of {doc}")
    written.update(given[f] for f in WRITES.get(c.script, ()) if f in given)


def test_no_command_overwrites_another_commands_output():
  """README then the guide in one directory: an output written twice must be the same
  resumable command (prepare_hmdb51, table1.py re-run), never a second run or export
  that the tool would refuse (train.py: finished --model_dir; export.py: existing version)."""
  writers = {}
  for c in all_commands():
    if c.skip_reason():
      continue
    for name in WRITES.get(c.script, ()):
      path = c.flags.get(name)
      if path is None:
        continue
      if path in writers:
        first = writers[path]
        resumable = c.script in ("tools/prepare_hmdb51.py", "benchmarks/table1.py")
        assert resumable and first.script == c.script, (
            f"{c.where}: --{name}={path} was written by {first.where}")
      writers[path] = c


def test_the_unpacking_puts_videos_and_splits_where_the_conversion_reads_them():
  cmds = commands("docs/hmdb51.md")
  unpack = [c for c in cmds if c.skip_reason() and c.words[0] in ("mkdir", "unrar", "for", "cd")]
  text = " ; ".join(c.text for c in unpack)
  # mkdir -p <root>/videos && cd <root>; unrar x hmdb51_org.rar; class archives into videos/
  m = re.search(r"mkdir -p (\S+)/videos && mv hmdb51_org.rar test_train_splits.rar (\S+)/ && cd (\S+)", text)
  assert m and m.group(1) == m.group(2), text
  root = m.group(1)
  assert "unrar x hmdb51_org.rar" in text and "unrar x test_train_splits.rar" in text, text
  assert re.search(r"for f in \*\.rar; do .*unrar x -inul \$f videos/; done", text), text
  assert unpack[-1].text == "cd ..", text
  prepare = next(c for c in cmds if c.script == "tools/prepare_hmdb51.py")
  assert prepare.flags["video_dir"] == f"{root}/videos"
  # The splits archive unpacks to testTrainMulti_7030_splits/ (the doc's own words).
  assert prepare.flags["split_dir"] == f"{root}/testTrainMulti_7030_splits"
  with open(os.path.join(REPO, "docs", "hmdb51.md"), encoding="utf-8") as f:
    assert "unrar x test_train_splits.rar              # testTrainMulti_7030_splits/" in f.read()
  readme = next(c for c in commands("README.md", DOCS[0][1])
                if c.script == "tools/prepare_hmdb51.py")
  assert (readme.flags["video_dir"], readme.flags["split_dir"]) == (
      prepare.flags["video_dir"], prepare.flags["split_dir"]), "README and docs/hmdb51.md differ"


def test_the_documented_shortening_override_is_valid_for_every_stage_of_both_configs():
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  tiny = tiny_override()
  assert "train.epochs=1" in tiny and "data.crop_size=32" in tiny, tiny
  for name in ("hmdb51.yaml", "hmdb51_paper.yaml"):
    for stage in ("rgb", "teacher", "student", "twostream"):
      cfg = config_lib.load_config(os.path.join(REPO, "configs", name), stage,
                                   f"model.flow.source=stored,{tiny}")
      assert cfg.data.crop_size == 32


# --- slow: the commands, run ----------------------------------------------------------------


def _workspace(root):
  """A directory with what a fresh clone has: the tools, benchmarks, configs, package."""
  os.makedirs(root)
  for name in ("tools", "benchmarks", "configs", "tsnet_tf"):
    os.symlink(os.path.join(REPO, name), os.path.join(root, name))
  return root


def _place_data(videos, cmds, ws):
  """The generated set where the doc's commands read HMDB51 and `clip.avi`."""
  for c in cmds:
    given = c.flags
    if "video_dir" in given and not os.path.isdir(os.path.join(ws, given["video_dir"])):
      shutil.copytree(os.path.join(videos, "videos"), os.path.join(ws, given["video_dir"]))
    if "split_dir" in given and not os.path.isdir(os.path.join(ws, given["split_dir"])):
      shutil.copytree(os.path.join(videos, "splits"), os.path.join(ws, given["split_dir"]))
    if c.script == "tools/predict.py":
      cls = sorted(os.listdir(os.path.join(videos, "videos")))[0]
      clip = sorted(os.listdir(os.path.join(videos, "videos", cls)))[0]
      shutil.copy(os.path.join(videos, "videos", cls, clip), os.path.join(ws, given["video"]))


def _argv(c: Command, tiny: str) -> List[str]:
  words = [sys.executable] + c.words[1:]
  if c.script in SHORTENED:
    override = [i for i, w in enumerate(words) if w.startswith("--params_override=")]
    if override:
      words[override[0]] += "," + tiny
    else:
      words.append(f"--params_override={tiny}")
  return words


def _check_outputs(c: Command, ws: str, stdout: str):
  given = c.flags
  out = lambda name: os.path.join(ws, given[name])  # pylint: disable=unnecessary-lambda-assignment
  if c.script == "tools/prepare_hmdb51.py":
    assert os.path.isfile(os.path.join(out("output_dir"), "labels.txt"))
  elif c.script == "tools/train.py":
    assert os.path.isfile(os.path.join(out("model_dir"), "model.keras"))
  elif c.script == "benchmarks/table1.py":
    assert os.path.isfile(os.path.join(out("work_dir"), "table1.md"))
    assert "mean ± std over" in stdout and "Targets" in stdout, stdout[-2000:]
  elif c.script == "tools/evaluate.py":
    assert os.path.isfile(os.path.join(out("output_dir") if "output_dir" in given
                                       else out("model_dir"), "eval.json"))
  elif c.script == "tools/results_table.py":
    assert os.path.isfile(os.path.join(out("output_dir"), "table1.md"))
  elif c.script == "tools/export.py":
    assert os.path.isfile(os.path.join(out("export_dir"), "saved_model.pb"))
  elif c.script == "tools/predict.py":
    assert stdout.strip(), "predict printed nothing"
  elif c.script == "benchmarks/memory_table.py":
    assert "| stage |" in stdout


@pytest.fixture(scope="module")
def tiny_hmdb51(tmp_path_factory):
  """2 classes x 5 videos of 64x48, 3 splits: HMDB51's layout."""
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("hmdb51_docs") / "videos")
  synthetic.generate_dataset(root, num_classes=2, videos_per_class=5, seed=0, height=48,
                             width=64, min_seconds=0.5, max_seconds=0.6)
  return root


@pytest.mark.slow
def test_the_docs_commands_run_as_written(tiny_hmdb51, tmp_path):
  """README's commands, then docs/hmdb51.md's, in one directory: a user who starts from
  the README and continues with the guide (re-running its conversion and table1.py
  resumes: they find their work done)."""
  cmds = [c for c in all_commands() if not c.skip_reason()]
  ws = _workspace(str(tmp_path / "clone"))
  _place_data(tiny_hmdb51, cmds, ws)
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  tiny = tiny_override()
  start = time.time()
  for c in cmds:
    t = time.time()
    proc = subprocess.run(_argv(c, tiny), cwd=ws, env=env, capture_output=True, text=True,
                          timeout=3000, check=False)
    assert proc.returncode == 0, f"{c.where}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    _check_outputs(c, ws, proc.stdout)
    print(f"\n@@ {time.time() - t:.0f} s  {c.where}", flush=True)
  print(f"\n@@ {len(cmds)} commands in {time.time() - start:.0f} s", flush=True)
