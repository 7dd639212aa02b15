"""The TFRecord schema of a converted data directory: what a reader needs.

One `tf.train.SequenceExample` per video; the TF Model Garden / DMVR /
MediaSequence key names, so their loaders read our records and ours read theirs:

  feature_lists:
    image/encoded        bytes, one JPEG per frame (RGB, after resize and stride)
  context:
    clip/label/index     int64   class index in label order (labels.txt)
    clip/label/text      bytes   class name
    clip/media_id        bytes   video id "<class>/<file name>"
    clip/video_index     int64   0..N-1, index of the video in (label, file name) order
    clip/num_frames      int64   number of JPEG frames stored
    image/frame_rate     float   frames per second of the stored frames
    image/height         int64   stored frame height
    image/width          int64   stored frame width
    image/format         bytes   b"jpeg"
    clip/split1..3       int64   0 unused, 1 train, 2 test, 3 validation (training
                                 videos held out by group, hmdb51.carve_validation)

Stored TV-L1 flow (optional: only in conversions made with
`prepare_hmdb51.py --flow_preset`; a record without these keys has no flow,
and readers that do not ask for flow never parse them):

  feature_lists:
    flow/x/encoded       bytes, one grey JPEG per flow field: the x component of
                         the TV-L1 flow from stored frame i to frame i + stride,
                         clipped to +-bound px and mapped to 0-255
                         (`flow.quantize.flow_to_uint8`, 128 = no motion)
    flow/y/encoded       bytes, the y components, same layout
  context:
    flow/stride          int64   stored frames between the two frames of a flow
    flow/bound           float   clip value in px of the quantisation
    flow/preset          bytes   tvl1 preset ("fast" or "accurate")
    flow/num_flows       int64   num_frames - stride (0 for shorter videos)

The files a reader opens in a data directory: `labels.txt`, `summary.json`
and the shards `hmdb51-SSSSS-of-NNNNN.tfrecord`. The converter that writes
them (and its resume state) is `tfrecords.py`; the tf.data pipeline that reads
them is `pipeline.py`.

TensorFlow is imported inside the functions that build or parse records: the
converter's spawned workers import this module (through `tfrecords`) and must
not load it.
"""

import os
import re
from typing import Dict, List, Sequence

from tsnet_tf.utils import labels as labels_lib

# Record keys.
FRAMES_KEY = "image/encoded"
LABEL_INDEX_KEY = "clip/label/index"
LABEL_TEXT_KEY = "clip/label/text"
MEDIA_ID_KEY = "clip/media_id"
VIDEO_INDEX_KEY = "clip/video_index"
NUM_FRAMES_KEY = "clip/num_frames"
FRAME_RATE_KEY = "image/frame_rate"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
FORMAT_KEY = "image/format"
FLOW_X_KEY = "flow/x/encoded"
FLOW_Y_KEY = "flow/y/encoded"
FLOW_STRIDE_KEY = "flow/stride"
FLOW_BOUND_KEY = "flow/bound"
FLOW_PRESET_KEY = "flow/preset"
FLOW_NUM_KEY = "flow/num_flows"


def split_key(split: int) -> str:
  """Context key holding a video's subset id (0/1/2) in official split `split`."""
  return f"clip/split{int(split)}"


# The files a reader opens in a data directory.
SHARD_PREFIX = "hmdb51"
SUMMARY_FILE = "summary.json"
LABELS_FILE = labels_lib.LABELS_FILE
_SHARD_RE = re.compile(rf"^{SHARD_PREFIX}-(\d{{5}})-of-(\d{{5}})\.tfrecord$")


def is_shard_name(name: str) -> bool:
  """Whether a file name is a complete shard's (`hmdb51-SSSSS-of-NNNNN.tfrecord`)."""
  return _SHARD_RE.match(name) is not None


def shard_name(index: int, num_shards: int) -> str:
  return f"{SHARD_PREFIX}-{index:05d}-of-{num_shards:05d}.tfrecord"


def list_shards(data_dir: str) -> List[str]:
  """Complete shard paths in `data_dir`, sorted. Raises FileNotFoundError if none."""
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"data_dir {data_dir!r} is not a directory")
  names = sorted(n for n in os.listdir(data_dir) if _SHARD_RE.match(n))
  if not names:
    raise FileNotFoundError(
        f"data_dir {data_dir!r} has no {SHARD_PREFIX}-*.tfrecord shards; "
        f"run tools/prepare_hmdb51.py first")
  return [os.path.join(data_dir, n) for n in names]


# ---------------------------------------------------------------------------
# Writing and parsing records.


