"""Synthetic HMDB51-format datasets: the writer of `synthetic_render`'s videos.

What the classes look like and how they move: `tsnet_tf/data/synthetic_render.py`
(`MOTION_CLASSES`, `APPEARANCES`, `render_video`). This module names, splits and
writes the videos (and, on request, broken files), in parallel and resumably.

Output layout (HMDB51's, see `tsnet_tf.data.hmdb51`):
  <out>/videos/<class>/<name>.avi
  <out>/splits/<class>_test_split{1,2,3}.txt
  <out>/manifest.json     per-video ground truth (class, fps, frames, motion)

Everything is deterministic for a given seed: each video draws from its own
`np.random.SeedSequence([seed, class index, video index])`, so the bytes do not
depend on the number of workers or on which other videos are generated.
"""

import concurrent.futures
import dataclasses
import json
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tsnet_tf.data import hmdb51
from tsnet_tf.data import synthetic_render
from tsnet_tf.data import video as video_lib
from tsnet_tf.utils import io as io_utils

BROKEN_KINDS = ("empty", "truncated", "garbage")
DEFAULT_FPS = (25.0, 30000 / 1001, 30.0)

@dataclasses.dataclass(frozen=True)
class VideoRecord:
  """One generated video.

  Attributes:
    path: file path, relative to the output directory.
    class_name: its class (folder) name.
    num_frames, fps, height, width: as written.
    motion: ground truth: kind ("move", "rotate", "zoom", "pan"), and the
      per-frame speed (`speed_px`: px/frame of the moving content at the rim
      for rotate/zoom) plus kind-specific values.
    broken: "" for a good video, else one of BROKEN_KINDS.
  """
  path: str
  class_name: str
  num_frames: int
  fps: float
  height: int
  width: int
  motion: Dict[str, float]
  broken: str = ""


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
  """What `generate_dataset` wrote.

  Attributes:
    output_dir: the dataset root.
    classes: class names in label order (sorted).
    videos: every file written, good and broken, in (class, index) order.
    split_counts: {split: {class: {"train": n, "test": n, "unused": n}}}.
  """
  output_dir: str
  classes: Tuple[str, ...]
  videos: Tuple[VideoRecord, ...]
  split_counts: Dict[int, Dict[str, Dict[str, int]]]

  @property
  def broken(self) -> Tuple[VideoRecord, ...]:
    return tuple(v for v in self.videos if v.broken)

  def to_json(self) -> dict:
    return {
        "classes": list(self.classes),
        "videos": [dataclasses.asdict(v) for v in self.videos],
        "split_counts": {str(k): v for k, v in self.split_counts.items()},
    }


def parse_broken(spec: str) -> Tuple[str, ...]:
  """`"empty,garbage"` -> ("empty", "garbage"); `"4"` -> 4 kinds cycling BROKEN_KINDS."""
  spec = (spec or "").strip()
  if not spec:
    return ()
  if spec.isdigit():
    return tuple(BROKEN_KINDS[i % len(BROKEN_KINDS)] for i in range(int(spec)))
  kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
  bad = [k for k in kinds if k not in BROKEN_KINDS]
  if bad:
    raise ValueError(f"--broken: unknown kind(s) {bad}; use a count or a comma list of "
                     f"{', '.join(BROKEN_KINDS)}")
  return kinds


def video_name(class_name: str, index: int, rng: np.random.Generator) -> str:
  """An HMDB51-style name: <source>_<class>_<body>_<camera>_<people>_<view>_<quality>_<clip>.avi.

  The tags are drawn at random except the camera-motion tag, which is `cm` for
  pan classes (as HMDB51 tags camera motion) and `nm` otherwise.
  """
  body = rng.choice(["f", "u", "h"])
  view = rng.choice(["fr", "ba", "le", "ri"])
  quality = rng.choice(["goo", "med"])
  camera = "cm" if synthetic_render.split_class(class_name)[1].startswith("pan_") else "nm"
  return (f"Synth{index:04d}_{class_name}_{body}_{camera}_np1_{view}_{quality}_0.avi")


def partition(names: Sequence[str], rng: np.random.Generator,
              never_unused: Sequence[str] = ()) -> List[hmdb51.SplitEntry]:
  """Assigns split ids to one class's videos: 70/30 train/test, a few unused.

  Like HMDB51 (which lists more videos than the 70 + 30 it uses), 1 in 20
  videos (rounded down) is marked unused (id 0); of the rest, round(70 %) are
  training (1) and the others testing (2). Names in `never_unused` are always
  used (broken files must reach the converter).

  Returns:
    SplitEntry list in the order of `names`.
  """
  n = len(names)
  order = list(rng.permutation(n))
  keep = set(never_unused)
  num_unused = n // 20
  unused = [i for i in order if names[i] not in keep][:num_unused]
  used = [i for i in order if i not in unused]
  num_train = int(math.floor(0.7 * len(used) + 0.5))
  ids = {i: hmdb51.UNUSED for i in unused}
  ids.update({i: hmdb51.TRAIN for i in used[:num_train]})
  ids.update({i: hmdb51.TEST for i in used[num_train:]})
  return [hmdb51.SplitEntry(names[i], ids[i]) for i in range(n)]


