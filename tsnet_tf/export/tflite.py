"""TFLite conversion of the student (float32, float16, int8) and of `TVL1Flow`.

The converted classifier takes one preprocessed clip, float32 `[1, T, S, S, 3]`
in [0, 255] (uint8 for `int8`: raw pixel values, see below), and outputs
`probabilities` and `logits` `[1, K]`. Spatial preprocessing and frame sampling
stay outside the TFLite graph (`tsnet_tf.export.predict` does them with the
same functions as training), so the edge model has one fixed input shape.

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
import logging
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tsnet_tf.export import edge
from tsnet_tf.export import saved_model as sm
from tsnet_tf.utils.io import atomic_write

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
CLIP_INPUT = "clip"

RepresentativeDataset = Callable[[], Iterator[List[np.ndarray]]]


def representative_dataset(data_dir: str, num_frames: int, crop_size: int,
                           num_clips: int = 64, split: int = 1,
                           subset: str = "train") -> RepresentativeDataset:
  """Calibration clips for int8 from the TFRecords (evaluation preprocessing).

  Args:
    data_dir: output of tools/prepare_hmdb51.py.
    num_frames, crop_size: the model's T and S.
    num_clips: clips to draw (the first `num_clips` videos of the subset,
      centre clip each).
    split, subset: which videos.

  Returns:
    A generator function yielding `[clip]`, clip float32 `[1, T, S, S, 3]`.
  """
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  ds = pipeline.make_dataset(data_dir, split=split, subset=subset, training=False,
                             num_frames=num_frames, crop_size=crop_size, batch_size=1)

  def gen():
    for clip, _ in ds.take(num_clips):
      yield [clip.numpy().astype(np.float32)]
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

  Args:
    model: float32 `[B, T, S, S, 3]` in [0, 255] -> logits `[B, K]`.
    quantize: one of `QUANTIZATIONS`.
    rep: representative dataset (required for `int8`).
    use_edge_twin: convert `edge.edge_model(model)` (see module doc).

  Returns:
    `(flatbuffer bytes, quantize mode actually used)`: `int8` falls back to
    `dynamic` when the converter cannot quantise every op (logged).
  """
  if quantize not in QUANTIZATIONS:
    raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
  if quantize == "int8" and rep is None:
    raise ValueError("int8 quantisation needs a representative dataset "
                     "(--data_dir with TFRecords)")
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
      return _configure(conv, mode, rep).convert()

  if quantize == "int8":
    try:
      return convert("int8"), "int8"
    except Exception as e:  # pylint: disable=broad-except
      # ConverterError or RuntimeError depending on the failing stage.
      logging.warning("full-integer int8 conversion failed (%s); falling back to "
                      "dynamic-range quantisation", str(e).splitlines()[0][:300])
      quantize = "dynamic"
  return convert(quantize), quantize


def convert_saved_model(path: str, output: str, quantize: str = "none",
                        data_dir: Optional[str] = None, num_calibration_clips: int = 64,
                        split: int = 1, labels: Optional[Sequence[str]] = None) -> Dict:
  """Converts an exported student (version dir or `.keras`) to `output` (.tflite).

  An export of `tools/export.py` carries `model.keras` next to the SavedModel
  graph; that Keras model is converted (through its edge twin), so the TFLite
  file and the SavedModel hold the same weights.

  Args:
    path: SavedModel version directory written by `export_saved_model`, or a
      `.keras` file.
    output: `.tflite` path, written atomically; class names go to
      `labels_path_for(output)`.
    quantize: one of `QUANTIZATIONS`.
    data_dir: TFRecords for the int8 representative dataset.
    num_calibration_clips: clips in the representative dataset.
    split: split whose training videos calibrate.
    labels: class names; default from the export's assets or the `.keras`
      file's directory.

  Returns:
    `{"output", "labels", "quantize" (mode used), "bytes"}`.
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
  if labels is None:
    labels = sm.read_labels(labels_path)
  if quantize == "int8" and not data_dir:
    raise ValueError("--quantize=int8 needs --data_dir (TFRecords for calibration); "
                     "use --quantize=dynamic for weight-only int8")
  model = sm.load_keras_model(keras_path)
  rep = None
  if quantize == "int8":
    rep = representative_dataset(data_dir, int(model.input_shape[1]),
                                 int(model.input_shape[2]), num_calibration_clips, split)
  flatbuffer, used = convert_keras_model(model, quantize, rep)
  with atomic_write(output) as tmp:
    with open(tmp, "wb") as f:
      f.write(flatbuffer)
  with atomic_write(labels_path_for(output)) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      f.write("\n".join(labels) + "\n")
  return {"output": output, "labels": labels_path_for(output), "quantize": used,
          "bytes": len(flatbuffer)}


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
  """
  from tsnet_tf.layers import TVL1Flow  # pylint: disable=g-import-not-at-top
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
    self._runner = interp.get_signature_runner()
    self._input = self._runner.get_input_details()[CLIP_INPUT]
    self._outputs = self._runner.get_output_details()

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
