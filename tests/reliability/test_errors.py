"""Bad input to every tool: one line naming the file, flag or key, exit 1 or 2, no traceback.

Replays the probes of issue 14 through `cli.run` in-process (see conftest.py),
and checks that nothing already on disk changed.
"""

import json
import os
import socket
import threading

import pytest

from tsnet_tf.utils import cli

TINY = ("data.num_frames=4,data.crop_size=16,data.batch_size=2,train.epochs=1,"
        "train.steps_per_epoch=1,model.backbone=light,model.width=4")


def assert_one_line(result, code, *needles):
  """Exit `code`, no traceback, and exactly one error line holding every needle."""
  assert result.code == code, result.err
  assert "Traceback" not in result.err, result.err
  errors = [l for l in result.lines if ": error: " in l or l.endswith(": interrupted")]
  assert len(errors) == 1 and errors[0] == result.lines[-1], result.err
  for needle in needles:
    assert needle in errors[0], (needle, errors[0])
  return errors[0]


# ---------------------------------------------------------------------------
# The shared wrapper itself.


def _fake_main(exc):
  def main(argv):
    del argv
    raise exc
  return main


@pytest.mark.parametrize("exc, code, needle", [
    (cli.ToolError("--x 'f': broken"), 1, "--x 'f': broken"),
    (FileNotFoundError(2, "No such file or directory", "/no/such"), 1,
     "/no/such: No such file or directory"),
    (ConnectionRefusedError(111, "Connection refused"), 1, "Connection refused"),
    (TimeoutError("timed out"), 1, "timed out"),
])
def test_expected_failures_are_one_line(capsys, exc, code, needle):
  with pytest.raises(SystemExit) as info:
    cli.run(_fake_main(exc), argv=["tools/fake.py"])
  err = capsys.readouterr().err
  assert info.value.code == code
  assert err.strip().startswith("fake: error: ") and needle in err and len(err.splitlines()) == 1, err


def test_ctrl_c_is_one_line_and_exit_130(capsys):
  with pytest.raises(SystemExit) as info:
    cli.run(_fake_main(KeyboardInterrupt()), argv=["tools/fake.py"])
  assert info.value.code == cli.INTERRUPTED_EXIT
  assert capsys.readouterr().err.strip() == "fake: interrupted"


def test_verbose_adds_the_traceback(capsys):
  with pytest.raises(SystemExit) as info:
    cli.run(_fake_main(cli.ToolError("bad")), argv=["tools/fake.py", "--verbose"])
  err = capsys.readouterr().err
  assert info.value.code == 1
  assert "Traceback" in err and err.strip().endswith("fake: error: bad")


def test_a_bug_keeps_its_traceback(capsys):
  # Not an expected failure: the wrapper must not turn it into a tidy line.
  with pytest.raises(ZeroDivisionError):
    cli.run(_fake_main(ZeroDivisionError("bug")), argv=["tools/fake.py"])
  assert "error:" not in capsys.readouterr().err


# ---------------------------------------------------------------------------
# train.py and config validation: refused before anything is written.


@pytest.mark.parametrize("override, key", [
    ("model.backbone=resnet50", "'model.backbone'"),
    ("train.momentum=1.5", "'train.momentum'"),
    ("model.dropout=1.0", "'model.dropout'"),
    ("model.backbone=r3d18,model.depth=50", "'model.depth'"),
    ("data.num_frames=1", "'data.num_frames'"),
])
def test_train_rejects_config_values_before_writing(tool, tmp_path, tiny_data_dir, override, key):
  model_dir = tmp_path / "run"
  r = tool("train.py", "--stage=teacher", f"--model_dir={model_dir}",
           f"--data_dir={tiny_data_dir}", f"--params_override={TINY},{override}")
  assert_one_line(r, 2, key, "--params_override")
  assert not model_dir.exists()


def test_config_file_error_names_the_file(tool, tmp_path, tiny_data_dir):
  config = tmp_path / "bad.yaml"
  config.write_text("model:\n  backbone: resnet50\n")
  r = tool("train.py", "--stage=rgb", f"--config={config}", f"--model_dir={tmp_path / 'run'}",
           f"--data_dir={tiny_data_dir}")
  assert_one_line(r, 2, "bad.yaml", "'model.backbone'", "resnet50")
  assert not (tmp_path / "run").exists()