def _write_broken(path: str, kind: str, rng: np.random.Generator, frames: np.ndarray,
                  fps: float) -> None:
  """Writes a broken file of `kind` at `path`."""
  if kind == "empty":
    with io_utils.atomic_write(path) as tmp:
      open(tmp, "wb").close()
  elif kind == "garbage":
    with io_utils.atomic_write(path) as tmp, open(tmp, "wb") as f:
      f.write(rng.bytes(int(rng.integers(2_000, 20_000))))
  elif kind == "truncated":
    # A real video cut mid-stream: headers intact, frame data stops about half way.
    video_lib.write_video(path, frames, fps)
    with open(path, "rb") as f:
      data = f.read()
    start, end = data.find(b"movi"), data.rfind(b"idx1")
    if not 0 < start < end:
      raise RuntimeError(f"{path}: unexpected AVI layout, cannot truncate")
    with io_utils.atomic_write(path) as tmp, open(tmp, "wb") as f:
      f.write(data[: start + (end - start) // 2])
  else:
    raise ValueError(f"unknown broken kind {kind!r}")


@dataclasses.dataclass(frozen=True)
class _Job:
  class_index: int
  class_name: str
  index: int
  broken: str


def _make_one(job: _Job, root: str, seed: int, height: int, width: int,
              seconds: Tuple[float, float], fps_choices: Sequence[float]) -> VideoRecord:
  rng = np.random.default_rng(np.random.SeedSequence([seed, job.class_index, job.index]))
  name = video_name(job.class_name, job.index, rng)
  fps = float(fps_choices[int(rng.integers(len(fps_choices)))])
  num_frames = max(2, int(round(rng.uniform(*seconds) * fps)))
  frames, motion = synthetic_render.render_video(job.class_name, rng, num_frames, height, width)
  rel = os.path.join("videos", job.class_name, name)
  path = os.path.join(root, rel)
  if job.broken:
    _write_broken(path, job.broken, rng, frames, fps)
  else:
    video_lib.write_video(path, frames, fps)
  return VideoRecord(path=rel, class_name=job.class_name, num_frames=num_frames, fps=fps,
                     height=height, width=width, motion=motion, broken=job.broken)


MANIFEST = io_utils.MANIFEST
_GENERATOR = "tsnet_tf.data.synthetic"


def _owned_files(manifest: dict) -> List[str]:
  """The files a dataset's manifest says this module wrote (besides the manifest)."""
  return ([v["path"] for v in manifest["videos"]]
          + [os.path.join("splits", hmdb51.split_file_name(c, k))
             for c in manifest["classes"] for k in hmdb51.SPLITS])


def check_replaceable(output_dir: str) -> None:
  """Checks that `output_dir` holds only a dataset this module wrote.

  `--overwrite` replaces such a directory; anything else in it (a user's
  files, another dataset) makes it refuse, so it deletes only what it wrote
  (`io_utils.check_replaceable`).

  Raises:
    FileExistsError: naming the directory and what is not ours.
  """
  io_utils.check_replaceable(output_dir, _GENERATOR, "make_synthetic", _owned_files)


def generate_dataset(output_dir: str, num_classes: int = 4, videos_per_class: int = 10,
                     seed: int = 0, height: int = 240, width: int = 320,
                     min_seconds: float = 1.0, max_seconds: float = 3.0,
                     fps: Sequence[float] = DEFAULT_FPS, broken: Sequence[str] = (),
                     overwrite: bool = False, num_workers: int = 1,
                     progress: Optional[Callable[[int], None]] = None,
                     appearances: Sequence[str] = ()) -> SyntheticSummary:
  """Writes a synthetic HMDB51-format dataset (videos, split files, manifest).

  The whole directory is built under a temporary name and renamed when complete.

  Args:
    output_dir: dataset root to create.
    num_classes: how many of synthetic_render.MOTION_CLASSES (the first N) to use.
    videos_per_class: good videos per class (>= 2, so both subsets are non-empty).
    seed: the seed; same arguments and seed give the same bytes.
    height, width: frame size, even, >= 16.
    min_seconds, max_seconds: video duration range.
    fps: frame rates to draw from (one per video).
    broken: kinds from BROKEN_KINDS; each adds one broken file, assigned to the
      classes in turn, listed in the split files as training or testing.
    overwrite: replace an existing `output_dir` that holds only a dataset
      written here (`check_replaceable`).
    num_workers: threads rendering/encoding videos in parallel (does not change
      the output).
    progress: called with 1 after each file is written (e.g. tqdm's `update`).
    appearances: names from synthetic_render.APPEARANCES; if given, the classes are every
      appearance x motion pair (`red_move_left`, ...) of the first
      `num_classes` motions.

  Returns:
    SyntheticSummary.

  Raises:
    ValueError: a bad argument (named as the tool's flag).
    FileExistsError: `output_dir` exists and `overwrite` is False, or it holds
      anything this function did not write.
  """
  if not 1 <= num_classes <= len(synthetic_render.MOTION_CLASSES):
    raise ValueError(f"--num_classes must be in [1, {len(synthetic_render.MOTION_CLASSES)}] "
                     "(the motion classes defined: "
                     f"{', '.join(synthetic_render.MOTION_CLASSES)}), got {num_classes}")
  if videos_per_class < 2:
    raise ValueError(f"--videos_per_class must be >= 2, got {videos_per_class}")
  if height < 16 or width < 16 or height % 2 or width % 2:
    raise ValueError(f"--height and --width must be even and >= 16, got {height}x{width}")
  if not 0 < min_seconds <= max_seconds:
    raise ValueError(f"need 0 < --min_seconds <= --max_seconds, got {min_seconds}, {max_seconds}")
  fps = tuple(float(f) for f in fps)
  if not fps or any(not 1 <= f <= 120 for f in fps):
    raise ValueError(f"--fps values must be in [1, 120], got {fps}")
  bad = [k for k in broken if k not in BROKEN_KINDS]
  if bad:
    raise ValueError(f"--broken: unknown kind(s) {bad}; known: {BROKEN_KINDS}")
  if num_workers < 1:
    raise ValueError(f"--num_workers must be >= 1, got {num_workers}")
  output_dir = os.fspath(output_dir)
  if os.path.exists(output_dir) and not overwrite:
    raise FileExistsError(f"--output_dir {output_dir!r} already exists; pass --overwrite "
                          f"to replace it")
  if os.path.exists(output_dir):
    check_replaceable(output_dir)

  bad = [a for a in appearances if a not in synthetic_render.APPEARANCES]
  if bad or len(set(appearances)) != len(appearances):
    raise ValueError("--appearances must be distinct names from "
                     f"{', '.join(synthetic_render.APPEARANCES)}, "
                     f"got {', '.join(appearances)}")
  chosen = synthetic_render.MOTION_CLASSES[:num_classes]
  if appearances:
    chosen = tuple(f"{a}_{m}" for a in appearances for m in chosen)
  num_classes = len(chosen)
  jobs = []
  for ci, cls in enumerate(chosen):
    kinds = [k for j, k in enumerate(broken) if j % num_classes == ci]
    for vi in range(videos_per_class + len(kinds)):
      kind = kinds[vi - videos_per_class] if vi >= videos_per_class else ""
      jobs.append(_Job(ci, cls, vi, kind))

  with io_utils.atomic_dir(output_dir, overwrite=overwrite) as root:
    for cls in chosen:
      os.makedirs(os.path.join(root, "videos", cls))

    def run(job):
      record = _make_one(job, root, seed, height, width, (min_seconds, max_seconds), fps)
      if progress is not None:
        progress(1)
      return record

    if num_workers == 1:
      records = [run(j) for j in jobs]
    else:
      with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        records = list(pool.map(run, jobs))

    split_counts = {}
    os.makedirs(os.path.join(root, "splits"))
    for split in hmdb51.SPLITS:
      split_counts[split] = {}
      for ci, cls in enumerate(chosen):
        recs = [r for r in records if r.class_name == cls]
        names = [os.path.basename(r.path) for r in recs]
        rng = np.random.default_rng(np.random.SeedSequence([seed, ci, 1_000_000 + split]))
        entries = partition(names, rng, never_unused=[os.path.basename(r.path)
                                                      for r in recs if r.broken])
        path = os.path.join(root, "splits", hmdb51.split_file_name(cls, split))
        with open(path, "w", encoding="utf-8") as f:
          f.write(hmdb51.format_split_lines(entries))
        ids = [e.subset_id for e in entries]
        split_counts[split][cls] = {"train": ids.count(hmdb51.TRAIN),
                                    "test": ids.count(hmdb51.TEST),
                                    "unused": ids.count(hmdb51.UNUSED)}
    summary = SyntheticSummary(output_dir=output_dir, classes=tuple(sorted(chosen)),
                               videos=tuple(records), split_counts=split_counts)
    manifest = dict(summary.to_json(), seed=seed, generator=_GENERATOR,
                    appearances=list(appearances))
    with open(os.path.join(root, MANIFEST), "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=1)
  return summary


def format_summary(summary: SyntheticSummary) -> str:
  """A human-readable report: classes, counts per split, broken files."""
  good = [v for v in summary.videos if not v.broken]
  frames = [v.num_frames for v in good]
  lines = [
      f"wrote {len(summary.videos)} files to {summary.output_dir}: {len(good)} videos "
      f"({len(summary.classes)} classes, {min(frames)}-{max(frames)} frames, "
      f"{good[0].width}x{good[0].height}), {len(summary.broken)} broken",
      "classes (label order): " + ", ".join(summary.classes),
  ]
  for split, per_class in summary.split_counts.items():
    totals = {k: sum(c[k] for c in per_class.values()) for k in ("train", "test", "unused")}
    lines.append(f"split {split}: train {totals['train']}, test {totals['test']}, "
                 f"unused {totals['unused']}")
  if summary.broken:
    lines.append("broken files (listed in the split files):")
    lines.extend(f"  {v.broken:9s} {v.path}" for v in summary.broken)
  return "\n".join(lines)
