"""Sliding-window action recognition over a long video or a live stream.

  python tools/recognize.py --model=student.tflite --video=long.mp4 --output_dir=out
  python tools/recognize.py --model=saved_models/student/1 --video=rtsp://cam/stream
  python tools/recognize.py --model=student.keras --video=/dev/video0
  ffmpeg -i x.mp4 -f rawvideo -pix_fmt rgb24 - | \\
      python tools/recognize.py --model=m.tflite --video=- --stdin_size=320x240 --stdin_fps=25
  python tools/recognize.py --server=localhost:8500 --model_name=student --video=long.mp4

Prints one line per window (start and end times, top classes) and a last line
saying how the stream ended; under --output_dir writes windows.jsonl (flushed
per window), segments.json (smoothed segments) and, on request, annotated.mp4
and timeline.png. The clip (T, frame stride, frame format) and the class names
come from the model itself. See docs/recognize.md.
"""

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "SavedModel version dir (or its parent), .keras or .tflite.")
flags.DEFINE_string("server", None, "TF-Serving host:port instead of --model (gRPC; --rest "
                    "for the REST port).")
flags.DEFINE_string("model_name", None, "The model's name on --server.")
flags.DEFINE_boolean("rest", False, "Talk to --server over REST.")
flags.DEFINE_string("video", None, "Video file, http(s):// or rtsp:// URL, /dev/videoN, or - "
                    "for raw RGB24 frames on stdin (with --stdin_size, --stdin_fps).")
flags.DEFINE_string("stdin_size", None, "WxH of the raw frames on stdin.")
flags.DEFINE_float("stdin_fps", None, "Frame rate of the raw frames on stdin.")
flags.DEFINE_string("output_dir", None, "Where windows.jsonl, segments.json (and "
                    "annotated.mp4, timeline.png) go; none: print only.")
flags.DEFINE_integer("hop", None, "Frames between window starts (default: half a clip).",
                     lower_bound=1)
flags.DEFINE_integer("top_k", 3, "Classes per window.", lower_bound=1)
flags.DEFINE_integer("smooth", 3, "Windows in the moving average before segmenting.",
                     lower_bound=1)
flags.DEFINE_float("min_segment", None, "Shortest segment kept, seconds (default: one clip).",
                   lower_bound=0.0)
flags.DEFINE_boolean("annotate", False, "Write annotated.mp4 (label and score on every frame).")
flags.DEFINE_boolean("timeline", False, "Write timeline.png (classes over time).")
flags.DEFINE_boolean("realtime", False, "Read a file at its frame rate, as a camera: windows "
                     "the model cannot keep up with are dropped.")
flags.DEFINE_enum("live", "auto", ["auto", "true", "false"], "Drop windows rather than lag "
                  "(auto: rtsp, /dev/video and stdin are live; files and http(s) are not).")
flags.DEFINE_enum("rtsp_transport", "tcp", ["tcp", "udp", "auto"], "rtsp:// media over the "
                  "RTSP TCP connection (no lost packets), UDP, or auto (FFmpeg's: UDP, then TCP).")
flags.DEFINE_float("timeout", 10.0, "Seconds without a frame before a stream counts as "
                   "stalled.", lower_bound=0.1)
flags.DEFINE_integer("num_threads", None, "TFLite interpreter threads.", lower_bound=1)
flags.DEFINE_string("labels", None, "Class names file (default: those the model carries).")
flags.DEFINE_integer("frame_stride", None, "Override the model's clip frame stride.",
                     lower_bound=1)
flags.DEFINE_boolean("quiet", False, "No per-window lines and no progress on the terminal.")
flags.mark_flag_as_required("video")


def main(argv):
  del argv
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import streams  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import recognize  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.check_dir_flag("output_dir", FLAGS.output_dir)
  if bool(FLAGS.model) == bool(FLAGS.server):
    raise app.UsageError("give either --model or --server (with --model_name)")
  if FLAGS.server and not FLAGS.model_name:
    raise app.UsageError("--server needs --model_name")
  live = {"auto": None, "true": True, "false": False}[FLAGS.live]
  try:
    # The source first: a wrong --video is named before a model is loaded.
    source = streams.open_source(FLAGS.video, FLAGS.stdin_size, FLAGS.stdin_fps,
                                 timeout=FLAGS.timeout, realtime=FLAGS.realtime, live=live,
                                 rtsp_transport=FLAGS.rtsp_transport)
  except video.VideoDecodeError as e:
    raise cli.ToolError(f"--video: {e}") from e
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  try:
    classifier = recognize.load_classifier(
        FLAGS.model, FLAGS.server, FLAGS.model_name, FLAGS.rest, FLAGS.labels,
        FLAGS.num_threads, FLAGS.frame_stride)
  except ValueError as e:
    source.close()
    message = str(e)
    raise app.UsageError(message if message.startswith("--") or message.startswith("give")
                         else f"--model: {message}") from e
  print(f"{FLAGS.video} ({classifier.kind}, {classifier.spec.describe()}, "
        f"{source.fps:g} fps{', live' if source.live else ''})", flush=True)
  try:
    result = recognize.recognize(
        classifier, source, FLAGS.output_dir, hop=FLAGS.hop, top_k=FLAGS.top_k,
        smooth=FLAGS.smooth, min_segment=FLAGS.min_segment, annotate=FLAGS.annotate,
        timeline=FLAGS.timeline, stall_timeout=FLAGS.timeout, print_windows=not FLAGS.quiet,
        progress=not FLAGS.quiet)
  except video.VideoDecodeError as e:
    raise cli.ToolError(f"--video: {e}") from e
  for seg in result.segments:
    print(f"segment {seg.start:8.2f}s - {seg.end:8.2f}s  {seg.label}  {seg.score:.2f}")
  print(result.summary(FLAGS.video), flush=True)
  if result.interrupted:
    return cli.INTERRUPTED_EXIT
  return 0


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
