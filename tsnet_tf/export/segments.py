"""The smoothed segment list of a sequence of classified windows.

Smoothing rule. 1) The probabilities of each window are averaged with those of
its neighbours, a centred moving average over `smooth` windows (fewer at the
ends). 2) Each window is labelled with the top class of its average, and owns
the time closer to its centre than to its neighbours' (the first window from
its start, the last to its end). 3) Consecutive windows with the same label are
merged into a segment whose score is the mean of their averaged top
probabilities. 4) Segments shorter than `min_segment` seconds are dropped, and
neighbours of the same label that then touch are joined.

`SegmentBuilder` applies it online (memory: `smooth` windows, the open segment
and the list); `segments_of` to a list.
"""

import collections
import dataclasses
from typing import Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclasses.dataclass
class Segment:
  label: str
  start: float
  end: float
  score: float
  num_windows: int = 1

  def to_dict(self) -> Dict:
    return {"label": self.label, "start": round(self.start, 4), "end": round(self.end, 4),
            "score": round(self.score, 4)}


class SegmentBuilder:
  """The module doc's smoothing rule, online: windows in, segments out.

    builder = SegmentBuilder(labels, smooth=3, min_segment=1.0)
    for start, end, probabilities in windows:
      builder.add(start, end, probabilities)
    segments = builder.finish()
  """

  def __init__(self, labels: Sequence[str], smooth: int = 3, min_segment: float = 0.0):
    if smooth < 1:
      raise ValueError(f"smooth must be >= 1 window, got {smooth}")
    self.labels = list(labels)
    self.smooth = int(smooth)
    self.min_segment = float(min_segment)
    self._half = self.smooth // 2
    # Windows not yet averaged: (start, end, probabilities); the average of
    # window i needs windows i - half .. i + half.
    self._pending: Deque[Tuple[float, float, np.ndarray]] = collections.deque()
    self._history: Deque[np.ndarray] = collections.deque(maxlen=self._half)
    self._prev: Optional[Tuple[float, float, int, float]] = None  # start, end, cls, score
    self._cursor = 0.0  # where the previous window's time begins
    self._open: Optional[Segment] = None
    self.segments: List[Segment] = []

  def add(self, start: float, end: float, probabilities: np.ndarray) -> None:
    self._pending.append((start, end, np.asarray(probabilities, np.float64)))
    if len(self._pending) > self._half:
      self._average_next(final=False)

  def _average_next(self, final: bool) -> None:
    start, end, probs = self._pending[0]
    ahead = [p for _, _, p in list(self._pending)[1:self._half + 1]]
    mean = np.mean([*self._history, probs, *ahead], axis=0)
    self._history.append(probs)
    self._pending.popleft()
    cls = int(np.argmax(mean))
    self._place(start, end, cls, float(mean[cls]), last=final and not self._pending)

  def _place(self, start, end, cls, score, last) -> None:
    """Gives the previous window the time up to the midpoint of the two centres."""
    if self._prev is None:
      self._cursor = start
    else:
      p_start, p_end, p_cls, p_score = self._prev
      boundary = ((p_start + p_end) / 2 + (start + end) / 2) / 2
      boundary = max(self._cursor, min(p_end, boundary))
      self._extend(p_cls, self._cursor, boundary, p_score)
      self._cursor = boundary
    self._prev = (start, end, cls, score)
    if last:
      self._extend(cls, self._cursor, max(end, self._cursor), score)

  def _extend(self, cls, start, end, score) -> None:
    label = self.labels[cls]
    if self._open is not None and self._open.label == label:
      seg = self._open
      seg.score = (seg.score * seg.num_windows + score) / (seg.num_windows + 1)
      seg.num_windows += 1
      seg.end = end
      return
    self._close()
    self._open = Segment(label, start, end, score)

  def _close(self) -> None:
    seg, self._open = self._open, None
    if seg is None or seg.end - seg.start < self.min_segment:
      return
    if self.segments and self.segments[-1].label == seg.label:
      prev = self.segments[-1]
      total = prev.num_windows + seg.num_windows
      prev.score = (prev.score * prev.num_windows + seg.score * seg.num_windows) / total
      prev.num_windows, prev.end = total, seg.end
      return
    self.segments.append(seg)

  def finish(self) -> List[Segment]:
    while self._pending:
      self._average_next(final=True)
    self._close()
    return self.segments


def segments_of(windows: Sequence[Tuple[float, float, np.ndarray]], labels: Sequence[str],
                smooth: int = 3, min_segment: float = 0.0) -> List[Segment]:
  """`SegmentBuilder` over a list of `(start_s, end_s, probabilities [K])` windows."""
  builder = SegmentBuilder(labels, smooth, min_segment)
  for start, end, probs in windows:
    builder.add(start, end, probs)
  return builder.finish()
