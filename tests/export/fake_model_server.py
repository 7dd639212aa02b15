"""TEST DOUBLE of tensorflow_model_server: not a model server, for tests only.

Real TF-Serving is a C++ binary (Docker image or apt package; see
docs/deploy.md) that cannot be installed here. This double serves one exported
SavedModel on 127.0.0.1 so that the client, the request format and the
signature are checked end to end:

- `FakePredictionService`: built from tensorflow-serving-api's own generated
  `PredictionServiceServicer` / `add_PredictionServiceServicer_to_server`;
  implements `Predict` with TF-Serving's status codes for the cases tested
  (unknown model -> NOT_FOUND; unknown signature, missing/extra inputs, wrong
  dtype, wrong rank or bad shape -> INVALID_ARGUMENT).
- `FakeRestServer`: `POST /v1/models/<name>[/versions/<v>]:predict` with the
  columnar (`inputs`) or row (`instances`) JSON formats; 404 for an unknown
  model, 400 with `{"error": ...}` for a bad request.

It runs the SavedModel's signature functions in-process with
`tf.saved_model.load`, which is what the real server executes, minus batching,
version policies and everything else.
"""

import concurrent.futures
import http.server
import json
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


class _BadRequest(Exception):

  def __init__(self, code, message):
    super().__init__(message)
    self.code = code  # a grpc.StatusCode


class _Model:
  """A loaded SavedModel version and its signature checks."""

  def __init__(self, name, version, export_dir):
    self.name = name
    self.version = version
    self.loaded = tf.saved_model.load(export_dir)

  def run(self, model_name, signature_name, inputs):
    """inputs: {name: np.ndarray} -> {name: np.ndarray}; raises _BadRequest."""
    if model_name != self.name:
      raise _BadRequest(grpc.StatusCode.NOT_FOUND,
                        f"Servable not found for request: Latest({model_name})")
    signature_name = signature_name or "serving_default"
    if signature_name not in self.loaded.signatures:
      raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                        f'Serving signature key "{signature_name}" not found.')
    fn = self.loaded.signatures[signature_name]
    specs = fn.structured_input_signature[1]
    if set(inputs) != set(specs):
      raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                        f"input keys {sorted(inputs)} do not match the signature's "
                        f"{sorted(specs)}")
    feeds = {}
    for key, spec in specs.items():
      value = inputs[key]
      if value.dtype != spec.dtype.as_numpy_dtype:
        raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                          f"Expects arg[{key}] to be {spec.dtype.name} but "
                          f"{tf.as_dtype(value.dtype).name} is provided")
      if not spec.shape.is_compatible_with(value.shape):
        raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                          f"input {key!r} has shape {value.shape}, the signature "
                          f"expects {spec.shape}")
      feeds[key] = tf.constant(value)
    try:
      outputs = fn(**feeds)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
      raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT, str(e).splitlines()[0]) from e
    return {k: v.numpy() for k, v in outputs.items()}


def _jsonable(value):
  """ndarray -> nested lists; bytes become str as in TF-Serving's JSON."""
  value = np.asarray(value)  # a string scalar's .numpy() is plain bytes
  if value.dtype == object or value.dtype.kind == "S":
    return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist() \
        if value.ndim else value.item().decode("utf-8")
  return value.tolist()


class FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TEST DOUBLE: PredictionService.Predict over one SavedModel."""

  def __init__(self, model):
    self._model = model

  def Predict(self, request, context):  # pylint: disable=invalid-name
    try:
      inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
      outputs = self._model.run(request.model_spec.name, request.model_spec.signature_name,
                                inputs)
    except _BadRequest as e:
      context.abort(e.code, str(e))
    except Exception as e:  # pylint: disable=broad-except
      # A malformed TensorProto is the client's fault, never a server crash.
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad request: {e}")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = self._model.name
    response.model_spec.version.value = self._model.version
    response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
    for k, v in outputs.items():
      if not request.output_filter or k in request.output_filter:
        response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
    return response


def start_grpc_server(name, version, export_dir):
  """Starts the gRPC double on 127.0.0.1:<free port>; returns (server, "host:port")."""
  model = _Model(name, version, export_dir)
  server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2), options=[
      ("grpc.max_receive_message_length", 256 * 1024 * 1024)])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      FakePredictionService(model), server)
  port = server.add_insecure_port("127.0.0.1:0")
  server.start()
  return server, f"127.0.0.1:{port}"


_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")


def _rest_handler(model):

  class Handler(http.server.BaseHTTPRequestHandler):
    """TEST DOUBLE of TF-Serving's REST predict endpoint."""

    def log_message(self, *args):  # keep test output quiet
      pass

    def _reply(self, status, body):
      data = json.dumps(body).encode("utf-8")
      self.send_response(status)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def do_POST(self):  # pylint: disable=invalid-name
      match = _PATH.match(self.path)
      if not match:
        return self._reply(404, {"error": f"Malformed request: POST {self.path}"})
      try:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        signature = body.get("signature_name", "serving_default")
        fn = model.loaded.signatures.get(signature)
        specs = fn.structured_input_signature[1] if fn is not None else {}
        if "inputs" in body:
          raw = body["inputs"] if isinstance(body["inputs"], dict) else {
              next(iter(specs), "inputs"): body["inputs"]}
        elif "instances" in body:
          raw = {next(iter(specs), "inputs"): body["instances"]}
        else:
          raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                            "Missing 'inputs' or 'instances' key")
        inputs = {}
        for k, v in raw.items():
          dtype = specs[k].dtype.as_numpy_dtype if k in specs else None
          arr = np.asarray(v)
          if dtype is not None:
            want = np.dtype(dtype)
            ok = (arr.dtype.kind in "iu" and want.kind in "iu"
                  and (arr.size == 0 or (arr.min() >= np.iinfo(want).min
                                         and arr.max() <= np.iinfo(want).max))) or (
                      arr.dtype.kind in "iuf" and want.kind == "f")
            if not ok:
              raise _BadRequest(grpc.StatusCode.INVALID_ARGUMENT,
                                f"JSON value for {k!r} cannot be {want.name}")
          inputs[k] = arr.astype(dtype) if dtype is not None else arr
        outputs = model.run(match.group(1), signature, inputs)
      except _BadRequest as e:
        status = 404 if e.code == grpc.StatusCode.NOT_FOUND else 400
        return self._reply(status, {"error": str(e)})
      except Exception as e:  # pylint: disable=broad-except
        return self._reply(400, {"error": f"bad request: {e}"})
      key = "outputs" if "inputs" in body else "predictions"
      if key == "outputs":
        return self._reply(200, {key: {k: _jsonable(v) for k, v in outputs.items()}})
      rows = [{k: _jsonable(v[i]) for k, v in outputs.items()}
              for i in range(len(next(iter(outputs.values()))))]
      return self._reply(200, {key: rows})

  return Handler


def start_rest_server(name, version, export_dir):
  """Starts the REST double on 127.0.0.1:<free port>; returns (server, "http://host:port")."""
  model = _Model(name, version, export_dir)
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(model))
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return server, f"http://127.0.0.1:{server.server_address[1]}"
