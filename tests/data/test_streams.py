"""tsnet_tf.data.streams: the windows are the clip spec's clips; stdin needs its format.

Sources end to end (file, http URL, a server closing, stdin, stalls) are tested
with the recognition run in tests/export/test_recognize.py.
"""

import io

import numpy as np
import pytest

from tsnet_tf.data import clip_spec
from tsnet_tf.data import streams

SPEC = clip_spec.ClipSpec(num_frames=4, crop_size=16, frame_stride=3)  # span 10 frames


@pytest.mark.parametrize("stored_stride, frame_stride, hop", [(1, 3, None), (1, 1, 3), (2, 2, 4)])
def test_windows_are_the_spec_clips(stored_stride, frame_stride, hop):
  spec = clip_spec.ClipSpec(4, 16, frame_stride, clip_spec.StoredFrames(stride=stored_stride))
  slicer = streams.WindowSlicer(spec, hop)
  n = 37
  clips = []
  for i in range(n):
    clips += slicer.push(np.full((2, 2, 3), i, np.uint8))
  clips += slicer.finish()
  v = spec.video_stride
  span = 3 * v + 1
  assert slicer.span == span and slicer.hop % stored_stride == 0
  for clip in clips:  # each clip is the frames s, s + v, ... of its window
    assert clip.end_frame - clip.start_frame == span
    np.testing.assert_array_equal(clip.frames[:, 0, 0, 0], clip.start_frame + v * np.arange(4))
    assert clip.start_frame % stored_stride == 0
  starts = [c.start_frame for c in clips]
  regular = list(range(0, n - span + 1, slicer.hop))
  assert starts[:len(regular)] == regular
  assert clips[-1].end_frame >= n - stored_stride + 1  # the tail is covered
  assert [c.index for c in clips] == list(range(len(clips)))


def test_a_source_shorter_than_a_clip_gives_one_looped_clip():
  slicer = streams.WindowSlicer(SPEC)
  for i in range(6):
    assert not slicer.push(np.full((2, 2, 3), i, np.uint8))
  (clip,) = slicer.finish()
  frames = np.stack([np.full((2, 2, 3), i, np.uint8) for i in range(6)])
  np.testing.assert_array_equal(clip.frames, SPEC.clip_of_video(frames)[0])
  assert (clip.start_frame, clip.end_frame) == (0, 6)


def test_default_hop_is_half_a_clip():
  assert streams.default_hop(SPEC) == 5
  assert streams.WindowSlicer(SPEC, 7).hop == 7


def test_stdin_needs_its_size_and_rate():
  with pytest.raises(ValueError, match="--stdin_size"):
    streams.open_source("-", None, 25, stdin=io.BytesIO())
  with pytest.raises(ValueError, match="--stdin_size"):
    streams.open_source("-", "64-48", 25, stdin=io.BytesIO())
