r"""Load test: concurrent clients against the TF-Serving test double, gRPC and REST.

Starts `tests/export/fake_model_server.py` (the in-process double of
tensorflow_model_server: it runs the SavedModel's signatures, not TF-Serving's
batching) on an exported student and lets --clients threads call
`tsnet_tf.export.serving.predict_grpc` / `predict_rest` for --seconds each,
with the frames `serve_client.py` would send for a video. Every answer is
checked (probabilities sum to 1, top class = argmax); an exception or a bad
answer counts as an error.

  .venv/bin/python benchmarks/bench_serving_load.py --clients=8 --seconds=60
  .venv/bin/python benchmarks/bench_serving_load.py --export_dir=saved_models/student/1

Without --export_dir it exports an untrained light student (T=8, S=64, width
16, 10 classes: the `make demo` student's shape; speed does not depend on the
weights) to a temporary directory.
"""

import collections
import os
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags
import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)
sys.path.insert(0, os.path.join(_REPO, "tests", "export"))

_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "SavedModel version directory (default: "
                                  "a fresh untrained light student).")
_CLIENTS = flags.DEFINE_integer("clients", 8, "Concurrent client threads.", lower_bound=1)
_SECONDS = flags.DEFINE_float("seconds", 60.0, "Duration of each protocol's run.",
                              lower_bound=1.0)
_PROTOCOLS = flags.DEFINE_list("protocols", ["grpc", "rest"], "grpc and/or rest.")
_VIDEO_SHAPE = flags.DEFINE_list("video_shape", ["48", "120", "160"],
                                 "N,H,W of the decoded video the frames are cut from.")


def _export_default(directory: str) -> str:
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import clip_spec  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import saved_model as sm  # pylint: disable=g-import-not-at-top
  model = models.build_rgb_model(10, 8, 64, backbone="light", width=16)
  path = os.path.join(directory, "student", "1")
  return sm.export_saved_model(model, [f"class{i}" for i in range(10)], path,
                               spec=clip_spec.ClipSpec(num_frames=8, crop_size=64))


def _load(call, server, frames, seconds, clients):
  """Runs `clients` threads for `seconds`; returns (count, errors, latencies_ms)."""
  stop = time.perf_counter() + seconds
  lock = threading.Lock()
  latencies, errors = [], collections.Counter()

  def client():
    while time.perf_counter() < stop:
      start = time.perf_counter()
      try:
        probs, ids = call(server, "student", frames, timeout=60.0)
        ok = (abs(float(probs[0].sum()) - 1.0) < 1e-3 and int(ids[0][0]) == int(probs[0].argmax()))
        error = None if ok else "wrong answer"
      except Exception as e:  # pylint: disable=broad-except
        error = type(e).__name__
      elapsed = (time.perf_counter() - start) * 1e3
      with lock:
        if error:
          errors[error] += 1
        else:
          latencies.append(elapsed)

  threads = [threading.Thread(target=client) for _ in range(clients)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  return len(latencies), errors, np.asarray(latencies)


def main(argv):
  del argv
  import fake_model_server  # pylint: disable=g-import-not-at-top
  from tsnet_tf.export import serving  # pylint: disable=g-import-not-at-top
  bad = [p for p in _PROTOCOLS.value if p not in ("grpc", "rest")]
  if bad:
    raise app.UsageError(f"--protocols: unknown {bad}; use grpc and/or rest")
  with tempfile.TemporaryDirectory() as tmp:
    export_dir = _EXPORT_DIR.value or _export_default(tmp)
    n, h, w = (int(v) for v in _VIDEO_SHAPE.value)
    video = np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    rows = []
    for protocol in _PROTOCOLS.value:
      if protocol == "grpc":
        server, address = fake_model_server.start_grpc_server("student", 1, export_dir)
        call, close = serving.predict_grpc, lambda s=server: s.stop(0)
      else:
        server, address = fake_model_server.start_rest_server("student", 1, export_dir)
        call, close = serving.predict_rest, server.shutdown
      try:
        meta = serving.fetch_metadata(address, "student", rest=protocol == "rest")
        frames = serving.check_frames(serving.frames_to_send(meta, video))
        call(address, "student", frames)  # warm-up: traces the signature once
        count, errors, lat = _load(call, address, frames, _SECONDS.value, _CLIENTS.value)
      finally:
        close()
      rows.append((protocol, list(frames.shape), count, count / _SECONDS.value,
                   sum(errors.values()), dict(errors),
                   float(np.percentile(lat, 50)) if count else float("nan"),
                   float(np.percentile(lat, 95)) if count else float("nan")))
  print(f"\nTF-Serving test double, {_CLIENTS.value} concurrent clients, {_SECONDS.value:.0f} s "
        f"per protocol, {os.cpu_count()} CPUs, export {_EXPORT_DIR.value or 'untrained light T=8 S=64'}")
  print("| protocol | frames sent | predictions | predictions/s | errors | p50 ms | p95 ms |")
  print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
  for protocol, shape, count, rate, num_errors, kinds, p50, p95 in rows:
    err = f"{num_errors}" + (f" {kinds}" if kinds else "")
    print(f"| {protocol} | {'x'.join(map(str, shape))} uint8 | {count} | {rate:.1f} | {err} | "
          f"{p50:.0f} | {p95:.0f} |")


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
