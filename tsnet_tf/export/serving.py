"""TF-Serving client helpers: Predict requests over gRPC and REST.

  meta = fetch_metadata("localhost:8500", "student")        # clip spec, labels
  frames = video_to_send(meta, "clap.avi")  # = frames_to_send(meta, read_video(..))
  probs, ids = predict_grpc("localhost:8500", "student", frames)
  probs, ids = predict_rest("http://localhost:8501", "student", frames)

Requests use the `serving_default` signature of `saved_model.py`: input
`frames` uint8 `[B, N, H, W, 3]` (consecutive video frames; the served graph
samples the clip by the model's clip spec), outputs `probabilities` `[B, K]` and
`class_ids` `[B, 5]`.
"""

import json
import urllib.error
import urllib.request
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tsnet_tf.export import saved_model as sm
from tsnet_tf.utils import errors

# A clip of T full-size frames easily exceeds gRPC's default 4 MiB.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class ServingError(errors.ResourceError, RuntimeError):
  """The server answered with an error (status code and message kept)."""

  def __init__(self, code: str, message: str):
    self.code = code
    self.message = message
    super().__init__(f"{code}: {message}")


def check_frames(frames: np.ndarray) -> np.ndarray:
  """`frames` as a uint8 array, checked against the serving signature's `[B, T, H, W, 3]`.

  A client checks before sending (the request builders do not, so tests can
  send the server malformed requests).

  Raises:
    ValueError: another rank, channel count or dtype, or an empty dimension.
  """
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[-1] != 3 or not all(
      frames.shape[:4]):
    raise ValueError(f"frames to send must be uint8 [B, T, H, W, 3] with B, T, H, W >= 1, "
                     f"got {frames.dtype} {list(frames.shape)}")
  return frames


def make_predict_request(frames: np.ndarray, model_name: str,
                         signature_name: str = sm.SERVING_SIGNATURE,
                         version: Optional[int] = None):
  """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for uint8 frames.

  Args:
    frames: uint8 `[B, T, H, W, 3]`.
    model_name: the model's name on the server.
    signature_name: signature to run.
    version: model version; None lets the server pick its latest.
  """
  # tensorflow-serving-api and grpc (dev extras): only the gRPC client needs them.
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature_name
  if version is not None:
    request.model_spec.version.value = int(version)
  request.inputs[sm.INPUT_NAME].CopyFrom(tf.make_tensor_proto(np.asarray(frames)))
  return request


def parse_predict_response(response) -> Tuple[np.ndarray, np.ndarray]:
  """`(probabilities float32 [B, K], class_ids int32 [B, 5])` of a PredictResponse."""
  probs = tf.make_ndarray(response.outputs["probabilities"])
  ids = tf.make_ndarray(response.outputs["class_ids"])
  return probs, ids


def predict_grpc(server: str, model_name: str, frames: np.ndarray,
                 signature_name: str = sm.SERVING_SIGNATURE,
                 version: Optional[int] = None, timeout: float = 60.0):
  """Calls `PredictionService/Predict` over an insecure gRPC channel.

  Returns:
    `(probabilities, class_ids)`.

  Raises:
    ServingError: the server returned an error status.
  """
  # tensorflow-serving-api and grpc (dev extras): only the gRPC client needs them.
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
             ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
  with grpc.insecure_channel(server, options=options) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = make_predict_request(frames, model_name, signature_name, version)
    try:
      response = stub.Predict(request, timeout=timeout)
    except grpc.RpcError as e:
      raise ServingError(e.code().name, e.details()) from e
  return parse_predict_response(response)


def make_rest_body(frames: np.ndarray, signature_name: str = sm.SERVING_SIGNATURE) -> bytes:
  """JSON body of a TF-Serving REST predict call (columnar `inputs` format)."""
  return json.dumps({"signature_name": signature_name,
                     "inputs": {sm.INPUT_NAME: np.asarray(frames).tolist()}}).encode("utf-8")


