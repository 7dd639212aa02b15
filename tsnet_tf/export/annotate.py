"""Pictures of a recognition run: label-annotated video frames and a timeline PNG."""

import collections
import fractions
import json
import sys
import threading
from typing import Deque, Sequence, Tuple

import numpy as np

from tsnet_tf.export import segments as segments_lib
from tsnet_tf.utils import io as io_utils


def draw_label(frame: np.ndarray, text: str) -> np.ndarray:
  """uint8 `[H, W, 3]` with `text` on a dark band at its top (PIL)."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  image = Image.fromarray(frame)
  draw = ImageDraw.Draw(image)
  box = draw.textbbox((3, 2), text)
  draw.rectangle((0, 0, frame.shape[1], box[3] + 2), fill=(0, 0, 0))
  draw.text((3, 2), text, fill=(255, 255, 255))
  return np.asarray(image)


class AnnotatedWriter:
  """Writes frames with their labels drawn to an MP4 (H.264 where available), atomically.

  Frames wait (`add`) until a window that ends at or after them is labelled
  (`label_until`); at most `max_pending` wait (the oldest then take the last
  label), so memory stays bounded on a stream.
  """

  def __init__(self, path: str, fps: float, max_pending: int):
    self.path = path
    self.fps = fps
    self.max_pending = max(1, max_pending)
    self._pending: Deque[Tuple[int, np.ndarray]] = collections.deque()
    self._lock = threading.Lock()
    self._encode_lock = threading.Lock()  # the decoder (overflow) and the labeller both write
    self._closed = False
    self._text = ""
    self.num_written = 0
    self._atomic = io_utils.atomic_write(path)
    self._tmp = self._atomic.__enter__()
    import av  # pylint: disable=g-import-not-at-top
    self._container = av.open(self._tmp, mode="w", format="mp4")
    self._stream = None
    self._codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"

  def add(self, index: int, frame: np.ndarray) -> None:
    with self._lock:
      self._pending.append((index, frame))
      overflow = len(self._pending) > self.max_pending
    if overflow:
      self._write_until(self._pending[0][0] + 1)

  def label_until(self, end_frame: int, text: str) -> None:
    """Frames before `end_frame` get `text`."""
    self._text = text
    self._write_until(end_frame)

  def _write_until(self, end_frame: int) -> None:
    with self._encode_lock:
      while not self._closed:
        with self._lock:
          if not self._pending or self._pending[0][0] >= end_frame:
            return
          _, frame = self._pending.popleft()
        self._encode(draw_label(frame, self._text) if self._text else frame)

  def _encode(self, rgb: np.ndarray) -> None:
    import av  # pylint: disable=g-import-not-at-top
    rgb = rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2]  # 4:2:0 wants even sizes
    if self._stream is None:
      rate = fractions.Fraction(self.fps).limit_denominator(1001)
      self._stream = self._container.add_stream(
          self._codec, rate=rate,
          options={"preset": "veryfast"} if self._codec == "libx264" else None)
      self._stream.width, self._stream.height = rgb.shape[1], rgb.shape[0]
      self._stream.pix_fmt = "yuv420p"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    self._container.mux(self._stream.encode(frame))
    self.num_written += 1

  def close(self) -> None:
    """Writes the frames still waiting (last label) and completes the file (once)."""
    if self._closed:
      return
    self._write_until(sys.maxsize)
    self._closed = True
    try:
      if self._stream is not None:
        self._container.mux(self._stream.encode(None))
      self._container.close()
    except BaseException:
      self._atomic.__exit__(*sys.exc_info())
      raise
    if self.num_written:
      self._atomic.__exit__(None, None, None)
    else:  # no frame: no file
      self._atomic.__exit__(ValueError, ValueError("no frames"), None)


def write_timeline(path: str, windows_path: str, labels: Sequence[str],
                   segments: Sequence[segments_lib.Segment]) -> None:
  """timeline.png: each window's top class over time (read back from windows.jsonl), and
  the smoothed segments below, one row per class."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  row = {name: i for i, name in enumerate(labels)}
  colours = plt.get_cmap("tab10")
  fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 1.5 + 0.45 * len(labels)),
                                    gridspec_kw={"height_ratios": [len(labels), 1.2]})
  end = 0.0
  with open(windows_path, encoding="utf-8") as f:
    for line in f:
      w = json.loads(line)
      name = w["top"][0]["label"]
      r = row.get(name, 0)
      top.plot([w["start"], w["end"]], [r, r], color=colours(r % 10), linewidth=6,
               alpha=0.25 + 0.75 * w["top"][0]["score"], solid_capstyle="butt")
      end = max(end, w["end"])
  top.set_yticks(range(len(labels)), labels)
  top.set_ylim(-0.7, len(labels) - 0.3)
  top.invert_yaxis()
  top.set_title("top class per window (opacity: probability)")
  for seg in segments:
    r = row.get(seg.label, 0)
    bottom.broken_barh([(seg.start, seg.end - seg.start)], (0, 1), color=colours(r % 10))
    bottom.text((seg.start + seg.end) / 2, 0.5, seg.label, ha="center", va="center",
                fontsize=7, clip_on=True)
    end = max(end, seg.end)
  bottom.set_yticks([])
  bottom.set_xlabel("time (s)")
  bottom.set_title("segments (smoothed)")
  bottom.set_xlim(0, max(end, 1e-3))
  fig.tight_layout()
  with io_utils.atomic_write(path) as tmp:
    fig.savefig(tmp, dpi=100, format="png")
  plt.close(fig)
