"""The clip contract: which frames, pixels and values a trained model expects.

A `ClipSpec` is data. It is decided once, when a model is trained (from the
config's `data` section and the TFRecords' `summary.json`), and travels inside
every artifact made from that model:

  .keras        a `ClipContract` layer (an identity on the logits) whose config
                holds the spec and the class names: it survives
                `keras.saving.load_model`, re-saving and cloning
                (`layers/clip_contract.py`: `attach`, `from_model`);
  SavedModel    the `metadata` signature (a `clip_spec` JSON string and its
                main fields) and `assets/clip_spec.json`;
  .tflite       a metadata buffer named `METADATA_NAME` (`tflite.py`);
  TF-Serving    the served `metadata` signature (`serving.fetch_metadata`).

Fields (`to_dict`):

  num_frames      T, frames per clip.
  crop_size       S, side of the square the model sees.
  frame_stride    step between the T frames, counted in *stored* frames.
  stored_frames   the frame format of the TFRecords the model was trained on
                  (tools/prepare_hmdb51.py): `stride` (the converter kept one
                  video frame in `stride`), `short_side` (frames scaled so the
                  short side is this, PIL bilinear with antialiasing; 0 = the
                  video's size) and `jpeg_quality` (0 = not JPEG-encoded).
  crop, interpolation, antialias
                  the spatial rule: the centred square of the stored frame,
                  resized to S (bilinear, no antialiasing).
  pixel_range, normalization
                  RGB values in [0, 255]; the model normalises inside itself.

One sampling rule, whatever the path (training's random start aside):
a decoded video of N frames is first thinned as the converter did
(`frames[::stride]`), then the evaluation clips of `sampling.eval_indices`
are taken with `frame_stride` (centre clip for K = 1; looped when short).
`video_indices` gives those indices in the decoded video; `window` the
shortest run of consecutive frames that yields the same clip (what a serving
client sends); `sample` is the same rule in the graph (the serving graph).
`read_clip` / `read_window` take them from a video file, decoding and keeping
only those frames (`video.read_frames`), equal to `clip_of_video` /
`window_of_video` of the whole decoded video.

One preprocessing path: `stored_frames` turns decoded video frames into the
pixels the TFRecords hold (the converter's own resize and JPEG encoder, then
the input pipeline's JPEG decoder); `preprocess` (in the graph: short side to
`short_side` when the frames are not already stored-size, then the centre crop
and resize of `preprocessing.eval_preprocess`) is what evaluation applies to
the stored frames. Deployment through `tsnet_tf.export.predict` and
tools/serve_client.py therefore sees exactly the pixels evaluation sees.

This module loads neither TensorFlow nor PyAV at import: every saved model's
`ClipContract` layer (`tsnet_tf.layers`) imports it, under any Keras backend
and on machines without PyAV. The methods that decode videos (`video`,
`tfrecords`: PyAV) or run in the graph (`preprocessing`, `pipeline`: TF)
import those modules when called.
"""

import dataclasses
import json
import logging
import math
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from tsnet_tf.data import sampling
from tsnet_tf.utils import errors

log = logging.getLogger(__name__)

VERSION = 1
METADATA_NAME = "tsnet_tf.clip_spec"  # TFLite metadata buffer name
ASSET_FILE = "clip_spec.json"  # SavedModel asset


class ClipSpecError(errors.InputError, ValueError):
  """A clip specification is malformed or does not fit the model."""


def _positive_int(d: Mapping[str, Any], key: str, where: str, minimum: int = 1) -> int:
  value = d[key]
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ClipSpecError(f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}")
  return int(value)


def _check_keys(d: Mapping[str, Any], cls, where: str) -> None:
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(d) - known - {"version"})
  if unknown:
    raise ClipSpecError(f"{where}: unknown key(s) {unknown} (known: {sorted(known)})")


