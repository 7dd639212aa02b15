r"""What the flow stream can see in real footage: the measurements behind #12's teacher study.

For each real video, cut into the same disjoint windows `tools/make_footage_set.py`
uses (`footage.plan_windows`), this prints what limits a flow teacher on the
footage benchmarks, at each flow resolution (short side) asked for:

  dup      fraction of consecutive frames that repeat (mean absolute difference
           < 0.5 grey levels at the native size: frame-rate conversion or a
           static scene); the flow between them is zero.
  |flow|   mean TV-L1 magnitude in pixels over the training clip (num_frames,
           frame_stride apart, from the window's centre), at that resolution.
  moving   fraction of flow vectors longer than 0.5 px (above the noise floor).
  dir      direction consistency |sum_w m_w| / sum_w |m_w| of the windows' mean
           flow vectors m_w: 1 when every window moves the same way, near 0 when
           the way changes between windows. A flow network can only tell a
           source played forwards from backwards (`--factor=direction`) if this
           is high (or from subtler asymmetries: gravity, acceleration).
  speed    AUC of the x2 windows' |flow| against the x1 windows' (all pairs) of
           one source: 1.0 when a per-source threshold on flow magnitude
           separates 2x from 1x speed (`--factor=speed`), 0.5 when it does not.

Usage:
  python benchmarks/footage_motion.py --video_dir=../shared/data/video \
      --short_sides=72,128 --frame_stride=3
"""

import os
import sys

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # benchmarks run from a checkout, not an install

from tsnet_tf.data import footage  # pylint: disable=g-import-not-at-top,wrong-import-position
from tsnet_tf.data import video as video_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

_VIDEO_DIR = flags.DEFINE_string("video_dir", os.path.join(REPO, "..", "shared", "data", "video"),
                                 "Real videos (searched recursively).")
_SHORT_SIDES = flags.DEFINE_list("short_sides", ["72", "128"], "Flow resolutions (short side).")
_FRAME_STRIDE = flags.DEFINE_integer("frame_stride", 3, "Frames between sampled frames.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 8, "Frames of the training clip.")
_WINDOWS = flags.DEFINE_integer("windows_per_source", 6, "As make_footage_set.")
_MAX_WINDOW = flags.DEFINE_integer("max_window_frames", 64, "As make_footage_set.")
_PRESET = flags.DEFINE_string("preset", "fast", "TV-L1 preset.")


def duplicate_fraction(frames: np.ndarray) -> float:
  """Fraction of consecutive frame pairs of `frames` `[N, H, W, 3]` that repeat."""
  if len(frames) < 2:
    return 0.0
  diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
  return float(np.mean(diffs < 0.5))


def speed_auc(fast: np.ndarray, slow: np.ndarray) -> float:
  """P(a `fast` magnitude > a `slow` one) over all pairs (ties count half)."""
  fast, slow = np.asarray(fast)[:, None], np.asarray(slow)[None, :]
  return float(np.mean((fast > slow) + 0.5 * (fast == slow)))


def direction_consistency(mean_flows: np.ndarray) -> float:
  """|sum of the windows' mean flow vectors| / sum of their lengths, in [0, 1]."""
  mean_flows = np.asarray(mean_flows, dtype=np.float64)
  total = np.linalg.norm(mean_flows, axis=-1).sum()
  return float(np.linalg.norm(mean_flows.sum(axis=0)) / total) if total > 0 else 0.0


def _clip_flow(frames, short_side, flow_fn):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  n = len(frames)
  span = (_NUM_FRAMES.value - 1) * _FRAME_STRIDE.value + 1
  start = max(0, (n - span) // 2)
  idx = np.clip(np.arange(start, start + span, _FRAME_STRIDE.value), 0, n - 1)
  clip = frames[idx].astype(np.float32)
  h, w = clip.shape[1:3]
  scale = short_side / min(h, w)
  clip = tf.image.resize(clip, (int(round(h * scale)), int(round(w * scale))),
                         antialias=True).numpy()
  return np.asarray(flow_fn(clip[:-1], clip[1:]))


def main(argv):
  del argv
  from tsnet_tf.flow.tvl1 import tvl1  # pylint: disable=g-import-not-at-top
  flow_fn = lambda a, b: tvl1(a, b, preset=_PRESET.value)
  sides = [int(s) for s in _SHORT_SIDES.value]
  rows = []
  for path in footage.find_videos(_VIDEO_DIR.value):
    try:
      frames = video_lib.read_video(path)
    except video_lib.VideoDecodeError as e:
      print(f"skipped {path}: {e}")
      continue
    # Speed windows are twice as long (x2 takes every second frame of them).
    spans = footage.plan_windows(len(frames), _WINDOWS.value, 2, 2 * _MAX_WINDOW.value)
    if not spans:
      continue
    row = {"source": footage.source_name(path), "frames": len(frames),
           "size": f"{frames.shape[2]}x{frames.shape[1]}",
           "dup": duplicate_fraction(frames[spans[0][0]:spans[-1][1]])}
    for side in sides:
      mags, means, moving, x1, x2 = [], [], [], [], []
      for start, end in spans:
        window = frames[start:end]
        for variant in ("x1", "x2"):
          flow = _clip_flow(footage.playback(window, variant), side, flow_fn)
          mag = np.linalg.norm(flow, axis=-1)
          (x1 if variant == "x1" else x2).append(mag.mean())
          if variant == "x1":
            mags.append(mag.mean())
            means.append(flow.reshape(-1, 2).mean(axis=0))
            moving.append(np.mean(mag > 0.5))
      row[side] = {"flow": np.mean(mags), "moving": np.mean(moving),
                   "dir": direction_consistency(means), "speed": speed_auc(x2, x1)}
    rows.append(row)
    del frames

  header = "| source | frames | size | dup |" + "".join(
      f" \\|flow\\| @{s} | moving @{s} | dir @{s} | speed @{s} |" for s in sides)
  print(header)
  print("|" + " --- |" * (4 + 4 * len(sides)))
  for r in rows:
    cells = [r["source"], str(r["frames"]), r["size"], f"{r['dup']:.2f}"]
    for s in sides:
      cells += [f"{r[s]['flow']:.2f}", f"{r[s]['moving']:.2f}", f"{r[s]['dir']:.2f}",
                f"{r[s]['speed']:.2f}"]
    print("| " + " | ".join(cells) + " |")
  for s in sides:
    print(f"\n@{s}: sources with moving >= 0.10: "
          f"{sum(r[s]['moving'] >= 0.1 for r in rows)}/{len(rows)}; "
          f"direction consistency >= 0.8: {sum(r[s]['dir'] >= 0.8 for r in rows)}/{len(rows)}; "
          f"speed AUC >= 0.9: {sum(r[s]['speed'] >= 0.9 for r in rows)}/{len(rows)}")
  print(f"\npreset {_PRESET.value}, {_NUM_FRAMES.value} frames {_FRAME_STRIDE.value} apart, "
        f"{_WINDOWS.value} windows per source")


if __name__ == "__main__":
  app.run(main)
