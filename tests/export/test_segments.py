"""tsnet_tf.export.segments: the smoothing rule on known window sequences."""

import numpy as np

from tsnet_tf.export import segments


def _onehot(k, n=3, p=0.9):
  v = np.full(n, (1 - p) / (n - 1))
  v[k] = p
  return v


def test_segments_smooth_a_glitch_and_merge():
  labels = ["a", "b", "c"]
  # Windows of 1 s every 0.5 s: a a a b(glitch) a a c c c c c
  seq = [0, 0, 0, 1, 0, 0, 2, 2, 2, 2, 2]
  windows = [(0.5 * i, 0.5 * i + 1, _onehot(k)) for i, k in enumerate(seq)]
  segs = segments.segments_of(windows, labels, smooth=3, min_segment=0.0)
  assert [s.label for s in segs] == ["a", "c"]
  assert segs[0].start == 0.0 and segs[-1].end == 6.0
  assert segs[0].end == segs[1].start  # windows own the time nearest their centre
  # without smoothing the glitch is its own window-long segment; min_segment drops it and
  # the two "a" segments around it are joined
  raw = segments.segments_of(windows, labels, smooth=1, min_segment=0.0)
  assert [s.label for s in raw] == ["a", "b", "a", "c"]
  joined = segments.segments_of(windows, labels, smooth=1, min_segment=0.75)
  assert [s.label for s in joined] == ["a", "c"]
  assert 0.85 < joined[0].score < 0.95