@dataclasses.dataclass(frozen=True)
class StoredFrames:
  """The frame format of the TFRecords a model was trained on.

  Attributes:
    stride: the converter kept video frames 0, stride, 2 * stride, ...
    short_side: stored frames have this short side (0: the video's size).
    jpeg_quality: JPEG quality of the stored frames (0: not JPEG-encoded).
    resize: how the converter resized (PIL bilinear, antialiased).
  """
  stride: int = 1
  short_side: int = 0
  jpeg_quality: int = 0
  resize: str = "pil_bilinear_antialias"

  @classmethod
  def from_dict(cls, d: Mapping[str, Any], where: str = "stored_frames") -> "StoredFrames":
    if not isinstance(d, Mapping):
      raise ClipSpecError(f"{where} must be a mapping, got {d!r}")
    _check_keys(d, cls, where)
    d = {**dataclasses.asdict(cls()), **d}
    return cls(stride=_positive_int(d, "stride", where),
               short_side=_positive_int(d, "short_side", where, 0),
               jpeg_quality=_positive_int(d, "jpeg_quality", where, 0),
               resize=str(d["resize"]))

  @classmethod
  def from_conversion(cls, settings: Mapping[str, Any]) -> "StoredFrames":
    """From `summary.json`'s `settings` (`tfrecords.ConversionSettings`)."""
    return cls(stride=int(settings.get("frame_stride", 1)),
               short_side=int(settings.get("short_side", 0)),
               jpeg_quality=int(settings.get("jpeg_quality", 90)))


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What a model expects (see the module doc for every field)."""
  num_frames: int
  crop_size: int
  frame_stride: int = 1
  stored_frames: StoredFrames = StoredFrames()
  crop: str = "centre_square"
  interpolation: str = "bilinear"
  antialias: bool = False
  pixel_range: Tuple[int, int] = (0, 255)
  normalization: str = "inside_model"

  def __post_init__(self):
    for key in ("num_frames", "crop_size", "frame_stride"):
      _positive_int(dataclasses.asdict(self), key, "clip spec")

  # -- serialisation ---------------------------------------------------------

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d["pixel_range"] = list(self.pixel_range)
    d["version"] = VERSION
    return d

  @classmethod
  def from_dict(cls, d: Mapping[str, Any], where: str = "clip spec") -> "ClipSpec":
    """Inverse of `to_dict`; raises `ClipSpecError` naming `where` and the key."""
    if not isinstance(d, Mapping):
      raise ClipSpecError(f"{where} must be a mapping, got {type(d).__name__}")
    _check_keys(d, cls, where)
    if int(d.get("version", VERSION)) > VERSION:
      raise ClipSpecError(f"{where}: version {d['version']} is newer than this tsnet_tf "
                          f"understands ({VERSION}); upgrade tsnet_tf")
    for key in ("num_frames", "crop_size"):
      if key not in d:
        raise ClipSpecError(f"{where}: missing '{key}'")
    kwargs = dict(d)
    kwargs.pop("version", None)
    kwargs["stored_frames"] = StoredFrames.from_dict(d.get("stored_frames", {}),
                                                     f"{where}: stored_frames")
    if "pixel_range" in kwargs:
      kwargs["pixel_range"] = tuple(int(v) for v in kwargs["pixel_range"])
    for key in ("num_frames", "crop_size", "frame_stride"):
      if key in kwargs:
        kwargs[key] = _positive_int(kwargs, key, where)
    return cls(**kwargs)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  @classmethod
  def from_json(cls, text, where: str = "clip spec") -> "ClipSpec":
    if isinstance(text, bytes):
      text = text.decode("utf-8")
    try:
      d = json.loads(text)
    except ValueError as e:
      raise ClipSpecError(f"{where} is not valid JSON: {e}") from e
    return cls.from_dict(d, where)

  # -- construction ----------------------------------------------------------

  @classmethod
  def from_training(cls, data_config, conversion_settings: Mapping[str, Any]) -> "ClipSpec":
    """The spec of a training run: the config's `data` section + the TFRecords' settings.

    Args:
      data_config: `config.DataConfig` (num_frames, crop_size, frame_stride).
      conversion_settings: `summary.json`'s `settings` of the data directory.
    """
    return cls(num_frames=int(data_config.num_frames), crop_size=int(data_config.crop_size),
               frame_stride=int(data_config.frame_stride),
               stored_frames=StoredFrames.from_conversion(conversion_settings))

  @classmethod
  def for_model(cls, model, frame_stride: int = 1) -> "ClipSpec":
    """A spec from a model's input shape alone (raw frames, no stored format).

    For models that carry no spec (saved before the clip contract existed).
    """
    shape = tuple(model.input_shape)
    if len(shape) != 5 or None in shape[1:] or shape[2] != shape[3]:
      raise ClipSpecError(f"model input must be [B, T, S, S, 3] with static T and S, "
                          f"got {shape}")
    return cls(num_frames=int(shape[1]), crop_size=int(shape[2]),
               frame_stride=int(frame_stride))

  def replace(self, **changes) -> "ClipSpec":
    return dataclasses.replace(self, **changes)

  def check_model(self, model, what: str = "model") -> None:
    """Raises `ClipSpecError` if `model`'s input is not `[B, T, S, S, 3]` of this spec."""
    expected = (self.num_frames, self.crop_size, self.crop_size, 3)
    got = tuple(model.input_shape[1:])
    if got != expected:
      raise ClipSpecError(f"{what} takes clips of shape {got}, its clip spec says {expected}")

  # -- sampling (numpy) ------------------------------------------------------

  @property
  def video_stride(self) -> int:
    """Step between the clip's frames in the decoded video."""
    return self.frame_stride * self.stored_frames.stride

  @property
  def stored_span(self) -> int:
    """Stored frames one clip covers, first to last."""
    return (self.num_frames - 1) * self.frame_stride + 1

  @property
  def video_span(self) -> int:
    """Decoded video frames one clip covers, first to last."""
    return (self.num_frames - 1) * self.video_stride + 1

  def num_stored(self, num_video_frames: int) -> int:
    """Frames the converter keeps of a video of `num_video_frames`."""
    return max(1, math.ceil(int(num_video_frames) / self.stored_frames.stride))

  def video_indices(self, num_video_frames: int, num_clips: int = 1) -> np.ndarray:
    """int64 [K, T]: the evaluation clips' frame indices in the decoded video."""
    stored = sampling.eval_indices_np(self.num_stored(num_video_frames), self.num_frames,
                                      num_clips, self.frame_stride)
    return stored * self.stored_frames.stride

  def window(self, num_video_frames: int) -> Tuple[int, int]:
    """`(begin, end)`: the shortest run of consecutive video frames whose centre
    clip (by `sample`) is the whole video's centre clip; the whole video when it
    is shorter than a clip (the clip loops)."""
    n = max(1, int(num_video_frames))
    if self.num_stored(n) < self.stored_span:
      return 0, n
    first = int(self.video_indices(n)[0, 0])
    return first, first + self.video_span

  # -- pixels ----------------------------------------------------------------

  def stored_frames_of(self, frames: np.ndarray) -> np.ndarray:
    """Decoded video frames as the TFRecords store them.

    Uses the converter's own resize and JPEG encoder (`tfrecords.encode_frames`)
    and the input pipeline's decoder (`tf.io.decode_jpeg`), so a model sees the
    pixels it was evaluated on.

    Args:
      frames: uint8 [N, H, W, 3] RGB (e.g. from `video.read_video`).

    Returns:
      uint8 [N, h, w, 3] (short side `stored_frames.short_side`, when set).
    """
    # PyAV: imported when called (module doc).
    from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
      raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    fmt = self.stored_frames
    if not fmt.jpeg_quality:
      return tfrecords.resize_frames(frames, fmt.short_side)
    # TensorFlow: imported when called (module doc).
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    jpegs, _, _ = tfrecords.encode_frames(
        frames, tfrecords.ConversionSettings(short_side=fmt.short_side,
                                             jpeg_quality=fmt.jpeg_quality))
    return np.stack([tf.io.decode_jpeg(j, channels=3).numpy() for j in jpegs])

  def clip_of_video(self, frames: np.ndarray, num_clips: int = 1) -> np.ndarray:
    """uint8 [K, T, h, w, 3]: the evaluation clips of a decoded video, stored format."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] < 1:
      raise ValueError(f"frames must be [N>=1, H, W, C], got shape {frames.shape}")
    idx = self.video_indices(frames.shape[0], num_clips)
    unique, inverse = np.unique(idx, return_inverse=True)
    stored = self.stored_frames_of(frames[unique])  # each frame converted once
    return stored[inverse.reshape(idx.shape)]

  def window_of_video(self, frames: np.ndarray) -> np.ndarray:
    """uint8 [W, h, w, 3]: `window` of a decoded video in the stored format."""
    begin, end = self.window(len(frames))
    return self.stored_frames_of(np.asarray(frames)[begin:end])

  def _stored_frame(self, frame: np.ndarray) -> np.ndarray:
    return self.stored_frames_of(frame[None])[0]

  def read_clip(self, path, num_clips: int = 1) -> np.ndarray:
    """`clip_of_video(read_video(path), num_clips)`, holding only the clip's frames.

    Decodes with `video.read_frames`: each selected frame is put in the stored
    format as it is decoded, so memory depends on the clip, not on the video's
    length or resolution, and the pixels are `clip_of_video`'s (the stored
    format is computed frame by frame there too).

    Args:
      path: video file.
      num_clips: K.

    Returns:
      uint8 [K, T, h, w, 3].

    Raises:
      video.VideoDecodeError: the file cannot be decoded (names the file).
    """
    # PyAV: imported when called (module doc).
    from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
    return video.read_frames(path, lambda n: self.video_indices(n, num_clips),
                             self._stored_frame)

  def read_window(self, path) -> np.ndarray:
    """`window_of_video(read_video(path))`, holding only the window's frames:
    uint8 [W, h, w, 3] (see `read_clip`)."""
    # PyAV: imported when called (module doc).
    from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
    return video.read_frames(path, lambda n: np.arange(*self.window(n)), self._stored_frame)

  # -- graph -----------------------------------------------------------------

  def sample(self, frames):
    """In-graph `video_indices` (centre clip): `[B, N, H, W, C]` -> `[B, T, H, W, C]`.

    `frames` are consecutive decoded video frames (a whole video or a `window`).
    """
    # TensorFlow: imported when called (module doc).
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    frames = tf.convert_to_tensor(frames)
    if self.stored_frames.stride > 1:
      frames = frames[:, ::self.stored_frames.stride]
    idx = sampling.eval_indices(tf.shape(frames)[1], self.num_frames, 1, self.frame_stride)[0]
    return tf.gather(frames, idx, axis=1)

  def preprocess(self, clip):
    """In-graph spatial preprocessing: `[..., T, H, W, 3]` -> float32 `[..., T, S, S, 3]`.

    Frames already at the stored short side (all frames from the TFRecords or
    from `stored_frames_of`) are only cropped and resized, as evaluation does;
    other frames are first scaled to the stored short side (antialiased
    bilinear, TF's approximation of the converter's PIL resize; no JPEG).
    """
    # TensorFlow: imported when called (module doc).
    from tsnet_tf.data import preprocessing  # pylint: disable=g-import-not-at-top
    clip = preprocessing.resize_short_side(clip, self.stored_frames.short_side)
    return preprocessing.eval_preprocess(clip, self.crop_size)

  def describe(self) -> str:
    """One line for tools' output."""
    fmt = self.stored_frames
    parts = [f"T={self.num_frames}", f"S={self.crop_size}", f"frame stride {self.frame_stride}"]
    if fmt.stride > 1:
      parts.append(f"of frames kept 1 in {fmt.stride}")
    if fmt.short_side:
      parts.append(f"short side {fmt.short_side}")
    if fmt.jpeg_quality:
      parts.append(f"JPEG q{fmt.jpeg_quality}")
    return ", ".join(parts)


def warn_if_stored_differently(spec: ClipSpec, data_dir: str) -> bool:
  """Logs a warning (and returns True) when `data_dir`'s TFRecords store frames
  other than the model's training data did: its clips and pixels would differ."""
  # TensorFlow: imported when called (module doc).
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  settings = pipeline.load_summary(data_dir).get("settings")
  if settings is None:
    return False
  stored = StoredFrames.from_conversion(settings)
  if stored == spec.stored_frames:
    return False
  log.warning("%s stores frames as %s; the model was trained on %s: its clips and pixels "
              "differ from training", data_dir, stored, spec.stored_frames)
  return True
