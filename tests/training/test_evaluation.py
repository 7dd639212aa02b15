"""Tests for tsnet_tf/training/evaluation.py: metrics by hand, eval.json, fusion."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.training import evaluation


def test_clip_and_video_accuracy_by_hand():
  # Video 7 (label 0): clips right, wrong, right -> video mean favours 0.
  # Video 9 (label 1): clips wrong, wrong -> video wrong.
  probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
  labels = np.array([0, 0, 0, 1, 1])
  videos = np.array([7, 7, 7, 9, 9])
  r = evaluation.summarize(probs, labels, videos, ["a", "b"])
  assert r["clip_accuracy"] == pytest.approx(2 / 5)
  assert r["video_accuracy"] == pytest.approx(1 / 2)
  assert (r["num_clips"], r["num_videos"]) == (5, 2)
  assert r["confusion_matrix"] == [[1, 0], [1, 0]]
  assert r["per_class_accuracy"] == {"a": 1.0, "b": 0.0}
  video_probs, video_labels, ids = evaluation.video_level(probs, labels, videos)
  np.testing.assert_allclose(video_probs[0], probs[:3].mean(axis=0))
  assert list(video_labels) == [0, 1] and list(ids) == [7, 9]
  # A class with no test video has no accuracy (not 0).
  r = evaluation.summarize(probs, labels, videos, ["a", "b", "c"])
  assert r["per_class_accuracy"]["c"] is None


def test_video_with_mixed_labels_is_an_error():
  with pytest.raises(evaluation.EvaluationError, match="different labels"):
    evaluation.video_level(np.ones((2, 2)), np.array([0, 1]), np.array([3, 3]))


def test_evaluate_writes_eval_json_and_confusion_png(rgb_run, teacher_dir, data_dir, tmp_path):
  model_dir, _ = rgb_run
  result = evaluation.evaluate(model_dir, data_dir, num_clips=2, batch_size=4, progress=False)
  with open(os.path.join(model_dir, "eval.json")) as f:
    saved = json.load(f)
  assert saved["clip_accuracy"] == result["clip_accuracy"]
  for key in ("clip_accuracy", "video_accuracy"):
    assert 0.0 <= saved[key] <= 1.0
  # 1 test video per class here, 2 clips each.
  assert (saved["num_videos"], saved["num_clips"]) == (2, 4)
  assert sum(map(sum, saved["confusion_matrix"])) == 2
  assert os.path.getsize(os.path.join(model_dir, "confusion_matrix.png")) > 0
  # Late fusion of the rgb and flow runs at evaluation, written elsewhere.
  fused = evaluation.evaluate(model_dir, data_dir, num_clips=2, batch_size=4,
                              fuse_dirs=[teacher_dir], output_dir=str(tmp_path / "fused"),
                              progress=False)
  assert len(fused["models"]) == 2 and fused["fusion"] == "mean"
  assert os.path.isfile(tmp_path / "fused" / "eval.json")
  assert "fusion" not in saved  # one model: nothing fused
  geometric = evaluation.evaluate(model_dir, data_dir, num_clips=2, batch_size=4,
                                  fuse_dirs=[teacher_dir], fusion="geometric",
                                  output_dir=str(tmp_path / "geometric"), progress=False)
  with open(tmp_path / "geometric" / "eval.json") as f:
    assert json.load(f)["fusion"] == "geometric"
  assert geometric["num_clips"] == fused["num_clips"]
  with pytest.raises(evaluation.EvaluationError, match="unknown fusion rule 'max'"):
    evaluation.evaluate(model_dir, data_dir, fuse_dirs=[teacher_dir], fusion="max",
                        output_dir=str(tmp_path / "max"), progress=False)
  assert not os.path.exists(tmp_path / "max")
  with pytest.raises(evaluation.EvaluationError, match="has no model.keras"):
    evaluation.evaluate(str(tmp_path), data_dir, progress=False)


def test_predict_clips_fuses_the_mean_softmax_by_hand():
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def fixed(logits, name):
    """A model whose logits are `logits` for every clip."""
    clip = keras.Input((2, 4, 4, 3))
    zero = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(1, 2, 3, 4))[:, None] * 0)(clip)
    return keras.Model(clip, zero + np.asarray(logits, np.float32)[None], name=name)

  a, b = [2.0, 0.0, -1.0], [-3.0, 1.0, 0.5]
  clips = np.zeros((2, 2, 4, 4, 3), np.float32)
  ds = tf.data.Dataset.from_tensors((clips, np.array([0, 1]), np.array([0, 1])))
  softmax = lambda x: np.exp(x) / np.exp(x).sum()  # pylint: disable=unnecessary-lambda-assignment
  probs, labels, videos = evaluation.predict_clips([fixed(a, "a")], ds, progress=False)
  np.testing.assert_allclose(probs, [softmax(np.array(a))] * 2, atol=1e-6)
  assert list(labels) == [0, 1] and list(videos) == [0, 1]
  fused, _, _ = evaluation.predict_clips([fixed(a, "a"), fixed(b, "b")], ds, progress=False)
  want = (softmax(np.array(a)) + softmax(np.array(b))) / 2
  np.testing.assert_allclose(fused, [want] * 2, atol=1e-6)
  geometric, _, _ = evaluation.predict_clips([fixed(a, "a"), fixed(b, "b")], ds,
                                             progress=False, fusion="geometric")
  product = np.sqrt(softmax(np.array(a)) * softmax(np.array(b)))
  np.testing.assert_allclose(geometric, [product / product.sum()] * 2, atol=1e-6)
  assert np.abs(geometric - fused).max() > 0.01  # the rules differ here


@pytest.mark.slow
def test_predict_clips_runs_in_graph_accurate_tvl1_at_the_paper_clip():
  # 25x224x224 clips through a teacher with `accurate` TV-L1 in the graph, several
  # batches of one fixed size: with Grappler's arithmetic optimizer on, the second
  # batch died with AlreadyExistsError (AddOpsRewrite tmp_var in the TV-L1 loops).
  # ~1 min on 2 cores.
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  teacher = models.build_teacher(3, 25, 224, backbone="light", width=4, flow_preset="accurate")
  rng = np.random.default_rng(0)
  clips = rng.uniform(0, 255, (3, 25, 224, 224, 3)).astype("float32")
  ds = tf.data.Dataset.from_tensor_slices(
      (clips, np.arange(3, dtype="int32"), np.arange(3, dtype="int32"))).batch(1)
  probs, labels, _ = evaluation.predict_clips([teacher], ds, progress=False)
  assert probs.shape == (3, 3) and labels.tolist() == [0, 1, 2]
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(probs[0], tf.nn.softmax(teacher(clips[:1])).numpy()[0], atol=1e-4)
