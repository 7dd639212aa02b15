"""TFLite: edge twin == Keras, fp32/fp16/int8 top-1 agreement, representative data, runner."""

import os

import numpy as np
import pytest

from tsnet_tf.export import edge
from tsnet_tf.layers import edge as edge_layers
from tsnet_tf.export import tflite as tfl


def test_edge_twin_matches_keras_and_swaps_every_3d_layer(trained, eval_clips):
  twin = edge.edge_model(trained)
  assert edge.unswapped_3d_layers(twin) == []
  assert edge.count_swapped(twin) > 0
  x = eval_clips[:4]
  np.testing.assert_allclose(twin(x).numpy(), trained(x).numpy(), atol=1e-4)


def test_edge_pools_match_3d_pools():
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 5, 7, 6, 3)).astype(np.float32)
  for cls, twin in ((keras.layers.MaxPooling3D, edge_layers.EdgeMaxPooling3D),
                    (keras.layers.AveragePooling3D, edge_layers.EdgeAveragePooling3D)):
    for kwargs in ({"pool_size": (2, 3, 3), "strides": (2, 2, 2), "padding": "same"},
                   {"pool_size": (3, 2, 2), "strides": (1, 2, 1), "padding": "valid"}):
      ref = cls(**kwargs)(x).numpy()
      np.testing.assert_allclose(twin(**kwargs)(x).numpy(), ref, atol=1e-5)
  # The general path (taps stacked into channels) and the temporal-only one
  # (a kt x 1 x 1 kernel as one (kt, 1) Conv2D over [B, T, H*W, C]).
  for kwargs in ({"kernel_size": (3, 3, 2), "strides": (2, 1, 2), "padding": "same"},
                 {"kernel_size": (3, 1, 1), "strides": (1, 1, 1), "padding": "same"},
                 {"kernel_size": (3, 1, 1), "strides": (2, 1, 1), "padding": "same"},
                 {"kernel_size": (2, 1, 1), "strides": (1, 1, 1), "padding": "valid"}):
    conv = keras.layers.Conv3D(4, **kwargs)
    ref = conv(x).numpy()
    twin = edge_layers.EdgeConv3D.from_config(conv.get_config())
    twin.build(x.shape)
    twin.set_weights(conv.get_weights())
    np.testing.assert_allclose(twin(x).numpy(), ref, atol=1e-5)


def test_flatbuffer_does_not_grow_with_clip_length():
  # Per-frame unrolling (Keras' TimeDistributed on a static time axis) made the
  # light student's flatbuffer T times the ops; every op now spans all frames.
  from tsnet_tf.models import classifiers  # pylint: disable=g-import-not-at-top
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  counts = []
  for t in (4, 8):
    model = classifiers.build_rgb_model(3, t, 16, backbone="light", width=4)
    flatbuffer, _ = tfl.convert_keras_model(model, "none")
    counts.append(len(Interpreter(model_content=flatbuffer)._get_ops_details()))  # pylint: disable=protected-access
  # (A length-1 time axis late in the T=4 network can differ by an op or two.)
  assert abs(counts[1] - counts[0]) <= 2, counts


def test_geometric_two_stream_converts_and_matches_keras():
  # The edge twin re-creates LateFusion from its config: the rule must survive.
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  rgb = models.build_rgb_model(3, 4, 16, backbone="light", width=4, name="rgb")
  other = models.build_rgb_model(3, 4, 16, backbone="light", width=4, name="other")
  fused = models.build_two_stream(rgb, other, fusion="geometric")
  flatbuffer, _ = tfl.convert_keras_model(fused, "none")
  clips = np.random.default_rng(3).uniform(0, 255, (2, 4, 16, 16, 3)).astype(np.float32)
  got = tfl.TFLiteRunner(flatbuffer)(clips)["logits"]
  np.testing.assert_allclose(got, fused(clips).numpy(), atol=1e-4)
  mean = models.build_two_stream(rgb, other, fusion="mean")(clips).numpy()
  assert np.abs(got - mean).max() > 1e-3  # the two rules differ on these clips