def test_train_model_dir_is_a_file(tool, tmp_path, tiny_data_dir, digest):
  target = tmp_path / "afile"
  target.write_text("mine")
  before = digest(tmp_path)
  r = tool("train.py", "--stage=rgb", f"--model_dir={target}", f"--data_dir={tiny_data_dir}",
           f"--params_override={TINY}")
  assert_one_line(r, 2, "--model_dir", "afile", "is a file")
  assert digest(tmp_path) == before


def test_train_on_labels_without_shards(tool, tmp_path, tiny_data_dir, digest):
  data = tmp_path / "data"
  data.mkdir()
  for name in ("labels.txt", "summary.json"):
    (data / name).write_bytes(open(os.path.join(tiny_data_dir, name), "rb").read())
  before = digest(data)
  r = tool("train.py", "--stage=rgb", f"--model_dir={tmp_path / 'run'}", f"--data_dir={data}",
           f"--params_override={TINY}")
  assert_one_line(r, 1, str(data), "no hmdb51-*.tfrecord shards")
  assert digest(data) == before


def test_bad_flag_value_is_one_line(tool, tmp_path):
  r = tool("train.py", "--stage=rgb", "--split=0", f"--model_dir={tmp_path}",
           f"--data_dir={tmp_path}")
  assert_one_line(r, 2, "--split")
  r = tool("train.py", "--stage=rgb", f"--model_dir={tmp_path}")
  assert_one_line(r, 2, "--data_dir")


# ---------------------------------------------------------------------------
# evaluate.py


def test_evaluate_output_dir_is_a_file(tool, tmp_path, tiny_data_dir, digest):
  target = tmp_path / "afile"
  target.write_text("mine")
  before = digest(tmp_path)
  r = tool("evaluate.py", f"--model_dir={tmp_path}", f"--data_dir={tiny_data_dir}",
           f"--output_dir={target}")
  assert_one_line(r, 2, "--output_dir", "is a file")
  assert digest(tmp_path) == before


def test_evaluate_missing_model_dir(tool, tmp_path, tiny_data_dir):
  r = tool("evaluate.py", f"--model_dir={tmp_path / 'nowhere'}", f"--data_dir={tiny_data_dir}")
  assert_one_line(r, 2, "nowhere")


# ---------------------------------------------------------------------------
# predict.py


def test_predict_garbage_keras_file(tool, tmp_path, videos):
  model = tmp_path / "model.keras"
  model.write_bytes(b"not a zip archive" * 10)
  r = tool("predict.py", f"--model={model}", f"--video={videos['good']}")
  line = assert_one_line(r, 2, "model.keras", "not a Keras model file")
  assert "File not found" not in line


@pytest.mark.parametrize("kind", ["garbage", "empty"])
def test_predict_unreadable_video(tool, tiny_keras, videos, kind):
  r = tool("predict.py", f"--model={tiny_keras}", f"--video={videos[kind]}")
  assert_one_line(r, 1, "--video", f"{kind}.avi")


def test_predict_missing_model(tool, tmp_path, videos):
  r = tool("predict.py", f"--model={tmp_path / 'none.keras'}", f"--video={videos['good']}")
  assert_one_line(r, 1, "none.keras", "does not exist")


@pytest.mark.parametrize("names", [["a", "b", "c"], ["a"]])
def test_predict_labels_count_must_match(tool, tmp_path, tiny_keras, videos, names):
  labels = tmp_path / "labels.txt"
  labels.write_text("\n".join(names) + "\n")
  r = tool("predict.py", f"--model={tiny_keras}", f"--video={videos['good']}",
           f"--labels={labels}")
  assert_one_line(r, 2, "--labels", f"{len(names)} class names", "2 classes")
  assert not r.out.strip()


