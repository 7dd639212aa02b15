"""A real-footage benchmark in HMDB51's layout: each class is one clip x a playback change.

Real action footage has what generated videos lack: camera motion, frame-rate
conversion (repeated frames), compression noise, small moving regions. This
module turns any set of real videos into a benchmark where appearance and motion
are both needed: class `<source>_fwd` is windows of the source played as
recorded, `<source>_bwd` the same windows played backwards. A single frame
tells the source (appearance) but not the direction; only motion tells the
direction, as in HMDB51 where RGB and flow are each partly right. With
`factor="speed"`, the pair is `<source>_x1` (the window's central half, as
recorded) and `<source>_x2` (the whole window, every second frame: twice the
speed, same frame rate, same length). With `factor="pan"`, the pair is
`<source>_left` and `<source>_right`: the same window seen through a crop of
`PAN_CROP` of the frame that slides across it (a camera pan, added to the
footage's own motion), the view moving left or right.

Direction is the harder factor for optical flow: reversing a clip negates its
flow, and most motion (gestures, ballistic paths, camera pans) is as plausible
backwards, so a flow network must learn each source's typical direction;
speed scales the flow's magnitude, which flow shows directly, but real motion
varies more than 2x within one source. A pan adds one global translation to
every flow field, even over repeated or static frames; the footage's own motion,
noise and frame repeats stay on top of it.

Each source is cut into `windows_per_source` temporally disjoint windows (a gap
between them). Split k tests on windows {k-1, k-1 + W/2} (rotating over the
three splits, so every window is tested once when W = 6) and trains on the
others; `tools/prepare_hmdb51.py` then holds out whole windows of the training
list as validation (a window is a group: `hmdb51.video_group`), the same
windows for both directions. Train, validation and test never share a frame.

Output layout (`tsnet_tf.data.hmdb51`):
  <out>/videos/<source>_<fwd|bwd>/<source>-wNN_<class>_nm_np1_fr_goo_0.avi
  <out>/splits/<class>_test_split{1,2,3}.txt
  <out>/manifest.json   sources, windows (frame ranges), skipped sources
"""

import dataclasses
import json
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tsnet_tf.data import hmdb51
from tsnet_tf.data import video as video_lib
from tsnet_tf.utils import io as io_utils

DIRECTIONS = ("fwd", "bwd")
SPEEDS = ("x1", "x2")
PANS = ("left", "right")
FACTORS = {"direction": DIRECTIONS, "speed": SPEEDS, "pan": PANS}
# A pan sees this fraction of each side of the frame; the crop travels over the
# rest (20 % of the width) during the window.
PAN_CROP = 0.8
_GENERATOR = "tsnet_tf.data.footage"