def test_files_labels_and_int8_is_full_integer(deploy, converted):
  for q, info in converted.items():
    assert info["quantize"] == q  # int8 did not fall back to dynamic range
    # The file carries its clip spec and class names.
    assert tfl.read_metadata(info["output"]) == (info["clip_spec"], list(deploy.CLASSES))
    assert os.path.getsize(info["output"]) == info["bytes"]
    with open(info["labels"]) as f:
      assert f.read().split() == list(deploy.CLASSES)
  runner = tfl.TFLiteRunner(converted["int8"]["output"])
  assert runner.input_dtype == np.uint8
  assert runner.input_shape == (1, deploy.T, deploy.S, deploy.S, 3)
  assert converted["float16"]["bytes"] < 0.7 * converted["none"]["bytes"]
  assert converted["int8"]["bytes"] < converted["float16"]["bytes"]
  # Full-integer: every convolution and the classifier run on int8 tensors,
  # and no 3D op is left (the edge twin replaced them all).
  from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  interp = Interpreter(model_path=converted["int8"]["output"])
  ops = interp._get_ops_details()  # pylint: disable=protected-access
  dtypes = {d["index"]: d["dtype"] for d in interp.get_tensor_details()}
  convs = [op for op in ops if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
  assert len(convs) >= 10
  for op in convs:
    assert dtypes[op["inputs"][0]] == np.int8 and dtypes[op["inputs"][1]] == np.int8, op
  assert not any("3D" in op["op_name"] for op in ops)


def test_top1_agreement_with_keras(deploy, converted, trained, eval_clips):
  ref = trained(eval_clips).numpy().argmax(-1)
  assert len(ref) >= 60 and len(set(ref)) == len(deploy.CLASSES)  # a meaningful evaluation set
  agreement = {}
  for q, info in converted.items():
    got = tfl.TFLiteRunner(info["output"])(eval_clips)
    agreement[q] = float((got["logits"].argmax(-1) == ref).mean())
    np.testing.assert_allclose(got["probabilities"].sum(-1), 1.0, atol=0.02)
  assert agreement["none"] >= 0.99, agreement
  assert agreement["float16"] >= 0.99, agreement
  assert agreement["int8"] >= 0.95, agreement


def test_fp32_matches_keras_probabilities(converted, trained, eval_clips):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  got = tfl.TFLiteRunner(converted["none"]["output"])(eval_clips[:8])["probabilities"]
  np.testing.assert_allclose(got, tf.nn.softmax(trained(eval_clips[:8])).numpy(), atol=1e-4)


def test_representative_dataset_comes_from_tfrecords(deploy, dataset):
  gen = tfl.representative_dataset(dataset[1], deploy.spec(dataset[1]), num_clips=5)
  clips = [c for (c,) in gen()]
  assert len(clips) == 5
  shape = (1, deploy.T, deploy.S, deploy.S, 3)
  assert all(c.shape == shape and c.dtype == np.float32 for c in clips)
  assert 0 <= min(c.min() for c in clips) and max(c.max() for c in clips) <= 255


def test_bad_inputs(deploy, export_dir, tmp_path, converted):
  with pytest.raises(ValueError, match="needs --data_dir"):
    tfl.convert_saved_model(export_dir, str(tmp_path / "x.tflite"), "int8")
  with pytest.raises(ValueError, match="must end in .tflite"):
    tfl.convert_saved_model(export_dir, str(tmp_path / "x.bin"))
  with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
    tfl.convert_saved_model(str(tmp_path / "missing"), str(tmp_path / "x.tflite"))
  bad = tmp_path / "garbage.tflite"
  bad.write_bytes(b"not a flatbuffer")
  with pytest.raises(ValueError, match="garbage.tflite"):
    tfl.TFLiteRunner(str(bad))
  runner = tfl.TFLiteRunner(converted["none"]["output"])
  with pytest.raises(ValueError, match="does not match"):
    runner(np.zeros((1, deploy.T, deploy.S + 1, deploy.S, 3), np.float32))


@pytest.mark.slow
def test_flow_layer_converts_and_matches_keras():
  from tsnet_tf.layers import TVL1Flow  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  base = rng.uniform(0, 255, (3, 24, 24, 3)).astype(np.float32)
  clip = np.stack([np.roll(base[0], k, axis=1) for k in range(3)])[None]
  runner = tfl.TFLiteRunner(tfl.convert_flow_layer(3, 24, 24, preset="fast"))
  assert runner.input_shape == (1, 3, 24, 24, 3)
  got = runner(clip)["flow"]
  ref = TVL1Flow(preset="fast")(clip).numpy()
  assert got.shape == (1, 2, 24, 24, 2)
  np.testing.assert_allclose(got, ref, atol=1e-3)


def _tiny_student(deploy):
  from tsnet_tf.models import classifiers  # pylint: disable=g-import-not-at-top
  return classifiers.build_rgb_model(len(deploy.CLASSES), deploy.T, deploy.S, backbone="light",
                                     width=4)


def test_unreadable_calibration_data_fails_instead_of_falling_back(deploy, dataset, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import schema  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "data")
  shutil.copytree(dataset[1], data_dir)
  for shard in schema.list_shards(data_dir):  # a copy cut short: every shard truncated
    with open(shard, "r+b") as f:
      f.truncate(f.seek(0, 2) * 3 // 10)
  rep = tfl.representative_dataset(data_dir, deploy.spec(dataset[1]), num_clips=64)
  # docs/deploy.md: the dynamic-range fallback is for ops the converter cannot
  # quantise, never for calibration data that cannot be read.
  with pytest.raises(pipeline.CorruptDataError, match=f"--data_dir '{data_dir}'"):
    tfl.convert_keras_model(_tiny_student(deploy), "int8", rep)
  assert isinstance(rep.failure, pipeline.CorruptDataError)


def test_converter_failure_still_falls_back_to_dynamic(deploy, monkeypatch):
  real = tfl._configure  # pylint: disable=protected-access

  def no_int8(conv, quantize, rep):
    if quantize == "int8":
      raise RuntimeError("Quantization not yet supported for op: 'X'")
    return real(conv, quantize, rep)

  monkeypatch.setattr(tfl, "_configure", no_int8)
  clips = lambda: iter([[np.zeros((1, deploy.T, deploy.S, deploy.S, 3), np.float32)]])
  flatbuffer, used = tfl.convert_keras_model(_tiny_student(deploy), "int8", clips)
  assert used == "dynamic" and flatbuffer
