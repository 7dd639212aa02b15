"""Writes a synthetic HMDB51-format dataset: classes by motion or appearance x motion.

  python tools/make_synthetic.py --output_dir=/tmp/synth --num_classes=4 \
      --videos_per_class=10 --seed=0 [--broken=empty,truncated,garbage]
  python tools/make_synthetic.py --output_dir=/tmp/am --num_classes=2 \
      --appearances=red,green,blue     # 6 classes: red_move_left, ..., blue_move_right

Layout: <output_dir>/videos/<class>/<name>.avi, <output_dir>/splits/
<class>_test_split{1,2,3}.txt (HMDB51's formats), <output_dir>/manifest.json.
See tsnet_tf/data/synthetic.py for the classes and how they are drawn.
"""

from absl import app
from absl import flags
import tqdm

from tsnet_tf.data import synthetic
from tsnet_tf.data import synthetic_render

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Dataset root to create.", required=True)
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", 4, f"Number of motion classes, the first N of: "
    f"{', '.join(synthetic_render.MOTION_CLASSES)}.", lower_bound=1,
    upper_bound=len(synthetic_render.MOTION_CLASSES))
_APPEARANCES = flags.DEFINE_list(
    "appearances", [], "Object colour families (" + ", ".join(synthetic_render.APPEARANCES) + "): "
    "if given, each class is an appearance x motion pair, e.g. red_move_left, so a single "
    "frame tells the colour and only motion tells the direction.")
_VIDEOS_PER_CLASS = flags.DEFINE_integer(
    "videos_per_class", 10, "Good videos per class (broken ones come on top).", lower_bound=2)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed; the same flags give the same bytes.")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height in pixels (even, >= 16).",
                               lower_bound=16)
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width in pixels (even, >= 16).", lower_bound=16)
_MIN_SECONDS = flags.DEFINE_float("min_seconds", 1.0, "Shortest video duration (s).")
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 3.0, "Longest video duration (s).")
_FPS = flags.DEFINE_list(
    "fps", ["25", "29.97", "30"],
    "Frame rates; each video draws one of them (29.97 is written as 30000/1001).")
_BROKEN = flags.DEFINE_string(
    "broken", "", "Broken files to add, listed in the splits: a comma list of "
    f"{', '.join(synthetic.BROKEN_KINDS)} (repeats allowed), or a count N (kinds in turn).")
_OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace --output_dir if it exists.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 1,
                                    "Threads rendering and encoding videos (output is "
                                    "identical for any value).", lower_bound=1)


def _parse_fps(values):
  try:
    fps = [float(v) for v in values]
  except ValueError:
    raise app.UsageError(f"--fps must be a comma list of numbers, got {','.join(values)!r}")
  if not fps:
    raise app.UsageError("--fps must name at least one frame rate")
  return [30000 / 1001 if abs(f - 29.97) < 1e-6 else f for f in fps]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    broken = synthetic.parse_broken(_BROKEN.value)
  except ValueError as e:
    raise app.UsageError(str(e))
  total = (_NUM_CLASSES.value * max(1, len(_APPEARANCES.value)) * _VIDEOS_PER_CLASS.value
           + len(broken))
  # delay: a flag or --output_dir refused at once prints only its one error line.
  with tqdm.tqdm(total=total, unit="video", desc="make_synthetic", delay=1) as bar:
    try:
      summary = synthetic.generate_dataset(
          _OUTPUT_DIR.value, num_classes=_NUM_CLASSES.value,
          videos_per_class=_VIDEOS_PER_CLASS.value, seed=_SEED.value, height=_HEIGHT.value,
          width=_WIDTH.value, min_seconds=_MIN_SECONDS.value, max_seconds=_MAX_SECONDS.value,
          fps=_parse_fps(_FPS.value), broken=broken, overwrite=_OVERWRITE.value,
          num_workers=_NUM_WORKERS.value, progress=bar.update,
          appearances=tuple(_APPEARANCES.value))
    except ValueError as e:  # a bad flag value; the message names the flag
      raise app.UsageError(str(e))
  print(synthetic.format_summary(summary))


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
