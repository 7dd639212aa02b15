"""Benchmark: peak memory and time of predicting a video file, read-all vs streaming.

`tsnet_tf.export.predict.predict_video` (tools/predict.py) used to decode the
whole video at full resolution (`video.read_video`) and then take the clip;
it now decodes with `ClipSpec.read_clip` / `read_window` (`video.read_frames`),
which keeps only the clip's frames, put in the stored format as they arrive.
This script runs both side by side, each case in a fresh subprocess, and
prints a markdown table: peak RSS (the process's `ru_maxrss`: TF, the model
and the video) and the wall time of the prediction call.

Videos: 1080p (1920x1080, 30 fps) of each `--lengths` seconds, generated into
a temporary directory (moving gradients, MPEG-4 Part 2 AVI, encoded frame by
frame); a generated 320x240 clip (HMDB51's size); the shared 1080p NTU clip
(H.264). The model is a random-weight student with the `make demo` clip spec
(or `--model`, any artifact `tools/predict.py` takes); its answer does not
depend on the weights' values, and both paths must give the same
probabilities (the last column checks it).

  .venv/bin/python benchmarks/bench_video_memory.py
  .venv/bin/python benchmarks/bench_video_memory.py --lengths=10 --model=saved_models/student/1

The read-all path is skipped where it would hold more than `--old_max_gb`
(its decoded frames twice: the list and the stacked array); the table says so.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=g-import-not-at-top,wrong-import-position

_LENGTHS = flags.DEFINE_list("lengths", ["10", "60"], "Seconds of the generated 1080p videos.")
_MODEL = flags.DEFINE_string("model", None, "Artifact to predict with (SavedModel dir, .keras "
                             "or .tflite); default: a random-weight student, see below.")
_BACKBONE = flags.DEFINE_string("backbone", "light", "Default model's backbone.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 8, "Default model's T.")
_CROP_SIZE = flags.DEFINE_integer("crop_size", 64, "Default model's S.")
_FRAME_STRIDE = flags.DEFINE_integer("frame_stride", 3, "Default model's clip frame stride.")
_SHORT_SIDE = flags.DEFINE_integer("short_side", 72, "Default model's stored short side.")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "Default model's stored JPEG quality.")
_OLD_MAX_GB = flags.DEFINE_float("old_max_gb", 8.0, "Skip the read-all path where its frames "
                                 "would exceed this many GB.")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Keep generated videos and the model here "
                                "(reused when present); default: a temporary directory.")
_NOTE = flags.DEFINE_string("note", "", "Free text printed with the results (machine, load).")
# Internal: one measurement in a fresh process.
_CHILD = flags.DEFINE_enum("child", None, ["old", "new", "make_model"], "(internal)")
_VIDEO = flags.DEFINE_string("video", None, "(internal) video file of a --child run.")
_OUTPUT = flags.DEFINE_string("output", None, "(internal) model file of --child=make_model.")

SHARED_NTU = os.path.join(REPO, "..", "shared", "data", "video", "ntu_drink_water_1920x1080.avi")


def _hwm_mb() -> float:
  """Peak resident memory of this process so far (VmHWM), MB."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def _child_make_model(output: str) -> None:
  from tsnet_tf import models
  from tsnet_tf.data import clip_spec
  t, s = _NUM_FRAMES.value, _CROP_SIZE.value
  model = models.build_rgb_model(51, t, s, backbone=_BACKBONE.value)
  spec = clip_spec.ClipSpec(t, s, _FRAME_STRIDE.value, clip_spec.StoredFrames(
      short_side=_SHORT_SIDE.value, jpeg_quality=_JPEG_QUALITY.value))
  clip_spec.attach(model, spec, [f"class_{i}" for i in range(51)]).save(output)


def _child_measure(mode: str, model: str, path: str) -> None:
  """Loads the model, warms it up, predicts `path` once; prints one JSON line."""
  from tsnet_tf.data import video
  from tsnet_tf.export import predict
  predictor = predict.load_predictor(model)
  spec = predictor.spec
  predictor.predict_clips(np.zeros((1, spec.num_frames, spec.crop_size, spec.crop_size, 3),
                                   np.float32))  # tracing, allocation
  loaded = _hwm_mb()
  start = time.perf_counter()
  if mode == "old":
    probs = predictor.predict_video_frames(video.read_video(path))
  else:
    probs = predictor.predict_video_file(path)
  wall = time.perf_counter() - start
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
  print("RESULT " + json.dumps({"wall_s": wall, "loaded_mb": loaded, "peak_mb": peak,
                                "probs": np.asarray(probs, np.float64).tolist()}))


def _run_child(*args) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), *args]
  done = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
  lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
  return json.loads(lines[-1][len("RESULT "):]) if lines else {}


