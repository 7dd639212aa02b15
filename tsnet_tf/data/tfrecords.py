"""HMDB51 videos -> TFRecords: the converter (plan, shards, resumable conversion).

The record format and the data directory a reader sees are `schema.py`'s.

This module is imported by the converter's spawned worker processes
(`encode_video`), so it loads neither TensorFlow nor Keras at import: TF's
record writer and the stored flow's TV-L1 (`flow_extraction`, Keras) are
imported inside the functions of this process that use them.

Each video is decoded and encoded once, whatever the number of splits: the
three splits differ only in `clip/split<k>`, so the pipeline reads the same
shards for every split and keeps the records whose `clip/split<k>` is the
subset wanted. Shards mix classes and splits (a fixed permutation of the videos),
so every shard is a uniform sample of every (split, subset): sharding by file
under tf.distribute stays balanced.

Output directory:
  labels.txt                               class names, one a line, label order
  summary.json                             counts, skipped/partly decoded/missing/unused files,
                                           settings
  hmdb51-SSSSS-of-NNNNN.tfrecord           shards
  _shard_info/hmdb51-SSSSS-of-NNNNN.json   per-shard record list (for resume and summary)
  plan.json                                inputs + settings fingerprint (resume guard)
"""

import array
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from tsnet_tf.data import hmdb51
from tsnet_tf.data import schema
from tsnet_tf.data import stored_flow
from tsnet_tf.data import video
from tsnet_tf.utils import errors
from tsnet_tf.utils import io as io_utils
from tsnet_tf.utils import labels as labels_lib
from tsnet_tf.utils import processes

SHARD_INFO_DIR = "_shard_info"
PLAN_FILE = "plan.json"
# Shard sizes of ~100 videos keep HMDB51 at ~70 shards of ~150 MB; small
# datasets still get several shards so both workers and file sharding have work.
_VIDEOS_PER_SHARD = 100
_MIN_SHARDS = 8
# Fixed seed of the video -> shard permutation: output depends only on inputs.
_SHARD_PERMUTATION_SEED = 0

log = logging.getLogger(__name__)

# `convert`'s `encoder`: [(VideoTask, ConversionSettings)] -> `encode_video`
# results in the same order (optionally ("ok", jpegs, info, flow)); `jpegs` a
# list or a `SpooledJpegs` in a folder this process reads.
Encoder = Callable[[List[Tuple["VideoTask", "ConversionSettings"]]], Iterator]


class ShardWriteError(errors.ResourceError, OSError):
  """A shard (or its info file) could not be written: disk full, not writable, ..."""


# ---------------------------------------------------------------------------
# Conversion plan.


@dataclasses.dataclass(frozen=True)
class VideoTask:
  """One video to convert."""
  path: str
  class_name: str
  label: int
  file_name: str
  video_index: int
  split_ids: Dict[int, int]

  @property
  def media_id(self) -> str:
    return f"{self.class_name}/{self.file_name}"


@dataclasses.dataclass(frozen=True)
class ConversionSettings:
  """How frames are stored."""
  short_side: int = 240
  jpeg_quality: int = 90
  frame_stride: int = 1
  # Share of each class's training groups held out for validation.
  validation_fraction: float = 0.2
  # How the held-out groups are chosen (`hmdb51.VALIDATION_GROUPS`).
  validation_groups: str = "per_class"
  # Stored TV-L1 flow (`stored_flow.py`): "" stores none (and the records are
  # those of a conversion without these fields), else the tvl1 preset.
  flow_preset: str = ""
  flow_stride: int = 1
  flow_bound: float = 20.0

  def validate(self) -> None:
    if not 0.0 <= self.validation_fraction < 1.0:
      raise ValueError(
          f"--validation_fraction must be in [0, 1), got {self.validation_fraction}")
    if self.validation_groups not in hmdb51.VALIDATION_GROUPS:
      raise ValueError(f"--validation_groups must be one of {hmdb51.VALIDATION_GROUPS}, "
                       f"got {self.validation_groups!r}")
    if self.short_side < 0:
      raise ValueError(f"--short_side must be >= 0 (0 keeps the size), got {self.short_side}")
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f"--jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
    if self.frame_stride < 1:
      raise ValueError(f"--frame_stride must be >= 1, got {self.frame_stride}")
    if self.flow_preset:
      # tsnet_tf.flow loads Keras, which the spawned workers must not (module doc).
      from tsnet_tf.flow.tvl1 import PRESETS  # pylint: disable=g-import-not-at-top
      if self.flow_preset not in PRESETS:
        raise ValueError(f"--flow_preset must be one of {', '.join(sorted(PRESETS))} "
                         f"(or empty: no flow), got {self.flow_preset!r}")
      if self.flow_stride < 1:
        raise ValueError(f"--flow_stride must be >= 1, got {self.flow_stride}")
      if not self.flow_bound > 0:
        raise ValueError(f"--flow_bound must be > 0 px, got {self.flow_bound}")

  def as_dict(self) -> Dict[str, object]:
    """The settings as summary.json and the resume fingerprint record them.

    Without stored flow the flow fields are left out, and the default validation
    rule is not named, so such a conversion records (and resumes) exactly as
    before those fields existed.
    """
    d = dataclasses.asdict(self)
    if self.validation_groups == "per_class":
      d.pop("validation_groups")
    if not self.flow_preset:
      for key in ("flow_preset", "flow_stride", "flow_bound"):
        d.pop(key)
    return d


