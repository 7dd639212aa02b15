r"""Input benchmark: TFRecord tf.data pipeline vs decoding the AVI with PyAV at train time.

  python benchmarks/bench_input.py [--work_dir=/tmp/bench_input] [--num_classes=4] \
      [--videos_per_class=10] [--num_frames=25] [--crop_size=224] [--batch_size=8]

In one run, on the same cores and the same synthetic HMDB51-format videos
(320x240, 1-3 s):
  1. conversion speed of tsnet_tf.data.tfrecords.convert (videos/s, --num_workers),
  2. clips/s of `pipeline.make_dataset` (training mode),
  3. clips/s of a decode-at-train-time loader: tf.data over file paths whose
     map opens the AVI with PyAV, decodes up to the last sampled frame and keeps
     the sampled ones (what PyAV/decord loaders do; converting only the sampled
     frames to RGB, or every decoded one as MMAction2 does), with the same
     `sampling.train_indices` and the same `preprocessing.train_preprocess`
     crops and flips, AUTOTUNE-parallel like ours,
  4. clips/s one training step of the light student consumes (batch of
     `--batch_size`, T x S x S), if tsnet_tf.models is importable,
  5. the per-frame costs behind 2 and 3 (single thread, CPU time): decoding a
     JPEG frame (whole, and only an S x S window), decoding an MPEG-4 frame
     with PyAV, converting it to RGB; and the ratio they allow at best:
     (frames decoded up to the clip's end x MPEG-4 + T x RGB) / (T x JPEG).
Prints a markdown table: clips/s (wall clock, what training sees) and CPU-ms
per clip (CPU time of this process per clip: less sensitive to other load on a
shared machine).
"""

import os
import shutil
import tempfile
import time

from absl import app
from absl import flags

_WORK_DIR = flags.DEFINE_string("work_dir", None,
                                "Where the synthetic videos and TFRecords go (default: a temp "
                                "dir, removed at the end).")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 4, "Synthetic classes.", lower_bound=1)
_VIDEOS_PER_CLASS = flags.DEFINE_integer("videos_per_class", 10, "Videos per class.",
                                         lower_bound=2)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 25, "T, frames per clip.", lower_bound=1)
_CROP_SIZE = flags.DEFINE_integer("crop_size", 224, "S, crop side.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Clips per batch.", lower_bound=1)
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 12, "Batches timed per loader.",
                                    lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup_batches", 3, "Batches before timing starts.",
                               lower_bound=0)
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Conversion processes.", lower_bound=1)
_STUDENT = flags.DEFINE_boolean("student", True, "Also time the light student's train step.")


def _time_batches(ds, warmup: int, num_batches: int, batch_size: int):
  """(clips/s, CPU seconds per wall second) over `num_batches` after `warmup`."""
  it = iter(ds)
  for _ in range(warmup):
    next(it)
  t0, c0 = time.perf_counter(), sum(os.times()[:2])
  for _ in range(num_batches):
    next(it)
  wall = time.perf_counter() - t0
  cpu = sum(os.times()[:2]) - c0
  return num_batches * batch_size / wall, cpu / wall


def pyav_dataset(videos, num_frames: int, crop_size: int, batch_size: int, scale_range,
                 seed: int = 0, convert_all: bool = False):
  """The decode-at-train-time baseline (see module doc).

  Args:
    videos: list of (path, label, num_frames) of training videos.
    convert_all: convert every decoded frame to RGB, then pick the sampled ones
      (MMAction2's PyAVDecode); False converts only the sampled frames (the
      cheapest PyAV loader).

  Returns:
    tf.data.Dataset of (clips float32 [B, T, S, S, 3], labels int32 [B]).
  """
  import av  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import preprocessing  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import sampling  # pylint: disable=g-import-not-at-top

  def decode(path, indices):
    indices = indices.tolist()
    wanted = set(indices)
    last = max(indices)
    got = {}
    with av.open(path.decode()) as container:
      stream = container.streams.video[0]
      stream.thread_count = 1  # parallelism is across clips, as in our pipeline
      for i, frame in enumerate(container.decode(stream)):
        if convert_all or i in wanted:
          got[i] = frame.to_ndarray(format="rgb24")
        if i >= last:
          break
    # A header frame count can exceed what decodes: repeat the last frame.
    fallback = got[max(got)] if got else None
    return np.stack([got.get(i, fallback) for i in indices])

  paths, labels, counts = zip(*videos)
  ds = tf.data.Dataset.from_tensor_slices((list(paths), list(labels), list(counts)))
  ds = ds.shuffle(len(paths), seed=seed).repeat()
  ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))

  def load(inputs, clip_seed):
    path, label, count = inputs
    sample_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(clip_seed, 2))
    idx = sampling.train_indices(count, num_frames, sample_seed)
    frames = tf.numpy_function(decode, [path, idx], tf.uint8)
    frames.set_shape([num_frames, None, None, 3])
    clip = preprocessing.train_preprocess(frames, crop_size, crop_seed, scale_range=scale_range)
    return clip, tf.cast(label, tf.int32)

  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def student_step_rate(num_classes: int, num_frames: int, crop_size: int, batch_size: int):
  """Clips/s of one SGD train step of the light student, or None if models are missing."""
  try:
    from tsnet_tf.models import classifiers  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  model = classifiers.build_rgb_model(num_classes, num_frames, crop_size, backbone="light")
  model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 255, (batch_size, num_frames, crop_size, crop_size, 3)).astype("float32")
  y = rng.integers(0, num_classes, (batch_size,)).astype("int32")
  model.train_on_batch(x, y)  # trace and compile
  steps = 2
  t0 = time.perf_counter()
  for _ in range(steps):
    model.train_on_batch(x, y)
  return steps * batch_size / (time.perf_counter() - t0)


