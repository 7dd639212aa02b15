"""Classifies a video with a model served by TF-Serving (gRPC, or REST with --rest).

  python tools/serve_client.py --server=localhost:8500 --model_name=student --video=clap.avi
  python tools/serve_client.py --rest --server=localhost:8501 --model_name=student \
      --video=clap.avi

The clip (T frames, full resolution, short videos looped) is sent as uint8
`frames` to `serving_default`; resizing and cropping happen in the served graph.
T, the frame stride and the class names come from the model's `metadata`
signature unless --num_frames / --frame_stride / --labels are given.
"""

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("server", "localhost:8500", "host:port of the gRPC (or REST) endpoint.")
flags.DEFINE_string("model_name", None, "Model name on the server.")
flags.DEFINE_integer("model_version", None, "Model version (default: the server's latest).")
flags.DEFINE_string("video", None, "Video file to classify.")
flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
flags.DEFINE_integer("num_frames", None, "Frames to send (default: the model's T).")
flags.DEFINE_string("labels", None, "Class names file (default: from the model).")
flags.DEFINE_integer("frame_stride", None,
                     "Step between the frames sent (default: the model's metadata).",
                     lower_bound=1)
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for the server.")
flags.mark_flags_as_required(["model_name", "video"])


def main(argv):
  del argv
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import predict  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import saved_model as sm  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import serving  # pylint: disable=g-import-not-at-top
  call = serving.predict_rest if FLAGS.rest else serving.predict_grpc
  try:
    meta = None
    if FLAGS.num_frames is None or FLAGS.labels is None or FLAGS.frame_stride is None:
      meta = serving.fetch_metadata(FLAGS.server, FLAGS.model_name, FLAGS.model_version,
                                    rest=FLAGS.rest, timeout=FLAGS.timeout)
    num_frames = FLAGS.num_frames or meta["num_frames"]
    labels = sm.read_labels(FLAGS.labels) if FLAGS.labels else meta["labels"]
    frame_stride = FLAGS.frame_stride or meta["frame_stride"]
    frames = predict.video_clip(FLAGS.video, num_frames, frame_stride)[None]
    probs, ids = call(FLAGS.server, FLAGS.model_name, frames, version=FLAGS.model_version,
                      timeout=FLAGS.timeout)
  except video.VideoDecodeError as e:
    raise app.UsageError(f"--video: {e}") from e
  except serving.ServingError as e:
    raise SystemExit(f"server {FLAGS.server} refused the request: {e}") from e
  except FileNotFoundError as e:
    raise app.UsageError(str(e)) from e
  print(f"{FLAGS.video} via {'REST' if FLAGS.rest else 'gRPC'} {FLAGS.server} "
        f"model {FLAGS.model_name}")
  for rank, i in enumerate(ids[0], 1):
    if i >= 0:
      print(f"{rank}. {labels[i]:<24s} {probs[0][i]:.4f}")


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
