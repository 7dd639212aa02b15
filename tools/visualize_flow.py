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
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
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
                   "saturated; 0 = the largest in each row.")


def pick_triplets(num_frames: int, rows: int, stride: int):
  """Start indices of `rows` triplets (t, t+s, t+2s) spread over the video.

  Raises:
    ValueError: the video is too short for one triplet.
  """
  span = 2 * stride
  if num_frames <= span:
    raise ValueError(f"the video has {num_frames} frames; a triplet with "
                     f"--stride={stride} needs at least {span + 1}")
  starts = np.linspace(0, num_frames - 1 - span, rows)
  return [int(round(s)) for s in starts]


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
  if not size:
    return frames
  from PIL import Image
  height, width = frames.shape[1:3]
  scale = size / max(height, width)
  new = (max(2, int(round(width * scale))), max(2, int(round(height * scale))))
  return np.stack([np.asarray(Image.fromarray(f).resize(new, Image.BILINEAR))
                   for f in frames])


def flow_figure(frames: np.ndarray, rows: int = 3, stride: int = 1,
                preset: str = "accurate", max_flow: float = 0.0):
  """Computes the flows and returns the figure as uint8 RGB `[H', W', 3]`.

  Args:
    frames: uint8 `[T, H, W, 3]` video frames.
    rows: triplets to draw.
    stride: frame step inside a triplet.
    preset: TV-L1 preset.
    max_flow: saturation magnitude in px; 0 = per row maximum.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from tsnet_tf.flow import flow_to_rgb
  from tsnet_tf.flow import tvl1

  starts = pick_triplets(len(frames), rows, stride)
  first, second = [], []
  for t in starts:
    for k in range(2):
      first.append(frames[t + k * stride])
      second.append(frames[t + (k + 1) * stride])
  # All 2*rows pairs in one batch.
  flows = np.asarray(tvl1(np.asarray(first, np.float32),
                          np.asarray(second, np.float32), preset))
  height, width = frames.shape[1:3]
  fig, axes = plt.subplots(len(starts), 5, squeeze=False,
                           figsize=(5 * 2.4, len(starts) * 2.4 * height
                                    / width + 0.4))
  for r, t in enumerate(starts):
    pair = flows[2 * r:2 * r + 2]
    peak = max_flow or max(float(np.hypot(pair[..., 0], pair[..., 1]).max()),
                           1e-6)
    images = [frames[t + k * stride] for k in range(3)]
    images += [flow_to_rgb(f, max_flow=peak) for f in pair]
    titles = [f"frame {t + k * stride}" for k in range(3)]
    titles += [f"flow {t}->{t + stride}", f"flow {t + stride}->{t + 2 * stride}"]
    for ax, image, title in zip(axes[r], images, titles):
      ax.imshow(image)
      ax.set_title(title + (f" (max {peak:.1f}px)" if "flow" in title
                            else ""), fontsize=8)
      ax.axis("off")
  fig.tight_layout()
  fig.canvas.draw()
  figure = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return figure


def visualize_video(video: str, output: str, rows: int = 3, size: int = 224,
                    stride: int = 1, preset: str = "accurate",
                    max_flow: float = 0.0) -> None:
  """Reads `video`, draws the flow figure and writes it to `output` (PNG)."""
  from PIL import Image
  from tsnet_tf.data.video import read_video
  from tsnet_tf.utils import io
  frames = read_video(video)
  try:
    figure = flow_figure(_resize(frames, size), rows, stride, preset,
                         max_flow)
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
  if not os.path.isfile(FLAGS.video):
    raise app_usage(f"--video={FLAGS.video}: no such file")
  if not FLAGS.output.lower().endswith(".png"):
    raise app_usage(f"--output={FLAGS.output}: must end in .png")
  if FLAGS.rows < 1 or FLAGS.stride < 1 or FLAGS.size < 0:
    raise app_usage("--rows and --stride must be >= 1 and --size >= 0")
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
