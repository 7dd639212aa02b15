"""Middlebury `.flo` optical-flow files (read and write)."""

import numpy as np

from tsnet_tf.utils import io

FLO_MAGIC = 202021.25
# Middlebury marks unknown ground truth with huge values.
UNKNOWN_THRESHOLD = 1e9


def read_flo(path: str) -> np.ndarray:
  """Reads a Middlebury `.flo` file.

  Args:
    path: file path.

  Returns:
    float32 `[H, W, 2]` (u = x, v = y), unknown pixels keep their huge value;
    use `valid_mask`.

  Raises:
    ValueError: the file is not a well-formed .flo file (message names it).
  """
  with open(path, "rb") as f:
    data = f.read()
  if len(data) < 12:
    raise ValueError(f"{path}: too short for a .flo header ({len(data)} bytes)")
  magic = np.frombuffer(data, "<f4", 1, 0)[0]
  if magic != np.float32(FLO_MAGIC):
    raise ValueError(f"{path}: bad .flo magic {magic!r} (expected "
                     f"{FLO_MAGIC}, 'PIEH')")
  width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
  expected = 12 + 8 * width * height
  if width <= 0 or height <= 0 or len(data) != expected:
    raise ValueError(f"{path}: header says {width}x{height} ({expected} bytes)"
                     f" but the file has {len(data)} bytes")
  flow = np.frombuffer(data, "<f4", 2 * width * height, 12)
  return flow.reshape(height, width, 2).astype(np.float32)


def write_flo(path: str, flow) -> None:
  """Writes float `[H, W, 2]` as a Middlebury `.flo` file, atomically."""
  flow = np.asarray(flow, np.float32)
  if flow.ndim != 3 or flow.shape[-1] != 2:
    raise ValueError(f"write_flo: flow must be [H, W, 2], got {flow.shape}")
  height, width = flow.shape[:2]
  with io.atomic_write(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(np.array([FLO_MAGIC], "<f4").tobytes())
      f.write(np.array([width, height], "<i4").tobytes())
      f.write(flow.astype("<f4").tobytes())


def valid_mask(flow: np.ndarray) -> np.ndarray:
  """bool `[H, W]`: True where both components are known (|.| <= 1e9)."""
  return np.all(np.abs(flow) <= UNKNOWN_THRESHOLD, axis=-1) & np.all(
      np.isfinite(flow), axis=-1)
