"""Tests of tsnet_tf/flow/flo.py (Middlebury .flo files)."""

import os

import numpy as np
import pytest

from tsnet_tf.flow import read_flo
from tsnet_tf.flow import valid_mask
from tsnet_tf.flow import write_flo

_MIDDLEBURY = os.path.join(os.path.dirname(__file__), "..", "..", "..",
                           "shared", "data", "middlebury")


def test_round_trip_and_layout(tmp_path):
  flow = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
  flow[0, 0] = [1e10, 0]
  path = str(tmp_path / "a.flo")
  write_flo(path, flow)
  raw = open(path, "rb").read()
  assert raw[:4] == b"PIEH" and len(raw) == 12 + 3 * 5 * 8
  # width then height in the header, u and v interleaved row-major.
  assert np.frombuffer(raw[4:12], "<i4").tolist() == [5, 3]
  np.testing.assert_array_equal(np.frombuffer(raw[12:20], "<f4"),
                                flow[0, 0])
  back = read_flo(path)
  np.testing.assert_array_equal(back, flow)
  mask = valid_mask(back)
  assert not mask[0, 0] and mask.sum() == 14


def test_bad_files_name_the_file(tmp_path):
  path = tmp_path / "bad.flo"
  path.write_bytes(b"NOPE" + bytes(8))
  with pytest.raises(ValueError, match="bad.flo: bad .flo magic"):
    read_flo(str(path))
  path.write_bytes(np.array([202021.25], "<f4").tobytes()
                   + np.array([4, 4], "<i4").tobytes() + bytes(8))
  with pytest.raises(ValueError, match="header says 4x4"):
    read_flo(str(path))


@pytest.mark.skipif(not os.path.isdir(_MIDDLEBURY), reason="no Middlebury")
def test_reads_middlebury_ground_truth():
  flow = read_flo(os.path.join(_MIDDLEBURY, "Venus", "flow10.flo"))
  assert flow.shape == (380, 420, 2)
  mask = valid_mask(flow)
  assert 0.5 < mask.mean() <= 1.0
  assert 1.0 < np.abs(flow[mask]).max() < 50.0
