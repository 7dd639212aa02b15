"""tools/predict.py and tools/export.py: bad --labels, --top_k and model files, one line each.

The tools run in this process through `cli.run` (tests/reliability/conftest.py's
`run_tool`): a subprocess would pay TensorFlow's import per probe.
"""

import numpy as np
import pytest

CLASSES = ("catch", "hug", "run")


@pytest.fixture
def tool(run_tool_in_process):
  return run_tool_in_process


def _error_line(result, code):
  """The one error line of a failed run (exit `code`, no traceback)."""
  assert result.code == code, result.err
  assert "Traceback" not in result.err, result.err
  errors = [l for l in result.lines if ": error: " in l]
  assert len(errors) == 1 and errors[0] == result.lines[-1], result.err
  return errors[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  """A training output directory: a 3-class light classifier carrying its clip spec."""
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import clip_spec  # pylint: disable=g-import-not-at-top
  from tsnet_tf.layers import clip_contract  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("run")
  model = models.build_rgb_model(len(CLASSES), 4, 16, backbone="light", width=4)
  model = clip_contract.attach(model, clip_spec.ClipSpec(num_frames=4, crop_size=16), CLASSES)
  model.save(str(root / "model.keras"))
  (root / "labels.txt").write_text("\n".join(CLASSES) + "\n")
  return root


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  path = tmp_path_factory.mktemp("v") / "a.avi"
  video.write_video(path, np.random.default_rng(0).integers(0, 255, (6, 24, 32, 3), np.uint8),
                    fps=25)
  return str(path)


@pytest.mark.parametrize("kind, code, needles", [
    # Another model file given as --labels: the tester saw "--model: 'utf-8' codec ...".
    ("binary", 2, ["--labels", "other.tflite", "not a text class names file"]),
    # The tester saw "no class names ... looked for [...]; pass --labels".
    ("directory", 2, ["--labels", "names_dir", "is a directory"]),
    ("missing", 1, ["--labels", "none.txt", "does not exist"]),
    ("empty", 2, ["--labels", "empty.txt", "lists no classes"]),
])
def test_bad_labels_name_the_flag_and_the_file(tool, model_dir, clip_file, tmp_path,
                                               kind, code, needles):
  labels = {"binary": tmp_path / "other.tflite", "directory": tmp_path / "names_dir",
            "missing": tmp_path / "none.txt", "empty": tmp_path / "empty.txt"}[kind]
  if kind == "binary":
    labels.write_bytes(b"\x1c\x00\x00\x00TFL3\xa4\xff\x00" * 8)
  elif kind == "directory":
    labels.mkdir()
    (labels / "labels.txt").write_text("a\n")
  elif kind == "empty":
    labels.write_text("\n")
  r = tool("predict.py", f"--model={model_dir / 'model.keras'}", f"--video={clip_file}",
           f"--labels={labels}")
  line = _error_line(r, code)
  for needle in needles:
    assert needle in line, (needle, line)
  assert "--model" not in line and "pass --labels" not in line, line


def test_labels_flag_overrides_the_names(tool, model_dir, clip_file, tmp_path):
  labels = tmp_path / "names.txt"
  labels.write_text("x\ny\nz\n")
  r = tool("predict.py", f"--model={model_dir / 'model.keras'}", f"--video={clip_file}",
           f"--labels={labels}")
  assert r.code == 0, r.err
  assert {l.split()[1] for l in r.out.splitlines() if l[:2] in ("1.", "2.", "3.")} == set("xyz")


@pytest.mark.parametrize("top_k", ["-1", "0"])
def test_top_k_below_one_is_refused(tool, model_dir, clip_file, top_k):
  # Before: -1 printed all classes but the last (order[:-1]), 0 printed none; both exit 0.
  r = tool("predict.py", f"--model={model_dir / 'model.keras'}", f"--video={clip_file}",
           f"--top_k={top_k}")
  assert "--top_k" in _error_line(r, 2)
  assert not r.out.strip()


@pytest.mark.parametrize("top_k, printed", [("1", 1), ("2", 2), ("10", 3)])
def test_top_k_prints_that_many_classes(tool, model_dir, clip_file, top_k, printed):
  r = tool("predict.py", f"--model={model_dir / 'model.keras'}", f"--video={clip_file}",
           f"--top_k={top_k}")
  assert r.code == 0, r.err
  ranks = [l.split()[0] for l in r.out.splitlines() if l[:1].isdigit() and l[1:2] == "."]
  assert ranks == [f"{i}." for i in range(1, printed + 1)], r.out


def test_text_model_keras_is_named_by_export_and_predict(tool, clip_file, tmp_path):
  # The file exists: Keras' "File not found" (export's message before) is wrong.
  bad_dir = tmp_path / "run"
  bad_dir.mkdir()
  (bad_dir / "model.keras").write_text("not a model\n")
  (bad_dir / "labels.txt").write_text("a\nb\n")
  export = _error_line(tool("export.py", f"--model_dir={bad_dir}",
                            f"--export_dir={tmp_path / 'out' / '1'}"), 2)
  predict = _error_line(tool("predict.py", f"--model={bad_dir / 'model.keras'}",
                             f"--video={clip_file}"), 2)
  for line in (export, predict):
    assert "model.keras" in line and "is not a Keras model file" in line, line
    assert "File not found" not in line, line
  assert not (tmp_path / "out").exists()
