r"""Writes a real-footage benchmark in HMDB51's layout: each class is one clip, forwards or backwards.

  python tools/make_footage_set.py --video_dir=../shared/data/video --output_dir=/tmp/footage

Every video under --video_dir (recursively) gives two classes, `<name>_fwd` and
`<name>_bwd` (or, with --factor=speed, `<name>_x1` and `<name>_x2`; with
--factor=pan, `<name>_left` and `<name>_right`, a camera pan added), cut into --windows_per_source temporally disjoint windows; split k
tests on two of them (rotating), the converter holds out validation windows
from the rest. See tsnet_tf/data/footage.py. Then:

  python tools/prepare_hmdb51.py --video_dir=/tmp/footage/videos \
      --split_dir=/tmp/footage/splits --output_dir=/tmp/footage_data --splits=1
"""

from absl import app
from absl import flags
import tqdm

from tsnet_tf.data import footage
from tsnet_tf.data import video
from tsnet_tf.utils import io as io_utils

_VIDEO_DIR = flags.DEFINE_string("video_dir", None, "Folder of real videos (searched "
                                 "recursively).", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Dataset root to create.", required=True)
_WINDOWS = flags.DEFINE_integer("windows_per_source", 6, "Disjoint windows cut from each "
                                "video (two are tested per split).", lower_bound=4)
_GAP = flags.DEFINE_integer("gap_frames", 2, "Frames left out between neighbouring windows.",
                            lower_bound=0)
_MIN_FRAMES = flags.DEFINE_integer("min_window_frames", 12, "Skip a video whose windows "
                                   "would be shorter than this.", lower_bound=2)
_MAX_FRAMES = flags.DEFINE_integer("max_window_frames", 64, "Longest window.", lower_bound=2)
_SHORT_SIDE = flags.DEFINE_integer("short_side", 240, "Scale larger frames down to this short "
                                   "side (0 keeps the size).", lower_bound=0)
_FACTOR = flags.DEFINE_enum("factor", "direction", list(footage.FACTORS),
                            "What tells the two classes of a video apart: direction "
                            "(<name>_fwd / <name>_bwd), speed (<name>_x1 / <name>_x2) or "
                            "an added camera pan (<name>_left / <name>_right).")
_OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace --output_dir if it exists and "
                                   "holds only a dataset make_footage_set wrote.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    paths = footage.find_videos(_VIDEO_DIR.value)
  except ValueError as e:  # not a directory; the message names the flag
    raise app.UsageError(str(e)) from e
  if not paths:
    raise app.UsageError(f"--video_dir {_VIDEO_DIR.value!r} holds no video "
                         f"({', '.join(video.VIDEO_EXTENSIONS)})")
  try:
    # Before any work: replacing --output_dir must never delete the input videos.
    io_utils.check_apart(_OUTPUT_DIR.value, "--output_dir", _VIDEO_DIR.value, "--video_dir")
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  try:
    with tqdm.tqdm(total=len(paths), unit="video", desc="make_footage_set", delay=1) as bar:
      summary = footage.build_direction_dataset(
          paths, _OUTPUT_DIR.value, windows_per_source=_WINDOWS.value, gap_frames=_GAP.value,
          min_window_frames=_MIN_FRAMES.value, max_window_frames=_MAX_FRAMES.value,
          short_side=_SHORT_SIDE.value, factor=_FACTOR.value, overwrite=_OVERWRITE.value, progress=bar.update)
  except ValueError as e:  # a bad flag value; the message names the flag
    raise app.UsageError(str(e)) from e
  print(f"wrote {summary.output_dir}: {len(summary.classes)} classes from "
        f"{len(summary.windows)} videos")
  for split, counts in summary.split_counts.items():
    print(f"split {split}: train {counts['train']} (validation is held out from these by "
          f"prepare_hmdb51), test {counts['test']}")
  for path, reason in summary.skipped.items():
    print(f"skipped {path}: {reason}")
  return 0


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
