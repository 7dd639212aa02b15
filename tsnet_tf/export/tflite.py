"""TFLite conversion of the student (float32, float16, int8) and of `TVL1Flow`.

The converted classifier takes one preprocessed clip, float32 `[1, T, S, S, 3]`
in [0, 255] (uint8 for `int8`: raw pixel values, see below), and outputs
`probabilities` and `logits` `[1, K]`. Spatial preprocessing and frame sampling
stay outside the TFLite graph (`tsnet_tf.export.predict` does them with the
same functions as evaluation), so the edge model has one fixed input shape.

The file carries what it expects: a metadata buffer named
`clip_spec.METADATA_NAME` holds `{"clip_spec": ClipSpec.to_dict(), "labels":
[K names]}` (JSON), so a `.tflite` file moved anywhere predicts the same
(`read_metadata`; `TFLiteRunner.metadata`).

Before conversion the Keras model is replaced by its `edge.edge_model` twin
(3D convolutions and pools as 2D ops) because TFLite's CONV_3D kernel is
float32-only and 3D pools are not builtins; the twin computes the same function.

Quantisation modes:
  none     float32 weights and activations.
  float16  float16 weights (half the file), float32 compute.
  dynamic  int8 weights, float activations (dynamic-range quantisation).
  int8     full-integer: int8 weights and activations calibrated on a
           representative dataset (clips from the TFRecords); uint8 input,
           float32 outputs. If the converter cannot quantise every op, it falls
           back to `dynamic` and says so.
"""

import contextlib
import io
import json
import logging
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.data import pipeline
from tsnet_tf.export import edge
from tsnet_tf.export import saved_model as sm
from tsnet_tf.layers import clip_contract
from tsnet_tf.layers import TVL1Flow
from tsnet_tf.utils import labels as labels_lib
from tsnet_tf.utils.io import atomic_write

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
CLIP_INPUT = "clip"

RepresentativeDataset = Callable[[], Iterator[List[np.ndarray]]]


def representative_dataset(data_dir: str, spec: clip_spec_lib.ClipSpec,
                           num_clips: int = 64, split: int = 1,
                           subset: str = "train") -> RepresentativeDataset:
  """Calibration clips for int8 from the TFRecords, sampled as `spec` says.

  Args:
    data_dir: output of tools/prepare_hmdb51.py.
    spec: the model's clip spec (T, S and the frame stride).
    num_clips: clips to draw (the first `num_clips` videos of the subset,
      centre clip each).
    split, subset: which videos.

  Returns:
    A generator function yielding `[clip]`, clip float32 `[1, T, S, S, 3]`.
    An error reading the data (a truncated shard is a
    `pipeline.CorruptDataError` naming it) is raised and also kept in the
    function's `failure` attribute, so that `convert_keras_model` tells it from
    a converter failure whatever the converter wraps it in.
  """
  clip_spec_lib.warn_if_stored_differently(spec, data_dir)
  ds = pipeline.make_dataset(data_dir, split=split, subset=subset, training=False,
                             num_frames=spec.num_frames, crop_size=spec.crop_size,
                             frame_stride=spec.frame_stride, batch_size=1)

  def gen():
    gen.failure = None
    try:
      with pipeline.reading(data_dir):
        for clip, _ in ds.take(num_clips):
          yield [clip.numpy().astype(np.float32)]
    except Exception as e:  # pylint: disable=broad-except
      gen.failure = e
      raise

  gen.failure = None
  return gen


def _clip_classifier(model: keras.Model) -> keras.Model:
  """Batch-1 functional wrapper: clip -> {probabilities, logits} (conversion input)."""
  clip = keras.Input(tuple(model.input_shape[1:]), batch_size=1, name=CLIP_INPUT)
  logits = model(clip, training=False)
  probabilities = keras.layers.Softmax(name="probabilities", dtype="float32")(logits)
  return keras.Model(clip, {"probabilities": probabilities, "logits": logits})


def _configure(conv: tf.lite.TFLiteConverter, quantize: str,
               rep: Optional[RepresentativeDataset]) -> tf.lite.TFLiteConverter:
  if quantize == "float16":
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
  elif quantize == "dynamic":
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
  elif quantize == "int8":
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # Pixels are integers in [0, 255]: uint8 input carries them losslessly.
    conv.inference_input_type = tf.uint8
  return conv


