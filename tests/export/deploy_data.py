"""Test data for tests/export: generated videos in HMDB51 layout, a tiny student.

The videos go through the real path (AVI files in HMDB51 layout -> TFRecords ->
`make_dataset`), so training, int8 calibration and the evaluation set all come
from the TFRecords. Classes differ by colour under heavy noise: a few dozen
steps give a model with clear but not saturated decisions, which makes the
TFLite top-1 agreement a meaningful check.
"""

import os

import keras
import numpy as np

from tsnet_tf.data import clip_spec
from tsnet_tf.data import pipeline
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video
from tsnet_tf.models import build_rgb_model

T, S = 8, 32
CLASSES = ("clap", "run", "wave")
TRAIN_PER_CLASS, TEST_PER_CLASS = 8, 8
COLOURS = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200]], np.float32)


def _video(label, rng, lengths=(10, 15)):
  """uint8 [10..14, 36, 44, 3]: class colour, random brightness, noise, a moving bar."""
  n = int(rng.integers(*lengths))
  base = COLOURS[label] * rng.uniform(0.6, 1.1) + rng.uniform(-30, 30, 3)
  frames = base + rng.normal(0, 45, (n, 36, 44, 3))
  for t in range(n):
    x = (3 * t + int(rng.integers(0, 44))) % 40
    frames[t, :, x:x + 4] = rng.uniform(0, 255)
  return np.clip(frames, 0, 255).astype(np.uint8)


def write_dataset(root, lengths=(10, 15), short_side=0):
  """Writes videos + split files and converts them; returns (video_dir, data_dir).

  Args:
    root: directory to write into.
    lengths: [min, max) frames per video.
    short_side: the converter's `--short_side` (0 keeps 36x44).
  """
  rng = np.random.default_rng(0)
  video_dir, split_dir = os.path.join(root, "videos"), os.path.join(root, "splits")
  os.makedirs(split_dir)
  for label, cls in enumerate(CLASSES):
    os.makedirs(os.path.join(video_dir, cls))
    lines = []
    for i in range(TRAIN_PER_CLASS + TEST_PER_CLASS):
      name = f"{cls}_v{i:02d}.avi"
      video.write_video(os.path.join(video_dir, cls, name), _video(label, rng, lengths),
                        fps=25)
      lines.append(f"{name} {1 if i < TRAIN_PER_CLASS else 2}")
    for k in (1,):
      with open(os.path.join(split_dir, f"{cls}_test_split{k}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
  out = os.path.join(root, "data")
  tfrecords.convert(video_dir, split_dir, out, splits=(1,),
                    settings=tfrecords.ConversionSettings(short_side=short_side),
                    num_workers=1, num_shards=2, progress=False)
  return video_dir, out


def load_clips(data_dir, subset, num_clips):
  """(clips float32 [N, T, S, S, 3], labels int32 [N]): centre-spread eval clips."""
  ds = pipeline.make_dataset(data_dir, 1, subset, training=False, num_frames=T, crop_size=S,
                             batch_size=16, num_clips=num_clips)
  xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
  return np.concatenate(xs), np.concatenate(ys)


def train_student(data_dir, epochs=2):
  """A light student trained for a few epochs on 2 clips per training video."""
  x, y = load_clips(data_dir, "train", num_clips=2)
  keras.utils.set_random_seed(0)
  model = build_rgb_model(len(CLASSES), T, S, backbone="light", width=8, dropout_rate=0.0)
  # No XLA: compiling would cost more than these few steps.
  model.compile(keras.optimizers.Adam(3e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
  model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)
  return model


def spec(data_dir, frame_stride=1):
  """The clip spec of a model trained on `data_dir` with `load_clips`' clips."""
  return clip_spec.ClipSpec(T, S, frame_stride, clip_spec.StoredFrames.from_conversion(
      pipeline.load_summary(data_dir)["settings"]))