def test_predict_works_and_verbose_shows_tracebacks(tool, tiny_keras, videos):
  r = tool("predict.py", f"--model={tiny_keras}", f"--video={videos['good']}", "--top_k=2")
  assert r.code == 0, r.err
  assert "1. " in r.out and "2. " in r.out
  r = tool("predict.py", f"--model={tiny_keras}", f"--video={videos['garbage']}", "--verbose")
  assert r.code == 1 and "Traceback" in r.err and "--video" in r.lines[-1]


# ---------------------------------------------------------------------------
# visualize_flow.py: the decode or triplet check fails before any flow.


@pytest.mark.parametrize("kind, needle", [("empty", "empty"), ("garbage", "not a readable"),
                                          ("one_frame", "needs at least 3"),
                                          ("two_frames", "needs at least 3")])
def test_visualize_flow_bad_videos(tool, tmp_path, videos, kind, needle):
  out = tmp_path / "f.png"
  r = tool("visualize_flow.py", f"--video={videos[kind]}", f"--output={out}")
  assert_one_line(r, 1, "--video", f"{kind}.avi", needle)
  assert not out.exists()


# ---------------------------------------------------------------------------
# convert_tflite.py, export.py


@pytest.mark.parametrize("shape, code", [("1,32,32", 2), ("a,b,c", 2), ("8,32", 2)])
def test_flow_shape(tool, tmp_path, shape, code):
  out = tmp_path / "f.tflite"
  r = tool("convert_tflite.py", "--flow_only", f"--flow_shape={shape}", f"--output={out}")
  assert_one_line(r, code, "--flow_shape")
  assert not out.exists()


def test_int8_without_calibration_clips(tool, tmp_path, tiny_keras, tiny_data_dir):
  out = tmp_path / "q.tflite"
  r = tool("convert_tflite.py", f"--saved_model={tiny_keras}", f"--output={out}",
           "--quantize=int8", f"--data_dir={tiny_data_dir}", "--num_calibration_clips=0")
  assert_one_line(r, 2, "--num_calibration_clips")
  assert not out.exists()


def test_int8_library_refuses_zero_clips(tmp_path, tiny_keras, tiny_data_dir):
  from tsnet_tf.export import tflite  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="--num_calibration_clips must be >= 1"):
    tflite.convert_saved_model(tiny_keras, str(tmp_path / "q.tflite"), "int8",
                               data_dir=tiny_data_dir, num_calibration_clips=0)
  assert not os.listdir(tmp_path)


def test_export_model_dir_is_a_file(tool, tmp_path, digest):
  target = tmp_path / "afile"
  target.write_text("mine")
  before = digest(tmp_path)
  r = tool("export.py", f"--model_dir={target}", f"--export_dir={tmp_path / 'sm' / '1'}")
  assert_one_line(r, 2, "afile")
  assert digest(tmp_path) == before


# ---------------------------------------------------------------------------
# serve_client.py: servers that refuse, hang or do not speak HTTP.


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture
def hung_server():
  """A socket that accepts connections and never answers."""
  s = socket.socket()
  s.bind(("127.0.0.1", 0))
  s.listen(8)
  yield f"127.0.0.1:{s.getsockname()[1]}"
  s.close()


