"""predict: the same top-5 from a SavedModel dir, a .keras and a .tflite file; bad files."""

import os

import numpy as np
import pytest

from tsnet_tf.data import video
from tsnet_tf.export import predict

from deploy_data import CLASSES, T  # pylint: disable=g-bad-import-order


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
  """A 3-frame 50x70 video (shorter than T: looped)."""
  rng = np.random.default_rng(5)
  frames = np.clip(np.array([60, 60, 200]) + rng.normal(0, 30, (3, 50, 70, 3)), 0, 255)
  path = str(tmp_path_factory.mktemp("videos") / "short.avi")
  video.write_video(path, frames.astype(np.uint8), fps=25)
  return path


def test_same_answer_from_every_artifact(export_dir, converted, short_video):
  sm_pred = predict.load_predictor(os.path.dirname(export_dir))  # parent: latest version
  assert sm_pred.kind == "saved_model" and sm_pred.num_frames == T
  assert sm_pred.labels == list(CLASSES)
  top_sm = predict.predict_video(sm_pred, short_video)
  assert len(top_sm) == len(CLASSES) and abs(sum(p for _, p in top_sm) - 1) < 1e-4
  keras_pred = predict.load_predictor(os.path.join(export_dir, "model.keras"))
  top_keras = predict.predict_video(keras_pred, short_video)
  assert [n for n, _ in top_keras] == [n for n, _ in top_sm]
  np.testing.assert_allclose([p for _, p in top_keras], [p for _, p in top_sm], atol=1e-5)
  out = converted["none"]["output"]
  top_lite = predict.predict_video(predict.load_predictor(out), short_video)
  assert top_lite[0][0] == top_sm[0][0]
  np.testing.assert_allclose([p for _, p in top_lite], [p for _, p in top_sm], atol=1e-4)


def test_video_clip_loops_short_videos(short_video):
  clip = predict.video_clip(short_video, T)
  assert clip.shape == (T, 50, 70, 3) and clip.dtype == np.uint8
  np.testing.assert_array_equal(clip[3], clip[0])


def test_clear_errors(tmp_path, export_dir):
  bad = tmp_path / "broken.avi"
  bad.write_bytes(b"\x00" * 100)
  with pytest.raises(video.VideoDecodeError, match="broken.avi"):
    predict.video_clip(str(bad), T)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    predict.load_predictor(str(tmp_path / "missing.tflite"))
  with pytest.raises(FileNotFoundError, match="without a SavedModel"):
    predict.load_predictor(str(tmp_path))
  other = tmp_path / "model.onnx"
  other.write_bytes(b"x")
  with pytest.raises(ValueError, match="expected a SavedModel"):
    predict.load_predictor(str(other))


def test_frame_stride_from_export_config_or_flag(trained, tmp_path):
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import saved_model as sm  # pylint: disable=g-import-not-at-top
  frames = (5 * np.arange(40, dtype=np.uint8))[:, None, None, None] * np.ones((1, 8, 8, 3),
                                                                              np.uint8)
  path = str(tmp_path / "ramp.avi")
  video.write_video(path, frames, fps=25)
  clip = predict.video_clip(path, 4, frame_stride=3)
  # The centre clip of 4 frames 3 apart: span 10 of 40, start 15.
  # (grey level 5 * frame index; MPEG-4 keeps it within a few levels)
  np.testing.assert_allclose(clip[:, 4, 4, 0].astype(int), [75, 90, 105, 120], atol=3)

  # A training run's config.yaml decides the stride of everything exported from it.
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  trained.save(str(model_dir / "model.keras"))
  (model_dir / "labels.txt").write_text("\n".join(CLASSES) + "\n")
  config_lib.save_config(config_lib.load_config(None, "rgb", "data.frame_stride=2"),
                         str(model_dir / config_lib.RUN_CONFIG_FILE))
  export = str(tmp_path / "export" / "1")
  sm.export_from_model_dir(str(model_dir), export)
  assert predict.load_predictor(export).frame_stride == 2
  assert predict.load_predictor(str(model_dir / "model.keras")).frame_stride == 2
  assert predict.load_predictor(export, frame_stride=1).frame_stride == 1
  assert predict.load_predictor(os.path.join(export, "model.keras")).frame_stride == 1
  with pytest.raises(ValueError, match="frame_stride"):
    predict.load_predictor(export, frame_stride=0)