def convert_keras_model(model: keras.Model, quantize: str = "none",
                        rep: Optional[RepresentativeDataset] = None,
                        use_edge_twin: bool = True):
  """Converts a Keras clip classifier to a TFLite flatbuffer.

  A model that carries a clip contract (`clip_contract.attach`) gets it as the
  file's metadata (`add_metadata`).

  Args:
    model: float32 `[B, T, S, S, 3]` in [0, 255] -> logits `[B, K]`.
    quantize: one of `QUANTIZATIONS`.
    rep: representative dataset (required for `int8`).
    use_edge_twin: convert `edge.edge_model(model)` (see module doc).

  Returns:
    `(flatbuffer bytes, quantize mode actually used)`: `int8` falls back to
    `dynamic` when the converter cannot quantise every op (logged).

  Raises:
    Exception: whatever reading `rep` raised (its `failure`, see
      `representative_dataset`): no fallback then.
  """
  if quantize not in QUANTIZATIONS:
    raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
  if quantize == "int8" and rep is None:
    raise ValueError("int8 quantisation needs a representative dataset "
                     "(--data_dir with TFRecords)")
  carried = clip_contract.from_model(model)
  if use_edge_twin:
    model = edge.edge_model(model)
    left = edge.unswapped_3d_layers(model)
    if left:
      logging.warning("layers the edge twin could not rewrite (3D ops are float-only in "
                      "TFLite; per-frame TimeDistributed convs multiply the ops): %s", left)
  wrapper = _clip_classifier(model)

  def convert(mode):
    conv = tf.lite.TFLiteConverter.from_keras_model(wrapper)
    # Keras' export prints every captured variable to stdout; keep tools' output readable.
    with contextlib.redirect_stdout(io.StringIO()):
      flatbuffer = _configure(conv, mode, rep).convert()
    if carried is not None:
      flatbuffer = add_metadata(flatbuffer, *carried)
    return flatbuffer

  if quantize == "int8":
    try:
      return convert("int8"), "int8"
    except Exception as e:  # pylint: disable=broad-except
      # The calibration data could not be read (a truncated shard, a missing
      # file): not the converter's failure, so no fallback (docs/deploy.md).
      failure = getattr(rep, "failure", None)
      if failure is not None:
        if failure is e:
          raise
        raise failure from e
      # ConverterError or RuntimeError depending on the failing stage.
      logging.warning("full-integer int8 conversion failed (%s); falling back to "
                      "dynamic-range quantisation", str(e).splitlines()[0][:300])
      quantize = "dynamic"
  return convert(quantize), quantize


def add_metadata(flatbuffer: bytes, spec: clip_spec_lib.ClipSpec,
                 labels: Sequence[str]) -> bytes:
  """The flatbuffer with the clip spec and class names as a metadata buffer.

  Args:
    flatbuffer: a TFLite model.
    spec: the clip the model expects.
    labels: its class names in label order.

  Returns:
    The model with metadata `clip_spec.METADATA_NAME` = JSON
    `{"clip_spec": spec.to_dict(), "labels": labels}` (an existing entry of
    that name is replaced).
  """
  # TFLite's flatbuffer schema: only the metadata functions need it.
  import flatbuffers  # pylint: disable=g-import-not-at-top
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  payload = json.dumps({"clip_spec": spec.to_dict(), "labels": list(labels)},
                       sort_keys=True).encode("utf-8")
  model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
  model.metadata = [m for m in (model.metadata or [])
                    if _name(m.name) != clip_spec_lib.METADATA_NAME]
  buffer = schema.BufferT()
  buffer.data = np.frombuffer(payload, np.uint8)
  model.buffers.append(buffer)
  entry = schema.MetadataT()
  entry.name = clip_spec_lib.METADATA_NAME
  entry.buffer = len(model.buffers) - 1
  model.metadata.append(entry)
  builder = flatbuffers.Builder(len(flatbuffer) + len(payload) + 1024)
  builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
  return bytes(builder.Output())


def _name(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value or "")


