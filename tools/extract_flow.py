r"""Extracts TV-L1 optical flow of every video, for two-stream / TSN training.

The in-graph replacement of denseflow / OpenCV-CUDA TV-L1: the same output
layout (MMAction2 `rawframes`: one folder per video with img_%05d.jpg,
flow_x_%05d.jpg, flow_y_%05d.jpg, flow clipped to +-bound and mapped to
0-255, 128 = still) or Middlebury .flo files, computed with
`tsnet_tf.flow.tvl1` in batches (XLA on CPU, on the GPU under JAX or
TensorFlow-GPU).

  .venv/bin/python tools/extract_flow.py --video_dir=hmdb51 --output_dir=rawframes
  .venv/bin/python tools/extract_flow.py --video_dir=V --list_file=train.txt \
      --output_dir=O --preset=fast --bound=20 --format=flo
  KERAS_BACKEND=jax python tools/extract_flow.py --video_dir=V --output_dir=O
  python tools/extract_flow.py --video_dir=V --output_dir=O --engine=ray \
      [--ray_address=HEAD:6379]   # on a Ray cluster (docs/scale.md)
  python tools/extract_flow.py --video_dir=s3://b/videos --output_dir=s3://b/rawframes \
      --engine=ray   # URIs through fsspec (s3 needs s3fs, gs gcsfs)

Streams: frames are decoded, resized, turned into flow and written one batch
at a time, so memory does not grow with a video's length (a 60 s 1080p video
peaks as a 10 s one; benchmarks/bench_video_memory.py). The progress bar
counts flows, with the videos done beside it.

Resumable: each video is written to a temporary folder and renamed when
complete; a rerun skips finished videos. Unreadable videos are named, counted
and skipped. A summary goes to OUTPUT_DIR/extract_summary.json.
"""

import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from tsnet_tf.data import flow_extraction
from tsnet_tf.data import remote
from tsnet_tf.flow import batching
from tsnet_tf.utils import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("video_dir", None, "Directory of videos, searched "
                    "recursively (flat, or HMDB51's class folders).")
flags.DEFINE_string("output_dir", None, "Output root: one folder per video, "
                    "same relative path without the extension.")
flags.DEFINE_string("list_file", None, "Optional list of videos (one per "
                    "line, first token, relative to --video_dir or absolute) "
                    "instead of searching --video_dir.")
flags.DEFINE_enum("preset", "accurate", ["accurate", "fast"], "TV-L1 preset "
                  "(tsnet_tf.flow.PRESETS).")
flags.DEFINE_float("bound", 20.0, "rawframes: flow clipped to +-bound px "
                   "before mapping to 0-255 (denseflow's default 20).")
flags.DEFINE_enum("format", "rawframes", ["rawframes", "flo"], "rawframes: "
                  "MMAction2/TSN JPEGs; flo: Middlebury float files.")
flags.DEFINE_integer("batch_size", 16, "Frame pairs per TV-L1 call (larger "
                     "fills a GPU better).")
flags.DEFINE_integer("max_batch_pixels", batching.DEFAULT_MAX_BATCH_PIXELS, "Fewer pairs per call "
                     "for large frames: min(batch_size, max_batch_pixels // "
                     "(H * W)), so memory stays bounded (2^23 = 4 full-HD "
                     "pairs, ~2.3 GB fast, ~3.8 GB accurate on CPU); 0 = no "
                     "limit.")
flags.DEFINE_integer("new_short", 0, "Resize so the shorter side is this "
                     "many px before the flow (0 keeps the size).")
flags.DEFINE_boolean("save_frames", True, "rawframes: also write the RGB "
                     "frames img_%05d.jpg.")
flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality.")
flags.DEFINE_integer("num_writers", 2, "Threads writing images while the "
                     "flow computes.")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")
flags.DEFINE_enum("engine", "local", ["local", "ray"], "local: one video at a time in this "
                  "process (Ray is not imported). ray: videos spread over a pool of Ray "
                  "actors on the cluster at --ray_address (none: a local Ray instance); "
                  "the same files (docs/scale.md).")
flags.DEFINE_string("ray_address", "", "--engine=ray: HOST:PORT of a running Ray "
                    "cluster's head (`ray start --head`), ray://HOST:10001, or auto; "
                    "empty starts a local Ray instance.")
flags.DEFINE_integer("num_workers", 0, "--engine=ray: extraction actors (0: one per GPU "
                     "of the cluster, else one per CPU); also the CPUs of a local Ray "
                     "instance.", lower_bound=0)
flags.mark_flags_as_required(["video_dir", "output_dir"])


def main(argv):
  del argv
  options = flow_extraction.Options(
      preset=FLAGS.preset, bound=FLAGS.bound, fmt=FLAGS.format,
      batch_size=FLAGS.batch_size, max_batch_pixels=FLAGS.max_batch_pixels,
      new_short=FLAGS.new_short,
      save_frames=FLAGS.save_frames, jpeg_quality=FLAGS.jpeg_quality,
      num_writers=FLAGS.num_writers)
  cli.check_dir_flag("output_dir", FLAGS.output_dir)
  if FLAGS.engine != "ray" and (FLAGS.ray_address or FLAGS.num_workers):
    raise cli.ToolError("--ray_address and --num_workers need --engine=ray", cli.USAGE_EXIT)
  uris = [f for f in ("video_dir", "output_dir") if remote.is_uri(getattr(FLAGS, f))]
  if uris and FLAGS.engine != "ray":
    raise cli.ToolError(f"--{uris[0]} {getattr(FLAGS, uris[0])!r} is a URI: URIs need "
                        "--engine=ray (docs/scale.md)", cli.USAGE_EXIT)
  try:
    options.check()
    for flag in uris:
      remote.filesystem(getattr(FLAGS, flag), flag)  # a bad scheme: one line, before any work
    if remote.is_uri(FLAGS.video_dir):
      if FLAGS.list_file:
        raise ValueError("--list_file needs a local --video_dir")
      videos = [flow_extraction.Video(uri, name)
                for uri, name in remote.find_videos(FLAGS.video_dir)]
    else:
      videos = flow_extraction.find_videos(FLAGS.video_dir, FLAGS.list_file)
  except ValueError as e:
    raise cli.ToolError(str(e), cli.USAGE_EXIT) from e
  if not videos:
    raise cli.ToolError(f"no videos found in --video_dir {FLAGS.video_dir!r}"
                        + (f" from {FLAGS.list_file!r}" if FLAGS.list_file else ""))
  if FLAGS.engine == "ray":
    from tsnet_tf.data import distributed  # pylint: disable=g-import-not-at-top
    summary = distributed.extract(videos, FLAGS.output_dir, options,
                                  num_workers=FLAGS.num_workers, progress=FLAGS.progress,
                                  ray_address=FLAGS.ray_address)
  else:
    summary = flow_extraction.extract_all(videos, FLAGS.output_dir, options,
                                          progress=FLAGS.progress)
  rate = (f", {summary.num_flows / summary.flow_seconds:.1f} flows/s in "
          "TV-L1" if summary.flow_seconds else "")
  print(f"extract_flow: {len(summary.done)} extracted, {len(summary.skipped)} "
        f"already done, {len(summary.failed)} unreadable (skipped); "
        f"{summary.num_flows} flows in {summary.seconds:.1f} s{rate}; "
        f"summary in {os.path.join(FLAGS.output_dir, flow_extraction.SUMMARY_FILE)}")


if __name__ == "__main__":
  cli.run(main)
