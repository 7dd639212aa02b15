"""Draws TV-L1 flow of a video like the paper's Fig. 5.

Each row: three consecutive frames, then the flow from frame 1 to 2 and from
frame 2 to 3, colour-coded with the Middlebury wheel (one scale per row).

  .venv/bin/python tools/visualize_flow.py --video=F.avi --output=F.png
  .venv/bin/python tools/visualize_flow.py --video=F.avi --output=F.png \
      --rows=4 --size=224 --preset=accurate
"""

import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from tsnet_tf.flow.visualize import pick_triplets
from tsnet_tf.flow.visualize import triplet_indices
from tsnet_tf.flow.visualize import triplets_figure
from tsnet_tf.utils import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("video", None, "Input video file (any format PyAV reads).")
flags.DEFINE_string("output", None, "Output PNG path.")
flags.DEFINE_integer("rows", 3, "Number of rows (frame triplets), spread "
                     "evenly over the video.")
flags.DEFINE_integer("size", 224, "Frames are resized so the longer side is "
                     "this many pixels before the flow (0 keeps the size).")
flags.DEFINE_integer("stride", 1, "Frame step inside a triplet (1 = "
                     "consecutive frames).")
flags.DEFINE_enum("preset", "accurate", ["accurate", "fast"], "TV-L1 preset.")
flags.DEFINE_float("max_flow", 0.0, "Flow magnitude (px) drawn fully "
                   "saturated (> 0); 0 = the largest in each row.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")


def _longer_side_size(height: int, width: int, size: int):
  """(height, width) with the longer side scaled to `size` (0: unchanged)."""
  if not size:
    return height, width
  scale = size / max(height, width)
  return max(2, int(round(height * scale))), max(2, int(round(width * scale)))


def visualize_video(video: str, output: str, rows: int = 3, size: int = 224,
                    stride: int = 1, preset: str = "accurate",
                    max_flow: float = 0.0) -> None:
  """Reads `video`, draws the flow figure and writes it to `output` (PNG).

  Decodes only the triplets' frames, resized as they are decoded, so memory
  does not grow with the video.
  """
  from PIL import Image
  from tsnet_tf.data import video as video_lib
  from tsnet_tf.utils import io
  resize = lambda f: video_lib.resize_frame(f, _longer_side_size(*f.shape[:2], size))
  try:
    read = video_lib.read_selection(
        video, lambda n: triplet_indices(pick_triplets(n, rows, stride), stride), resize)
    starts = pick_triplets(read.num_frames, rows, stride)
    figure = triplets_figure(read.frames, starts, stride, preset, max_flow)
  except video_lib.VideoDecodeError:
    raise
  except ValueError as e:
    raise ValueError(f"--video={video}: {e}") from e
  with io.atomic_write(output) as tmp:
    Image.fromarray(figure).save(tmp, format="PNG")


def main(argv):
  del argv
  if not FLAGS.video:
    raise app_usage("--video is required")
  if not FLAGS.output:
    raise app_usage("--output is required")
  if os.path.isdir(FLAGS.video):
    raise app_usage(f"--video={FLAGS.video}: is a directory, not a video file")
  if not os.path.isfile(FLAGS.video):
    raise app_usage(f"--video={FLAGS.video}: no such file")
  if not FLAGS.output.lower().endswith(".png"):
    raise app_usage(f"--output={FLAGS.output}: must end in .png")
  if FLAGS.rows < 1 or FLAGS.stride < 1 or FLAGS.size < 0:
    raise app_usage("--rows and --stride must be >= 1 and --size >= 0")
  # A negative scale would draw every flow fully saturated; 0 means per row.
  if not FLAGS.max_flow >= 0 or FLAGS.max_flow == float("inf"):
    raise app_usage(f"--max_flow={FLAGS.max_flow}: must be > 0 px, or 0 for the "
                    "largest in each row")
  from tsnet_tf.utils import io
  try:
    # Before any flow: a file the user did not ask to replace is kept.
    io.check_new_file(FLAGS.output, FLAGS.overwrite, "--output")
  except (FileExistsError, IsADirectoryError) as e:
    raise app_usage(str(e)) from e
  try:
    visualize_video(FLAGS.video, FLAGS.output, FLAGS.rows, FLAGS.size,
                    FLAGS.stride, FLAGS.preset, FLAGS.max_flow)
  except ValueError as e:
    # VideoDecodeError (unreadable, empty) or too few frames for a triplet.
    message = str(e)
    raise cli.ToolError(message if "--video" in message
                        else f"--video={FLAGS.video}: {message}") from e
  print(f"wrote {FLAGS.output}")


def app_usage(message):
  from absl import app
  return app.UsageError(message)


if __name__ == "__main__":
  cli.run(main)