def pan(clip: np.ndarray, view_moves: str) -> np.ndarray:
  """`clip` `[N, H, W, C]` seen through a crop that slides across the frame.

  The crop is `PAN_CROP` of each side (even sizes), vertically centred. Over the
  N frames its left edge travels from one side of the frame to the other at a
  constant speed (rounded to whole pixels), so the scene moves through the view
  the opposite way: `view_moves="right"` makes the content move left.

  Returns:
    `[N, h, w, C]`, same dtype.
  """
  if view_moves not in PANS:
    raise ValueError(f"unknown pan direction {view_moves!r}")
  n, height, width = clip.shape[:3]
  h = max(2, int(height * PAN_CROP) // 2 * 2)
  w = max(2, int(width * PAN_CROP) // 2 * 2)
  top = (height - h) // 2
  lefts = np.round(np.linspace(0, width - w, n)).astype(int) if n > 1 else np.zeros(1, int)
  if view_moves == "left":
    lefts = lefts[::-1]
  return np.stack([frame[top:top + h, x:x + w] for frame, x in zip(clip, lefts)])


def playback(clip: np.ndarray, variant: str) -> np.ndarray:
  """The window `clip` `[N, H, W, 3]` played as `variant` (see FACTORS).

  fwd: as recorded; bwd: reversed; x1: the central N // 2 frames; x2: every
  second frame (N // 2 frames at twice the speed); left / right: `pan`.
  """
  half = len(clip) // 2
  if variant == "fwd":
    return clip
  if variant == "bwd":
    return clip[::-1]
  if variant == "x1":
    start = (len(clip) - half) // 2
    return clip[start:start + half]
  if variant == "x2":
    return clip[0:2 * half:2]
  if variant in PANS:
    return pan(clip, variant)
  raise ValueError(f"unknown playback variant {variant!r}")


@dataclasses.dataclass(frozen=True)
class FootageSummary:
  """What `build_direction_dataset` wrote.

  Attributes:
    output_dir: the dataset root.
    classes: class names in label order (sorted).
    windows: {source: [(first frame, end frame), ...]} in the source's frames.
    skipped: {video path: reason} for sources that could not be used.
    split_counts: {split: {"train": n, "test": n}} over all classes.
  """
  output_dir: str
  classes: Tuple[str, ...]
  windows: Dict[str, List[Tuple[int, int]]]
  skipped: Dict[str, str]
  split_counts: Dict[int, Dict[str, int]]


def _video_file(source: str, window: int, cls: str) -> str:
  """A window's video, relative to the dataset root."""
  return os.path.join("videos", cls, f"{source}-w{window:02d}_{cls}_nm_np1_fr_goo_0.avi")


def _owned_files(manifest: dict) -> List[str]:
  """The files a dataset's manifest says `build_direction_dataset` wrote (besides it)."""
  files = []
  for cls in manifest["classes"]:
    source = cls.rsplit("_", 1)[0]
    files += [_video_file(source, w, cls)
              for w in range(len(manifest["sources"][source]["windows"]))]
    files += [os.path.join("splits", hmdb51.split_file_name(cls, k)) for k in hmdb51.SPLITS]
  return files


def check_replaceable(output_dir: str) -> None:
  """Checks that `output_dir` holds only a dataset `build_direction_dataset` wrote.

  Raises:
    FileExistsError: naming the directory and what is not ours.
  """
  io_utils.check_replaceable(output_dir, _GENERATOR, "make_footage_set", _owned_files)


def source_name(path: str) -> str:
  """`kinetics/tai_chi.mp4` -> `tai_chi`: lower case, `[a-z0-9_]` only."""
  stem = os.path.splitext(os.path.basename(path))[0].lower()
  return re.sub(r"[^a-z0-9]+", "_", stem).strip("_") or "video"


def find_videos(video_dir: str) -> List[str]:
  """Video files under `video_dir` (`video.find_video_files`), sorted."""
  if not os.path.isdir(video_dir):
    raise ValueError(f"--video_dir {video_dir!r} is not a directory")
  return video_lib.find_video_files(video_dir)


def plan_windows(num_frames: int, windows: int, gap: int,
                 max_frames: int) -> List[Tuple[int, int]]:
  """`windows` disjoint `[start, end)` frame ranges spread over a video.

  The video is cut into `windows` equal spans; each window is centred in its
  span and at most `span - gap` frames long, so neighbours are >= `gap` apart.
  """
  span = num_frames // windows
  length = min(span - gap, max_frames)
  if length < 1:
    return []
  return [(i * span + (span - length) // 2, i * span + (span - length) // 2 + length)
          for i in range(windows)]


def test_windows(split: int, windows: int) -> Tuple[int, ...]:
  """Windows tested in `split` (1-based): k-1 and k-1 + W/2, rotating over the splits."""
  first = (split - 1) % windows
  return tuple(sorted({first, (first + windows // 2) % windows}))


def _even_size(height: int, width: int, short_side: int) -> Tuple[int, int]:
  scale = min(1.0, short_side / min(height, width)) if short_side > 0 else 1.0
  return (max(2, int(round(height * scale / 2)) * 2), max(2, int(round(width * scale / 2)) * 2))


class _TooShort(video_lib.FrameCountError):
  """A video whose windows would be shorter than the minimum."""

  def __init__(self, num_frames: int):
    super().__init__(f"{num_frames} frames")
    self.num_frames = num_frames


def _read_windows(path: str, info: "video_lib.VideoInfo", windows: int, gap: int,
                  max_frames: int, min_frames: int, short_side: int
                  ) -> Tuple[List[Tuple[int, int]], List[np.ndarray]]:
  """The windows' frames of `path`, resized as they are decoded.

  Only the windows' frames are kept, each scaled down on arrival, so memory
  depends on the windows, not on the video's length or resolution (a long
  full-HD source is fine).

  Returns:
    (spans `[(start, end)]` in the video's frames, one uint8 `[end - start, h, w, 3]`
    array per span).

  Raises:
    _TooShort: the windows would have fewer than `min_frames` frames.
    video_lib.VideoDecodeError: as `video_lib.read_frames`.
  """
  size = _even_size(info.height, info.width, short_side)

  def spans_of(num_frames):
    spans = plan_windows(num_frames, windows, gap, max_frames)
    if not spans or spans[0][1] - spans[0][0] < min_frames:
      raise _TooShort(num_frames)
    return spans

  read = video_lib.read_selection(
      path, lambda n: np.concatenate([np.arange(a, b) for a, b in spans_of(n)]),
      transform=lambda f: video_lib.resize_frame(f, size))
  frames, spans = read.frames, spans_of(read.num_frames)
  bounds = np.cumsum([0] + [end - start for start, end in spans])
  return spans, [frames[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def build_direction_dataset(video_paths: Sequence[str], output_dir: str,
                            windows_per_source: int = 6, gap_frames: int = 2,
                            min_window_frames: int = 12, max_window_frames: int = 64,
                            short_side: int = 240, factor: str = "direction",
                            overwrite: bool = False,
                            progress: Optional[Callable[[int], None]] = None
                            ) -> FootageSummary:
  """Writes the clip x direction benchmark (videos, split files, manifest).

  The whole directory is built under a temporary name and renamed when complete.

  Args:
    video_paths: real videos, one class pair each (names must differ after
      `source_name`).
    output_dir: dataset root to create.
    windows_per_source: disjoint windows cut from each video (>= 4: two test
      windows, and training windows left for validation).
    gap_frames: frames left out between neighbouring windows.
    min_window_frames: a video whose windows would be shorter is skipped.
    max_window_frames: longest window.
    short_side: frames larger than this are scaled down (0 keeps the size).
    factor: "direction" (fwd / bwd), "speed" (x1 / x2; windows are twice as
      long, so that both variants have half a window's frames) or "pan"
      (left / right: a crop sliding across the frame, `pan`).
    overwrite: replace an existing `output_dir` that holds only a dataset
      written here (`check_replaceable`).
    progress: called with 1 after each source video is done.

  Returns:
    FootageSummary.

  Raises:
    ValueError: a bad argument (named as the tool's flag), a video inside
      `output_dir`, or fewer than two usable videos.
    FileExistsError: `output_dir` exists and `overwrite` is False, or it holds
      anything this function did not write.
  """
  if windows_per_source < 4:
    raise ValueError(f"--windows_per_source must be >= 4, got {windows_per_source}")
  if gap_frames < 0 or min_window_frames < 2 or max_window_frames < min_window_frames:
    raise ValueError("need --gap_frames >= 0 and 2 <= --min_window_frames <= "
                     f"--max_window_frames, got {gap_frames}, {min_window_frames}, "
                     f"{max_window_frames}")
  if factor not in FACTORS:
    raise ValueError(f"--factor must be one of {', '.join(FACTORS)}, got {factor!r}")
  variants = FACTORS[factor]
  # Frames a window needs for its variants to have `max_window_frames` each.
  window_scale = 2 if factor == "speed" else 1
  names = [source_name(p) for p in video_paths]
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise ValueError(f"videos share a source name after cleaning: {', '.join(dupes)}")
  output_dir = os.fspath(output_dir)
  inside = [p for p in video_paths if io_utils.is_within(p, output_dir)]
  if inside:
    # Replacing the directory would delete the videos it is made from.
    raise ValueError(f"video {inside[0]!r} is inside --output_dir {output_dir!r}; "
                     "write the output somewhere else")
  if os.path.exists(output_dir) and not overwrite:
    raise FileExistsError(f"--output_dir {output_dir!r} already exists; pass --overwrite "
                          f"to replace it")
  if os.path.exists(output_dir):
    check_replaceable(output_dir)

  windows, skipped, fps_of = {}, {}, {}
  with io_utils.atomic_dir(output_dir, overwrite=overwrite) as root:
    for path, source in zip(video_paths, names):
      try:
        info = video_lib.probe_video(path)
        spans, windows_frames = _read_windows(path, info, windows_per_source, gap_frames,
                                              window_scale * max_window_frames,
                                              window_scale * min_window_frames, short_side)
      except video_lib.VideoDecodeError as e:
        skipped[path] = e.reason
        if progress is not None:
          progress(1)
        continue
      except _TooShort as e:
        skipped[path] = (f"{e.num_frames} frames give windows shorter than "
                         f"--min_window_frames={min_window_frames}")
        if progress is not None:
          progress(1)
        continue
      for variant in variants:
        os.makedirs(os.path.join(root, "videos", f"{source}_{variant}"))
      for w, clip in enumerate(windows_frames):
        for variant in variants:
          cls = f"{source}_{variant}"
          video_lib.write_video(os.path.join(root, _video_file(source, w, cls)),
                                playback(clip, variant), info.fps)
      del windows_frames
      windows[source] = spans
      fps_of[source] = info.fps
      if progress is not None:
        progress(1)
    if len(windows) < 2:
      raise ValueError(f"need at least two usable videos, got {len(windows)} "
                       f"(skipped: {skipped})")

    classes = tuple(sorted(f"{s}_{v}" for s in windows for v in variants))
    os.makedirs(os.path.join(root, "splits"))
    split_counts = {}
    for split in hmdb51.SPLITS:
      tested = test_windows(split, windows_per_source)
      counts = {"train": 0, "test": 0}
      for cls in classes:
        source = cls.rsplit("_", 1)[0]
        entries = []
        for w in range(len(windows[source])):
          sid = hmdb51.TEST if w in tested else hmdb51.TRAIN
          counts["test" if sid == hmdb51.TEST else "train"] += 1
          entries.append(hmdb51.SplitEntry(f"{source}-w{w:02d}_{cls}_nm_np1_fr_goo_0.avi", sid))
        with open(os.path.join(root, "splits", hmdb51.split_file_name(cls, split)), "w",
                  encoding="utf-8") as f:
          f.write(hmdb51.format_split_lines(entries))
      split_counts[split] = counts
    manifest = {"generator": _GENERATOR, "factor": factor,
                "classes": list(classes),
                "sources": {s: {"fps": fps_of[s], "windows": [list(w) for w in windows[s]]}
                            for s in windows},
                "skipped": skipped, "windows_per_source": windows_per_source,
                "split_counts": {str(k): v for k, v in split_counts.items()}}
    with open(os.path.join(root, io_utils.MANIFEST), "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=1)
  return FootageSummary(output_dir=output_dir, classes=classes, windows=windows,
                        skipped=skipped, split_counts=split_counts)
