"""HMDB51's official layout: class folders, split files and label order.

This module is the one place that knows the release's conventions (see
`shared/hmdb51.md`): the synthetic generator writes them, the converter reads them.

Layout:
  <video_dir>/<class>/<name>.avi
  <split_dir>/<class>_test_split<k>.txt   (k = 1, 2, 3; lines "<name> <id>")
Split ids: 1 = training, 2 = testing, 0 = not used in that split.

Validation: the release has none, so `carve_validation` holds out whole groups of
training videos (a group is the source a clip was cut from, e.g. one movie), the
same rule for HMDB51 and for the project's generated sets. Held-out videos get the
internal id 3; split files never contain it. `carve_shared_validation` is the
rule for sets whose groups are shared by every class and differ in size
(recording sessions, `tsnet_tf.data.sessions`).
"""

import dataclasses
import hashlib
import logging
import os
import re
from typing import Dict, Iterable, List, Mapping, Sequence

from tsnet_tf.utils import errors

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

_log = logging.getLogger(__name__)

# HMDB51's splits; other sets in its layout may have more (e.g. one per
# recording session, `tsnet_tf.data.sessions`): any k >= 1 with split files.
SPLITS = (1, 2, 3)
UNUSED, TRAIN, TEST, VALIDATION = 0, 1, 2, 3
SUBSET_IDS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
SUBSETS = tuple(SUBSET_IDS)
_ID_NAMES = {UNUSED: "unused (0)", TRAIN: "train (1)", TEST: "test (2)"}

_SPLIT_FILE_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>[0-9]+)\.txt$")


class LayoutError(errors.ResourceError, ValueError):
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

  Blank lines are skipped; trailing spaces are allowed; a repeated line is
  kept once. Any other malformed line, a video listed with two different ids
  (e.g. as both train and test) or a file without entries raises `LayoutError`
  naming the file, the line number and the video.
  """
  entries = []
  first_line = {}
  with open(path, "r", encoding="utf-8", errors="replace") as f:
    for lineno, line in enumerate(f, start=1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
        raise LayoutError(
            f"{path}:{lineno}: expected '<video file name> <0|1|2>', got {line.rstrip()!r}")
      entry = SplitEntry(video=fields[0], subset_id=int(fields[1]))
      if entry.video in first_line:
        seen_at, seen = first_line[entry.video]
        if seen.subset_id != entry.subset_id:
          raise LayoutError(
              f"{path}:{lineno}: {entry.video!r} is listed as {_ID_NAMES[entry.subset_id]} "
              f"here and as {_ID_NAMES[seen.subset_id]} on line {seen_at}")
        continue
      first_line[entry.video] = (lineno, entry)
      entries.append(entry)
  if not entries:
    raise LayoutError(f"split file {path!r} lists no videos")
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
    if not isinstance(k, int) or k < 1:
      raise LayoutError(f"split {k!r} does not exist; splits are numbered from 1")
    result[k] = {}
    for cls in class_names:
      path = os.path.join(split_dir, split_file_name(cls, k))
      if not os.path.isfile(path):
        raise LayoutError(f"missing split file {path!r} for class {cls!r}, split {k}")
      result[k][cls] = parse_split_file(path)
      if not any(e.subset_id == TRAIN for e in result[k][cls]):
        # Training would then never show the model this class.
        _log.warning("class %r has no training videos in split %d (%s)", cls, k, path)
  return result


def video_group(file_name: str, class_name: str) -> str:
  """The group (source) a clip was cut from: clips of one group share a subset.

  HMDB51 names clips `<source>_<class>_<tags>_<k>.avi` (e.g.
  `April_09_brush_hair_u_nm_np1_ba_goo_0.avi` -> `April_09`); the source is the
  movie or web video. A name without `_<class>_` in it is its own group, less a
  trailing clip number.
  """
  stem = os.path.splitext(os.path.basename(file_name))[0]
  marker = f"_{class_name}_"
  cut = stem.find(marker)
  if cut > 0:
    return stem[:cut]
  return re.sub(r"_[0-9]+$", "", stem) or stem


def _group_rank(group: str) -> str:
  # A hash, not the name, so the held-out groups are spread over sources; the
  # same for every class, so a source listed in two classes is held out in both.
  return hashlib.sha1(group.encode("utf-8")).hexdigest()


def carve_validation(entries: Sequence[SplitEntry], class_name: str,
                     fraction: float) -> List[SplitEntry]:
  """Moves whole groups of a class's training videos to the validation subset.

  round(fraction * number of training groups) groups are held out (at least one
  when fraction > 0 and the class has two or more training groups), chosen by a
  hash of the group name: deterministic, independent of the other videos.

  Args:
    entries: one class's split entries.
    class_name: the class (to find each name's group).
    fraction: share of training groups held out, in [0, 1).

  Returns:
    The entries in the same order, held-out ones with `subset_id` VALIDATION.
  """
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"--validation_fraction must be in [0, 1), got {fraction}")
  groups = sorted({video_group(e.video, class_name) for e in entries if e.subset_id == TRAIN},
                  key=_group_rank)
  count = int(round(fraction * len(groups)))
  if fraction > 0 and len(groups) >= 2:
    count = min(max(count, 1), len(groups) - 1)
  held = set(groups[:count])
  return [SplitEntry(e.video, VALIDATION)
          if e.subset_id == TRAIN and video_group(e.video, class_name) in held else e
          for e in entries]


# How `--validation_fraction` picks the held-out groups (`build_plan`).
VALIDATION_GROUPS = ("per_class", "shared")


def carve_shared_validation(per_class: Mapping[str, Sequence[SplitEntry]],
                            fraction: float) -> Dict[str, List[SplitEntry]]:
  """Holds out the same whole groups of training videos in every class.

  For sets whose groups are recording sessions (people, rooms, days) shared by
  all classes and of unequal size: `carve_validation` counts groups per class,
  so with 3 training sessions it holds out one, even one holding half of the
  training videos. Here the groups are taken over the whole split, in the hash
  order of their names, each one that still fits within fraction x the split's
  training videos; when none fits, the smallest. A class whose training groups
  would all be held out keeps them for training (it has none for validation).

  Args:
    per_class: every class's split entries (class name -> entries), one split.
    fraction: share of the split's training videos to hold out, in [0, 1).

  Returns:
    The same mapping, held-out entries with `subset_id` VALIDATION.
  """
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"--validation_fraction must be in [0, 1), got {fraction}")
  sizes: Dict[str, int] = {}
  for cls, entries in per_class.items():
    for e in entries:
      if e.subset_id == TRAIN:
        group = video_group(e.video, cls)
        sizes[group] = sizes.get(group, 0) + 1
  held = set()
  if fraction > 0 and len(sizes) >= 2:
    budget = fraction * sum(sizes.values())
    taken = 0
    ranked = sorted(sizes, key=_group_rank)
    for group in ranked:
      if taken + sizes[group] <= budget:
        held.add(group)
        taken += sizes[group]
    if not held:
      held.add(min(ranked, key=sizes.get))
  carved = {}
  for cls, entries in per_class.items():
    groups = {video_group(e.video, cls) for e in entries if e.subset_id == TRAIN}
    held_here = held if groups - held else set()
    carved[cls] = [SplitEntry(e.video, VALIDATION)
                   if e.subset_id == TRAIN and video_group(e.video, cls) in held_here else e
                   for e in entries]
  return carved
