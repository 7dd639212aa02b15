"""TF-Serving round trips through the test double: gRPC and REST, good and bad requests."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tsnet_tf.data import preprocessing
from tsnet_tf.export import serving


@pytest.fixture(scope="module")
def grpc_server(fake_server, export_dir):
  server, address = fake_server.start_grpc_server("student", 1, export_dir)
  yield address
  server.stop(0)


@pytest.fixture(scope="module")
def rest_server(fake_server, export_dir):
  server, address = fake_server.start_rest_server("student", 1, export_dir)
  yield address
  server.shutdown()


@pytest.fixture(scope="module")
def frames(deploy):
  return np.random.default_rng(3).integers(0, 256, (2, deploy.T, 40, 48, 3), dtype=np.uint8)


def _expected(deploy, trained, frames):
  return tf.nn.softmax(trained(preprocessing.eval_preprocess(frames, deploy.S))).numpy()


def test_grpc_round_trip(deploy, grpc_server, trained, frames):
  probs, ids = serving.predict_grpc(grpc_server, "student", frames)
  np.testing.assert_allclose(probs, _expected(deploy, trained, frames), atol=1e-5)
  assert ids.dtype == np.int32 and ids.shape == (2, 5)
  np.testing.assert_array_equal(ids[:, 0], probs.argmax(-1))
  meta = serving.fetch_metadata(grpc_server, "student")
  assert meta == {"num_frames": deploy.T, "crop_size": deploy.S, "frame_stride": 1,
                  "labels": list(deploy.CLASSES), "clip_spec": meta["clip_spec"]}
  assert (meta["clip_spec"].num_frames, meta["clip_spec"].crop_size) == (deploy.T, deploy.S)


def test_rest_round_trip(deploy, rest_server, trained, frames):
  probs, ids = serving.predict_rest(rest_server, "student", frames, version=1)
  np.testing.assert_allclose(probs, _expected(deploy, trained, frames), atol=1e-5)
  np.testing.assert_array_equal(ids[:, 0], probs.argmax(-1))
  meta = serving.fetch_metadata(rest_server, "student", rest=True)
  assert meta["labels"] == list(deploy.CLASSES) and meta["clip_spec"].num_frames == deploy.T


def _raw_predict(address, request):
  with grpc.insecure_channel(address) as channel:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)


@pytest.mark.parametrize("case, code", [
    ("float_frames", grpc.StatusCode.INVALID_ARGUMENT),
    ("rank4", grpc.StatusCode.INVALID_ARGUMENT),
    ("four_channels", grpc.StatusCode.INVALID_ARGUMENT),
    ("zero_frames", grpc.StatusCode.INVALID_ARGUMENT),
    ("unknown_signature", grpc.StatusCode.INVALID_ARGUMENT),
    ("wrong_input_name", grpc.StatusCode.INVALID_ARGUMENT),
    ("unknown_model", grpc.StatusCode.NOT_FOUND),
])
def test_grpc_malformed_requests(grpc_server, frames, case, code):
  request = serving.make_predict_request(frames[:1], "student")
  if case == "float_frames":
    request.inputs["frames"].CopyFrom(tf.make_tensor_proto(frames[:1].astype(np.float32)))
  elif case == "rank4":
    request.inputs["frames"].CopyFrom(tf.make_tensor_proto(frames[0]))
  elif case == "four_channels":
    request.inputs["frames"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 2, 8, 8, 4), np.uint8)))
  elif case == "zero_frames":
    request.inputs["frames"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 0, 8, 8, 3), np.uint8)))
  elif case == "unknown_signature":
    request.model_spec.signature_name = "no_such_signature"
  elif case == "wrong_input_name":
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "student"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(frames[:1]))
  elif case == "unknown_model":
    request.model_spec.name = "teacher"
  with pytest.raises(grpc.RpcError) as info:
    _raw_predict(grpc_server, request)
  assert info.value.code() == code, info.value.details()
  # The server is still up and answers a good request.
  assert _raw_predict(grpc_server, serving.make_predict_request(frames[:1], "student")).outputs


def test_rest_malformed_requests(rest_server, frames):
  with pytest.raises(serving.ServingError, match="HTTP 404"):
    serving.predict_rest(rest_server, "teacher", frames[:1])
  with pytest.raises(serving.ServingError, match="HTTP 400"):
    serving.predict_rest(rest_server, "student", frames[:1].astype(np.float32) + 0.5)
  with pytest.raises(serving.ServingError, match="HTTP 400"):
    serving.predict_rest(rest_server, "student", frames[0])
  with pytest.raises(serving.ServingError, match="HTTP 400"):
    serving.predict_rest(rest_server, "student", frames[:1], signature_name="nope")


def test_request_format():
  f = np.zeros((1, 2, 4, 4, 3), np.uint8)
  request = serving.make_predict_request(f, "m", version=3)
  assert request.model_spec.signature_name == "serving_default"
  assert request.model_spec.version.value == 3
  assert request.inputs["frames"].dtype == tf.uint8.as_datatype_enum
  assert [d.size for d in request.inputs["frames"].tensor_shape.dim] == [1, 2, 4, 4, 3]
  assert serving.rest_url("localhost:8501", "m") == "http://localhost:8501/v1/models/m:predict"
  assert serving.rest_url("http://h:1/", "m", 2) == "http://h:1/v1/models/m/versions/2:predict"


def test_video_to_send_streams_what_frames_to_send_sends(dataset, deploy, tmp_path):
  from tsnet_tf.data import video  # pylint: disable=g-import-not-at-top
  spec, T, S = deploy.spec, deploy.T, deploy.S  # pylint: disable=invalid-name
  path = str(tmp_path / "v.avi")
  video.write_video(path, np.random.default_rng(4).integers(0, 256, (30, 40, 48, 3),
                                                            dtype=np.uint8), fps=25)
  frames = video.read_video(path)
  legacy = {"num_frames": T, "crop_size": S, "frame_stride": 2, "clip_spec": None}
  for meta in ({**legacy, "clip_spec": spec(dataset[1], frame_stride=2)}, legacy):
    want = serving.frames_to_send(meta, frames)
    assert want.shape[1] < len(frames)  # a window or a clip, not the video
    np.testing.assert_array_equal(serving.video_to_send(meta, path), want)
