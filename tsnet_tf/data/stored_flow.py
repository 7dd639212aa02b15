"""TV-L1 flow stored in the TFRecords: its keys, its checks and reading it (tf.data).

A conversion made with `tools/prepare_hmdb51.py --flow_preset=P
--flow_stride=N --flow_bound=B` holds, in each video's record, the flow from
stored frame i to stored frame i + N for every i with i + N < num_frames
(`schema.FLOW_X_KEY`, `schema.FLOW_Y_KEY`: one grey JPEG per component),
computed by `tsnet_tf.flow.tvl1` (preset P) on the stored frames as the
pipeline decodes them (`flow_extraction.encode_video_flow`), and quantised by
`flow.quantize.flow_to_uint8` (clip to +-B px, 0-255). `summary.json` records
the settings under `flow`.

A teacher trained with `model.flow.source: stored` reads it instead of
computing TV-L1 in every training step (`train_flow_clip`): for the clip's T
frames t_0..t_{T-1} (stride `data.frame_stride`, which must equal N), flow k
is the stored flow from t_k, cropped with the frames' window, flipped with
them (x negated), resized to S with its vectors scaled by S / window side,
and dequantised to px (`flow.quantize.uint8_to_flow_tf`). Where the clip loops
(a video shorter than the clip), the pair across the loop seam has no stored
flow and gets zero flow.
"""

from typing import Any, Dict, Mapping, Optional

from tsnet_tf.data import schema

# `summary.json` key of the stored flow's settings.
SUMMARY_KEY = "flow"
# Keys of a training input dict with stored flow (`pipeline.make_dataset(stored_flow=...)`,
# `models.FlowInputTeacher`, `models.DistillationModel(teacher_flow_input=True)`).
FLOW_KEY = "flow"
CLIP_KEY = "clip"


class StoredFlowError(ValueError):
  """The data directory's stored flow cannot serve this run (one line, names the keys)."""


def summary_entry(preset: str, stride: int, bound: float,
                  overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
  """What `summary.json` records under `SUMMARY_KEY`."""
  return {"preset": preset, "stride": int(stride), "bound": float(bound),
          "overrides": dict(overrides or {})}


# ---------------------------------------------------------------------------
# Reader side.


def check_stride(summary: Mapping[str, Any], data_dir: str, frame_stride: int) -> None:
  """Raises `StoredFlowError` unless `data_dir` stores flow of stride `frame_stride`.

  Flow k of a clip is the stored flow from t_k only when the stored stride is
  the clip's `frame_stride`.
  """
  stored = summary.get(SUMMARY_KEY)
  if not stored:
    raise StoredFlowError(
        f"model.flow.source=stored but --data_dir {data_dir!r} has no stored flow (its "
        f"summary.json has no '{SUMMARY_KEY}'); convert with tools/prepare_hmdb51.py "
        "--flow_preset")
  have = int(stored.get("stride", 0))
  if int(frame_stride) != have:
    raise StoredFlowError(
        f"model.flow.source=stored: data.frame_stride={int(frame_stride)} but --data_dir "
        f"{data_dir!r} stores flow with stride {have} (summary.json {SUMMARY_KEY}.stride="
        f"{have}): clip flow k is stored flow from frame t_k only when the two are equal")


def check_summary(summary: Mapping[str, Any], data_dir: str, preset: str, bound: float,
                  frame_stride: int, overrides: Optional[Mapping[str, Any]] = None,
                  owner: str = "") -> None:
  """Raises `StoredFlowError` unless `data_dir` stores the flow a run asks for.

  Args:
    summary: `data_dir`'s `summary.json`.
    data_dir: named in the message.
    preset, bound, overrides: the run's `model.flow.preset`, `.bound`, `.overrides`.
    frame_stride: the run's `data.frame_stride` (`check_stride`).
    owner: whose settings these are, leading the key in the message (e.g.
      "the teacher in --teacher_dir 'x' has "); "" for the run's own config.
  """
  check_stride(summary, data_dir, frame_stride)
  stored = summary[SUMMARY_KEY]
  checks = (("preset", preset, stored.get("preset")),
            ("bound", float(bound), float(stored.get("bound", 0.0))),
            ("overrides", dict(overrides or {}), dict(stored.get("overrides") or {})))
  for key, wanted, have in checks:
    if wanted != have:
      raise StoredFlowError(
          f"model.flow.source=stored: {owner}model.flow.{key}={wanted!r} but --data_dir "
          f"{data_dir!r} stores flow with {SUMMARY_KEY}.{key}={have!r} (summary.json)")


def _decode_component(encoded, index, window, num: int):
  """uint8 [num, h, w]: the window of the grey JPEGs `encoded[index[k]]`."""
  # TensorFlow here for the reason given in `train_flow_clip`.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.stack([tf.io.decode_and_crop_jpeg(encoded[index[k]], window, channels=1)[..., 0]
                   for k in range(num)])


def train_flow_clip(rec: Mapping[str, Any], indices, window, flip, crop_size: int):
  """The stored flow of one training clip (see the module doc).

  Args:
    rec: a record parsed `with_flow` (`schema.parse_sequence_example`).
    indices: int32 [T], the clip's frame indices (`sampling.train_indices`).
    window: int32 [4] `(y, x, side, side)`, the frames' crop window.
    flip: bool scalar, whether the frames are mirrored
      (`preprocessing.flip_decision`).
    crop_size: S.

  Returns:
    float32 [T-1, S, S, 2], px at the clip's resolution: channel 0 = x
    (right), 1 = y (down), flow k from frame t_k to t_{k+1}.
  """
  # The tf.data side only (see the module doc): TensorFlow, `preprocessing` and
  # `tsnet_tf.flow` (whose package loads Keras) are imported when a clip is built.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import preprocessing  # pylint: disable=g-import-not-at-top
  from tsnet_tf.flow import quantize  # pylint: disable=g-import-not-at-top
  num = int(indices.shape[0]) - 1
  flow_x = rec[schema.FLOW_X_KEY]
  flow_y = rec[schema.FLOW_Y_KEY]
  stride = tf.cast(rec[schema.FLOW_STRIDE_KEY], tf.int32)
  num_flows = tf.shape(flow_x)[0]
  first, second = indices[:-1], indices[1:]
  # Pairs across a looped clip's seam have no stored flow.
  valid = tf.logical_and(tf.equal(second - first, stride), first < num_flows)
  safe = tf.where(valid, first, 0)

  def decode():
    return tf.stack([_decode_component(flow_x, safe, window, num),
                     _decode_component(flow_y, safe, window, num)], axis=-1)

  quantised = tf.cond(num_flows > 0, decode,
                      lambda: tf.fill(tf.stack([num, window[2], window[3], 2]),
                                      tf.constant(128, tf.uint8)))
  quantised = tf.cond(flip, lambda: tf.reverse(quantised, axis=[-2]), lambda: quantised)
  # The quantisation is linear: resizing the quantised values then dequantising
  # equals dequantising then resizing.
  resized = preprocessing.resize_window(quantised, crop_size)
  flow = quantize.uint8_to_flow_tf(resized, rec[schema.FLOW_BOUND_KEY])
  scale = tf.cast(crop_size, tf.float32) / tf.cast(window[2], tf.float32)
  sign_x = tf.where(flip, -1.0, 1.0)
  flow = flow * tf.stack([sign_x * scale, scale])
  flow = flow * tf.cast(valid, tf.float32)[:, None, None, None]
  return tf.ensure_shape(flow, [num, crop_size, crop_size, 2])
