"""Classifies a video with a model served by TF-Serving (gRPC, or REST with --rest).

  python tools/serve_client.py --server=localhost:8500 --model_name=student --video=clap.avi
  python tools/serve_client.py --rest --server=localhost:8501 --model_name=student \
      --video=clap.avi

The model's clip spec and class names come from its `metadata` signature on the
server. The client sends the run of consecutive frames that holds the video's
centre clip, in the frame format the model was trained on (size, JPEG quality);
the served graph samples and crops the clip exactly as evaluation does.
--labels overrides the class names; --num_frames / --frame_stride are used only
for exports that predate the clip spec (their graph takes the T frames as sent).
"""

import http.client
import urllib.error

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
flags.DEFINE_string("server", "localhost:8500", "host:port of the gRPC (or REST) endpoint.")
flags.DEFINE_string("model_name", None, "Model name on the server.")
flags.DEFINE_integer("model_version", None, "Model version (default: the server's latest).")
flags.DEFINE_string("video", None, "Video file to classify.")
flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
flags.DEFINE_integer("num_frames", None,
                     "Exports without a clip spec only: frames to send (default: the model's T).",
                     lower_bound=1)
flags.DEFINE_string("labels", None, "Class names file (default: from the model).")
flags.DEFINE_integer("frame_stride", None,
                     "Exports without a clip spec only: step between the frames sent "
                     "(default: the model's metadata).",
                     lower_bound=1)
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for the server.", lower_bound=0.001)
flags.mark_flags_as_required(["model_name", "video"])


def main(argv):
  del argv
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import serving  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import labels as labels_lib  # pylint: disable=g-import-not-at-top
  call = serving.predict_rest if FLAGS.rest else serving.predict_grpc
  try:
    meta = serving.fetch_metadata(FLAGS.server, FLAGS.model_name, FLAGS.model_version,
                                  rest=FLAGS.rest, timeout=FLAGS.timeout)
    if meta["clip_spec"] is None:
      meta["num_frames"] = FLAGS.num_frames or meta["num_frames"]
      meta["frame_stride"] = FLAGS.frame_stride or meta["frame_stride"]
    elif FLAGS.num_frames is not None or FLAGS.frame_stride is not None:
      logging.warning("the model's clip spec decides the clip (%s); --num_frames and "
                      "--frame_stride are ignored", meta["clip_spec"].describe())
    labels = meta["labels"]
    if FLAGS.labels:
      labels = labels_lib.read_labels(FLAGS.labels)
      if meta["labels"] and len(labels) != len(meta["labels"]):
        raise app.UsageError(f"--labels {FLAGS.labels!r}: {len(labels)} class names for a "
                             f"model with {len(meta['labels'])} classes")
    frames = serving.check_frames(serving.video_to_send(meta, FLAGS.video))
    probs, ids = call(FLAGS.server, FLAGS.model_name, frames, version=FLAGS.model_version,
                      timeout=FLAGS.timeout)
  except video.VideoDecodeError as e:
    raise cli.ToolError(f"--video: {e}") from e
  except serving.ServingError as e:
    raise cli.ToolError(f"server {FLAGS.server} refused the request: {e}") from e
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as e:
    # Unreachable, hung or non-HTTP servers: cli.run's message, with the server named.
    raise cli.ToolError(f"--server {FLAGS.server}: {cli.describe(e)[0]}") from e
  spec = meta["clip_spec"]
  print(f"{FLAGS.video} via {'REST' if FLAGS.rest else 'gRPC'} {FLAGS.server} "
        f"model {FLAGS.model_name}" + (f" ({spec.describe()})" if spec else ""))
  for rank, i in enumerate(ids[0], 1):
    if i >= 0:
      print(f"{rank}. {labels[i]:<24s} {probs[0][i]:.4f}")


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
