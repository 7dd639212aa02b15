"""SavedModel export of a clip classifier for TF-Serving (`serving_default`).

The exported directory is one TF-Serving version, `saved_models/<name>/<v>/`:

  saved_model.pb, variables/   the serving graph and the weights
  assets/labels.txt            class names, one a line, label order
  assets/clip_spec.json        the clip the model expects (`clip_spec.ClipSpec`)
  model.keras                  the same classifier as a Keras file, carrying
                               the clip spec and class names (`ClipContract`)

Signatures:

  serving_default  frames uint8 [B, N, H, W, 3]: consecutive decoded video
                   frames (a whole video or its `ClipSpec.window`), any N, H,
                   W >= 1 -> probabilities float32 [B, K], class_ids int32 [B, 5]
  classify_clip    clip float32 [B, T, S, S, 3] in [0, 255] (already sampled
                   and preprocessed) -> probabilities [B, K], logits [B, K]
  metadata         (no input) -> clip_spec string [] (`ClipSpec.to_json`),
                   num_frames, crop_size, frame_stride, stored_frame_stride,
                   short_side, jpeg_quality int32 [], labels string [K]

`serving_default` does in the graph what evaluation does to a video: the clip
spec's sampling (`ClipSpec.sample`: keep one frame in the converter's stride,
then the centre clip of T frames `frame_stride` apart, looping short videos)
and preprocessing (`ClipSpec.preprocess`: short side to the stored frames'
size when it differs, centre square, bilinear resize to S), then the model
(which normalises its [0, 255] input itself) and a softmax. `class_ids` are the
top-5 classes by probability, best first; with fewer than 5 classes the
missing entries are -1 so the shape stays `[B, 5]`.

Frames at the stored size and JPEG quality (`ClipSpec.window_of_video`, what
tools/predict.py and tools/serve_client.py send) give exactly the pixels
evaluation sees; raw frames of another size are resized in the graph with
TF's antialiased bilinear, without the JPEG round trip (docs/deploy.md gives
the measured difference).
"""

import os
import tempfile
from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tsnet_tf import layers  # pylint: disable=unused-import  # registers the layers a model holds
from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.layers import clip_contract
from tsnet_tf.training import run_dir
from tsnet_tf.utils import labels as labels_lib
from tsnet_tf.utils.io import atomic_dir
from tsnet_tf.utils.io import check_keras_file

