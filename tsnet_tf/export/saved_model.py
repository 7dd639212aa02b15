"""SavedModel export of a clip classifier for TF-Serving (`serving_default`).

The exported directory is one TF-Serving version, `saved_models/<name>/<v>/`:

  saved_model.pb, variables/   the serving graph and the weights
  assets/labels.txt            class names, one a line, label order
  model.keras                  the same classifier as a Keras file

Signatures:

  serving_default  frames uint8 [B, T, H, W, 3] (any T, H, W >= 1)
                   -> probabilities float32 [B, K], class_ids int32 [B, 5]
  classify_clip    clip float32 [B, T0, S, S, 3] in [0, 255] (already
                   preprocessed) -> probabilities [B, K], logits [B, K]
  metadata         (no input) -> num_frames int32 [], crop_size int32 [],
                   frame_stride int32 [], labels string [K]

`serving_default` does in the graph what `tsnet_tf.data` does for evaluation:
when T differs from the trained T0 it picks T0 frames uniformly over the T
given (the centre frame of each of T0 equal segments, so T = T0 is the
identity and a shorter clip repeats frames), then `eval_preprocess` (centre
square of side min(H, W), bilinear resize to S), then the model (which
normalises its [0, 255] input itself) and a softmax. `class_ids` are the top-5
classes by probability, best first; with fewer than 5 classes the missing
entries are -1 so the shape stays `[B, 5]`.

A model trained with `data.frame_stride` s > 1 expects frames s apart: send
its T0 frames already s apart (`predict.video_clip(..., frame_stride=s)`), or
T0 * s consecutive frames (the uniform pick then takes every s-th);
`metadata` reports s.
"""

import os
import tempfile
from typing import Dict, List, Optional, Sequence

import keras
import tensorflow as tf

from tsnet_tf.data import preprocessing
from tsnet_tf.utils.io import atomic_dir

SERVING_SIGNATURE = "serving_default"
CLIP_SIGNATURE = "classify_clip"
METADATA_SIGNATURE = "metadata"
INPUT_NAME = "frames"
TOP_K = 5
LABELS_FILE = "labels.txt"
KERAS_FILE = "model.keras"


def resample_frames(frames: tf.Tensor, num_frames: int) -> tf.Tensor:
  """Picks `num_frames` frames uniformly along axis 1.

  Frame `i` of the output is input frame `floor((2i + 1) * T / (2 * num_frames))`,
  the centre of the i-th of `num_frames` equal segments.

  Args:
    frames: `[B, T, H, W, C]`, any dtype, T >= 1.
    num_frames: output length T0.

  Returns:
    `[B, T0, H, W, C]`, same dtype; `frames` itself when T == T0.
  """
  t = tf.shape(frames, out_type=tf.int64)[1]
  i = tf.range(num_frames, dtype=tf.int64)
  idx = (2 * i + 1) * t // (2 * num_frames)
  return tf.gather(frames, idx, axis=1)


def top_k_ids(probabilities: tf.Tensor, k: int = TOP_K) -> tf.Tensor:
  """Top-k class ids, padded with -1 to `k` columns when K < k.

  Args:
    probabilities: float `[B, K]`.
    k: number of columns.

  Returns:
    int32 `[B, k]`, best first (ties: lower id first).
  """
  num_classes = probabilities.shape[-1]
  kk = min(k, num_classes)
  ids = tf.math.top_k(probabilities, k=kk).indices
  if kk < k:
    ids = tf.pad(ids, [[0, 0], [0, k - kk]], constant_values=-1)
  return tf.cast(ids, tf.int32)


