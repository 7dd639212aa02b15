"""Flow colour coding: the Middlebury colour wheel (Baker et al., 2011).

Hue gives the direction, saturation the magnitude (white = no motion), as in
the Middlebury benchmark's `flowToColor` and the paper's Fig. 5.
"""

from typing import Optional

import numpy as np


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
      compare several flows on the same scale.

  Returns:
    uint8 `[..., H, W, 3]` RGB.
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
