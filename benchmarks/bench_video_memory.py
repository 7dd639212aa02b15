r"""Benchmark: peak memory of video tools on long full-HD videos, before vs after streaming.

Each case runs in a fresh subprocess; peak RSS is the process's `ru_maxrss`
(TF, the model or solver, and the video). Parts (`--parts`):

predict   `tsnet_tf.export.predict` (tools/predict.py): the read-all path
          (`video.read_video`, then the clip) vs `ClipSpec.read_clip` /
          `read_window`, which keep only the clip's frames; same
          probabilities checked (last column). Model: a random-weight student
          with the `make demo` clip spec, or `--model`.
extract   `flow.flow_extraction.extract_all` (tools/extract_flow.py) on one video,
          `--extract_preset`, for each `--extract_shorts` (`new_short`).
          "Before" is the code in `--old_code` (a checkout of the previous
          version, e.g. /work/main before the streaming change), run in the
          same way; the outputs are compared file by file.
convert   `data.tfrecords.convert` (tools/prepare_hmdb51.py's library call;
          default settings: short side 240, JPEG q90; one process) on an
          HMDB51 layout holding that one video; before from `--old_code`,
          shards compared byte for byte.
tvl1      one `tvl1` call on `--tvl1_batches` random 1920x1080 pairs per
          `--tvl1_presets` (compile included): what one extraction batch
          costs, which sets `batching.DEFAULT_MAX_BATCH_PIXELS`.

Videos: 1080p (1920x1080, 30 fps) of each `--lengths` seconds, generated into
`--work_dir` or a temporary directory (moving gradients, MPEG-4 Part 2 AVI,
encoded frame by frame); a generated 320x240 clip (HMDB51's size) and the
shared 1080p NTU clip (H.264) for predict.

  .venv/bin/python benchmarks/bench_video_memory.py
  .venv/bin/python benchmarks/bench_video_memory.py --parts=extract,convert \
      --old_code=/path/to/previous/checkout
  .venv/bin/python benchmarks/bench_video_memory.py --parts=tvl1

A "before" case is skipped where its decoded frames would exceed
`--old_max_gb` (the old paths held them twice: a list and the stacked array);
the table says so.
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
# The code measured: this checkout, or (children of "before" cases) the one
# in --old_code, passed down in this variable.
_CODE_ENV = "BENCH_VIDEO_MEMORY_CODE"
sys.path.insert(0, os.environ.get(_CODE_ENV, REPO))
# pylint: disable=g-import-not-at-top,wrong-import-position

_PARTS = flags.DEFINE_list("parts", ["predict", "extract", "convert"],
                           "What to measure: predict, extract, convert, tvl1.")
_LENGTHS = flags.DEFINE_list("lengths", ["10", "60"], "Seconds of the generated 1080p videos.")
_OLD_CODE = flags.DEFINE_string("old_code", None, "Repository root of the code before "
                                "streaming (extract, convert 'before' columns); none: not run.")
_EXTRACT_SHORTS = flags.DEFINE_list("extract_shorts", ["256", "0"], "extract: new_short "
                                    "values (0 keeps 1920x1080).")
_EXTRACT_PRESET = flags.DEFINE_string("extract_preset", "fast", "extract: TV-L1 preset.")
_TVL1_BATCHES = flags.DEFINE_list("tvl1_batches", ["1", "4", "16"], "tvl1: pairs per call.")
_TVL1_PRESETS = flags.DEFINE_list("tvl1_presets", ["fast", "accurate"], "tvl1: presets.")
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
_CHILD = flags.DEFINE_enum("child", None, ["old", "new", "make_model", "extract", "convert",
                                           "tvl1"], "(internal)")
_VIDEO = flags.DEFINE_string("video", None, "(internal) video file of a --child run.")
_OUTPUT = flags.DEFINE_string("output", None, "(internal) model file of --child=make_model, "
                              "output directory of --child=extract/convert.")
_NEW_SHORT = flags.DEFINE_integer("new_short", 0, "(internal) --child=extract.")
_PRESET = flags.DEFINE_string("preset", "fast", "(internal) --child=extract/tvl1.")
_BATCH = flags.DEFINE_integer("batch", 1, "(internal) --child=tvl1.")

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
  from tsnet_tf.layers import clip_contract
  t, s = _NUM_FRAMES.value, _CROP_SIZE.value
  model = models.build_rgb_model(51, t, s, backbone=_BACKBONE.value)
  spec = clip_spec.ClipSpec(t, s, _FRAME_STRIDE.value, clip_spec.StoredFrames(
      short_side=_SHORT_SIDE.value, jpeg_quality=_JPEG_QUALITY.value))
  clip_contract.attach(model, spec, [f"class_{i}" for i in range(51)]).save(output)


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


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _child_extract(path: str, output: str) -> None:
  """extract_all of one video (whichever code is on sys.path); one JSON line."""
  from tsnet_tf.data import flow_extraction
  from tsnet_tf.flow import batching
  loaded = _hwm_mb()
  options = flow_extraction.Options(preset=_PRESET.value, new_short=_NEW_SHORT.value)
  start = time.perf_counter()
  summary = flow_extraction.extract_all([flow_extraction.Video(path, "video")], output, options,
                                        progress=False)
  wall = time.perf_counter() - start
  if summary.failed:
    raise RuntimeError(f"extract failed: {summary.failed}")
  print("RESULT " + json.dumps({"wall_s": wall, "loaded_mb": loaded, "peak_mb": _peak_mb(),
                                "flows": summary.num_flows}))


def _child_convert(path: str, output: str) -> None:
  """tfrecords.convert of an HMDB51 layout holding `path` alone; one JSON line."""
  from tsnet_tf.data import hmdb51
  from tsnet_tf.data import tfrecords
  src = os.path.join(output, "src")
  os.makedirs(os.path.join(src, "videos", "clip"))
  os.makedirs(os.path.join(src, "splits"))
  os.symlink(os.path.abspath(path), os.path.join(src, "videos", "clip", "v.avi"))
  with open(os.path.join(src, "splits", hmdb51.split_file_name("clip", 1)), "w") as f:
    f.write("v.avi 1\n")
  loaded = _hwm_mb()
  start = time.perf_counter()
  summary = tfrecords.convert(os.path.join(src, "videos"), os.path.join(src, "splits"),
                              os.path.join(output, "data"), splits=[1],
                              settings=tfrecords.ConversionSettings(validation_fraction=0.0),
                              num_workers=1, progress=False)
  wall = time.perf_counter() - start
  print("RESULT " + json.dumps({"wall_s": wall, "loaded_mb": loaded, "peak_mb": _peak_mb(),
                                "frames": summary["num_frames"]}))


def _child_tvl1() -> None:
  """One tvl1 call on --batch random 1080p pairs; one JSON line."""
  from tsnet_tf.flow import tvl1
  rng = np.random.default_rng(0)
  first = rng.uniform(0, 255, (_BATCH.value, 1080, 1920, 3)).astype(np.float32)
  second = np.roll(first, 2, axis=2)
  loaded = _hwm_mb()
  start = time.perf_counter()
  np.asarray(tvl1(first, second, _PRESET.value))
  wall = time.perf_counter() - start
  print("RESULT " + json.dumps({"wall_s": wall, "loaded_mb": loaded, "peak_mb": _peak_mb()}))


def _run_child(*args, code: str = None) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), *args]
  env = dict(os.environ)
  env.pop(_CODE_ENV, None)
  if code:
    env[_CODE_ENV] = os.path.abspath(code)
  done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
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


def _tree_digest(root: str) -> str:
  """sha256 over the relative names and bytes of every file under `root`."""
  import hashlib
  digest = hashlib.sha256()
  for folder, dirs, files in sorted(os.walk(root)):
    dirs.sort()
    for name in sorted(files):
      if name in ("extract_summary.json", "summary.json", "plan.json"):
        continue  # timings and settings, not outputs
      path = os.path.join(folder, name)
      digest.update(os.path.relpath(path, root).encode())
      with open(path, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


def _gb(mb: float) -> str:
  return f"{mb / 1024:.2f}"


def _part_predict(work_dir, videos):
  from tsnet_tf.data import video
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
      print(f"predict {name}: {mode} {results[mode]['peak_mb']:.0f} MB peak, "
            f"{results[mode]['wall_s']:.2f} s", flush=True)
    rows.append((name, info, need_gb, results))
  lines = [f"predict: model {_MODEL.value or 'random-weight student'}"
           + ("" if _MODEL.value else
              f" ({_BACKBONE.value}, T={_NUM_FRAMES.value}, S={_CROP_SIZE.value}, frame stride "
              f"{_FRAME_STRIDE.value}, stored short side {_SHORT_SIDE.value}, "
              f"JPEG q{_JPEG_QUALITY.value})"), "",
           "| video | frames | peak RSS, read all (GB) | peak RSS, streaming (GB) | "
           "predict, read all (s) | predict, streaming (s) | same probabilities |",
           "| --- | ---: | ---: | ---: | ---: | ---: | :---: |"]
  for name, info, need_gb, results in rows:
    new = results["new"]
    old = results.get("old")
    if old:
      old_rss, old_s = _gb(old["peak_mb"]), f"{old['wall_s']:.2f}"
      same = "yes" if old["probs"] == new["probs"] else "NO"
    else:
      old_rss, old_s, same = f"not run (frames alone ~{need_gb:.0f})", "-", "-"
    lines.append(f"| {name} | {info.num_frames} | {old_rss} | {_gb(new['peak_mb'])} | {old_s} | "
                 f"{new['wall_s']:.2f} | {same} |")
  loaded = [r["new"]["loaded_mb"] for _, _, _, r in rows]
  lines.append(f"\nPeak RSS after loading and warming up the model, before any video: "
               f"{_gb(min(loaded))}-{_gb(max(loaded))} GB.")
  return lines


def _before_after(kind, name, path, need_gb, args, work_dir):
  """Runs the child `kind` with the old code (when given and small enough) and
  this code; returns {mode: result} with the outputs' digests."""
  results = {}
  for mode, code in (("before", _OLD_CODE.value), ("after", None)):
    if mode == "before" and (not code or need_gb > _OLD_MAX_GB.value):
      continue
    out = tempfile.mkdtemp(prefix=f"{kind}_{mode}_", dir=work_dir)
    try:
      result = _run_child(f"--child={kind}", f"--video={path}", f"--output={out}", *args,
                          code=code)
      result["digest"] = _tree_digest(out)
    finally:
      shutil.rmtree(out, ignore_errors=True)
    results[mode] = result
    print(f"{kind} {name} {' '.join(args)}: {mode} {result['peak_mb']:.0f} MB peak, "
          f"{result['wall_s']:.1f} s", flush=True)
  return results