class ServingModule(tf.Module):
  """The serving graph around a Keras classifier (see the module doc).

  Args:
    model: Keras classifier, float32 `[B, T0, S, S, 3]` in [0, 255] -> logits
      `[B, K]`, built with static T0 and S.
    labels_path: a text file with the K class names, one a line; it becomes
      the SavedModel asset `assets/labels.txt`.
    frame_stride: the step between the clip frames the model was trained on
      (reported by `metadata`).
  """

  def __init__(self, model: keras.Model, labels_path: str, frame_stride: int = 1):
    super().__init__(name="serving")
    shape = tuple(model.input_shape)
    if len(shape) != 5 or None in shape[1:] or shape[2] != shape[3] or shape[4] != 3:
      raise ValueError(
          f"model input must be [B, T, S, S, 3] with static T and S, got {shape}")
    self.model = model
    self.num_frames = int(shape[1])
    self.crop_size = int(shape[2])
    self.num_classes = int(model.output_shape[-1])
    if int(frame_stride) < 1:
      raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    self.frame_stride = int(frame_stride)
    self.labels_asset = tf.saved_model.Asset(labels_path)

    self.serve = tf.function(self._serve, input_signature=[
        tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=INPUT_NAME)])
    self.classify_clip = tf.function(self._classify_clip, input_signature=[
        tf.TensorSpec([None, self.num_frames, self.crop_size, self.crop_size, 3],
                      tf.float32, name="clip")])
    self.metadata = tf.function(self._metadata, input_signature=[])

  def _probabilities(self, clip):
    logits = tf.cast(self.model(clip, training=False), tf.float32)
    return tf.nn.softmax(logits, axis=-1), logits

  def _serve(self, frames):
    shape = tf.shape(frames)
    # A clear message instead of an opaque gather/resize failure downstream.
    with tf.control_dependencies([tf.debugging.assert_positive(
        shape[1:4], message="frames must have T, H and W >= 1")]):
      frames = tf.identity(frames)
    clip = resample_frames(frames, self.num_frames)
    # One clip at a time: eval_preprocess's documented [T, H, W, C] form.
    clip = tf.map_fn(lambda c: preprocessing.eval_preprocess(c, self.crop_size), clip,
                     fn_output_signature=tf.TensorSpec(
                         [self.num_frames, self.crop_size, self.crop_size, 3], tf.float32))
    probabilities, _ = self._probabilities(clip)
    return {"probabilities": probabilities,
            "class_ids": top_k_ids(probabilities, TOP_K)}

  def _classify_clip(self, clip):
    probabilities, logits = self._probabilities(clip)
    return {"probabilities": probabilities, "logits": logits}

  def _metadata(self):
    text = tf.strings.strip(tf.io.read_file(self.labels_asset.asset_path))
    labels = tf.strings.strip(tf.strings.split(text, "\n"))
    return {"num_frames": tf.constant(self.num_frames, tf.int32),
            "crop_size": tf.constant(self.crop_size, tf.int32),
            "frame_stride": tf.constant(self.frame_stride, tf.int32),
            "labels": labels}

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    return {SERVING_SIGNATURE: self.serve.get_concrete_function(),
            CLIP_SIGNATURE: self.classify_clip.get_concrete_function(),
            METADATA_SIGNATURE: self.metadata.get_concrete_function()}


