"""SavedModel export: signature contract, equality with Keras, layout, refusal to overwrite."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf.data import clip_spec
from tsnet_tf.data import preprocessing
from tsnet_tf.export import saved_model as sm
from tsnet_tf.layers import clip_contract


def test_top_k_ids_pads_with_minus_one():
  p = tf.constant([[0.2, 0.5, 0.3]])
  np.testing.assert_array_equal(sm.top_k_ids(p), [[1, 2, 0, -1, -1]])
  p7 = tf.constant([[0.0, 0.1, 0.6, 0.05, 0.15, 0.04, 0.06]])
  np.testing.assert_array_equal(sm.top_k_ids(p7), [[2, 4, 1, 6, 3]])


def test_layout_and_signatures(deploy, export_dir):
  assert sorted(os.listdir(export_dir)) == sorted(
      ["assets", "fingerprint.pb", "model.keras", "saved_model.pb", "variables"])
  with open(os.path.join(export_dir, "assets", "labels.txt")) as f:
    assert f.read().split() == list(deploy.CLASSES)
  loaded = tf.saved_model.load(export_dir)
  fn = loaded.signatures["serving_default"]
  (spec,) = fn.structured_input_signature[1].values()
  assert spec.name == "frames" and spec.dtype == tf.uint8
  assert spec.shape.as_list() == [None, None, None, None, 3]
  outs = fn.structured_outputs
  assert set(outs) == {"probabilities", "class_ids"}
  assert outs["probabilities"].dtype == tf.float32
  assert outs["class_ids"].dtype == tf.int32 and outs["class_ids"].shape.as_list() == [None, 5]
  meta = sm.saved_model_metadata(loaded)
  assert meta == {"num_frames": deploy.T, "crop_size": deploy.S, "frame_stride": 1,
                  "labels": list(deploy.CLASSES), "clip_spec": meta["clip_spec"]}
  with open(os.path.join(export_dir, "assets", "clip_spec.json")) as f:
    assert clip_spec.ClipSpec.from_json(f.read()) == meta["clip_spec"]
  assert meta["clip_spec"].stored_frames.jpeg_quality == 90
  # The export's model.keras carries the same contract.
  keras_meta = clip_contract.from_model(
      sm.load_keras_model(os.path.join(export_dir, "model.keras")))
  assert keras_meta == (meta["clip_spec"], list(deploy.CLASSES))


def test_saved_model_equals_keras(deploy, export_dir, trained):
  rng = np.random.default_rng(1)
  loaded = tf.saved_model.load(export_dir)
  fn = loaded.signatures["serving_default"]
  # Any size: 48x40 frames, T = trained T (so no temporal resampling).
  frames = rng.integers(0, 256, (3, deploy.T, 48, 40, 3), dtype=np.uint8)
  out = fn(frames=tf.constant(frames))
  ref = tf.nn.softmax(trained(preprocessing.eval_preprocess(frames, deploy.S))).numpy()
  np.testing.assert_allclose(out["probabilities"].numpy(), ref, atol=1e-5)
  np.testing.assert_array_equal(out["class_ids"].numpy()[:, :3],
                                np.argsort(-ref, axis=1, kind="stable"))
  np.testing.assert_array_equal(out["class_ids"].numpy()[:, 3:], -1)
  # Another number of frames: the graph takes the centre clip (looped when short),
  # the one sampling rule of evaluation.
  spec = sm.saved_model_metadata(loaded)["clip_spec"]
  for n in (20, 3):
    video = rng.integers(0, 256, (1, n, 32, 32, 3), dtype=np.uint8)
    out = fn(frames=tf.constant(video))["probabilities"].numpy()
    picked = video[:, spec.video_indices(n)[0]]
    ref = tf.nn.softmax(trained(preprocessing.eval_preprocess(picked, deploy.S))).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)
  # classify_clip is the model on preprocessed clips.
  clip = rng.uniform(0, 255, (2, deploy.T, deploy.S, deploy.S, 3)).astype(np.float32)
  got = loaded.signatures["classify_clip"](clip=tf.constant(clip))
  np.testing.assert_allclose(got["logits"].numpy(), trained(clip).numpy(), atol=1e-5)


def test_bad_frames_raise_invalid_argument(export_dir):
  fn = tf.saved_model.load(export_dir).signatures["serving_default"]
  with pytest.raises(tf.errors.InvalidArgumentError, match="T, H and W >= 1"):
    fn(frames=tf.zeros((1, 0, 8, 8, 3), tf.uint8))
  with pytest.raises(tf.errors.InvalidArgumentError, match="B >= 1"):
    fn(frames=tf.zeros((0, 4, 8, 8, 3), tf.uint8))
  with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="3"):
    fn(frames=tf.zeros((1, 4, 8, 8, 4), tf.uint8))
  with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
    fn(frames=tf.zeros((1, 4, 8, 8, 3), tf.float32))
  with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
    fn(frames=tf.zeros((4, 8, 8, 3), tf.uint8))


def test_refuses_to_overwrite_and_checks_labels(deploy, export_dir, trained, dataset):
  with pytest.raises(FileExistsError, match="overwrite"):
    sm.export_saved_model(trained, list(deploy.CLASSES), export_dir,
                          spec=deploy.spec(dataset[1]))
  with pytest.raises(ValueError, match="2 labels"):
    sm.export_saved_model(trained, ["a", "b"], export_dir + "_x", spec=deploy.spec(dataset[1]))
  with pytest.raises(clip_spec.ClipSpecError, match="carries no clip spec"):
    sm.export_saved_model(trained, list(deploy.CLASSES), export_dir + "_x")
  assert not os.path.exists(export_dir + "_x")


def test_overwrite_replaces_only_a_saved_model(deploy, trained, dataset, tmp_path):
  mine = tmp_path / "1"
  mine.mkdir()
  (mine / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="not a SavedModel .*refusing to delete"):
    sm.export_saved_model(trained, list(deploy.CLASSES), str(mine), overwrite=True,
                          spec=deploy.spec(dataset[1]))
  assert os.listdir(mine) == ["notes.txt"]
  (tmp_path / "2").write_text("a file")
  with pytest.raises(FileExistsError, match="is a file"):
    sm.export_saved_model(trained, list(deploy.CLASSES), str(tmp_path / "2"), overwrite=True,
                          spec=deploy.spec(dataset[1]))
  assert (tmp_path / "2").read_text() == "a file"
  ours = str(tmp_path / "3")
  for _ in range(2):  # the second replaces the first: it is a SavedModel
    sm.export_saved_model(trained, list(deploy.CLASSES), ours, overwrite=True,
                          spec=deploy.spec(dataset[1]), save_keras=False)
  assert os.path.isfile(os.path.join(ours, "saved_model.pb"))


def test_keras_file_loads_in_fresh_process(deploy, export_dir):
  code = ("import sys, numpy as np, keras, tsnet_tf; "
          "m = keras.saving.load_model(sys.argv[1]); "
          "print(m.input_shape, m.output_shape)")
  out = subprocess.run([sys.executable, "-c", code, os.path.join(export_dir, "model.keras")],
                       capture_output=True, text=True, timeout=120, check=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  t, s, k = deploy.T, deploy.S, len(deploy.CLASSES)
  assert f"(None, {t}, {s}, {s}, 3) (None, {k})" in out.stdout


@pytest.mark.slow
def test_saved_model_cli_shows_signature(export_dir):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  if not os.path.exists(cli):
    pytest.skip("saved_model_cli not installed next to the interpreter")
  out = subprocess.run([cli, "show", "--dir", export_dir, "--tag_set", "serve",
                        "--signature_def", "serving_default"],
                       capture_output=True, text=True, timeout=120, check=True).stdout
  assert "inputs['frames']" in out and "DT_UINT8" in out
  assert "outputs['probabilities']" in out and "outputs['class_ids']" in out
