"""numpy_input: the TF-free clips agree with the tf.data pipeline's geometry."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import numpy_input
from tsnet_tf.data import preprocessing
from tsnet_tf.data import sampling


@pytest.mark.parametrize("shape,size", [((3, 24, 40, 3), 16), ((2, 9, 7, 3), 20),
                                        ((1, 16, 16, 3), 16)])
def test_resize_matches_tf_image_resize(shape, size):
  frames = np.random.RandomState(0).randint(0, 256, shape).astype(np.uint8)
  ours = numpy_input.resize_bilinear(frames, size)
  theirs = tf.image.resize(frames, [size, size], method="bilinear", antialias=False).numpy()
  assert ours.dtype == np.float32 and ours.shape == (shape[0], size, size, 3)
  np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_eval_clips_match_the_serving_preprocessing():
  frames = np.random.RandomState(1).randint(0, 256, (30, 24, 40, 3)).astype(np.uint8)
  ours = numpy_input.eval_clips(frames, num_frames=8, crop_size=16, num_clips=3)
  clips = sampling.sample_eval_clips(frames, 8, 3)
  theirs = preprocessing.eval_preprocess(clips, 16).numpy()
  assert ours.shape == (3, 8, 16, 16, 3)
  np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_train_clip_is_a_consecutive_window_of_the_video():
  # Frame t is filled with the value t: the clip's frames reveal their indices.
  frames = np.broadcast_to(np.arange(40, dtype=np.uint8)[:, None, None, None],
                           (40, 20, 30, 3)).copy()
  rng = np.random.default_rng(0)
  for _ in range(5):
    clip = numpy_input.train_clip(frames, 8, 12, rng, frame_stride=2, scale_range=(0.5, 1.0))
    first = clip[:, 0, 0, 0]
    np.testing.assert_allclose(np.diff(first), 2.0, atol=1e-4)
    assert clip.shape == (8, 12, 12, 3)
  windows = {numpy_input.random_window(20, 30, rng, (0.5, 1.0)) for _ in range(50)}
  assert all(10 <= w[2] <= 20 and w[0] + w[2] <= 20 and w[1] + w[3] <= 30 for w in windows)
  assert len({w[2] for w in windows}) > 3  # the scale is jittered


def test_generated_clips_move_by_their_class_velocity():
  clips, labels = numpy_input.generated_clips(4, 3, 16, num_classes=4, seed=0)
  assert clips.shape == (4, 3, 16, 16, 3) and clips.dtype == np.float32
  np.testing.assert_array_equal(labels, [0, 1, 2, 3])
  for b in range(4):
    dy, dx = labels[b] // 3 - 1, labels[b] % 3 - 1
    np.testing.assert_array_equal(clips[b, 2], np.roll(clips[b, 1], (dy, dx), axis=(0, 1)))


@pytest.fixture(scope="module")
def videos_root(tmp_path_factory):
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("videos") / "generated")
  synthetic.generate_dataset(root, num_classes=2, videos_per_class=3, seed=0, height=24,
                             width=32, min_seconds=0.4, max_seconds=0.5)
  return root


def test_video_clips_batches(videos_root):
  videos, names = numpy_input.hmdb51_videos(os.path.join(videos_root, "videos"),
                                            os.path.join(videos_root, "splits"))
  assert len(names) == 2 and len(videos) >= 2
  train = numpy_input.VideoClips(videos, batch_size=2, num_frames=4, crop_size=16, seed=0)
  assert len(train) == len(videos) // 2
  x, y = train[0]
  assert x.shape == (2, 4, 16, 16, 3) and x.dtype == np.float32 and y.dtype == np.int32
  again, _ = numpy_input.VideoClips(videos, batch_size=2, num_frames=4, crop_size=16,
                                    seed=0)[0]
  np.testing.assert_array_equal(x, again)  # the seed makes it deterministic
  test, _ = numpy_input.hmdb51_videos(os.path.join(videos_root, "videos"),
                                      os.path.join(videos_root, "splits"), subset="test")
  evaluation = numpy_input.VideoClips(test, batch_size=3, num_frames=4, crop_size=16,
                                      training=False, num_clips=2)
  batches = [evaluation[i] for i in range(len(evaluation))]
  assert sum(len(b[1]) for b in batches) == 2 * len(test)
  with pytest.raises(IndexError):
    evaluation[len(evaluation)]


def test_clips_read_from_files_equal_the_decoded_video_path(videos_root):
  """VideoClips reads only the clips' frames; the clips are those of the whole
  decoded video (the same random start, window and flip for a seed)."""
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  videos, _ = numpy_input.hmdb51_videos(os.path.join(videos_root, "videos"),
                                        os.path.join(videos_root, "splits"))
  for path, _ in videos[:3]:
    frames = video.read_video(path)
    for seed in ([0, 0, 1], [3, 1, 0]):
      np.testing.assert_array_equal(
          numpy_input.read_train_clip(path, 4, 16, seed, 2, (0.5, 1.0)),
          numpy_input.train_clip(frames, 4, 16, np.random.default_rng(seed), 2, (0.5, 1.0)))
    np.testing.assert_array_equal(numpy_input.read_eval_clips(path, 4, 16, 3, 2),
                                  numpy_input.eval_clips(frames, 4, 16, 3, 2))


def test_imports_without_tensorflow():
  pytest.importorskip("jax")  # a backend that is not TensorFlow
  code = ("import sys\n"
          "from tsnet_tf.data import numpy_input\n"
          "numpy_input.generated_clips(1, 2, 8, 2)\n"
          "print('tensorflow' in sys.modules)\n")
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join(
      [os.path.join(repo, "tests", "no_tensorflow"), repo]))
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "False"
