"""Top-5 classes of a video file from any exported artifact.

  predictor = load_predictor("saved_models/student/1")   # or x.keras, x.tflite
  top5 = predict_video(predictor, "clap.avi")            # [(name, prob), ...]

Every artifact sees the same clip: `read_video` decodes the file, the centre
evaluation clip of T frames is taken with `sampling.sample_eval_clips` (short
videos are looped), and `eval_preprocess` resizes and crops (in the SavedModel
graph for SavedModels; here for `.keras` and `.tflite`).
"""

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tsnet_tf.data import preprocessing
from tsnet_tf.data import sampling
from tsnet_tf.data import video
from tsnet_tf.export import saved_model as sm
from tsnet_tf.export import tflite as tfl


class Predictor:
  """Clip -> class probabilities for one artifact.

  Attributes:
    num_frames: T the model was trained with.
    crop_size: S.
    frame_stride: step between the T frames in training (`data.frame_stride`).
    labels: class names in label order.
    kind: `saved_model`, `keras` or `tflite`.
  """

  num_frames: int
  crop_size: int
  frame_stride: int = 1
  labels: List[str]
  kind: str

  def predict_frames(self, frames: np.ndarray) -> np.ndarray:
    """uint8 `[T, H, W, 3]` clip (T = `num_frames`) -> float32 probabilities `[K]`."""
    raise NotImplementedError


class _SavedModelPredictor(Predictor):

  def __init__(self, export_dir: str):
    self.kind = "saved_model"
    loaded = sm.load_saved_model(export_dir)
    meta = sm.saved_model_metadata(loaded)
    self.num_frames, self.crop_size, self.labels = (
        meta["num_frames"], meta["crop_size"], meta["labels"])
    self.frame_stride = meta["frame_stride"]
    self._serve = loaded.signatures[sm.SERVING_SIGNATURE]
    self._loaded = loaded  # keeps the functions' variables alive

  def predict_frames(self, frames):
    out = self._serve(**{sm.INPUT_NAME: tf.constant(frames[None], tf.uint8)})
    return out["probabilities"].numpy()[0]


class _KerasPredictor(Predictor):

  def __init__(self, path: str, labels: Sequence[str]):
    self.kind = "keras"
    self._model = sm.load_keras_model(path)
    self.num_frames = int(self._model.input_shape[1])
    self.crop_size = int(self._model.input_shape[2])
    self.labels = list(labels)

  def predict_frames(self, frames):
    clip = preprocessing.eval_preprocess(frames[None], self.crop_size)
    logits = self._model(clip, training=False)
    return tf.nn.softmax(tf.cast(logits, tf.float32)).numpy()[0]


class _TFLitePredictor(Predictor):

  def __init__(self, path: str, labels: Sequence[str], num_threads: Optional[int] = None):
    self.kind = "tflite"
    self._runner = tfl.TFLiteRunner(path, num_threads=num_threads)
    shape = self._runner.input_shape
    self.num_frames, self.crop_size = shape[1], shape[2]
    self.labels = list(labels)

  def predict_frames(self, frames):
    clip = preprocessing.eval_preprocess(frames[None], self.crop_size).numpy()
    return self._runner(clip)["probabilities"][0]


def _labels_for_file(path: str, labels_path: Optional[str]) -> List[str]:
  candidates = [labels_path] if labels_path else [
      tfl.labels_path_for(path),
      os.path.join(os.path.dirname(path), sm.LABELS_FILE),
      os.path.join(os.path.dirname(path), "assets", sm.LABELS_FILE)]
  for candidate in candidates:
    if candidate and os.path.isfile(candidate):
      return sm.read_labels(candidate)
  raise FileNotFoundError(f"no class names for {path!r}: looked for {candidates}; "
                          "pass --labels")


def load_predictor(path: str, labels_path: Optional[str] = None,
                   num_threads: Optional[int] = None,
                   frame_stride: Optional[int] = None) -> Predictor:
  """Loads a SavedModel version dir (or its parent), a `.keras` or a `.tflite` file.

  Args:
    path: the artifact.
    labels_path: class names file; by default the SavedModel's asset, or for a
      file `x.labels.txt`, `labels.txt` or `assets/labels.txt` next to it.
    num_threads: TFLite interpreter threads.
    frame_stride: step between clip frames; None = the SavedModel's metadata,
      or for a file the training run's `config.yaml` next to it, else 1.

  Returns:
    A `Predictor`.
  """
  predictor = _load_predictor(path, labels_path, num_threads)
  if frame_stride is not None:
    if int(frame_stride) < 1:
      raise ValueError(f"--frame_stride must be >= 1, got {frame_stride}")
    predictor.frame_stride = int(frame_stride)
  elif predictor.kind != "saved_model":
    from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
    predictor.frame_stride = config_lib.run_frame_stride(os.path.dirname(os.path.abspath(path)))
  return predictor


def _load_predictor(path, labels_path, num_threads) -> Predictor:
  if os.path.isdir(path):
    version = sm.find_export_version(path)
    if version is None:
      raise FileNotFoundError(f"--model {path!r} is a directory without a SavedModel "
                              "(saved_model.pb) or numeric version subdirectories")
    predictor = _SavedModelPredictor(version)
    if labels_path:
      predictor.labels = sm.read_labels(labels_path)
    return predictor
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--model {path!r} does not exist")
  if path.endswith(".keras"):
    return _KerasPredictor(path, _labels_for_file(path, labels_path))
  if path.endswith(".tflite"):
    return _TFLitePredictor(path, _labels_for_file(path, labels_path), num_threads)
  raise ValueError(f"--model {path!r}: expected a SavedModel directory, a .keras "
                   "or a .tflite file")


def video_clip(path: str, num_frames: int, frame_stride: int = 1) -> np.ndarray:
  """The evaluation clip of a video file: uint8 `[T, H, W, 3]` (short videos looped).

  The centre clip of T frames `frame_stride` apart, as evaluation samples it.

  Raises:
    video.VideoDecodeError: the file cannot be decoded (names the file).
  """
  frames = video.read_video(path)
  return sampling.sample_eval_clips(frames, num_frames, num_clips=1, stride=frame_stride)[0]


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int = 5
          ) -> List[Tuple[str, float]]:
  """`[(name, probability)]` of the k most probable classes, best first."""
  order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
  return [(labels[i], float(probabilities[i])) for i in order]


def predict_video(predictor: Predictor, video_path: str, k: int = 5
                  ) -> List[Tuple[str, float]]:
  """Top-k `(class name, probability)` for a video file."""
  clip = video_clip(video_path, predictor.num_frames, predictor.frame_stride)
  return top_k(predictor.predict_frames(clip), predictor.labels, k)
