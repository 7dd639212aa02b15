r"""Converts HMDB51 (official layout) into sharded TFRecords for tsnet_tf.data.pipeline.

  python tools/prepare_hmdb51.py --video_dir=hmdb51_org --split_dir=testTrainMulti_7030_splits \
      --output_dir=data/hmdb51 [--splits=1,2,3] [--short_side=240] [--jpeg_quality=90] \
      [--frame_stride=1] [--num_workers=2] [--num_shards=0] \
      [--flow_preset=fast|accurate --flow_stride=1 --flow_bound=20] \
      [--engine=ray [--ray_address=HEAD:6379]]
  python tools/prepare_hmdb51.py --video_dir=kinetics400/videos \
      --kinetics_csv=kinetics400/train.csv,kinetics400/validate.csv --output_dir=data/k400

Writes <output_dir>/hmdb51-SSSSS-of-NNNNN.tfrecord (one SequenceExample per video,
JPEG frames in `image/encoded`, split membership in `clip/split<k>`), labels.txt
and summary.json. With --flow_preset each record also stores the TV-L1 flow
between its stored frames (`flow/x/encoded`, `flow/y/encoded`: grey JPEGs, for
training the teacher with `model.flow.source: stored`; tsnet_tf/data/stored_flow.py).
Re-running the same command after an interruption resumes:
complete shards are kept, the others rewritten. Schema: tsnet_tf/data/tfrecords.py.
--engine=ray runs the same conversion on a Ray cluster (tsnet_tf/data/distributed.py).
"""

import logging

from absl import app
from absl import flags

from tsnet_tf.data import hmdb51
from tsnet_tf.data import kinetics
from tsnet_tf.data import tfrecords
from tsnet_tf.utils import cli

_VIDEO_DIR = flags.DEFINE_string("video_dir", None, "Folder of class folders of videos.",
                                 required=True)
_SPLIT_DIR = flags.DEFINE_string("split_dir", None,
                                 "Folder of <class>_test_split<k>.txt files (HMDB51; or "
                                 "--kinetics_csv).")
_KINETICS_CSV = flags.DEFINE_list(
    "kinetics_csv", [], "Instead of --split_dir: Kinetics annotation CSVs "
    "(label,youtube_id,time_start,time_end,split), clips named <youtube_id>_<start:06d>_"
    "<end:06d>.mp4 in --video_dir/<label>/, --video_dir/<split>/<label>/ or --video_dir; "
    "recorded as split 1 (train, val -> validation, test). tsnet_tf/data/kinetics.py.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Data directory to write.", required=True)
_SPLITS = flags.DEFINE_list("splits", ["1", "2", "3"], "Splits to record (HMDB51 has 1, 2, 3; a "
                             "session layout one per session).")
_SHORT_SIDE = flags.DEFINE_integer(
    "short_side", 240, "Resize frames so the short side has this many pixels; 0 keeps the "
    "size. 240 is HMDB51's own, so 224 crops need no upscaling.", lower_bound=0)
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of stored frames.",
                                     lower_bound=1, upper_bound=100)
_FRAME_STRIDE = flags.DEFINE_integer(
    "frame_stride", 1, "Keep every k-th frame (frame-rate subsampling; fps is divided by k).",
    lower_bound=1)
_VALIDATION_FRACTION = flags.DEFINE_float(
    "validation_fraction", 0.2, "Share of each class's training groups (the source a clip "
    "was cut from, e.g. one movie) held out as the validation subset; 0 keeps none. HMDB51 "
    "has no validation list, and selecting on its test list would overstate accuracy.",
    lower_bound=0.0, upper_bound=0.95)
_VALIDATION_GROUPS = flags.DEFINE_enum(
    "validation_groups", "per_class", ["per_class", "shared"],
    "per_class: each class holds out round(--validation_fraction x its training groups) "
    "groups (HMDB51: a group is a movie). shared: the same groups in every class, as many "
    "whole groups as fit in --validation_fraction of the split's training videos (at least "
    "one): for recording sessions of unequal size (tools/layout_sessions.py).")
_FLOW_PRESET = flags.DEFINE_enum(
    "flow_preset", "", ["", "fast", "accurate"],
    "Also store the TV-L1 flow (this preset) from each stored frame i to frame i + "
    "--flow_stride, for a teacher trained with model.flow.source=stored. Empty: no flow "
    "(the records are unchanged).")
_FLOW_STRIDE = flags.DEFINE_integer(
    "flow_stride", 1, "Stored frames between the two frames of a stored flow; must equal the "
    "training config's data.frame_stride.", lower_bound=1)
_FLOW_BOUND = flags.DEFINE_float(
    "flow_bound", 20.0, "Stored flow is clipped to +-bound px and mapped to 0-255; must equal "
    "the training config's model.flow.bound.")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 2, "Processes decoding and encoding videos (1: this process only).",
    lower_bound=1)
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 0, "Number of TFRecord shards; 0 picks ~100 videos a shard, at least 8.",
    lower_bound=0)
_ENGINE = flags.DEFINE_enum(
    "engine", "local", ["local", "ray"],
    "local: this process and --num_workers processes (Ray is not imported). ray: each video "
    "is a Ray task on the cluster at --ray_address (none: a local Ray instance with "
    "--num_workers CPUs); the same records, labels.txt and summary.json (docs/scale.md).")
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", "", "--engine=ray: HOST:PORT of a running Ray cluster's head (`ray start "
    "--head`), ray://HOST:10001, or auto; empty starts a local Ray instance.")
