import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import sampling


def _seed(i):
  return tf.constant([i, 7], tf.int64)


def test_train_indices_are_consecutive_and_in_range():
  starts = set()
  for i in range(40):
    idx = sampling.train_indices(30, 8, _seed(i)).numpy()
    assert idx.dtype == np.int32 and idx.shape == (8,)
    np.testing.assert_array_equal(np.diff(idx), 1)
    assert 0 <= idx[0] <= 22 and idx[-1] <= 29
    starts.add(int(idx[0]))
  # Random start: 40 draws over 23 possible starts hit many of them, incl. both ends' halves.
  assert len(starts) > 10 and min(starts) < 8 and max(starts) > 15


def test_train_indices_same_seed_same_clip_and_stride():
  a = sampling.train_indices(100, 5, _seed(3), stride=3).numpy()
  b = sampling.train_indices(tf.constant(100), 5, _seed(3), stride=3).numpy()
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(np.diff(a), 3)
  assert a[-1] <= 99


def test_short_video_is_looped():
  for i in range(5):
    np.testing.assert_array_equal(sampling.train_indices(5, 8, _seed(i)).numpy(),
                                  [0, 1, 2, 3, 4, 0, 1, 2])
  np.testing.assert_array_equal(sampling.eval_indices(3, 7, 2).numpy(),
                                [[0, 1, 2, 0, 1, 2, 0]] * 2)
  np.testing.assert_array_equal(sampling.eval_indices(1, 3, 1).numpy(), [[0, 0, 0]])


def test_eval_indices_hand_computed():
  # 1 clip: centred. free = 20 - 10 = 10 -> start 5.
  np.testing.assert_array_equal(sampling.eval_indices(20, 10, 1).numpy(), [np.arange(5, 15)])
  # 3 clips over free = 90: centres of thirds -> starts 15, 45, 75.
  idx = sampling.eval_indices(100, 10, 3).numpy()
  np.testing.assert_array_equal(idx[:, 0], [15, 45, 75])
  np.testing.assert_array_equal(idx[1], np.arange(45, 55))


def test_eval_indices_tf_matches_numpy_twin():
  for n in (1, 4, 25, 26, 97, 300):
    for t in (1, 8, 25):
      for k in (1, 2, 5):
        for stride in (1, 2):
          tf_idx = sampling.eval_indices(n, t, k, stride=stride).numpy()
          np_idx = sampling.eval_indices_np(n, t, k, stride=stride)
          np.testing.assert_array_equal(tf_idx, np_idx, err_msg=f"n={n} t={t} k={k}")
          assert tf_idx.min() >= 0 and tf_idx.max() < n


def test_train_indices_np_twin_same_rule():
  rng = np.random.default_rng(0)
  for _ in range(20):
    idx = sampling.train_indices_np(30, 8, rng, stride=2)
    np.testing.assert_array_equal(np.diff(idx), 2)
    assert idx[-1] <= 29
  np.testing.assert_array_equal(sampling.train_indices_np(3, 5, rng), [0, 1, 2, 0, 1])


def test_sample_eval_clips_gathers_frames():
  frames = np.arange(12, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3, 3), np.uint8)
  clips = sampling.sample_eval_clips(frames, num_frames=4, num_clips=2)
  assert clips.shape == (2, 4, 2, 3, 3) and clips.dtype == np.uint8
  np.testing.assert_array_equal(clips[:, :, 0, 0, 0], sampling.eval_indices_np(12, 4, 2))
  with pytest.raises(ValueError, match="frames must be"):
    sampling.sample_eval_clips(np.zeros((4, 4, 3)), 2)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="num_frames"):
    sampling.eval_indices(10, 0)
  with pytest.raises(ValueError, match="num_clips"):
    sampling.eval_indices_np(10, 4, 0)
  with pytest.raises(ValueError, match="stride"):
    sampling.train_indices(10, 4, _seed(0), stride=0)


def test_train_indices_in_graph_with_dynamic_length():
  fn = tf.function(lambda n, s: sampling.train_indices(n, 6, s),
                   input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int64)])
  idx = fn(tf.constant(9), _seed(1)).numpy()
  assert idx.shape == (6,) and idx.max() < 9
  np.testing.assert_array_equal(np.diff(idx), 1)
