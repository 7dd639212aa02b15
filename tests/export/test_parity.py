"""One clip, every path: evaluation, .keras, SavedModel, TFLite (fp32, int8), serving client.

Models are trained by `trainer.train` (the tools/train.py path) on 3 colour
classes with `data.frame_stride` 3 on TFRecords converted at short side 24
(from 36x44 videos), so a path that loses the stride, the converter's resize or
its JPEG round trip gives other probabilities. A stride-1 model trained on the
same data proves that every artifact reads its own stride.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tsnet_tf import config as config_lib
from tsnet_tf.data import clip_spec
from tsnet_tf.data import pipeline
from tsnet_tf.data import preprocessing
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video
from tsnet_tf.export import predict
from tsnet_tf.export import saved_model as sm
from tsnet_tf.export import serving
from tsnet_tf.export import tflite as tfl
from tsnet_tf.training import evaluation
from tsnet_tf.training import run_dir
from tsnet_tf.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T, S = 4, 16
OVERRIDE = ("data.num_frames=4,data.crop_size=16,data.batch_size=8,data.eval_batch_size=8,"
            "data.validation_subset=none,train.steps_per_epoch=3,"
            "train.warmup_epochs=0,train.learning_rate=0.05,train.run_eagerly=true,"
            "model.backbone=light,model.width=8")


@pytest.fixture(scope="module")
def data(deploy, tmp_path_factory):
  """(video_dir, data_dir, {video_index: path}) of 20-29-frame videos stored at short side 24."""
  root = str(tmp_path_factory.mktemp("parity_data"))
  video_dir, data_dir = deploy.write_dataset(root, lengths=(20, 30), short_side=24)
  plan = tfrecords.build_plan(video_dir, os.path.join(root, "splits"), [1])
  return video_dir, data_dir, {v.video_index: v.path for v in plan.videos}


def _train(data_dir, model_dir, stride, epochs=10):
  cfg = config_lib.load_config(os.path.join(REPO, "configs", "synthetic.yaml"), "rgb",
                               f"{OVERRIDE},data.frame_stride={stride},train.epochs={epochs}")
  trainer.train(cfg, "rgb", model_dir, data_dir, verbose=0)
  return model_dir


@pytest.fixture(scope="module")
def artifacts(data, tmp_path_factory):
  """Run dir, export, fp32 and int8 TFLite files of the stride-3 model."""
  out = tmp_path_factory.mktemp("parity")
  model_dir = _train(data[1], str(out / "run3"), stride=3)
  export = sm.export_from_model_dir(model_dir, str(out / "saved_models" / "rgb" / "1"))
  files = {q: tfl.convert_saved_model(export, str(out / f"rgb_{q}.tflite"), q,
                                      data_dir=data[1], num_calibration_clips=24)["output"]
           for q in ("none", "int8")}
  return model_dir, export, files


def _evaluation_probabilities(model_dir, data_dir):
  """{video_index: probabilities} of the centre clip, as tools/evaluate.py computes them."""
  model = run_dir.load_classifier(model_dir)
  spec, _ = run_dir.clip_contract(model_dir, model)
  ds = pipeline.make_dataset(data_dir, 1, "test", training=False, num_frames=spec.num_frames,
                             crop_size=spec.crop_size, frame_stride=spec.frame_stride,
                             batch_size=8, num_clips=1, return_video_index=True)
  probs, _, videos = evaluation.predict_clips([model], ds, progress=False)
  return dict(zip(videos.tolist(), probs))


def test_the_spec_is_the_training_runs(artifacts):
  model_dir, export, files = artifacts
  spec = run_dir.clip_contract(model_dir, run_dir.load_classifier(model_dir))[0]
  assert (spec.num_frames, spec.crop_size, spec.frame_stride) == (T, S, 3)
  assert spec.stored_frames == clip_spec.StoredFrames(stride=1, short_side=24, jpeg_quality=90)
  assert sm.saved_model_metadata(sm.load_saved_model(export))["clip_spec"] == spec
  for path in files.values():
    assert tfl.read_metadata(path)[0] == spec


def test_deployment_sees_the_pixels_evaluation_sees(artifacts, data):
  model_dir = artifacts[0]
  spec = run_dir.clip_contract(model_dir, run_dir.load_classifier(model_dir))[0]
  index, path = sorted(data[2].items())[-1]
  ds = pipeline.make_dataset(data[1], 1, "test", training=False, num_frames=T, crop_size=S,
                             frame_stride=3, batch_size=64, return_video_index=True)
  clips, _, videos = next(iter(ds))
  evaluated = clips.numpy()[list(videos.numpy()).index(index)]
  frames = video.read_video(path)
  deployed = spec.preprocess(spec.clip_of_video(frames)).numpy()[0]
  np.testing.assert_array_equal(deployed, evaluated)  # same frames, same pixels
  # The raw frames (no stored format) would differ: the check above can fail.
  raw = preprocessing.eval_preprocess(frames[spec.video_indices(len(frames))[0]], S).numpy()
  assert np.abs(raw - evaluated).mean() > 1.0


def test_every_path_agrees_with_evaluation(artifacts, data, fake_server):
  model_dir, export, files = artifacts
  reference = _evaluation_probabilities(model_dir, data[1])
  predictors = {
      "keras": predict.load_predictor(os.path.join(model_dir, run_dir.MODEL_FILE)),
      "saved_model": predict.load_predictor(export),
      "tflite_fp32": predict.load_predictor(files["none"]),
      "tflite_int8": predict.load_predictor(files["int8"]),
  }
  server, address = fake_server.start_grpc_server("rgb", 1, export)
  try:
    meta = serving.fetch_metadata(address, "rgb")
    tops = []
    for index, want in sorted(reference.items()):
      frames = video.read_video(data[2][index])
      got = {name: p.predict_video_frames(frames) for name, p in predictors.items()}
      got["serving_client"] = serving.predict_grpc(
          address, "rgb", serving.frames_to_send(meta, frames))[0][0]
      for name, probs in got.items():
        assert np.argmax(probs) == np.argmax(want), (name, index, probs, want)
        if name != "tflite_int8":
          np.testing.assert_allclose(probs, want, atol=1e-4, err_msg=f"{name} video {index}")
      tops.append(int(np.argmax(want)))
  finally:
    server.stop(0)
  # A model with an opinion: all three classes are predicted, mostly right.
  assert set(tops) == {0, 1, 2}


def test_each_artifact_reads_its_own_stride(artifacts, data, tmp_path):
  # (A few steps suffice: this model only has to be a stride-1 artifact.)
  model_dirs = {3: artifacts[0], 1: _train(data[1], str(tmp_path / "run1"), stride=1, epochs=1)}
  frames = video.read_video(data[2][max(data[2])])
  n = len(frames)
  for stride, model_dir in model_dirs.items():
    # Hand-computed centre clip: span (T - 1) * stride + 1, start (n - span) // 2.
    start = (n - ((T - 1) * stride + 1)) // 2
    idx = start + stride * np.arange(T)
    spec = run_dir.clip_contract(model_dir, run_dir.load_classifier(model_dir))[0]
    np.testing.assert_array_equal(spec.video_indices(n)[0], idx)
    clip = preprocessing.eval_preprocess(spec.stored_frames_of(frames[idx])[None], S)
    model = run_dir.load_classifier(model_dir)
    want = tf.nn.softmax(model(clip)).numpy()[0]
    export = sm.export_from_model_dir(model_dir, str(tmp_path / f"export{stride}" / "1"))
    lite = tfl.convert_saved_model(export, str(tmp_path / f"s{stride}.tflite"))["output"]
    for path in (os.path.join(model_dir, run_dir.MODEL_FILE), export, lite):
      predictor = predict.load_predictor(path)
      assert predictor.frame_stride == stride, path
      np.testing.assert_allclose(predictor.predict_video_frames(frames), want, atol=1e-4,
                                 err_msg=path)