_OVERWRITE = flags.DEFINE_boolean(
    "overwrite", False, "Replace an --output_dir that holds a conversion of other inputs or "
    "settings (the same inputs and settings resume instead).")


def _parse_splits(values):
  try:
    splits = sorted({int(v) for v in values})
  except ValueError:
    raise app.UsageError(f"--splits must be a comma list of split numbers (HMDB51: 1, 2, 3); "
                         f"got {','.join(values)!r}")
  if not splits or min(splits) < 1:
    raise app.UsageError(f"--splits must be a comma list of split numbers (HMDB51: 1, 2, 3); "
                         f"got {','.join(values)!r}")
  return splits


def format_summary(summary: dict) -> str:
  """Human-readable lines: counts per split and subset, skipped and missing files."""
  lines = [f"{summary['num_videos']} videos of {summary['num_classes']} classes in "
           f"{len(summary['shards'])} shards ({summary['num_frames']} frames)"]
  for k, c in sorted(summary["splits"].items()):
    listed = summary["listed"][k]
    lines.append(f"  split {k}: train {c['train']} + validation {c.get('validation', 0)} "
                 f"(of {listed['train'] + listed.get('validation', 0)} listed as training), "
                 f"test {c['test']} (of {listed['test']} listed)")
  lines.append(f"skipped {summary['num_skipped']} unreadable videos")
  lines += [f"  {s['video']}: {s['reason']}" for s in summary["skipped"]]
  if summary.get("num_partial"):
    lines.append(f"{summary['num_partial']} videos decoded only partly (kept; truncated?)")
    lines += [f"  {p['video']}: {p['decoded_frames']} of {p['header_frames']} frames"
              for p in summary["partial"]]
  lines.append(f"{summary['num_missing']} split-file lines name missing videos")
  lines += [f"  {m['split_file']}: {m['video']}" for m in summary["missing"]]
  if summary.get("flow"):
    f = summary["flow"]
    lines.append(f"stored TV-L1 flow: preset {f['preset']}, stride {f['stride']}, "
                 f"bound {f['bound']:g} px")
  if summary["num_unused"]:
    lines.append(f"{summary['num_unused']} videos are in no requested split (not converted)")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.getLogger("tsnet_tf").setLevel(logging.INFO)
  settings = tfrecords.ConversionSettings(short_side=_SHORT_SIDE.value,
                                          jpeg_quality=_JPEG_QUALITY.value,
                                          frame_stride=_FRAME_STRIDE.value,
                                          validation_fraction=_VALIDATION_FRACTION.value,
                                          validation_groups=_VALIDATION_GROUPS.value,
                                          flow_preset=_FLOW_PRESET.value,
                                          flow_stride=_FLOW_STRIDE.value,
                                          flow_bound=_FLOW_BOUND.value)
  cli.check_dir_flag("output_dir", _OUTPUT_DIR.value)
  for flag in (_VIDEO_DIR, _SPLIT_DIR, _OUTPUT_DIR, _KINETICS_CSV):
    value = ",".join(flag.value or []) if flag.name == "kinetics_csv" else (flag.value or "")
    if "://" in value:
      raise app.UsageError(f"--{flag.name} {value!r}: the converter reads and writes "
                           "local (or mounted) paths only, not URIs (docs/scale.md)")
  if _RAY_ADDRESS.value and _ENGINE.value != "ray":
    raise app.UsageError("--ray_address needs --engine=ray")
  if bool(_SPLIT_DIR.value) == bool(_KINETICS_CSV.value):
    raise app.UsageError("give one of --split_dir (HMDB51) and --kinetics_csv (Kinetics)")
  plan, splits = None, None
  if _KINETICS_CSV.value:
    plan, splits = kinetics.build_plan(_KINETICS_CSV.value, _VIDEO_DIR.value), [1]
  try:
    splits = splits or _parse_splits(_SPLITS.value)
    if _ENGINE.value == "ray":
      from tsnet_tf.data import distributed  # pylint: disable=g-import-not-at-top
      summary = distributed.convert(_VIDEO_DIR.value, _SPLIT_DIR.value, _OUTPUT_DIR.value,
                                    splits=splits, settings=settings,
                                    num_workers=_NUM_WORKERS.value, num_shards=_NUM_SHARDS.value,
                                    overwrite=_OVERWRITE.value, ray_address=_RAY_ADDRESS.value,
                                    plan=plan)
    else:
      summary = tfrecords.convert(_VIDEO_DIR.value, _SPLIT_DIR.value, _OUTPUT_DIR.value,
                                  splits=splits, settings=settings,
                                  num_workers=_NUM_WORKERS.value, num_shards=_NUM_SHARDS.value,
                                  overwrite=_OVERWRITE.value, plan=plan)
  except ValueError as e:
    if isinstance(e, hmdb51.LayoutError):
      raise  # cli.run reports it (exit 1).
    raise app.UsageError(str(e)) from e
  print(format_summary(summary))
  print(f"wrote {_OUTPUT_DIR.value} (summary.json, labels.txt)")
  return 0


if __name__ == "__main__":
  cli.run(main)