def read_labels(path: str) -> List[str]:
  """Class names from a labels file (one a line; blank lines ignored)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"labels file {path!r} does not exist")
  with open(path, encoding="utf-8") as f:
    labels = [line.strip() for line in f if line.strip()]
  if not labels:
    raise ValueError(f"labels file {path!r} lists no classes")
  return labels


def export_saved_model(model: keras.Model, labels: Sequence[str], export_dir: str,
                       overwrite: bool = False, save_keras: bool = True,
                       frame_stride: int = 1) -> str:
  """Writes `model` as a TF-Serving SavedModel version directory, atomically.

  Args:
    model: Keras classifier (see `ServingModule`).
    labels: K class names in label order.
    export_dir: the version directory, e.g. `saved_models/student/1`.
    overwrite: replace an existing `export_dir`; otherwise it is an error.
    save_keras: also write `model.keras` into the directory.
    frame_stride: the training clips' frame step (`data.frame_stride`).

  Returns:
    `export_dir`.

  Raises:
    FileExistsError: `export_dir` exists and `overwrite` is False.
    ValueError: the labels do not match the model's number of classes.
  """
  labels = [str(l).strip() for l in labels]
  num_classes = int(model.output_shape[-1])
  if len(labels) != num_classes or any(not l or "\n" in l for l in labels):
    raise ValueError(f"{len(labels)} labels given for a model with {num_classes} "
                     "classes (need one non-empty name per class)")
  if os.path.exists(export_dir) and not overwrite:
    raise FileExistsError(
        f"export_dir {export_dir!r} already exists; pass overwrite=True "
        "(--overwrite) or choose a new version number")
  with tempfile.TemporaryDirectory() as scratch:
    labels_path = os.path.join(scratch, LABELS_FILE)
    with open(labels_path, "w", encoding="utf-8") as f:
      f.write("\n".join(labels) + "\n")
    module = ServingModule(model, labels_path, frame_stride)
    with atomic_dir(export_dir, overwrite=overwrite) as tmp:
      # mkdtemp makes it 0700; a model server often runs as another user.
      os.chmod(tmp, 0o755)
      tf.saved_model.save(module, tmp, signatures=module.signatures())
      if save_keras:
        model.save(os.path.join(tmp, KERAS_FILE))
  return export_dir


def load_keras_model(path: str) -> keras.Model:
  """Loads a `.keras` classifier with tsnet_tf's custom layers registered."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Keras model file {path!r} does not exist")
  # tsnet_tf's custom layers are registered by the package's __init__.
  return keras.saving.load_model(path, compile=False)


def export_from_model_dir(model_dir: str, export_dir: str,
                          checkpoint: str = "model.keras",
                          overwrite: bool = False) -> str:
  """Exports a training output directory's classifier (see `export_saved_model`).

  Args:
    model_dir: training `--model_dir` holding `checkpoint` and `labels.txt`.
    export_dir: version directory to write.
    checkpoint: `model.keras` (final) or `best.keras` (best on validation).
    overwrite: replace an existing `export_dir`.

  Returns:
    `export_dir`.
  """
  if not os.path.isdir(model_dir):
    raise FileNotFoundError(f"--model_dir {model_dir!r} is not a directory")
  from tsnet_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  model = load_keras_model(os.path.join(model_dir, checkpoint))
  labels = read_labels(os.path.join(model_dir, LABELS_FILE))
  return export_saved_model(model, labels, export_dir, overwrite=overwrite,
                            frame_stride=config_lib.run_frame_stride(model_dir))


def load_saved_model(export_dir: str):
  """Loads an exported version directory (`tf.saved_model.load`).

  Raises a `FileNotFoundError` naming the directory when it holds no SavedModel.
  """
  if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
    raise FileNotFoundError(f"{export_dir!r} holds no saved_model.pb: not a SavedModel "
                            "version directory (expected saved_models/<name>/<version>)")
  return tf.saved_model.load(export_dir)


def saved_model_metadata(loaded) -> Dict[str, object]:
  """`{"num_frames", "crop_size", "frame_stride": int, "labels": [str]}` of a loaded export.

  Exports written before `frame_stride` existed report 1.
  """
  meta = loaded.signatures[METADATA_SIGNATURE]()
  return {"num_frames": int(meta["num_frames"]), "crop_size": int(meta["crop_size"]),
          "frame_stride": int(meta["frame_stride"]) if "frame_stride" in meta else 1,
          "labels": [s.decode("utf-8") for s in meta["labels"].numpy() if s]}


def find_export_version(path: str) -> Optional[str]:
  """`path` if it is a version directory, else its highest numeric version, else None."""
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  if not os.path.isdir(path):
    return None
  versions = [d for d in os.listdir(path) if d.isdigit()
              and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
  return os.path.join(path, max(versions, key=int)) if versions else None