def frame_costs(videos, data_dir: str, crop_size: int, max_videos: int = 12):
  """Single-thread CPU ms per frame: JPEG (whole / S x S window), MPEG-4 decode, to RGB."""
  import av  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import schema  # pylint: disable=g-import-not-at-top

  def cpu():
    return time.process_time()

  decode_s = rgb_s = 0.0
  frames = 0
  for path, _, _ in videos[:max_videos]:
    with av.open(path) as container:
      stream = container.streams.video[0]
      stream.thread_count = 1
      t0 = cpu()
      decoded = list(container.decode(stream))
      t1 = cpu()
      for frame in decoded:
        frame.to_ndarray(format="rgb24")
      rgb_s += cpu() - t1
      decode_s += t1 - t0
      frames += len(decoded)
  record = next(iter(tf.data.TFRecordDataset(schema.list_shards(data_dir)).take(1)))
  encoded = schema.parse_sequence_example(record)[schema.FRAMES_KEY][:20]
  h, w = (int(v) for v in tf.io.extract_jpeg_shape(encoded[0])[:2])
  s = min(crop_size, h, w)
  window = tf.constant([(h - s) // 2, (w - s) // 2, s, s])
  jpeg = {}
  for name, fn in (("whole", lambda j: tf.io.decode_jpeg(j, channels=3)),
                   ("window", lambda j: tf.io.decode_and_crop_jpeg(j, window, channels=3))):
    for j in encoded[:2]:
      fn(j)
    t0 = cpu()
    for _ in range(5):
      for j in encoded:
        fn(j)
    jpeg[name] = (cpu() - t0) / (5 * len(encoded))
  mean_bytes = float(tf.reduce_mean(tf.cast(tf.strings.length(encoded), tf.float32)))
  return dict(mpeg4_decode_ms=1000 * decode_s / frames, to_rgb_ms=1000 * rgb_s / frames,
              jpeg_whole_ms=1000 * jpeg["whole"], jpeg_window_ms=1000 * jpeg["window"],
              jpeg_kb=mean_bytes / 1000, window=s, frame_shape=(h, w))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tsnet_tf.data import hmdb51  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top

  work = _WORK_DIR.value or tempfile.mkdtemp(prefix="bench_input-")
  synth_dir = os.path.join(work, "synthetic")
  data_dir = os.path.join(work, "tfrecords")
  try:
    if not os.path.isdir(synth_dir):
      print(f"generating {_NUM_CLASSES.value}x{_VIDEOS_PER_CLASS.value} synthetic videos ...")
      synthetic.generate_dataset(synth_dir, num_classes=_NUM_CLASSES.value,
                                 videos_per_class=_VIDEOS_PER_CLASS.value, seed=0,
                                 num_workers=2)
    shutil.rmtree(data_dir, ignore_errors=True)
    t0 = time.perf_counter()
    summary = tfrecords.convert(os.path.join(synth_dir, "videos"),
                                os.path.join(synth_dir, "splits"), data_dir,
                                num_workers=_NUM_WORKERS.value, progress=False)
    convert_s = time.perf_counter() - t0
    n_videos = summary["num_videos"] + summary["num_skipped"]

    t, s, b = _NUM_FRAMES.value, _CROP_SIZE.value, _BATCH_SIZE.value
    labels = pipeline.load_labels(data_dir)
    train = []
    for cls in labels:
      for e in hmdb51.parse_split_file(os.path.join(synth_dir, "splits",
                                                    hmdb51.split_file_name(cls, 1))):
        if e.subset_id == hmdb51.TRAIN:
          path = os.path.join(synth_dir, "videos", cls, e.video)
          train.append((path, labels.index(cls), video.probe_video(path).num_frames))
    # Frames have short side 240: (0.8, 1.0) is the default scale jitter (window
    # 192..240, resized); 224/240 is the paper's plain 224 crop (no resize).
    configs = (("scale jitter 0.8-1.0 (default)", (0.8, 1.0)),
               ("plain 224 crop, no jitter (paper)", (s / 240, s / 240)))
    rows = []
    for name, scale in configs:
      ours = _time_batches(
          pipeline.make_dataset(data_dir, 1, "train", num_frames=t, crop_size=s, batch_size=b,
                                scale_range=scale), _WARMUP.value, _NUM_BATCHES.value, b)
      theirs = _time_batches(pyav_dataset(train, t, s, b, scale), _WARMUP.value,
                             _NUM_BATCHES.value, b)
      rows.append((name, "PyAV, only sampled frames to RGB", ours, theirs))
    theirs = _time_batches(pyav_dataset(train, t, s, b, configs[0][1], convert_all=True),
                           _WARMUP.value, _NUM_BATCHES.value, b)
    rows.append((configs[0][0], "PyAV, every decoded frame to RGB (MMAction2 PyAVDecode)",
                 rows[0][2], theirs))
    student = student_step_rate(len(labels), t, s, b) if _STUDENT.value else None
    costs = frame_costs(train, data_dir, s)

    frames = summary["num_frames"] / max(summary["num_videos"], 1)
    print()
    print(f"Input benchmark: {n_videos} synthetic videos (320x240, mean {frames:.0f} frames), "
          f"split 1 train ({pipeline.count_videos(data_dir, 1, 'train')} videos), "
          f"T={t}, {s}x{s}, batch {b}, {os.cpu_count()} CPU cores")
    print()
    print("| crops | baseline | ours: tf.data over TFRecords | baseline: decode at train "
          "time | ours / baseline: clips/s (CPU-ms per clip) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, base, (ours, ours_cpu), (theirs, theirs_cpu) in rows:
      print(f"| {name} | {base} | {ours:.1f} clips/s, {1000 * ours_cpu / ours:.0f} CPU-ms/clip | "
            f"{theirs:.1f} clips/s, {1000 * theirs_cpu / theirs:.0f} CPU-ms/clip | "
            f"{ours / theirs:.2f}x ({(theirs_cpu / theirs) / (ours_cpu / ours):.2f}x) |")
    print()
    if student is None:
      print(f"Light student train step (batch {b}): not measured (--student=false or "
            "tsnet_tf.models unavailable)")
    else:
      print(f"Light student (backbone=light) SGD train step, batch {b}: consumes "
            f"{student:.1f} clips/s")
    print()
    print(f"Conversion (prepare_hmdb51, {_NUM_WORKERS.value} workers, short side 240, "
          f"JPEG q90): {n_videos} videos in {convert_s:.1f} s = "
          f"{n_videos / convert_s:.2f} videos/s")
    print()
    # Frames a decode-at-train-time loader decodes: from 0 to the clip's end;
    # the start is uniform in [0, n - T], so on average (n - T) / 2 + T.
    n_mean = sum(max(c, t) for _, _, c in train) / len(train)
    decoded = (n_mean - t) / 2 + t
    theirs_ms = decoded * costs["mpeg4_decode_ms"] + t * costs["to_rgb_ms"]
    ours_ms = t * costs["jpeg_window_ms"]
    h, w = costs["frame_shape"]
    print(f"Per-frame decode cost (one thread, CPU ms; {h}x{w} frames, JPEG "
          f"{costs['jpeg_kb']:.0f} kB a frame):")
    print()
    print("| step | ms / frame |")
    print("| --- | ---: |")
    print(f"| JPEG decode, whole frame | {costs['jpeg_whole_ms']:.3f} |")
    print(f"| JPEG decode, {costs['window']}x{costs['window']} window only (ours) | "
          f"{costs['jpeg_window_ms']:.3f} |")
    print(f"| MPEG-4 Part 2 decode (PyAV) | {costs['mpeg4_decode_ms']:.3f} |")
    print(f"| YUV -> RGB24 (PyAV to_ndarray) | {costs['to_rgb_ms']:.3f} |")
    print()
    print(f"Decode work per clip (T={t}, mean video {n_mean:.0f} frames, {decoded:.0f} decoded "
          f"by the baseline): baseline {theirs_ms:.1f} ms, ours {ours_ms:.1f} ms; "
          f"best possible ratio {theirs_ms / ours_ms:.2f}x before the shared crop/resize/"
          f"batch work, which lowers it further")
  finally:
    if _WORK_DIR.value is None:
      shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