@pytest.fixture
def garbage_server():
  """Answers every connection with bytes that are not HTTP (as a gRPC port would)."""
  s = socket.socket()
  s.bind(("127.0.0.1", 0))
  s.listen(8)
  s.settimeout(10)

  def serve():
    try:
      while True:
        conn, _ = s.accept()
        conn.recv(65536)
        conn.sendall(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00garbage\r\n\r\n")
        conn.close()
    except OSError:
      pass

  threading.Thread(target=serve, daemon=True).start()
  yield f"127.0.0.1:{s.getsockname()[1]}"
  s.close()


def test_serve_client_negative_frames(tool, videos):
  r = tool("serve_client.py", "--model_name=m", f"--video={videos['good']}", "--num_frames=-3")
  assert_one_line(r, 2, "--num_frames")


def test_serve_client_nothing_listening(tool, videos):
  r = tool("serve_client.py", "--rest", f"--server=127.0.0.1:{_free_port()}", "--model_name=m",
           f"--video={videos['good']}")
  assert_one_line(r, 1, "cannot reach the server", "refused")


def test_serve_client_hung_server(tool, videos, hung_server):
  r = tool("serve_client.py", "--rest", f"--server={hung_server}", "--model_name=m",
           f"--video={videos['good']}", "--timeout=0.5")
  assert_one_line(r, 1, "timed out")


def test_serve_client_not_http(tool, videos, garbage_server):
  r = tool("serve_client.py", "--rest", f"--server={garbage_server}", "--model_name=m",
           f"--video={videos['good']}", "--timeout=5")
  assert_one_line(r, 1, "server")


def test_serve_client_grpc_nothing_listening(tool, videos):
  r = tool("serve_client.py", f"--server=127.0.0.1:{_free_port()}", "--model_name=m",
           f"--video={videos['good']}", "--timeout=2")
  assert_one_line(r, 1)


def test_client_checks_frames_before_sending():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import serving  # pylint: disable=g-import-not-at-top
  serving.check_frames(np.zeros((1, 2, 4, 4, 3), np.uint8))
  for bad in (np.zeros((1, 2, 4, 4, 4), np.uint8), np.zeros((0, 2, 4, 4, 3), np.uint8),
              np.zeros((1, 2, 4, 4, 3), np.float32), np.zeros((2, 4, 4, 3), np.uint8)):
    with pytest.raises(ValueError, match=r"uint8 \[B, T, H, W, 3\]"):
      serving.check_frames(bad)


# ---------------------------------------------------------------------------
# make_synthetic.py, prepare_hmdb51.py, extract_flow.py, make_footage_set.py


_SYNTH = ("--num_classes=2", "--videos_per_class=2", "--height=16", "--width=16",
          "--min_seconds=0.2", "--max_seconds=0.3", "--fps=25")


def test_make_synthetic_overwrite_refuses_unrelated_dir(tool, tmp_path, digest):
  target = tmp_path / "photos"
  (target / "2019").mkdir(parents=True)
  (target / "2019" / "beach.jpg").write_bytes(b"\xff\xd8 precious")
  before = digest(tmp_path)
  r = tool("make_synthetic.py", f"--output_dir={target}", "--overwrite", *_SYNTH)
  assert_one_line(r, 1, "photos", "not a dataset written by make_synthetic")
  assert digest(tmp_path) == before


def test_make_synthetic_overwrite_replaces_only_its_own_dataset(tool, tmp_path, digest):
  target = tmp_path / "synth"
  assert tool("make_synthetic.py", f"--output_dir={target}", *_SYNTH).code == 0
  r = tool("make_synthetic.py", f"--output_dir={target}", "--overwrite", "--seed=1", *_SYNTH)
  assert r.code == 0, r.err
  # A user's file inside it: refused, everything kept.
  (target / "videos" / "notes.txt").write_text("mine")
  before = digest(tmp_path)
  r = tool("make_synthetic.py", f"--output_dir={target}", "--overwrite", *_SYNTH)
  assert_one_line(r, 1, "videos/notes.txt", "did not write")
  assert digest(tmp_path) == before
  # Without --overwrite, an existing directory is refused.
  r = tool("make_synthetic.py", f"--output_dir={target}", *_SYNTH)
  assert_one_line(r, 1, "--overwrite")


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
  """A 2-class generated set with one truncated video (decodes partly)."""
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("synth") / "set"
  synthetic.generate_dataset(str(root), num_classes=2, videos_per_class=2, height=32, width=32,
                             min_seconds=0.4, max_seconds=0.5, fps=(25,), broken=("truncated",))
  return root


def _split_copy(synth_set, tmp_path):
  split_dir = tmp_path / "splits"
  split_dir.mkdir()
  for name in os.listdir(synth_set / "splits"):
    (split_dir / name).write_bytes((synth_set / "splits" / name).read_bytes())
  return split_dir


def test_prepare_reports_partial_decodes(tool, tmp_path, synth_set):
  out = tmp_path / "data"
  r = tool("prepare_hmdb51.py", f"--video_dir={synth_set / 'videos'}",
           f"--split_dir={synth_set / 'splits'}", f"--output_dir={out}", "--splits=1",
           "--short_side=0", "--num_workers=1")
  assert r.code == 0, r.err
  summary = json.loads((out / "summary.json").read_text())
  truncated = [v["path"] for v in json.loads((synth_set / "manifest.json").read_text())["videos"]
               if v["broken"] == "truncated"]
  assert summary["num_partial"] == 1
  assert summary["partial"][0]["video"] == truncated[0].split("videos/", 1)[1]
  assert 1 <= summary["partial"][0]["decoded_frames"] < summary["partial"][0]["header_frames"]
  assert "decoded only partly" in r.out


def test_prepare_video_listed_as_train_and_test(tool, tmp_path, synth_set):
  split_dir = _split_copy(synth_set, tmp_path)
  path = split_dir / "move_left_test_split1.txt"
  first = path.read_text().split()[0]
  path.write_text(path.read_text() + f"{first} 2\n{first} 1\n")
  out = tmp_path / "data"
  r = tool("prepare_hmdb51.py", f"--video_dir={synth_set / 'videos'}",
           f"--split_dir={split_dir}", f"--output_dir={out}", "--splits=1")
  assert_one_line(r, 1, "move_left_test_split1.txt", first, "train", "test")
  assert not out.exists()


def test_prepare_empty_split_file(tool, tmp_path, synth_set):
  split_dir = _split_copy(synth_set, tmp_path)
  (split_dir / "move_right_test_split1.txt").write_text("")
  out = tmp_path / "data"
  r = tool("prepare_hmdb51.py", f"--video_dir={synth_set / 'videos'}",
           f"--split_dir={split_dir}", f"--output_dir={out}", "--splits=1")
  assert_one_line(r, 1, "move_right_test_split1.txt", "lists no videos")
  assert not out.exists()


def test_prepare_class_without_training_videos_warns(tmp_path, synth_set, caplog):
  from tsnet_tf.data import hmdb51  # pylint: disable=g-import-not-at-top
  split_dir = _split_copy(synth_set, tmp_path)
  path = split_dir / "move_right_test_split1.txt"
  path.write_text(path.read_text().replace(" 1", " 0"))
  hmdb51.read_splits(str(split_dir), ["move_left", "move_right"], splits=(1,))
  assert "'move_right' has no training videos in split 1" in caplog.text


def test_prepare_output_dir_is_a_file(tool, tmp_path, synth_set, digest):
  target = tmp_path / "afile"
  target.write_text("mine")
  before = digest(tmp_path)
  r = tool("prepare_hmdb51.py", f"--video_dir={synth_set / 'videos'}",
           f"--split_dir={synth_set / 'splits'}", f"--output_dir={target}")
  assert_one_line(r, 2, "--output_dir", "is a file")
  assert digest(tmp_path) == before


def test_extract_flow_output_dir_is_a_file(tool, tmp_path, videos):
  target = tmp_path / "afile"
  target.write_text("mine")
  r = tool("extract_flow.py", f"--video_dir={os.path.dirname(videos['good'])}",
           f"--output_dir={target}")
  assert_one_line(r, 2, "--output_dir", "is a file")
  assert target.read_text() == "mine"


def test_make_footage_set_without_videos(tool, tmp_path):
  r = tool("make_footage_set.py", f"--video_dir={tmp_path}", f"--output_dir={tmp_path / 'o'}")
  assert_one_line(r, 2, "--video_dir", "holds no video")
  assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------
# results_table.py


def test_results_table_needs_a_run(tool, tmp_path):
  r = tool("results_table.py", f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'out'}")
  assert_one_line(r, 2, "--rgb_dir, --flow_dir, --student_dir")


def test_results_table_swapped_dirs(tool, tmp_path, digest):
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  teacher = tmp_path / "teacher"
  teacher.mkdir()
  config_lib.save_config(config_lib.load_config(None, "teacher"), str(teacher / "config.yaml"))
  before = digest(tmp_path)
  r = tool("results_table.py", f"--rgb_dir={teacher}", f"--data_dir={tmp_path}",
           f"--output_dir={tmp_path / 'out'}")
  assert_one_line(r, 2, "--rgb_dir", "teacher")
  assert digest(tmp_path) == before