@dataclasses.dataclass
class Plan:
  """Everything decided before any video is decoded."""
  classes: List[str]
  splits: List[int]
  videos: List[VideoTask]
  missing: List[Dict[str, object]]
  unused: List[str]


def build_plan(video_dir: str, split_dir: str, splits: Sequence[int] = hmdb51.SPLITS,
               validation_fraction: float = 0.0,
               validation_groups: str = "per_class") -> Plan:
  """Reads the layout and split files; every layout error is raised here, before work.

  Args:
    video_dir: class folders of videos.
    split_dir: the `<class>_test_split<k>.txt` files.
    splits: official splits to record.
    validation_fraction: share of each class's training groups moved to the
      validation subset (`hmdb51.carve_validation`).
    validation_groups: "per_class" (`hmdb51.carve_validation`, HMDB51's movies)
      or "shared" (`hmdb51.carve_shared_validation`: the same groups in every
      class, as many as fit in the fraction of the split's training videos).

  Returns:
    Plan: videos used (listed with id 1 or 2 in at least one of `splits` and present),
    sorted by (label, file name) with `video_index` in that order; split lines naming
    missing files; files present but unused by these splits.

  Raises:
    hmdb51.LayoutError: not a directory, no class folders, a missing split file, or
      a split file for a class without a folder.
  """
  splits = sorted(set(int(s) for s in splits))
  if not splits:
    raise hmdb51.LayoutError("--splits is empty")
  classes = hmdb51.list_class_dirs(video_dir)
  split_entries = hmdb51.read_splits(split_dir, classes, splits)
  if validation_fraction and validation_groups == "shared":
    split_entries = {k: hmdb51.carve_shared_validation(per_class, validation_fraction)
                     for k, per_class in split_entries.items()}
  elif validation_fraction:
    split_entries = {k: {cls: hmdb51.carve_validation(entries, cls, validation_fraction)
                         for cls, entries in per_class.items()}
                     for k, per_class in split_entries.items()}
  videos, missing, unused = [], [], []
  for label, cls in enumerate(classes):
    folder = os.path.join(video_dir, cls)
    present = sorted(n for n in os.listdir(folder)
                     if not n.startswith(".") and os.path.isfile(os.path.join(folder, n)))
    present_set = set(present)
    ids: Dict[str, Dict[int, int]] = {}
    for k in splits:
      for e in split_entries[k][cls]:
        if e.video not in present_set:
          missing.append({"video": f"{cls}/{e.video}",
                          "split_file": hmdb51.split_file_name(cls, k),
                          "subset_id": e.subset_id})
          continue
        ids.setdefault(e.video, {})[k] = e.subset_id
    for name in present:
      split_ids = {k: ids.get(name, {}).get(k, hmdb51.UNUSED) for k in splits}
      if not any(split_ids.values()):
        unused.append(f"{cls}/{name}")
        continue
      videos.append(VideoTask(path=os.path.join(folder, name), class_name=cls, label=label,
                              file_name=name, video_index=len(videos), split_ids=split_ids))
  for m in missing:
    log.warning("%s lists %s, which does not exist", m["split_file"], m["video"])
  return Plan(classes=classes, splits=splits, videos=videos, missing=missing, unused=unused)


def default_num_shards(num_videos: int) -> int:
  return max(1, min(num_videos, max(_MIN_SHARDS, math.ceil(num_videos / _VIDEOS_PER_SHARD))))


