"""Drawing flow: the Middlebury colour wheel (Baker et al., 2011), the Fig. 5 figure.

Hue gives the direction, saturation the magnitude (white = no motion), as in
the Middlebury benchmark's `flowToColor` and the paper's Fig. 5.
`flow_figure` draws that figure for a video (tools/visualize_flow.py).
"""

from typing import List, Optional, Sequence

import numpy as np

from tsnet_tf.flow.tvl1 import tvl1


def color_wheel() -> np.ndarray:
  """The 55-colour Middlebury wheel, float `[55, 3]` RGB in [0, 255].

  Segments RY=15, YG=6, GC=4, CB=11, BM=13, MR=6, as in Middlebury's code.
  """
  segments = [(15, (255, 0, 0), (255, 255, 0)),
              (6, (255, 255, 0), (0, 255, 0)),
              (4, (0, 255, 0), (0, 255, 255)),
              (11, (0, 255, 255), (0, 0, 255)),
              (13, (0, 0, 255), (255, 0, 255)),
              (6, (255, 0, 255), (255, 0, 0))]
  rows = []
  for n, start, end in segments:
    t = np.arange(n, dtype=np.float64)[:, None] / n
    rows.append(np.asarray(start) * (1 - t) + np.asarray(end) * t)
  return np.concatenate(rows, 0)


def flow_to_rgb(flow, max_flow: Optional[float] = None) -> np.ndarray:
  """Colour-codes a flow field.

  Args:
    flow: float `[..., H, W, 2]` (x, y) in pixels (numpy or any tensor that
      `np.asarray` accepts). Non-finite or > 1e9 components (unknown) are
      drawn black.
    max_flow: magnitude mapped to full saturation; default: the largest
      finite magnitude of each image (at least 1e-6). Pass one value to
      compare several flows on the same scale; must be >= 0 (0, e.g. the
      largest magnitude of a still image, is taken as 1e-6).

  Returns:
    uint8 `[..., H, W, 3]` RGB.

  Raises:
    ValueError: a bad flow shape, or a negative or NaN `max_flow`.
  """
  flow = np.asarray(flow, np.float64)
  if flow.ndim < 3 or flow.shape[-1] != 2:
    raise ValueError(f"flow_to_rgb: flow must be [..., H, W, 2], got shape "
                     f"{flow.shape}")
  unknown = ~np.all(np.isfinite(flow) & (np.abs(flow) <= 1e9), axis=-1)
  flow = np.where(unknown[..., None], 0.0, flow)
  u, v = flow[..., 0], flow[..., 1]
  mag = np.hypot(u, v)
  if max_flow is None:
    max_flow = np.max(mag, axis=(-2, -1), keepdims=True)
  elif not np.all(np.asarray(max_flow, np.float64) >= 0):
    # Clamped to 1e-6, it would draw every flow fully saturated.
    raise ValueError(f"flow_to_rgb: max_flow must be >= 0, got {max_flow}")
  max_flow = np.maximum(max_flow, 1e-6)
  rad = np.minimum(mag / max_flow, 1.0)
  wheel = color_wheel()
  ncols = len(wheel)
  angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
  fk = (angle + 1) / 2 * (ncols - 1)
  k0 = np.floor(fk).astype(int)
  k1 = (k0 + 1) % ncols
  f = (fk - k0)[..., None]
  col = (1 - f) * wheel[k0] / 255.0 + f * wheel[k1] / 255.0
  # Saturation grows with magnitude: centre white, rim the full colour.
  col = 1 - rad[..., None] * (1 - col)
  col[unknown] = 0.0
  return np.clip(np.round(col * 255), 0, 255).astype(np.uint8)


def pick_triplets(num_frames: int, rows: int, stride: int) -> List[int]:
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


def flow_figure(frames: np.ndarray, rows: int = 3, stride: int = 1,
                preset: str = "accurate", max_flow: float = 0.0):
  """The paper's Fig. 5 for a video: rows of 3 frames and their 2 flows.

  Each row: frames t, t+s, t+2s, then the flow from the first to the second
  and from the second to the third, colour-coded with the Middlebury wheel on
  one scale per row. Rows are spread over the video (`pick_triplets`); all
  flows are computed in one `tvl1` batch.

  Args:
    frames: uint8 `[T, H, W, 3]` video frames.
    rows: triplets to draw.
    stride: frame step inside a triplet.
    preset: TV-L1 preset.
    max_flow: saturation magnitude in px; 0 = per row maximum.

  Returns:
    uint8 RGB `[H', W', 3]`: the rendered figure.

  Raises:
    ValueError: the video is too short for one triplet.
  """
  starts = pick_triplets(len(frames), rows, stride)
  return triplets_figure(frames[triplet_indices(starts, stride)], starts, stride,
                         preset, max_flow)


def triplet_indices(starts: Sequence[int], stride: int) -> np.ndarray:
  """int64 `[rows, 3]`: the frames (t, t+s, t+2s) of each triplet."""
  return np.asarray(starts, np.int64)[:, None] + np.arange(3) * stride


def triplets_figure(triplets: np.ndarray, starts: Sequence[int], stride: int = 1,
                    preset: str = "accurate", max_flow: float = 0.0):
  """`flow_figure` from the triplets' frames alone.

  Args:
    triplets: uint8 `[rows, 3, H, W, 3]`, the frames `triplet_indices(starts,
      stride)` of a video (e.g. read with `video.read_frames`).
    starts: the first frame of each row, for the titles.
    stride: frame step inside a triplet.
    preset: TV-L1 preset.
    max_flow: saturation magnitude in px; 0 = per row maximum.

  Returns:
    uint8 RGB `[H', W', 3]`: the rendered figure.

  Raises:
    ValueError: `max_flow` is negative (or NaN).
  """
  if not max_flow >= 0:
    raise ValueError(f"max_flow must be > 0 px, or 0 for the largest in each row; "
                     f"got {max_flow}")
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  height, width = triplets.shape[2:4]
  # All 2*rows pairs in one batch, row by row.
  first = triplets[:, :2].reshape(-1, height, width, 3)
  second = triplets[:, 1:].reshape(-1, height, width, 3)
  flows = np.asarray(tvl1(np.asarray(first, np.float32),
                          np.asarray(second, np.float32), preset))
  fig, axes = plt.subplots(len(starts), 5, squeeze=False,
                           figsize=(5 * 2.4, len(starts) * 2.4 * height
                                    / width + 0.4))
  for r, t in enumerate(starts):
    pair = flows[2 * r:2 * r + 2]
    peak = max_flow or max(float(np.hypot(pair[..., 0], pair[..., 1]).max()),
                           1e-6)
    images = list(triplets[r])
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