def make_sequence_example(frames_jpeg: Sequence[bytes], label_index: int, label_text: str,
                          media_id: str, video_index: int, frame_rate: float, height: int,
                          width: int, split_ids: Dict[int, int], flow=None):
  """Builds one video's `tf.train.SequenceExample` (schema in the module doc).

  Args:
    frames_jpeg: JPEG bytes, one per frame.
    label_index, label_text: class index and name.
    media_id: video id, "<class>/<file>".
    video_index: the video's index in the data directory.
    frame_rate: fps of the stored frames.
    height, width: stored frame size.
    split_ids: {split: 0|1|2}.
    flow: optional stored flow, a mapping with `x` and `y` (lists of grey JPEG
      bytes, one per flow field), `stride` (int), `bound` (float) and
      `preset` (str); None writes no flow key (the records of a conversion
      without flow).

  Returns:
    tf.train.SequenceExample.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def i64(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

  def b(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

  ex = tf.train.SequenceExample()
  ctx = ex.context.feature
  ctx[LABEL_INDEX_KEY].CopyFrom(i64(label_index))
  ctx[LABEL_TEXT_KEY].CopyFrom(b(label_text.encode("utf-8")))
  ctx[MEDIA_ID_KEY].CopyFrom(b(media_id.encode("utf-8")))
  ctx[VIDEO_INDEX_KEY].CopyFrom(i64(video_index))
  ctx[NUM_FRAMES_KEY].CopyFrom(i64(len(frames_jpeg)))
  ctx[FRAME_RATE_KEY].CopyFrom(
      tf.train.Feature(float_list=tf.train.FloatList(value=[float(frame_rate)])))
  ctx[HEIGHT_KEY].CopyFrom(i64(height))
  ctx[WIDTH_KEY].CopyFrom(i64(width))
  ctx[FORMAT_KEY].CopyFrom(b(b"jpeg"))
  for k, v in sorted(split_ids.items()):
    ctx[split_key(k)].CopyFrom(i64(v))
  frames = ex.feature_lists.feature_list[FRAMES_KEY]
  for jpeg in frames_jpeg:
    frames.feature.add().bytes_list.value.append(jpeg)
  if flow is not None:
    if len(flow["x"]) != len(flow["y"]):
      raise ValueError(f"{media_id}: {len(flow['x'])} x flows but {len(flow['y'])} y flows")
    ctx[FLOW_STRIDE_KEY].CopyFrom(i64(flow["stride"]))
    ctx[FLOW_BOUND_KEY].CopyFrom(
        tf.train.Feature(float_list=tf.train.FloatList(value=[float(flow["bound"])])))
    ctx[FLOW_PRESET_KEY].CopyFrom(b(str(flow["preset"]).encode("utf-8")))
    ctx[FLOW_NUM_KEY].CopyFrom(i64(len(flow["x"])))
    for key, images in ((FLOW_X_KEY, flow["x"]), (FLOW_Y_KEY, flow["y"])):
      feature_list = ex.feature_lists.feature_list[key]
      for jpeg in images:
        feature_list.feature.add().bytes_list.value.append(jpeg)
  return ex


def context_features(splits: Sequence[int] = ()):
  """`tf.io` context feature spec (every context key, plus `clip/split<k>`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  spec = {
      LABEL_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64),
      LABEL_TEXT_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
      MEDIA_ID_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
      VIDEO_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
      NUM_FRAMES_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
      FRAME_RATE_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
      HEIGHT_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
      WIDTH_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
  }
  for k in splits:
    spec[split_key(k)] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
  return spec


def parse_sequence_example(serialized, splits: Sequence[int] = (), with_frames: bool = True,
                           with_flow: bool = False):
  """Parses one serialized record.

  Args:
    serialized: string scalar tensor.
    splits: official splits whose `clip/split<k>` to parse.
    with_frames: also parse the JPEG feature list (False is a cheap context-only parse).
    with_flow: also parse the stored flow (its context keys and the two JPEG
      lists; empty lists and `flow/stride` 0 in a record without flow).

  Returns:
    dict of the context keys (int64/float32/string scalars) and, with frames,
    `image/encoded`: string [N]; with flow, `flow/x/encoded` and
    `flow/y/encoded`: string [M] and the `flow/*` context keys.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  seq_spec = {}
  if with_frames:
    seq_spec[FRAMES_KEY] = tf.io.FixedLenSequenceFeature([], tf.string)
  context_spec = context_features(splits)
  if with_flow:
    for key in (FLOW_X_KEY, FLOW_Y_KEY):
      seq_spec[key] = tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
    context_spec.update({
        FLOW_STRIDE_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        FLOW_BOUND_KEY: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        FLOW_PRESET_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
        FLOW_NUM_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    })
  context, sequence = tf.io.parse_single_sequence_example(
      serialized, context_features=context_spec, sequence_features=seq_spec or None)
  out = dict(context)
  out.update(sequence)
  return out