def _cells(results, need_gb):
  """(before RSS, after RSS, before s, after s, same) table cells."""
  new, old = results["after"], results.get("before")
  if old is None:
    why = ("no --old_code" if not _OLD_CODE.value
           else f"not run (frames alone ~{need_gb:.0f} GB)")
    return why, _gb(new["peak_mb"]), "-", f"{new['wall_s']:.1f}", "-"
  return (_gb(old["peak_mb"]), _gb(new["peak_mb"]), f"{old['wall_s']:.1f}",
          f"{new['wall_s']:.1f}", "yes" if old["digest"] == new["digest"] else "NO")


def _part_extract(work_dir, videos):
  from tsnet_tf.data import flow_extraction
  from tsnet_tf.data import tfrecords
  from tsnet_tf.data import video
  from tsnet_tf.flow import batching
  lines = [f"extract_flow: `extract_all` of one video, preset {_EXTRACT_PRESET.value}, batch "
           f"16 pairs, rawframes (img + flow_x + flow_y JPEGs); before: "
           f"{_OLD_CODE.value or 'not run'}", "",
           "| video | new_short | frame | pairs per call, after | peak RSS before (GB) | "
           "peak RSS after (GB) | before (s) | after (s) | same files |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
  for short in (int(v) for v in _EXTRACT_SHORTS.value):
    for name, path in videos:
      info = video.probe_video(path)
      height, width = video.short_side_size(info.height, info.width, short)
      need_gb = 2 * info.num_frames * height * width * 3 / 1e9
      results = _before_after("extract", name, path, need_gb,
                              [f"--new_short={short}", f"--preset={_EXTRACT_PRESET.value}"],
                              work_dir)
      pairs = batching.pairs_per_call(16, batching.DEFAULT_MAX_BATCH_PIXELS, height, width)
      cells = " | ".join(_cells(results, need_gb))
      lines.append(f"| {name} | {short} | {width}x{height} | {pairs} | {cells} |")
  return lines


def _part_convert(work_dir, videos):
  from tsnet_tf.data import video
  lines = ["prepare_hmdb51: `tfrecords.convert` of one video (short side 240, JPEG q90, one "
           f"process); before: {_OLD_CODE.value or 'not run'}", "",
           "| video | frames | peak RSS before (GB) | peak RSS after (GB) | before (s) | "
           "after (s) | same records |",
           "| --- | ---: | ---: | ---: | ---: | ---: | :---: |"]
  for name, path in videos:
    info = video.probe_video(path)
    # The old converter kept the frames resized to the short side, twice.
    scale = 240 / min(info.height, info.width)
    need_gb = 2 * info.num_frames * info.height * info.width * scale * scale * 3 / 1e9
    results = _before_after("convert", name, path, need_gb, [], work_dir)
    lines.append(f"| {name} | {info.num_frames} | {' | '.join(_cells(results, need_gb))} |")
  return lines


def _part_tvl1():
  lines = ["tvl1: one call on random 1920x1080 pairs, fresh process (compile included)", "",
           "| preset | pairs | peak RSS before the call (GB) | peak RSS (GB) | call (s) |",
           "| --- | ---: | ---: | ---: | ---: |"]
  for preset in _TVL1_PRESETS.value:
    for batch in _TVL1_BATCHES.value:
      r = _run_child("--child=tvl1", f"--preset={preset}", f"--batch={batch}")
      print(f"tvl1 {preset} x{batch}: {r['peak_mb']:.0f} MB peak, {r['wall_s']:.1f} s",
            flush=True)
      lines.append(f"| {preset} | {batch} | {_gb(r['loaded_mb'])} | {_gb(r['peak_mb'])} | "
                   f"{r['wall_s']:.1f} |")
  return lines


def main(argv):
  del argv
  if _CHILD.value == "make_model":
    return _child_make_model(_OUTPUT.value)
  if _CHILD.value == "extract":
    return _child_extract(_VIDEO.value, _OUTPUT.value)
  if _CHILD.value == "convert":
    return _child_convert(_VIDEO.value, _OUTPUT.value)
  if _CHILD.value == "tvl1":
    return _child_tvl1()
  if _CHILD.value:
    return _child_measure(_CHILD.value, _MODEL.value, _VIDEO.value)

  parts = set(_PARTS.value)
  unknown = parts - {"predict", "extract", "convert", "tvl1"}
  if unknown:
    raise app.UsageError(f"--parts: unknown {sorted(unknown)}")
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix="bench_video_memory_")
  os.makedirs(work_dir, exist_ok=True)
  tables = []
  try:
    videos = _make_videos(work_dir) if parts - {"tvl1"} else []
    full_hd = [(name, path) for name, path in videos if "generated" in name
               and "1920x1080" in name]
    if "predict" in parts:
      tables.append(_part_predict(work_dir, videos))
    if "extract" in parts:
      tables.append(_part_extract(work_dir, full_hd))
    if "convert" in parts:
      tables.append(_part_convert(work_dir, full_hd))
    if "tvl1" in parts:
      tables.append(_part_tvl1())
  finally:
    if _WORK_DIR.value is None:
      shutil.rmtree(work_dir, ignore_errors=True)
  if _NOTE.value:
    print(f"\nmachine: {_NOTE.value}")
  for lines in tables:
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
  app.run(main)