SERVING_SIGNATURE = "serving_default"
CLIP_SIGNATURE = "classify_clip"
METADATA_SIGNATURE = "metadata"
INPUT_NAME = "frames"
TOP_K = 5
LABELS_FILE = labels_lib.LABELS_FILE
SPEC_FILE = clip_spec_lib.ASSET_FILE
KERAS_FILE = "model.keras"
read_labels = labels_lib.read_labels


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
    model: Keras classifier, float32 `[B, T, S, S, 3]` in [0, 255] -> logits
      `[B, K]`, built with static T and S.
    labels_path: a text file with the K class names, one a line; it becomes
      the SavedModel asset `assets/labels.txt`.
    spec: the clip the model expects (`clip_spec.ClipSpec`, checked against
      the model's input).
    spec_path: a file holding `spec.to_json()`; it becomes the asset
      `assets/clip_spec.json`.
  """

  def __init__(self, model: keras.Model, labels_path: str, spec: clip_spec_lib.ClipSpec,
               spec_path: str):
    super().__init__(name="serving")
    spec.check_model(model)
    self.model = model
    self.spec = spec
    self.num_frames = spec.num_frames
    self.crop_size = spec.crop_size
    self.num_classes = int(model.output_shape[-1])
    self.labels_asset = tf.saved_model.Asset(labels_path)
    self.spec_asset = tf.saved_model.Asset(spec_path)

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
        shape[0:4], message="frames must be uint8 [B, T, H, W, 3] with B >= 1 and "
        "T, H and W >= 1")]):
      frames = tf.identity(frames)
    clip = self.spec.preprocess(self.spec.sample(frames))
    clip = tf.ensure_shape(clip, [None, self.num_frames, self.crop_size, self.crop_size, 3])
    probabilities, _ = self._probabilities(clip)
    return {"probabilities": probabilities,
            "class_ids": top_k_ids(probabilities, TOP_K)}

  def _classify_clip(self, clip):
    probabilities, logits = self._probabilities(clip)
    return {"probabilities": probabilities, "logits": logits}

  def _metadata(self):
    text = tf.strings.strip(tf.io.read_file(self.labels_asset.asset_path))
    labels = tf.strings.strip(tf.strings.split(text, "\n"))
    stored = self.spec.stored_frames
    return {"clip_spec": tf.strings.strip(tf.io.read_file(self.spec_asset.asset_path)),
            "num_frames": tf.constant(self.num_frames, tf.int32),
            "crop_size": tf.constant(self.crop_size, tf.int32),
            "frame_stride": tf.constant(self.spec.frame_stride, tf.int32),
            "stored_frame_stride": tf.constant(stored.stride, tf.int32),
            "short_side": tf.constant(stored.short_side, tf.int32),
            "jpeg_quality": tf.constant(stored.jpeg_quality, tf.int32),
            "labels": labels}

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    return {SERVING_SIGNATURE: self.serve.get_concrete_function(),
            CLIP_SIGNATURE: self.classify_clip.get_concrete_function(),
            METADATA_SIGNATURE: self.metadata.get_concrete_function()}


def export_saved_model(model: keras.Model, labels: Optional[Sequence[str]], export_dir: str,
                       overwrite: bool = False, save_keras: bool = True,
                       spec: Optional[clip_spec_lib.ClipSpec] = None) -> str:
  """Writes `model` as a TF-Serving SavedModel version directory, atomically.

  Args:
    model: Keras classifier (see `ServingModule`).
    labels: K class names in label order; None = the names the model carries.
    export_dir: the version directory, e.g. `saved_models/student/1`.
    overwrite: replace an existing `export_dir`; otherwise it is an error.
    save_keras: also write `model.keras` (with the clip contract) into the directory.
    spec: the clip the model expects; None = the spec the model carries
      (`clip_contract.attach`, as every classifier tools/train.py saves).

  Returns:
    `export_dir`.

  Raises:
    FileExistsError: `export_dir` exists and `overwrite` is False.
    ValueError: the labels do not match the model's number of classes, or
      there is no clip spec (a model that carries none and no `spec`).
  """
  carried = clip_contract.from_model(model)
  if spec is None:
    if carried is None:
      raise clip_spec_lib.ClipSpecError(
          f"model {model.name!r} carries no clip spec: pass spec= (clip_spec.ClipSpec) or "
          "export a classifier saved by tools/train.py")
    spec = carried[0]
  if labels is None:
    labels = carried[1] if carried is not None else []
  labels = [str(l).strip() for l in labels]
  num_classes = int(model.output_shape[-1])
  if len(labels) != num_classes or any(not l or "\n" in l for l in labels):
    raise ValueError(f"{len(labels)} labels given for a model with {num_classes} "
                     "classes (need one non-empty name per class)")
  if os.path.exists(export_dir) and not overwrite:
    raise FileExistsError(
        f"export_dir {export_dir!r} already exists; pass overwrite=True "
        "(--overwrite) or choose a new version number")
  if overwrite and os.path.exists(export_dir):
    _check_replaceable_export(export_dir)
  model = clip_contract.attach(model, spec, labels)
  with tempfile.TemporaryDirectory() as scratch:
    labels_path = os.path.join(scratch, LABELS_FILE)
    labels_lib.write_labels(labels_path, labels)
    spec_path = os.path.join(scratch, SPEC_FILE)
    with open(spec_path, "w", encoding="utf-8") as f:
      f.write(spec.to_json() + "\n")
    module = ServingModule(model, labels_path, spec, spec_path)
    with atomic_dir(export_dir, overwrite=overwrite) as tmp:
      # Readable by all whatever the umask: a model server often runs as another user.
      os.chmod(tmp, 0o755)
      tf.saved_model.save(module, tmp, signatures=module.signatures())
      if save_keras:
        model.save(os.path.join(tmp, KERAS_FILE))
  return export_dir


def _check_replaceable_export(export_dir: str) -> None:
  """`overwrite` replaces an empty directory or a SavedModel, never anything else.

  A mistyped --export_dir (a data or home directory) must not be deleted.
  """
  if not os.path.isdir(export_dir):
    raise FileExistsError(f"export_dir {export_dir!r} is a file, not a SavedModel; "
                          "refusing to replace it with --overwrite")
  if os.listdir(export_dir) and not os.path.isfile(
      os.path.join(export_dir, "saved_model.pb")):
    raise FileExistsError(f"export_dir {export_dir!r} is not a SavedModel (no saved_model.pb); "
                          "refusing to delete it with --overwrite")


def load_keras_model(path: str) -> keras.Model:
  """Loads a `.keras` classifier with tsnet_tf's custom layers registered.

  Raises:
    As `check_keras_file`.
  """
  check_keras_file(path)
  return keras.saving.load_model(path, compile=False)


def export_from_model_dir(model_dir: str, export_dir: str,
                          checkpoint: str = "model.keras",
                          overwrite: bool = False) -> str:
  """Exports a training output directory's classifier (see `export_saved_model`).

  The clip spec and class names are the ones the classifier carries (a run
  saved before the clip contract: its config.yaml and labels.txt).

  Args:
    model_dir: training `--model_dir` (`training.run_dir`).
    export_dir: version directory to write.
    checkpoint: `model.keras` (final) or `best.keras` (best on validation).
    overwrite: replace an existing `export_dir`.

  Returns:
    `export_dir`.

  Raises:
    FileNotFoundError: `model_dir` or its `checkpoint` is missing.
    ValueError: the checkpoint is not a Keras model file (`io.check_keras_file`).
  """
  model = run_dir.load_classifier(model_dir, checkpoint)
  spec, labels = run_dir.clip_contract(model_dir, model)
  if labels is None:
    labels = run_dir.read_labels(model_dir)
  return export_saved_model(model, labels, export_dir, overwrite=overwrite, spec=spec)


def load_saved_model(export_dir: str):
  """Loads an exported version directory (`tf.saved_model.load`).

  Raises a `FileNotFoundError` naming the directory when it holds no SavedModel.
  """
  if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
    raise FileNotFoundError(f"{export_dir!r} holds no saved_model.pb: not a SavedModel "
                            "version directory (expected saved_models/<name>/<version>)")
  return tf.saved_model.load(export_dir)


def metadata_from_outputs(out: Dict[str, object], labels: Sequence[str]) -> Dict[str, object]:
  """`{"clip_spec": ClipSpec or None, "num_frames", "crop_size", "frame_stride", "labels"}`.

  From the outputs of the `metadata` signature (numpy values, any server).
  `clip_spec` is None for exports written before the clip contract: their
  `serving_default` takes exactly the T frames of the clip (sampled by the
  client with `frame_stride`, 1 when not reported).
  """
  spec = None
  if "clip_spec" in out:
    raw = np.asarray(out["clip_spec"]).reshape(()).item()
    spec = clip_spec_lib.ClipSpec.from_json(raw, "the model's metadata clip_spec")
  return {"clip_spec": spec,
          "num_frames": int(np.asarray(out["num_frames"])),
          "crop_size": int(np.asarray(out["crop_size"])),
          "frame_stride": int(np.asarray(out.get("frame_stride", 1))),
          "labels": [l for l in labels if l]}


def sampling_spec(meta: Dict[str, object]) -> clip_spec_lib.ClipSpec:
  """The clip spec an export samples by, from `metadata_from_outputs`.

  Its `clip_spec`, or for an export written before the clip contract the
  stride-only spec of its T frames (`num_frames`, `crop_size`, `frame_stride`).
  """
  if meta["clip_spec"] is not None:
    return meta["clip_spec"]
  return clip_spec_lib.ClipSpec(meta["num_frames"], meta["crop_size"], meta["frame_stride"])


def saved_model_metadata(loaded) -> Dict[str, object]:
  """`metadata_from_outputs` of a loaded export's `metadata` signature."""
  meta = {k: v.numpy() for k, v in loaded.signatures[METADATA_SIGNATURE]().items()}
  return metadata_from_outputs(meta, [s.decode("utf-8") for s in meta["labels"]])


def find_export_version(path: str) -> Optional[str]:
  """`path` if it is a version directory, else its highest numeric version, else None."""
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  if not os.path.isdir(path):
    return None
  versions = [d for d in os.listdir(path) if d.isdigit()
              and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
  return os.path.join(path, max(versions, key=int)) if versions else None
