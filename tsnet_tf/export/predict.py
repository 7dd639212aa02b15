"""Top-5 classes of a video file from any exported artifact.

  predictor = load_predictor("saved_models/student/1")   # or x.keras, x.tflite
  top5 = predict_video(predictor, "clap.avi")            # [(name, prob), ...]

Every artifact sees the clip evaluation sees, as the artifact's own clip spec
(`tsnet_tf.data.clip_spec`) says: the centre clip is taken by
`ClipSpec.video_indices` (the converter's frame stride, then T frames
`frame_stride` apart; short videos looped); its frames are put in the stored
format of the TFRecords the model was trained on (`ClipSpec.stored_frames_of`:
the converter's resize and JPEG quality) and preprocessed by `ClipSpec.preprocess`
(centre square, resize to S). For a SavedModel the sampling and preprocessing
run in its serving graph on the video's `ClipSpec.window` (the same frames).
`predict_video` decodes a file with `ClipSpec.read_clip` / `read_window`: only
the frames the clip needs are kept, put in the stored format as they are
decoded, so memory does not grow with the video's length or resolution.

The clip spec and the class names come from the artifact itself (SavedModel
`metadata` signature, the `.keras` model's `ClipContract`, the `.tflite`
metadata buffer); `labels_path` and `frame_stride` override them.
"""

import logging
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.data import synthetic_render
from tsnet_tf.export import saved_model as sm
from tsnet_tf.export import serving
from tsnet_tf.export import tflite as tfl
from tsnet_tf.layers import clip_contract
from tsnet_tf.utils import labels as labels_lib

log = logging.getLogger(__name__)


class Predictor:
  """Video frames -> class probabilities for one artifact.

  Attributes:
    spec: the clip the model expects (`clip_spec.ClipSpec`).
    labels: class names in label order.
    kind: `saved_model`, `keras` or `tflite`.
  """

  spec: clip_spec_lib.ClipSpec
  labels: List[str]
  kind: str

  @property
  def num_frames(self) -> int:
    return self.spec.num_frames

  @property
  def crop_size(self) -> int:
    return self.spec.crop_size

  @property
  def frame_stride(self) -> int:
    return self.spec.frame_stride

  def predict_video_frames(self, frames: np.ndarray) -> np.ndarray:
    """uint8 `[N, H, W, 3]` decoded video -> float32 probabilities `[K]` of its centre clip."""
    return self._predict_clip(self.spec.clip_of_video(frames))

  def predict_video_file(self, path: str) -> np.ndarray:
    """`predict_video_frames(read_video(path))`, decoding only the clip's frames.

    Memory holds the clip, not the video (`ClipSpec.read_clip`).

    Raises:
      video.VideoDecodeError: the file cannot be decoded (names the file).
    """
    return self._predict_clip(self.spec.read_clip(path))

  def _predict_clip(self, clip: np.ndarray) -> np.ndarray:
    """uint8 `[1, T, h, w, 3]` stored-format clip -> probabilities `[K]`."""
    return self.predict_clips(np.asarray(self.spec.preprocess(clip)))[0]

  def predict_clips(self, clips: np.ndarray) -> np.ndarray:
    """float32 `[B, T, S, S, 3]` preprocessed clips -> probabilities `[B, K]`."""
    raise NotImplementedError


class _SavedModelPredictor(Predictor):

  def __init__(self, export_dir: str):
    self.kind = "saved_model"
    loaded = sm.load_saved_model(export_dir)
    meta = sm.saved_model_metadata(loaded)
    self.labels = meta["labels"]
    self.spec = sm.sampling_spec(meta)
    self._meta = meta  # what `serving_default` takes depends on it
    self.overridden = False
    self._serve = loaded.signatures[sm.SERVING_SIGNATURE]
    self._classify = loaded.signatures[sm.CLIP_SIGNATURE]
    self._loaded = loaded  # keeps the functions' variables alive

  def predict_video_frames(self, frames):
    if self.overridden:  # the graph samples by its own spec: send the clip itself
      return super().predict_video_frames(frames)
    return self._serve_frames(serving.frames_to_send(self._meta, frames))

  def predict_video_file(self, path):
    if self.overridden:
      return super().predict_video_file(path)
    return self._serve_frames(serving.video_to_send(self._meta, path))

  def _serve_frames(self, sent):
    out = self._serve(**{sm.INPUT_NAME: tf.constant(sent, tf.uint8)})
    return out["probabilities"].numpy()[0]

  def predict_clips(self, clips):
    return self._classify(clip=tf.constant(clips, tf.float32))["probabilities"].numpy()


def _carried_or_legacy(path: str, carried, shape, labels_path: Optional[str]):
  """(spec, labels) from the artifact, or a stride-1 spec and a labels file beside it."""
  if carried is not None and labels_path is None and carried[1]:
    return carried
  if carried is None:
    log.warning("%s carries no clip spec (written before the clip contract): assuming "
                "T=%d, S=%d, frame stride 1 and raw frames; pass --frame_stride if it "
                "was trained otherwise", path, shape[1], shape[2])
    spec = clip_spec_lib.ClipSpec(num_frames=int(shape[1]), crop_size=int(shape[2]))
  else:
    spec = carried[0]
  return spec, _labels_for_file(path, labels_path)


class _KerasPredictor(Predictor):

  def __init__(self, path: str, labels_path: Optional[str]):
    self.kind = "keras"
    self._model = sm.load_keras_model(path)
    self.spec, self.labels = _carried_or_legacy(
        path, clip_contract.from_model(self._model), self._model.input_shape, labels_path)

  def predict_clips(self, clips):
    logits = self._model(tf.constant(clips, tf.float32), training=False)
    return tf.nn.softmax(tf.cast(logits, tf.float32)).numpy()