def _moving_gradient(num_frames: int, height: int, width: int):
  """Yields uint8 [H, W, 3] frames: colour gradients sliding 4 px per frame."""
  period = 256
  x = np.arange(width + period, dtype=np.float32)
  y = np.arange(height, dtype=np.float32)[:, None]
  base = np.stack([np.broadcast_to(128 + 100 * np.sin(x / 40.0), (height, width + period)),
                   np.broadcast_to(128 + 100 * np.cos(y / 50.0), (height, width + period)),
                   (x[None] * 0 + y * 0.2) % 256], -1).astype(np.uint8)
  for t in range(num_frames):
    shift = (4 * t) % period
    yield np.ascontiguousarray(base[:, shift:shift + width])


def _make_videos(work_dir: str):
  """[(name, path)] of the videos to measure, generated when missing."""
  from tsnet_tf.data import video
  wanted = [("320x240, 5 s (generated, MPEG-4)", "gen_320x240_5s.avi", 150, 240, 320)]
  for seconds in _LENGTHS.value:
    wanted.append((f"1920x1080, {seconds} s (generated, MPEG-4)",
                   f"gen_1080p_{seconds}s.avi", int(seconds) * 30, 1080, 1920))
  out = []
  for name, file, frames, height, width in wanted:
    path = os.path.join(work_dir, file)
    if not os.path.exists(path):
      start = time.perf_counter()
      video.write_video(path, _moving_gradient(frames, height, width), fps=30)
      print(f"generated {file} ({frames} frames) in {time.perf_counter() - start:.1f} s",
            flush=True)
    out.append((name, path))
  if os.path.exists(SHARED_NTU):
    out.insert(1, ("1920x1080 NTU clip (shared, H.264)", SHARED_NTU))
  return out


def main(argv):
  del argv
  if _CHILD.value == "make_model":
    return _child_make_model(_OUTPUT.value)
  if _CHILD.value:
    return _child_measure(_CHILD.value, _MODEL.value, _VIDEO.value)

  from tsnet_tf.data import video
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix="bench_video_memory_")
  os.makedirs(work_dir, exist_ok=True)
  try:
    videos = _make_videos(work_dir)
    model = _MODEL.value
    if model is None:
      model = os.path.join(work_dir, "student.keras")
      if not os.path.exists(model):
        _run_child("--child=make_model", f"--output={model}", f"--backbone={_BACKBONE.value}",
                   f"--num_frames={_NUM_FRAMES.value}", f"--crop_size={_CROP_SIZE.value}",
                   f"--frame_stride={_FRAME_STRIDE.value}", f"--short_side={_SHORT_SIDE.value}",
                   f"--jpeg_quality={_JPEG_QUALITY.value}")
    rows = []
    for name, path in videos:
      info = video.probe_video(path)
      need_gb = 2 * info.num_frames * info.height * info.width * 3 / 1e9
      results = {}
      for mode in ("old", "new"):
        if mode == "old" and need_gb > _OLD_MAX_GB.value:
          continue
        results[mode] = _run_child(f"--child={mode}", f"--model={model}", f"--video={path}")
        print(f"{name}: {mode} {results[mode]['peak_mb']:.0f} MB peak, "
              f"{results[mode]['wall_s']:.2f} s", flush=True)
      rows.append((name, info, need_gb, results))
  finally:
    if _WORK_DIR.value is None:
      shutil.rmtree(work_dir, ignore_errors=True)

  print(f"\nmodel: {_MODEL.value or 'random-weight student'}"
        + ("" if _MODEL.value else
           f" ({_BACKBONE.value}, T={_NUM_FRAMES.value}, S={_CROP_SIZE.value}, frame stride "
           f"{_FRAME_STRIDE.value}, stored short side {_SHORT_SIDE.value}, "
           f"JPEG q{_JPEG_QUALITY.value})"))
  if _NOTE.value:
    print(f"machine: {_NOTE.value}")
  print("\n| video | frames | peak RSS, read all (GB) | peak RSS, streaming (GB) | "
        "predict, read all (s) | predict, streaming (s) | same probabilities |")
  print("| --- | ---: | ---: | ---: | ---: | ---: | :---: |")
  for name, info, need_gb, results in rows:
    new = results["new"]
    old = results.get("old")
    if old:
      old_rss, old_s = f"{old['peak_mb'] / 1024:.2f}", f"{old['wall_s']:.2f}"
      same = "yes" if old["probs"] == new["probs"] else "NO"
    else:
      old_rss, old_s, same = f"not run (frames alone ~{need_gb:.0f})", "-", "-"
    print(f"| {name} | {info.num_frames} | {old_rss} | {new['peak_mb'] / 1024:.2f} | {old_s} | "
          f"{new['wall_s']:.2f} | {same} |")
  loaded = [r["new"]["loaded_mb"] for _, _, _, r in rows]
  print(f"\nPeak RSS after loading and warming up the model, before any video: "
        f"{min(loaded) / 1024:.2f}-{max(loaded) / 1024:.2f} GB.")


if __name__ == "__main__":
  app.run(main)
