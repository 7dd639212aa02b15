"""Pixels and accuracy of the deployment paths against evaluation, per test video.

  python benchmarks/bench_clip_parity.py --model_dir=demo_out/models/student \
      --data_dir=demo_out/tfrecords --video_dir=demo_out/videos_hmdb51/videos \
      --split_dir=demo_out/videos_hmdb51/splits

For the centre clip of every test video of the split it compares, side by side:

  evaluation     the TFRecords through the tf.data eval pipeline (tools/evaluate.py)
  stored format  the video file, frames put in the stored format by the clip spec
                 (`ClipSpec.clip_of_video`: the converter's PIL resize + JPEG), as
                 tools/predict.py and tools/serve_client.py do now
  raw, in graph  raw decoded frames into the serving graph's preprocessing
                 (`ClipSpec.preprocess`: TF antialiased resize to the stored short
                 side, no JPEG), what a third-party client sending raw frames gets
  raw, old       raw decoded frames straight into `eval_preprocess` with the clip
                 spec's indices (the deployment path before the clip spec)

and prints the mean absolute pixel difference to evaluation's clip (0-255
scale), top-1 agreement with evaluation and clip accuracy of each.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training run directory.", required=True)
flags.DEFINE_string("data_dir", None, "Its TFRecords.", required=True)
flags.DEFINE_string("video_dir", None, "The videos the TFRecords were made from.",
                    required=True)
flags.DEFINE_string("split_dir", None, "Their split files.", required=True)
flags.DEFINE_integer("split", 1, "Split whose test videos are compared.")


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import preprocessing  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import run_dir  # pylint: disable=g-import-not-at-top

  model = run_dir.load_classifier(FLAGS.model_dir)
  spec, _ = run_dir.clip_contract(FLAGS.model_dir, model)
  plan = tfrecords.build_plan(FLAGS.video_dir, FLAGS.split_dir, [FLAGS.split])
  by_index = {v.video_index: v for v in plan.videos}
  ds = pipeline.make_dataset(FLAGS.data_dir, FLAGS.split, "test", training=False,
                             num_frames=spec.num_frames, crop_size=spec.crop_size,
                             frame_stride=spec.frame_stride, batch_size=1,
                             return_video_index=True)
  paths = ("evaluation", "stored format", "raw, in graph", "raw, old")
  diffs = {p: [] for p in paths}
  top = {p: [] for p in paths}
  labels = []
  for clip, label, index in ds:
    task = by_index[int(index[0])]
    frames = video.read_video(task.path)
    idx = spec.video_indices(len(frames))[0]
    clips = {
        "evaluation": clip.numpy(),
        "stored format": spec.preprocess(spec.clip_of_video(frames)).numpy(),
        "raw, in graph": spec.preprocess(frames[idx][None]).numpy(),
        "raw, old": preprocessing.eval_preprocess(frames[idx][None], spec.crop_size).numpy(),
    }
    for p in paths:
      diffs[p].append(float(np.abs(clips[p] - clips["evaluation"]).mean()))
      top[p].append(int(np.argmax(model(tf.constant(clips[p]), training=False)[0])))
    labels.append(int(label[0]))
  labels = np.array(labels)
  print(f"{FLAGS.model_dir}: {len(labels)} test videos, clip spec {spec.describe()}")
  print("| path | mean abs pixel diff to evaluation | top-1 = evaluation | clip accuracy |")
  print("| --- | ---: | ---: | ---: |")
  for p in paths:
    agree = np.mean(np.array(top[p]) == np.array(top["evaluation"]))
    acc = np.mean(np.array(top[p]) == labels)
    print(f"| {p} | {np.mean(diffs[p]):.2f} | {100 * agree:.1f} % | {100 * acc:.1f} % |")


if __name__ == "__main__":
  app.run(main)
