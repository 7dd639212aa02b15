"""Top-5 classes of a video file with an exported model.

  python tools/predict.py --model=saved_models/student/1 --video=clap.avi
  python tools/predict.py --model=student_int8.tflite --video=clap.avi
  python tools/predict.py --model=runs/student/model.keras --video=clap.avi

Any resolution or length (short videos are looped). The clip (T, frame stride,
crop, the frame format trained on) and the class names come from the artifact
itself; --frame_stride and --labels override them.
"""

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "SavedModel version dir (or its parent), .keras or .tflite.")
flags.DEFINE_string("video", None, "Video file to classify.")
flags.DEFINE_string("labels", None, "Class names file (default: those --model carries).")
flags.DEFINE_integer("top_k", 5, "How many classes to print.", lower_bound=1)
flags.DEFINE_integer("frame_stride", None,
                     "Step between the clip's frames, in the stored frames the model was "
                     "trained on (default: the model's clip spec).", lower_bound=1)
flags.mark_flags_as_required(["model", "video"])


def main(argv):
  del argv
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import predict  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  try:
    predictor = predict.load_predictor(FLAGS.model, FLAGS.labels,
                                       frame_stride=FLAGS.frame_stride)
  except ValueError as e:
    message = str(e)
    raise app.UsageError(message if message.startswith("--") else f"--model: {message}") from e
  try:
    top = predict.predict_video(predictor, FLAGS.video, FLAGS.top_k)
  except video.VideoDecodeError as e:
    raise cli.ToolError(f"--video: {e}") from e
  except ValueError as e:
    where = f"--labels {FLAGS.labels!r}: " if FLAGS.labels else f"--model {FLAGS.model!r}: "
    raise app.UsageError(where + str(e)) from e
  print(f"{FLAGS.video} ({predictor.kind}, {predictor.spec.describe()})")
  for rank, (name, prob) in enumerate(top, 1):
    print(f"{rank}. {name:<24s} {prob:.4f}")
  note = predict.generated_classes_note(predictor.labels)
  if note:
    print(note)


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
