"""HMDB51's official layout: class folders, split files and label order.

This module is the one place that knows the release's conventions (see
`shared/hmdb51.md`): the synthetic generator writes them, the converter reads them.

Layout:
  <video_dir>/<class>/<name>.avi
  <split_dir>/<class>_test_split<k>.txt   (k = 1, 2, 3; lines "<name> <id>")
Split ids: 1 = training, 2 = testing, 0 = not used in that split.
"""

import dataclasses
import os
import re
from typing import Dict, Iterable, List, Sequence

# The 51 classes in the conventional label order (sorted by name, label 0 first).
CLASSES = (
    "brush_hair", "cartwheel", "catch", "chew", "clap", "climb", "climb_stairs", "dive",
    "draw_sword", "dribble", "drink", "eat", "fall_floor", "fencing", "flic_flac", "golf",
    "handstand", "hit", "hug", "jump", "kick", "kick_ball", "kiss", "laugh", "pick", "pour",
    "pullup", "punch", "push", "pushup", "ride_bike", "ride_horse", "run", "shake_hands",
    "shoot_ball", "shoot_bow", "shoot_gun", "sit", "situp", "smile", "smoke", "somersault",
    "stand", "swing_baseball", "sword", "sword_exercise", "talk", "throw", "turn", "walk",
    "wave",
)

SPLITS = (1, 2, 3)
UNUSED, TRAIN, TEST = 0, 1, 2
SUBSET_IDS = {"train": TRAIN, "test": TEST}

_SPLIT_FILE_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>[0-9]+)\.txt$")


class LayoutError(ValueError):
  """The video or split directory does not follow HMDB51's layout."""


def split_file_name(class_name: str, split: int) -> str:
  """`brush_hair`, 1 -> `brush_hair_test_split1.txt`."""
  return f"{class_name}_test_split{split}.txt"


@dataclasses.dataclass(frozen=True)
class SplitEntry:
  video: str  # file name, e.g. "April_09_brush_hair_u_nm_np1_ba_goo_0.avi"
  subset_id: int  # 0 unused, 1 train, 2 test


def parse_split_file(path: str) -> List[SplitEntry]:
  """Parses one `<class>_test_split<k>.txt`.

  Blank lines are skipped; trailing spaces are allowed. Any other malformed line
  raises `LayoutError` naming the file and the line number.
  """
  entries = []
  with open(path, "r", encoding="utf-8", errors="replace") as f:
    for lineno, line in enumerate(f, start=1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
        raise LayoutError(
            f"{path}:{lineno}: expected '<video file name> <0|1|2>', got {line.rstrip()!r}")
      entries.append(SplitEntry(video=fields[0], subset_id=int(fields[1])))
  return entries


def format_split_lines(entries: Iterable[SplitEntry], trailing_space: bool = True) -> str:
  """The text of a split file; the official files end each line with a space."""
  pad = " " if trailing_space else ""
  return "".join(f"{e.video} {e.subset_id}{pad}\n" for e in entries)


def list_class_dirs(video_dir: str) -> List[str]:
  """Class folder names under `video_dir`, sorted (the conventional label order)."""
  if not os.path.isdir(video_dir):
    raise LayoutError(f"--video_dir {video_dir!r} is not a directory")
  names = sorted(d for d in os.listdir(video_dir)
                 if os.path.isdir(os.path.join(video_dir, d)) and not d.startswith("."))
  if not names:
    raise LayoutError(f"--video_dir {video_dir!r} has no class folders")
  return names


def read_splits(split_dir: str, class_names: Sequence[str],
                splits: Sequence[int] = SPLITS) -> Dict[int, Dict[str, List[SplitEntry]]]:
  """Reads every split file for `class_names` and `splits`.

  Returns {split: {class_name: [SplitEntry, ...]}}. A missing split file, or a
  split file for a class that has no video folder, raises `LayoutError` before
  any work starts.
  """
  if not os.path.isdir(split_dir):
    raise LayoutError(f"--split_dir {split_dir!r} is not a directory")
  known = set(class_names)
  for name in os.listdir(split_dir):
    m = _SPLIT_FILE_RE.match(name)
    if m and m.group("cls") not in known:
      raise LayoutError(
          f"split file {os.path.join(split_dir, name)!r} names class {m.group('cls')!r}, "
          f"which has no folder in the video directory")
  result = {}
  for k in splits:
    if k not in SPLITS:
      raise LayoutError(f"split {k} does not exist; HMDB51 has splits {SPLITS}")
    result[k] = {}
    for cls in class_names:
      path = os.path.join(split_dir, split_file_name(cls, k))
      if not os.path.isfile(path):
        raise LayoutError(f"missing split file {path!r} for class {cls!r}, split {k}")
      result[k][cls] = parse_split_file(path)
  return result