class _TFLitePredictor(Predictor):

  def __init__(self, path: str, labels_path: Optional[str], num_threads: Optional[int] = None):
    self.kind = "tflite"
    self._runner = tfl.TFLiteRunner(path, num_threads=num_threads)
    self.spec, self.labels = _carried_or_legacy(
        path, self._runner.metadata, self._runner.input_shape, labels_path)

  def predict_clips(self, clips):
    return self._runner(clips)["probabilities"]


def generated_classes_note(labels: Sequence[str]) -> Optional[str]:
  """A one-line note when every class of a model is a generated one (the demo's).

  Such a model (e.g. `make demo`'s) was trained on the synthetic set of moving
  shapes: on a real video it still answers with one of those classes. None
  when any class is not a generated one.
  """
  if not labels:
    return None
  for name in labels:
    try:
      synthetic_render.split_class(name)
    except ValueError:
      return None
  return (f"note: this model knows only the {len(labels)} generated classes it was trained "
          "on (moving shapes, e.g. the demo's), not real actions; there are no pretrained "
          "HMDB51 weights: docs/hmdb51.md trains them")


def read_labels_flag(labels_path: str) -> List[str]:
  """The class names of the `--labels` file, errors naming the flag and the file.

  Raises:
    FileNotFoundError: it does not exist.
    ValueError: it is a directory, not UTF-8 text (e.g. a model file given by
      mistake) or lists no class.
  """
  if os.path.isdir(labels_path):
    raise ValueError(f"--labels {labels_path!r} is a directory, not a class names file "
                     "(one name a line)")
  if not os.path.exists(labels_path):
    raise FileNotFoundError(f"--labels {labels_path!r} does not exist")
  try:
    return labels_lib.read_labels(labels_path)
  except UnicodeDecodeError as e:
    # A UnicodeDecodeError is a ValueError that names neither file nor flag.
    raise ValueError(f"--labels {labels_path!r} is not a text class names file "
                     f"(not UTF-8: {e.reason} at byte {e.start})") from e
  except ValueError as e:  # lists no class: read_labels names the file
    raise ValueError(f"--labels: {e}") from e


def _labels_for_file(path: str, labels_path: Optional[str]) -> List[str]:
  if labels_path:
    return read_labels_flag(labels_path)
  candidates = [
      tfl.labels_path_for(path),
      os.path.join(os.path.dirname(path), sm.LABELS_FILE),
      os.path.join(os.path.dirname(path), "assets", sm.LABELS_FILE)]
  for candidate in candidates:
    if candidate and os.path.isfile(candidate):
      return labels_lib.read_labels(candidate)
  raise FileNotFoundError(f"no class names in or for {path!r}: looked for {candidates}; "
                          "pass --labels")


def load_predictor(path: str, labels_path: Optional[str] = None,
                   num_threads: Optional[int] = None,
                   frame_stride: Optional[int] = None) -> Predictor:
  """Loads a SavedModel version dir (or its parent), a `.keras` or a `.tflite` file.

  Args:
    path: the artifact.
    labels_path: class names file overriding the names the artifact carries.
    num_threads: TFLite interpreter threads.
    frame_stride: overrides the artifact's clip spec `frame_stride` (the step
      between clip frames, in the stored frames it was trained on).

  Returns:
    A `Predictor`.
  """
  predictor = _load_predictor(path, labels_path, num_threads)
  if frame_stride is not None:
    if int(frame_stride) < 1:
      raise ValueError(f"--frame_stride must be >= 1, got {frame_stride}")
    if int(frame_stride) != predictor.spec.frame_stride:
      predictor.spec = predictor.spec.replace(frame_stride=int(frame_stride))
      predictor.overridden = True
  return predictor


def _load_predictor(path, labels_path, num_threads) -> Predictor:
  if os.path.isdir(path):
    version = sm.find_export_version(path)
    if version is None:
      raise FileNotFoundError(f"--model {path!r} is a directory without a SavedModel "
                              "(saved_model.pb) or numeric version subdirectories")
    predictor = _SavedModelPredictor(version)
    if labels_path:
      predictor.labels = read_labels_flag(labels_path)
    return predictor
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--model {path!r} does not exist")
  if path.endswith(".keras"):
    return _KerasPredictor(path, labels_path)
  if path.endswith(".tflite"):
    return _TFLitePredictor(path, labels_path, num_threads)
  raise ValueError(f"--model {path!r}: expected a SavedModel directory, a .keras "
                   "or a .tflite file")


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int = 5
          ) -> List[Tuple[str, float]]:
  """`[(name, probability)]` of the k most probable classes, best first.

  Raises:
    ValueError: `labels` does not hold one name per class, or k < 1.
  """
  if k < 1:  # a negative k would slice off the last classes, 0 would print none
    raise ValueError(f"k must be >= 1, got {k}")
  if len(labels) != len(probabilities):
    raise ValueError(f"{len(labels)} class names for a model with {len(probabilities)} "
                     "classes")
  order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
  return [(labels[i], float(probabilities[i])) for i in order]


def predict_video(predictor: Predictor, video_path: str, k: int = 5
                  ) -> List[Tuple[str, float]]:
  """Top-k `(class name, probability)` for a video file.

  Raises:
    video.VideoDecodeError: the file cannot be decoded (names the file).
  """
  return top_k(predictor.predict_video_file(video_path), predictor.labels, k)