def rest_url(server: str, model_name: str, version: Optional[int] = None) -> str:
  """`http://host:port/v1/models/<name>[/versions/<v>]:predict`."""
  base = server if server.startswith(("http://", "https://")) else f"http://{server}"
  version_part = f"/versions/{int(version)}" if version is not None else ""
  return f"{base.rstrip('/')}/v1/models/{model_name}{version_part}:predict"


def predict_rest(server: str, model_name: str, frames: np.ndarray,
                 signature_name: str = sm.SERVING_SIGNATURE,
                 version: Optional[int] = None, timeout: float = 60.0):
  """POSTs a predict call to TF-Serving's REST API.

  Returns:
    `(probabilities, class_ids)`.

  Raises:
    ServingError: the server answered with an HTTP error (code = HTTP status).
  """
  request = urllib.request.Request(
      rest_url(server, model_name, version), data=make_rest_body(frames, signature_name),
      headers={"Content-Type": "application/json"}, method="POST")
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      body = json.loads(response.read().decode("utf-8"))
  except urllib.error.HTTPError as e:
    text = e.read().decode("utf-8", "replace")
    try:
      text = json.loads(text).get("error", text)
    except ValueError:
      pass
    raise ServingError(f"HTTP {e.code}", text) from e
  outputs = body["outputs"]
  return (np.asarray(outputs["probabilities"], np.float32),
          np.asarray(outputs["class_ids"], np.int32))


def fetch_metadata(server: str, model_name: str, version: Optional[int] = None,
                   rest: bool = False, timeout: float = 60.0) -> dict:
  """Runs the export's input-less `metadata` signature on the server.

  Returns:
    `saved_model.metadata_from_outputs`: `{"clip_spec": ClipSpec (None for
    exports that predate it), "num_frames", "crop_size", "frame_stride": int,
    "labels": [str]}`.

  Raises:
    ServingError: the server refused (e.g. a model not exported by
      tools/export.py); pass T and the labels to the client yourself then.
  """
  if rest:
    request = urllib.request.Request(
        rest_url(server, model_name, version),
        data=json.dumps({"signature_name": sm.METADATA_SIGNATURE, "inputs": {}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
      with urllib.request.urlopen(request, timeout=timeout) as response:
        out = json.loads(response.read().decode("utf-8"))["outputs"]
    except urllib.error.HTTPError as e:
      raise ServingError(f"HTTP {e.code}", e.read().decode("utf-8", "replace")) from e
    labels = [str(s) for s in out["labels"]]
  else:
    # tensorflow-serving-api and grpc (dev extras): only the gRPC client needs them.
    import grpc  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = sm.METADATA_SIGNATURE
    if version is not None:
      request.model_spec.version.value = int(version)
    with grpc.insecure_channel(server) as channel:
      try:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=timeout)
      except grpc.RpcError as e:
        raise ServingError(e.code().name, e.details()) from e
    out = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    labels = [s.decode("utf-8") for s in out["labels"].ravel()]
  return sm.metadata_from_outputs(out, labels)


def frames_to_send(meta: dict, frames: np.ndarray) -> np.ndarray:
  """uint8 `[1, N, h, w, 3]`: what to send `serving_default` for a decoded video.

  For an export with a clip spec: the video's `ClipSpec.window` in the stored
  frame format (the graph samples and preprocesses it as evaluation does); for
  an older export: its T frames, sampled here with `frame_stride`.
  """
  if meta["clip_spec"] is None:
    return sm.sampling_spec(meta).clip_of_video(frames)
  return meta["clip_spec"].window_of_video(frames)[None]


def video_to_send(meta: dict, path: str) -> np.ndarray:
  """`frames_to_send(meta, video.read_video(path))`, decoding only the frames sent.

  Memory holds the window (or clip), not the video (`ClipSpec.read_window`).

  Raises:
    video.VideoDecodeError: the file cannot be decoded (names the file).
  """
  if meta["clip_spec"] is None:
    return sm.sampling_spec(meta).read_clip(path)
  return meta["clip_spec"].read_window(path)[None]
