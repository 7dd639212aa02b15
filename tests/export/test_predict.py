"""predict: the same top-5 from a SavedModel dir, a .keras and a .tflite file; bad files."""

import os
import shutil

import numpy as np
import pytest

from tsnet_tf.data import video
from tsnet_tf.export import predict
from tsnet_tf.export import saved_model as sm


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
  """A 3-frame 50x70 video (shorter than T: looped)."""
  rng = np.random.default_rng(5)
  frames = np.clip(np.array([60, 60, 200]) + rng.normal(0, 30, (3, 50, 70, 3)), 0, 255)
  path = str(tmp_path_factory.mktemp("videos") / "short.avi")
  video.write_video(path, frames.astype(np.uint8), fps=25)
  return path


def test_same_answer_from_every_artifact(deploy, export_dir, converted, short_video):
  sm_pred = predict.load_predictor(os.path.dirname(export_dir))  # parent: latest version
  assert sm_pred.kind == "saved_model" and sm_pred.num_frames == deploy.T
  assert sm_pred.labels == list(deploy.CLASSES)
  top_sm = predict.predict_video(sm_pred, short_video)
  assert len(top_sm) == len(deploy.CLASSES) and abs(sum(p for _, p in top_sm) - 1) < 1e-4
  keras_pred = predict.load_predictor(os.path.join(export_dir, "model.keras"))
  assert keras_pred.spec == sm_pred.spec and keras_pred.labels == list(deploy.CLASSES)
  top_keras = predict.predict_video(keras_pred, short_video)
  assert [n for n, _ in top_keras] == [n for n, _ in top_sm]
  np.testing.assert_allclose([p for _, p in top_keras], [p for _, p in top_sm], atol=1e-5)
  out = converted["none"]["output"]
  top_lite = predict.predict_video(predict.load_predictor(out), short_video)
  assert top_lite[0][0] == top_sm[0][0]
  np.testing.assert_allclose([p for _, p in top_lite], [p for _, p in top_sm], atol=1e-4)


def test_tflite_file_alone_is_enough(deploy, converted, short_video, tmp_path):
  """Moved away from its labels file, a .tflite predicts the same (its metadata)."""
  out = converted["none"]["output"]
  alone = str(tmp_path / "elsewhere.tflite")
  shutil.copy(out, alone)
  moved = predict.load_predictor(alone)
  here = predict.load_predictor(out)
  assert moved.spec == here.spec and moved.labels == list(deploy.CLASSES)
  assert predict.predict_video(moved, short_video) == predict.predict_video(here, short_video)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
  """A 30-frame 50x70 video: the clip and the served window are a part of it."""
  frames = np.random.default_rng(6).integers(0, 256, (30, 50, 70, 3), dtype=np.uint8)
  path = str(tmp_path_factory.mktemp("videos") / "long.avi")
  video.write_video(path, frames, fps=25)
  return path


def test_predict_video_streams_the_clip_read_all_gives(export_dir, converted, long_video,
                                                        short_video):
  """predict_video decodes only the clip (ClipSpec.read_clip/read_window); every
  artifact answers exactly as on the whole decoded video."""
  predictors = [predict.load_predictor(export_dir),  # serving graph samples the window
                predict.load_predictor(export_dir, frame_stride=2),  # clip sent
                predict.load_predictor(os.path.join(export_dir, "model.keras")),
                predict.load_predictor(converted["none"]["output"])]
  for path in (long_video, short_video):
    frames = video.read_video(path)
    for p in predictors:
      np.testing.assert_array_equal(p.predict_video_file(path), p.predict_video_frames(frames))
      assert predict.predict_video(p, path) == predict.top_k(p.predict_video_frames(frames),
                                                             p.labels)


def test_video_clip_loops_short_videos(deploy, short_video, export_dir):
  spec = predict.load_predictor(export_dir).spec
  clip = spec.clip_of_video(video.read_video(short_video))[0]
  assert clip.shape == (deploy.T, 50, 70, 3) and clip.dtype == np.uint8
  np.testing.assert_array_equal(clip[3], clip[0])


def test_clear_errors(tmp_path, export_dir):
  bad = tmp_path / "broken.avi"
  bad.write_bytes(b"\x00" * 100)
  with pytest.raises(video.VideoDecodeError, match="broken.avi"):
    predict.predict_video(predict.load_predictor(export_dir), str(bad))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    predict.load_predictor(str(tmp_path / "missing.tflite"))
  with pytest.raises(FileNotFoundError, match="without a SavedModel"):
    predict.load_predictor(str(tmp_path))
  other = tmp_path / "model.onnx"
  other.write_bytes(b"x")
  with pytest.raises(ValueError, match="expected a SavedModel"):
    predict.load_predictor(str(other))


def test_frame_stride_comes_with_every_artifact_of_a_run(deploy, trained, dataset, tmp_path):
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.layers import clip_contract  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import run_dir  # pylint: disable=g-import-not-at-top
  # A training run whose classifier carries stride 2; a config.yaml saying 5 (a
  # file beside it) must not matter.
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  clip_contract.attach(trained, deploy.spec(dataset[1], frame_stride=2), deploy.CLASSES).save(
      str(model_dir / "model.keras"))
  run_dir.write_labels(str(model_dir), deploy.CLASSES)
  config_lib.save_config(config_lib.load_config(None, "rgb", "data.frame_stride=5"),
                         str(model_dir / run_dir.CONFIG_FILE))
  export = str(tmp_path / "export" / "1")
  sm.export_from_model_dir(str(model_dir), export)
  assert predict.load_predictor(export).frame_stride == 2
  assert predict.load_predictor(str(model_dir / "model.keras")).frame_stride == 2
  assert predict.load_predictor(os.path.join(export, "model.keras")).frame_stride == 2
  assert predict.load_predictor(export, frame_stride=1).frame_stride == 1
  with pytest.raises(ValueError, match="frame_stride"):
    predict.load_predictor(export, frame_stride=0)


def test_top_k_needs_at_least_one_class():
  probs = np.array([0.2, 0.5, 0.3])
  assert predict.top_k(probs, ["a", "b", "c"], k=2) == [("b", 0.5), ("c", 0.3)]
  assert [name for name, _ in predict.top_k(probs, ["a", "b", "c"], k=9)] == ["b", "c", "a"]
  for k in (0, -1):
    with pytest.raises(ValueError, match="k must be >= 1"):
      predict.top_k(probs, ["a", "b", "c"], k=k)


def test_bad_labels_flag_is_named_for_every_artifact(export_dir, converted, tmp_path):
  # A model file given as --labels used to surface as a bare UnicodeDecodeError
  # (a ValueError tools/predict.py blamed on --model); a directory as "no class names".
  tflite = converted["none"]["output"]
  binary = tmp_path / "other.tflite"
  shutil.copy(tflite, binary)
  for artifact in (export_dir, tflite):
    with pytest.raises(ValueError, match=r"--labels '.*other\.tflite' is not a text class names"):
      predict.load_predictor(artifact, str(binary))
    with pytest.raises(ValueError, match=r"--labels '.*' is a directory"):
      predict.load_predictor(artifact, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"--labels '.*none\.txt' does not exist"):
      predict.load_predictor(artifact, str(tmp_path / "none.txt"))


def test_a_model_of_generated_classes_says_so_in_one_line():
  note = predict.generated_classes_note(["green_move_left", "green_move_right", "move_up"])
  assert note is not None and "\n" not in note
  assert "3 generated classes" in note and "docs/hmdb51.md" in note
  assert predict.generated_classes_note(["brush_hair", "move_left"]) is None
  assert predict.generated_classes_note([]) is None