def read_metadata(model) -> Optional[Tuple[clip_spec_lib.ClipSpec, List[str]]]:
  """`(spec, labels)` stored by `add_metadata` in a `.tflite` path or flatbuffer; else None."""
  # TFLite's flatbuffer schema: only the metadata functions need it.
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  where = "the TFLite flatbuffer"
  if not isinstance(model, (bytes, bytearray)):
    where = repr(model)
    with open(model, "rb") as f:
      model = f.read()
  try:
    root = schema.Model.GetRootAs(bytearray(model), 0)
    for i in range(root.MetadataLength()):
      entry = root.Metadata(i)
      if _name(entry.Name()) == clip_spec_lib.METADATA_NAME:
        payload = root.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
        d = json.loads(payload.decode("utf-8"))
        spec = clip_spec_lib.ClipSpec.from_dict(d["clip_spec"], f"{where} metadata")
        return spec, [str(l) for l in d.get("labels", [])]
  except (ValueError, KeyError, IndexError, AttributeError, TypeError) as e:
    raise ValueError(f"{where}: unreadable {clip_spec_lib.METADATA_NAME} metadata: {e}") from e
  return None


def convert_saved_model(path: str, output: str, quantize: str = "none",
                        data_dir: Optional[str] = None, num_calibration_clips: int = 64,
                        split: int = 1, labels: Optional[Sequence[str]] = None) -> Dict:
  """Converts an exported student (version dir or `.keras`) to `output` (.tflite).

  An export of `tools/export.py` carries `model.keras` next to the SavedModel
  graph; that Keras model is converted (through its edge twin), so the TFLite
  file and the SavedModel hold the same weights. Its clip spec and class names
  go into the file's metadata; int8 calibration samples clips by that spec.

  Args:
    path: SavedModel version directory written by `export_saved_model`, or a
      `.keras` file.
    output: `.tflite` path, written atomically; the class names are also
      written to `labels_path_for(output)` for people.
    quantize: one of `QUANTIZATIONS`.
    data_dir: TFRecords for the int8 representative dataset.
    num_calibration_clips: clips in the representative dataset.
    split: split whose training videos calibrate.
    labels: class names; default those the model carries (else the export's
      assets or the `.keras` file's directory).

  Returns:
    `{"output", "labels", "quantize" (mode used), "bytes", "clip_spec"}`.
  """
  if not output.endswith(".tflite"):
    raise ValueError(f"--output {output!r} must end in .tflite")
  if quantize not in QUANTIZATIONS:
    raise ValueError(f"--quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
  if os.path.isdir(path):
    keras_path = os.path.join(path, sm.KERAS_FILE)
    labels_path = os.path.join(path, "assets", sm.LABELS_FILE)
    if not os.path.isfile(keras_path):
      raise FileNotFoundError(f"--saved_model {path!r} has no {sm.KERAS_FILE}: export it "
                              "with tools/export.py (or pass a .keras file)")
  elif os.path.isfile(path) and path.endswith(".keras"):
    keras_path = path
    labels_path = os.path.join(os.path.dirname(path), sm.LABELS_FILE)
  else:
    raise FileNotFoundError(f"--saved_model {path!r} is neither a SavedModel "
                            "directory nor a .keras file")
  if quantize == "int8" and not data_dir:
    raise ValueError("--quantize=int8 needs --data_dir (TFRecords for calibration); "
                     "use --quantize=dynamic for weight-only int8")
  if quantize == "int8" and num_calibration_clips < 1:
    # An empty representative dataset makes the converter skip quantisation silently.
    raise ValueError(f"--num_calibration_clips must be >= 1 for --quantize=int8, got "
                     f"{num_calibration_clips}")
  model = sm.load_keras_model(keras_path)
  carried = clip_contract.from_model(model)
  if carried is not None:
    spec, carried_labels = carried
  else:
    logging.warning("%s carries no clip spec (saved before the clip contract): frame "
                    "stride 1 and raw frames assumed", keras_path)
    spec, carried_labels = clip_spec_lib.ClipSpec.for_model(model), []
  if labels is None:
    labels = carried_labels or sm.read_labels(labels_path)
  model = clip_contract.attach(model, spec, labels)
  rep = None
  if quantize == "int8":
    rep = representative_dataset(data_dir, spec, num_calibration_clips, split)
  flatbuffer, used = convert_keras_model(model, quantize, rep)
  with atomic_write(output) as tmp:
    with open(tmp, "wb") as f:
      f.write(flatbuffer)
  labels_lib.write_labels(labels_path_for(output), labels)
  return {"output": output, "labels": labels_path_for(output), "quantize": used,
          "bytes": len(flatbuffer), "clip_spec": spec}


def labels_path_for(tflite_path: str) -> str:
  """The class-names file that travels with a `.tflite` file (`x.tflite` -> `x.labels.txt`)."""
  return os.path.splitext(tflite_path)[0] + ".labels.txt"


def convert_flow_layer(num_frames: int, height: int, width: int,
                       preset: str = "fast", channels: int = 3,
                       **overrides) -> bytes:
  """TFLite float32 model of `tsnet_tf.layers.TVL1Flow` alone (M1 on-device).

  Input `clip` float32 `[1, T, H, W, C]` in [0, 255]; output `flow` float32
  `[1, T-1, H, W, 2]` (pixels, OpenCV convention). Shapes are fixed at
  conversion.

  Args:
    num_frames, height, width, channels: the clip shape.
    preset: TV-L1 preset, `fast` or `accurate`.
    **overrides: TV-L1 parameter overrides.

  Returns:
    The flatbuffer bytes.

  Raises:
    ValueError: fewer than 2 frames or an empty frame.
  """
  if num_frames < 2 or height < 1 or width < 1 or channels < 1:
    raise ValueError(f"flow clip shape {num_frames}x{height}x{width}x{channels}: needs >= 2 "
                     "frames (flow is between two frames) and non-empty frames")
  clip = keras.Input((num_frames, height, width, channels), batch_size=1, name=CLIP_INPUT)
  flow = TVL1Flow(preset=preset, dtype="float32", name="flow", **overrides)(clip)
  model = keras.Model(clip, {"flow": flow})
  return tf.lite.TFLiteConverter.from_keras_model(model).convert()


class TFLiteRunner:
  """Runs a converted model with the LiteRT interpreter (`ai_edge_litert`).

  Quantised inputs are quantised with the model's (scale, zero point) and
  integer outputs dequantised; batches run one example at a time (the model's
  batch is 1).

  Args:
    model: `.tflite` path or flatbuffer bytes.
    num_threads: interpreter threads (None: LiteRT's default).
  """
  def __init__(self, model, num_threads: Optional[int] = None):
    # LiteRT (a dev extra): only running a .tflite needs it, not converting.
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
    if isinstance(model, (bytes, bytearray)):
      interp = Interpreter(model_content=bytes(model), num_threads=num_threads)
    else:
      if not os.path.isfile(model):
        raise FileNotFoundError(f"TFLite file {model!r} does not exist")
      try:
        interp = Interpreter(model_path=model, num_threads=num_threads)
      except ValueError as e:
        raise ValueError(f"{model!r} is not a valid TFLite model: {e}") from e
    self._model = model
    self._runner = interp.get_signature_runner()
    self._input = self._runner.get_input_details()[CLIP_INPUT]
    self._outputs = self._runner.get_output_details()

  @property
  def metadata(self) -> Optional[Tuple[clip_spec_lib.ClipSpec, List[str]]]:
    """`(clip spec, class names)` the file carries (`read_metadata`), or None."""
    return read_metadata(self._model)

  @property
  def input_shape(self):
    """The input shape, e.g. `(1, T, S, S, 3)`."""
    return tuple(int(d) for d in self._input["shape"])

  @property
  def input_dtype(self):
    return np.dtype(self._input["dtype"])

  def _quantize(self, x):
    if self.input_dtype == np.float32:
      return x.astype(np.float32)
    scale, zero = self._input["quantization"]
    info = np.iinfo(self.input_dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input_dtype)

  def _dequantize(self, name, value):
    if value.dtype == np.float32:
      return value
    scale, zero = self._outputs[name]["quantization"]
    return (value.astype(np.float32) - zero) * scale

  def __call__(self, clips: np.ndarray) -> Dict[str, np.ndarray]:
    """Runs clips float32 `[B, *input_shape[1:]]`; returns `{output name: [B, ...]}`."""
    clips = np.asarray(clips, np.float32)
    if clips.shape[1:] != self.input_shape[1:]:
      raise ValueError(f"clip shape {clips.shape[1:]} does not match the model's "
                       f"input {self.input_shape[1:]}")
    results = [self._runner(**{CLIP_INPUT: self._quantize(clip[None])}) for clip in clips]
    return {name: self._dequantize(name, np.concatenate([r[name] for r in results], axis=0))
            for name in results[0]}