def assign_shards(num_videos: int, num_shards: int) -> List[List[int]]:
  """Video positions per shard: a fixed permutation cut into near-equal runs."""
  perm = np.random.default_rng(_SHARD_PERMUTATION_SEED).permutation(num_videos)
  bounds = [s * num_videos // num_shards for s in range(num_shards + 1)]
  return [[int(i) for i in perm[bounds[s]:bounds[s + 1]]] for s in range(num_shards)]


def _fingerprint(plan: Plan, settings: ConversionSettings, num_shards: int) -> str:
  h = hashlib.sha256()
  h.update(json.dumps({"settings": settings.as_dict(), "num_shards": num_shards,
                       "classes": plan.classes, "splits": plan.splits}, sort_keys=True).encode())
  for v in plan.videos:
    h.update(json.dumps([v.media_id, sorted(v.split_ids.items()),
                         os.path.getsize(v.path)]).encode())
  return h.hexdigest()


# ---------------------------------------------------------------------------
# Workers.


def encode_frame(frame: np.ndarray, settings: ConversionSettings) -> bytes:
  """One decoded frame as the records store it: resized, then JPEG-encoded.

  Args:
    frame: uint8 [H, W, 3] RGB.
    settings: short side and JPEG quality.

  Returns:
    The JPEG bytes of the frame scaled to `video.short_side_size` (PIL bilinear,
    antialiased; `video.resize_frame`).
  """
  buf = io.BytesIO()
  Image.fromarray(_stored_size(frame, settings.short_side)).save(
      buf, format="JPEG", quality=settings.jpeg_quality)
  return buf.getvalue()


def encode_frames(frames: np.ndarray, settings: ConversionSettings):
  """`encode_frame` of each frame.

  Args:
    frames: uint8 [T, H, W, 3] RGB.
    settings: short side and JPEG quality (stride is applied by the caller).

  Returns:
    (list of JPEG bytes, height, width) of the stored frames.
  """
  height, width = frames.shape[1:3]
  out_h, out_w = video.short_side_size(height, width, settings.short_side)
  return [encode_frame(f, settings) for f in frames], out_h, out_w


def resize_frames(frames: np.ndarray, short_side: int) -> np.ndarray:
  """uint8 [T, h, w, 3]: `encode_frames`' resize without the JPEG encoding."""
  return np.stack([_stored_size(f, short_side) for f in frames])


def _stored_size(frame: np.ndarray, short_side: int) -> np.ndarray:
  """uint8 [h, w, 3]: one frame scaled as the converter stores it (`video.short_side_size`)."""
  return video.resize_frame(frame, video.short_side_size(frame.shape[0], frame.shape[1],
                                                         short_side))


class SpooledJpegs:
  """A video's stored JPEGs in a file of a spool folder, until the shard writer reads them.

  `encode_video(..., spool_dir=...)` writes each JPEG to the file as it is
  encoded and returns this small handle instead of the list: a worker never
  holds, pickles or sends a whole record (measured: a worker's peak RSS grew
  with the record, by about twice its size under Ray). The process that writes
  the shard reads the JPEGs back (`load`) and deletes the file.

  Attributes:
    path: the file: the JPEGs one after the other.
    sizes: each JPEG's length in bytes, in order.
  """

  def __init__(self, path: str, sizes: Sequence[int]):
    self.path = path
    self.sizes = array.array("I", sizes)  # compact: 4 bytes a frame when pickled

  def __len__(self) -> int:
    return len(self.sizes)

  def __reduce__(self):
    return (SpooledJpegs, (self.path, self.sizes))

  def load(self) -> List[bytes]:
    """The JPEGs, in order; the file is deleted."""
    try:
      with open(self.path, "rb") as f:
        jpegs = [f.read(size) for size in self.sizes]
    finally:
      with contextlib.suppress(OSError):
        os.remove(self.path)
    if [len(j) for j in jpegs] != list(self.sizes):
      raise OSError(f"spool file {self.path!r} is shorter than its {len(self.sizes)} JPEGs")
    return jpegs


class _SpoolError(OSError):
  """The spool file could not be written (e.g. a full temporary folder)."""


class _Spool:
  """`encode_video`'s JPEG sink writing to a spool file (`SpooledJpegs`)."""

  def __init__(self, spool_dir: str, task: VideoTask):
    # One file a video; a retried video (Ray, after its worker died) rewrites its own.
    self.path = os.path.join(spool_dir, f"{task.video_index:08d}.jpegs")
    self._sizes = []
    try:
      self._file = open(self.path, "wb")  # pylint: disable=consider-using-with
    except OSError as e:
      raise _SpoolError(str(e)) from e

  def append(self, jpeg: bytes) -> None:
    try:
      self._file.write(jpeg)
    except OSError as e:
      raise _SpoolError(str(e)) from e
    self._sizes.append(len(jpeg))

  def __len__(self) -> int:
    return len(self._sizes)

  def finish(self) -> SpooledJpegs:
    try:
      self._file.close()
    except OSError as e:
      raise _SpoolError(str(e)) from e
    return SpooledJpegs(self.path, self._sizes)

  def discard(self) -> None:
    with contextlib.suppress(OSError):
      self._file.close()
    with contextlib.suppress(OSError):
      os.remove(self.path)


def encode_video(task: VideoTask, settings: ConversionSettings, spool_dir: str = ""):
  """Decodes and JPEG-encodes one video (runs in worker processes; uses no TF op).

  Streams: each kept frame (one in `frame_stride`) is resized and encoded as
  it is decoded, so memory holds the encoded record, never the decoded video;
  with `spool_dir`, not even the record (`SpooledJpegs`).

  Args:
    task: the video.
    settings: short side, JPEG quality, frame stride.
    spool_dir: "" keeps the JPEGs in memory and returns their list; else an
      existing folder that the shard writer's process reads: each JPEG is
      written there as it is encoded, and the result carries a `SpooledJpegs`.

  Returns:
    ("ok", jpegs, info) or ("skip", reason): a bad video (empty, truncated before
    any frame, undecodable, zero frames) is a skip with the reason, never raised.
    `jpegs` is a list of JPEG bytes, or a `SpooledJpegs` with `spool_dir`
    (the list if the spool file cannot be written: the video is encoded again,
    in memory, rather than skipped).
  """
  if spool_dir:
    try:
      return _encode_video(task, settings, spool_dir)
    except _SpoolError as e:
      # Not a skip: a full temporary folder says nothing of the video, and a
      # skipped video stays skipped in its shard on a rerun.
      log.warning("%s: cannot spool its JPEGs (%s); keeping them in memory", task.media_id, e)
  return _encode_video(task, settings, "")


def _encode_video(task: VideoTask, settings: ConversionSettings, spool_dir: str):
  """`encode_video`; raises _SpoolError where the spool file cannot be written."""
  jpegs = None
  try:
    with video.VideoReader(task.path) as reader:
      if not reader.fps:
        raise video.VideoDecodeError(task.path, "container gives no frame rate")
      jpegs, height, width = _Spool(spool_dir, task) if spool_dir else [], 0, 0
      for frame in reader.frames(step=settings.frame_stride):
        if not jpegs:
          height, width = video.short_side_size(frame.shape[0], frame.shape[1], settings.short_side)
        jpegs.append(encode_frame(frame, settings))
      decoded, fps = reader.num_decoded, reader.fps
      listed = reader.header_frames or decoded
  except video.VideoDecodeError as e:
    _discard(jpegs)
    return ("skip", e.reason)
  except _SpoolError:
    _discard(jpegs)
    raise
  except Exception as e:  # pylint: disable=broad-except
    # A decoder crash on one file must not stop a multi-hour conversion.
    _discard(jpegs)
    return ("skip", f"{type(e).__name__}: {e}")
  num_frames = len(jpegs)
  if isinstance(jpegs, _Spool):
    try:
      jpegs = jpegs.finish()
    except _SpoolError:
      jpegs.discard()
      raise
  # Fewer frames than the header lists: a file cut short, kept but reported.
  return ("ok", jpegs, {"video": task.media_id, "video_index": task.video_index,
                        "label": task.label, "num_frames": num_frames, "height": height,
                        "width": width, "fps": fps / settings.frame_stride,
                        "decoded_frames": decoded, "header_frames": listed,
                        "splits": {str(k): v for k, v in sorted(task.split_ids.items())}})


def _discard(jpegs) -> None:
  if isinstance(jpegs, _Spool):
    jpegs.discard()


def _encode_video_star(args):
  return encode_video(*args)


_SPOOL_PREFIX = "tsnet_tf_spool_"


def spool_folder():
  """A context manager: a new, private spool folder for `encode_video`, removed at the end.

  Under the system's temporary folder (node-local), named by this process and
  at random: a Ray worker on another node does not see it and returns its
  JPEGs in memory. Folders left by a killed converter (its process gone) are
  removed first: they hold the JPEGs of the videos it had in flight.
  """
  _remove_stale_spools(tempfile.gettempdir())
  return tempfile.TemporaryDirectory(prefix=f"{_SPOOL_PREFIX}{os.getpid()}_",
                                     ignore_cleanup_errors=True)


def _remove_stale_spools(folder: str) -> None:
  for name in os.listdir(folder):
    pid = name[len(_SPOOL_PREFIX):].split("_", 1)[0]
    if not name.startswith(_SPOOL_PREFIX) or not pid.isdigit():
      continue
    try:
      os.kill(int(pid), 0)
    except ProcessLookupError:  # gone; PermissionError: alive, another user's
      shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    except OSError:
      pass


def pool_encoder(pool, spool_dir: str) -> Encoder:
  """`convert`'s encoder on a `multiprocessing` pool, the workers spooling to `spool_dir`."""
  return lambda jobs: pool.imap(_encode_video_star, [job + (spool_dir,) for job in jobs],
                                chunksize=1)


def write_shard(output_dir: str, index: int, num_shards: int, tasks: Sequence[VideoTask],
                results: Iterator,
                settings: Optional[ConversionSettings] = None) -> Dict[str, object]:
  """Writes one shard from `encode_video` results (in `tasks` order), atomically.

  The shard appears under its final name only when complete, after its info
  file `_shard_info/<shard>.json`, so a complete-looking shard always has one.
  With `settings.flow_preset`, each video's flow is computed here, in this
  process, from its stored frames (`flow_extraction.encode_video_flow`), one video
  at a time.

  Returns:
    The shard info: {"shard", "videos": [...], "skipped": [{"video", "reason"}]}.

  Raises:
    ShardWriteError: writing failed (disk full, directory not writable, ...);
      the message names the shard and `output_dir`, nothing is left behind.
  """
  path = os.path.join(output_dir, schema.shard_name(index, num_shards))
  try:
    return _write_shard(path, tasks, results, settings)
  except (OSError,) + errors.tf_environment_errors() as e:
    # The writer names its hidden temporary file (".hmdb51-...tmp-x.tfrecord",
    # already removed); the user knows the shard and --output_dir.
    reason = (e.strerror or str(e)) if isinstance(e, OSError) else errors.tf_error_text(e)
    reason = reason.rsplit("; ", 1)[-1] if ".tmp-" in reason else reason
    raise ShardWriteError(f"cannot write {path!r} (--output_dir {output_dir!r}): "
                          f"{reason}") from e


def _write_shard(path: str, tasks: Sequence[VideoTask], results: Iterator,
                 settings: Optional[ConversionSettings]) -> Dict[str, object]:
  """`write_shard` to `path`; errors name the temporary file."""
  # Not at the top: the spawned workers import this module without TF (see the
  # module doc); only this process writes records.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  output_dir, name = os.path.split(path)
  info = {"shard": name, "videos": [], "skipped": []}
  with io_utils.atomic_write(path) as tmp:
    with tf.io.TFRecordWriter(tmp) as writer:
      for task in tasks:
        result = next(results)
        if result[0] == "skip":
          info["skipped"].append({"video": task.media_id, "reason": result[1]})
          continue
        jpegs, vinfo = result[1], result[2]
        if isinstance(jpegs, SpooledJpegs):
          jpegs = jpegs.load()  # one video's JPEGs in this process, as without a spool
        # An engine that computed the flow elsewhere passes it as a 4th item.
        flow = result[3] if len(result) > 3 else None
        if flow is None and settings is not None and settings.flow_preset:
          # TV-L1 loads Keras: imported here, in this process only (module doc).
          from tsnet_tf.data import flow_extraction  # pylint: disable=g-import-not-at-top
          flow = flow_extraction.encode_video_flow(
              jpegs, settings.flow_stride, settings.flow_preset, settings.flow_bound,
              settings.jpeg_quality)
        if flow is not None:
          vinfo["num_flows"] = len(flow["x"])
        ex = schema.make_sequence_example(jpegs, task.label, task.class_name, task.media_id,
                                          task.video_index, vinfo["fps"], vinfo["height"],
                                          vinfo["width"], task.split_ids, flow=flow)
        # deterministic: map fields in key order, so records are byte-identical across processes.
        writer.write(ex.SerializeToString(deterministic=True))
        info["videos"].append(vinfo)
    with io_utils.atomic_write(os.path.join(output_dir, SHARD_INFO_DIR, name + ".json")) as t:
      with open(t, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
  return info


def _counting(results: Iterator, bar) -> Iterator:
  for r in results:
    bar.update(1)
    yield r


def _shard_complete(output_dir: str, name: str) -> Optional[Dict[str, object]]:
  info_path = os.path.join(output_dir, SHARD_INFO_DIR, name + ".json")
  if not (os.path.isfile(os.path.join(output_dir, name)) and os.path.isfile(info_path)):
    return None
  try:
    with open(info_path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _prepare_output_dir(output_dir: str, fingerprint: str, overwrite: bool) -> None:
  """Creates `output_dir`, or checks it holds the same conversion (resume)."""
  os.makedirs(os.path.join(output_dir, SHARD_INFO_DIR), exist_ok=True)
  plan_path = os.path.join(output_dir, PLAN_FILE)
  old = None
  if os.path.isfile(plan_path):
    with open(plan_path, encoding="utf-8") as f:
      old = json.load(f).get("fingerprint")
  has_shards = any(schema.is_shard_name(n) for n in os.listdir(output_dir))
  if (old != fingerprint and (old is not None or has_shards)) or overwrite:
    if not overwrite:
      raise FileExistsError(
          f"--output_dir {output_dir!r} holds a conversion with other inputs or settings; "
          f"use an empty directory or pass --overwrite")
    for n in os.listdir(output_dir):
      if schema.is_shard_name(n) or n in (schema.SUMMARY_FILE, schema.LABELS_FILE, PLAN_FILE):
        os.remove(os.path.join(output_dir, n))
    for n in os.listdir(os.path.join(output_dir, SHARD_INFO_DIR)):
      os.remove(os.path.join(output_dir, SHARD_INFO_DIR, n))
  # Temporary files of a killed run.
  for d in (output_dir, os.path.join(output_dir, SHARD_INFO_DIR)):
    for n in os.listdir(d):
      if n.startswith(f".{schema.SHARD_PREFIX}-") and ".tmp-" in n:
        os.remove(os.path.join(d, n))
  with io_utils.atomic_write(plan_path) as t:
    with open(t, "w", encoding="utf-8") as f:
      json.dump({"fingerprint": fingerprint}, f)


def convert(video_dir: str, split_dir: str, output_dir: str,
            splits: Sequence[int] = hmdb51.SPLITS,
            settings: ConversionSettings = ConversionSettings(),
            num_workers: int = 2, num_shards: int = 0, overwrite: bool = False,
            progress: bool = True, encoder: Optional[Encoder] = None,
            plan: Optional[Plan] = None) -> Dict[str, object]:
  """Converts an HMDB51-layout directory into TFRecord shards + labels.txt + summary.json.

  Re-running with the same inputs resumes: complete shards are kept, others rewritten.

  Args:
    video_dir: class folders of videos.
    split_dir: split files.
    output_dir: data directory to write (layout in the module doc).
    splits: official splits to record (1, 2, 3).
    settings: short side, JPEG quality, frame stride.
    num_workers: processes (spawned; 1 or 0 converts in this process).
    num_shards: number of shards; 0 picks ~100 videos per shard (at least 8).
    overwrite: replace an output directory that holds a different conversion.
    progress: show a tqdm progress bar.
    encoder: runs `encode_video` on the (task, settings) jobs elsewhere and yields
      the results in job order (the Ray engine, `distributed.py`); a result may
      carry the video's stored flow as a 4th item. None: this process or a pool
      of `num_workers`.
    plan: the videos, built elsewhere (e.g. `kinetics.build_plan`); None reads
      the HMDB51 layout of `video_dir` and `split_dir`.

  Returns:
    The summary dict (also written to `summary.json`).

  Raises:
    hmdb51.LayoutError: bad layout (before any work).
    FileExistsError: `output_dir` holds another conversion and not `overwrite`.
    ValueError: bad settings.
  """
  settings.validate()
  if num_shards < 0:
    raise ValueError(f"--num_shards must be >= 0, got {num_shards}")
  if plan is None:
    plan = build_plan(video_dir, split_dir, splits, settings.validation_fraction,
                      settings.validation_groups)
  if not plan.videos:
    raise hmdb51.LayoutError(
        f"no video in {video_dir!r} is listed as train or test in splits {plan.splits}")
  num_shards = num_shards or default_num_shards(len(plan.videos))
  num_shards = min(num_shards, len(plan.videos))
  _prepare_output_dir(output_dir, _fingerprint(plan, settings, num_shards), overwrite)

  infos, todo = {}, []
  for s, positions in enumerate(assign_shards(len(plan.videos), num_shards)):
    done = _shard_complete(output_dir, schema.shard_name(s, num_shards))
    if done is not None:
      infos[s] = done
    else:
      todo.append((s, [plan.videos[i] for i in positions]))
  if infos:
    log.info("resuming: %d of %d shards already complete", len(infos), num_shards)

  jobs = [(task, settings) for _, tasks in todo for task in tasks]
  with tqdm(total=len(jobs), unit="video", desc="prepare_hmdb51", disable=not progress) as bar:
    with contextlib.ExitStack() as stack:
      if encoder is not None:
        results = encoder(jobs)
        if hasattr(results, "close"):
          stack.callback(results.close)  # cancels the work in flight on an error
      elif num_workers <= 1 or len(jobs) <= 1:
        results = map(_encode_video_star, jobs)
      else:
        # Workers decode and encode (PyAV, PIL) without loading TF; this process
        # writes records in plan order, so the output is deterministic.
        # The workers spool their JPEGs (`SpooledJpegs`): a pool worker's peak then
        # does not grow with the video. The folder outlives the pool (exit order).
        spool_dir = stack.enter_context(spool_folder())
        pool = stack.enter_context(processes.keras_free_pool(min(num_workers, len(jobs))))
        results = pool_encoder(pool, spool_dir)(jobs)
      results = _counting(results, bar)
      for s, tasks in todo:
        infos[s] = write_shard(output_dir, s, num_shards, tasks, results, settings)

  summary = _summarize(plan, settings, [infos[s] for s in range(num_shards)])
  for s in summary["skipped"]:
    log.warning("skipped %s: %s", s["video"], s["reason"])
  for p in summary["partial"]:
    log.warning("partly decoded %s: %d of the %d frames its header lists (kept)", p["video"],
                p["decoded_frames"], p["header_frames"])
  labels_lib.write_labels(os.path.join(output_dir, schema.LABELS_FILE), plan.classes)
  with io_utils.atomic_write(os.path.join(output_dir, schema.SUMMARY_FILE)) as t:
    with open(t, "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1)
  return summary


def _summarize(plan: Plan, settings: ConversionSettings, infos: List[Dict]) -> Dict[str, object]:
  names = {i: name for name, i in hmdb51.SUBSET_IDS.items()}
  counts = {str(k): dict.fromkeys(hmdb51.SUBSETS, 0) for k in plan.splits}
  listed = {str(k): dict.fromkeys(hmdb51.SUBSETS, 0) for k in plan.splits}
  for v in plan.videos:
    for k, sid in v.split_ids.items():
      if sid in names:
        listed[str(k)][names[sid]] += 1
  videos, skipped = [], []
  for info in infos:
    videos.extend(info["videos"])
    skipped.extend(info["skipped"])
  for v in videos:
    for k, sid in v["splits"].items():
      if sid in names:
        counts[k][names[sid]] += 1
  skipped.sort(key=lambda s: s["video"])
  partial = sorted(({"video": v["video"], "decoded_frames": v["decoded_frames"],
                     "header_frames": v["header_frames"]}
                    for v in videos if v.get("decoded_frames", 0) < v.get("header_frames", 0)),
                   key=lambda p: p["video"])
  summary = {
      "classes": plan.classes,
      "num_classes": len(plan.classes),
      "splits": counts,
      "listed": listed,
      "num_videos": len(videos),
      "num_frames": int(sum(v["num_frames"] for v in videos)),
      "num_skipped": len(skipped),
      "skipped": skipped,
      "num_partial": len(partial),
      "partial": partial,
      "num_missing": len(plan.missing),
      "missing": plan.missing,
      "num_unused": len(plan.unused),
      "unused": plan.unused,
      "shards": [i["shard"] for i in infos],
      "settings": settings.as_dict(),
  }
  if settings.flow_preset:
    summary[stored_flow.SUMMARY_KEY] = stored_flow.summary_entry(
        settings.flow_preset, settings.flow_stride, settings.flow_bound)
  return summary
