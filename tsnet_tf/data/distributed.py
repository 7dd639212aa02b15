"""Dataset conversion and flow extraction on Ray (the tools' `--engine=ray`).

The same program runs on this machine (no address: `ray.init` starts a local
Ray instance with `num_workers` CPUs), on a cluster (`ray start --head` on one
node, `ray start --address=HEAD:6379` on the others, then
`--ray_address=HEAD:6379`) and on Kubernetes (a KubeRay RayJob; docs/scale.md).
Every node needs this package installed (or a `runtime_env`), and the input
and output paths must mean the same on every node (a shared filesystem).

Conversion (`convert`) is `tfrecords.convert` with another `encoder`: the plan,
the validation carving, the video -> shard assignment, resume, the atomic shard
writes and summary.json are the local converter's. Each video is one Ray task
running `tfrecords.encode_video` (decode, resize, JPEG: CPU, TensorFlow not
loaded); with stored flow, a pool of flow actors computes each video's TV-L1
flow from its stored frames (`flow_extraction.encode_video_flow`, batched; one
GPU each when the cluster has GPUs, else on CPU). This process writes the
records in plan order, so the shards hold the same bytes as the local
converter's and a rerun after a kill redoes only the incomplete shards.

Extraction (`extract`): each video is one call to a pool of extraction actors,
each running `flow_extraction.extract_video` (decode, TV-L1 in batches, JPEG / .flo
writes in the actor's writer threads) into a temporary folder renamed when
complete: the same files as `extract_flow`; a rerun skips finished videos.
The actors share a node-local XLA compile cache, and the driver hands out
videos by frame size (a size compiled once per node) and longest first
(`_SizeAffinity`). Inputs and outputs may be fsspec URIs (`remote`).

Back-pressure: at most `max_in_flight` videos (default twice the workers) are
submitted and not yet consumed, so memory does not grow with the dataset.

Failures: Ray retries a task or actor call whose worker process dies
(`max_retries`); a video that still fails, or that cannot be decoded, is a
dead letter: named with its error in the summary (`skipped` in summary.json,
`failed` in extract_summary.json), counted, skipped, never fatal.

Ray is imported by this module only; `--engine=local` never imports it.
"""

import collections
import concurrent.futures
import contextlib
import importlib.metadata
import itertools
import logging
import os
import shutil
import socket
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import ray

from tsnet_tf.data import hmdb51
from tsnet_tf.data import remote
from tsnet_tf.data import tfrecords
from tsnet_tf.data import video as video_lib
from tsnet_tf.utils import errors

log = logging.getLogger(__name__)

# Retries of a task (or actor call) whose worker process died.
DEFAULT_MAX_RETRIES = 3
# Seconds to wait for a TCP connection to --ray_address before giving up.
_CONNECT_TIMEOUT_S = 5.0


class ClusterUnreachableError(errors.ResourceError, ConnectionError):
  """--ray_address names no running Ray cluster."""


# ---------------------------------------------------------------------------
# The cluster.


def _check_reachable(address: str) -> None:
  """Raises ClusterUnreachableError unless `address` (`[ray://]host:port`) accepts TCP.

  `ray.init` retries an unreachable address for minutes; one connection
  attempt answers in seconds. "auto" (the cluster this node belongs to) is
  left to Ray.
  """
  if address == "auto":
    return
  hostport = address.split("://", 1)[-1]
  host, sep, port = hostport.rpartition(":")
  if not sep or not port.isdigit():
    raise ClusterUnreachableError(
        f"--ray_address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379) or 'auto'")
  try:
    with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT_S):
      pass
  except OSError as e:
    raise ClusterUnreachableError(
        f"cannot reach a Ray cluster at --ray_address {address!r}: "
        f"{e.strerror or type(e).__name__}") from e


@contextlib.contextmanager
def cluster(address: str = "", num_cpus: int = 0):
  """Connects to Ray for the duration of the block.

  Args:
    address: `host:port` of a running cluster's head (`ray start --head`),
      `ray://host:10001` (Ray Client), or "auto"; empty starts a local Ray
      instance. Checked, then ignored, when this process is already connected.
    num_cpus: CPUs of a local instance (0: all of this machine's).

  Yields:
    None; disconnects at the end if it connected.

  Raises:
    ClusterUnreachableError: nothing answers at `address`.
  """
  if address:
    _check_reachable(address)
  if ray.is_initialized():
    yield
    return
  # `import tsnet_tf` loads no Keras: workers that only decode and encode video
  # never load TensorFlow/Keras; those that need TV-L1 import it themselves.
  kwargs = dict(include_dashboard=False, logging_level=logging.WARNING)
  if address:
    ray.init(address=address, **kwargs)
  else:
    # Ray starts its workers at niceness +15 (`worker_niceness`) by default: on a
    # machine shared with other jobs, this instance's actors then got a fraction
    # of the CPU the local engine's processes get (measured: 2 flow actors at
    # 0.4-0.66x `extract_flow` under load 10-20). A local instance is this
    # program's own, so its workers run at this process's priority, as the local
    # engine's do. A cluster started with `ray start` keeps its own setting.
    ray.init(num_cpus=num_cpus or None, _system_config={"worker_niceness": 0}, **kwargs)
  try:
    yield
  finally:
    ray.shutdown()


def _num_cpus() -> int:
  return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _num_gpus() -> int:
  return int(ray.cluster_resources().get("GPU", 0))


def _error_line(e: BaseException) -> str:
  """One line naming a Ray failure (a RayTaskError's last line is the cause)."""
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[-1] if text else ''}".strip()


# ---------------------------------------------------------------------------
# Conversion.


@ray.remote(num_cpus=1)
def _encode_task(encode_fn, task, settings, spool_dir=""):
  """`encode_fn(task, settings)`, spooling (`tfrecords.SpooledJpegs`) where `spool_dir` is seen.

  The driver's spool folder has a random name on its node: a worker there (or
  on a node sharing that folder) writes the JPEGs to it as they are encoded and
  returns a small handle, so its peak memory does not grow with the video; a
  worker on another node returns the record whole, through the object store.
  """
  if spool_dir and os.path.isdir(spool_dir):
    return encode_fn(task, settings, spool_dir=spool_dir)
  return encode_fn(task, settings)


class _FlowWorker:
  """Stored TV-L1 flow of a video's stored frames (an actor: XLA compiles once per size)."""

  def flow(self, result, settings):
    """None for a skipped video, else `flow_extraction.encode_video_flow` of its JPEGs."""
    if result[0] != "ok":
      return None
    # TV-L1 loads Keras: only in the flow actors, never in the decode workers.
    from tsnet_tf.data import flow_extraction  # pylint: disable=g-import-not-at-top
    return flow_extraction.encode_video_flow(result[1], settings.flow_stride,
                                             settings.flow_preset, settings.flow_bound,
                                             settings.jpeg_quality)


def _flow_actors(count: int, max_retries: int) -> List:
  """`count` flow actors: one GPU each when the cluster has GPUs, else CPU.

  On CPU they reserve no CPU slot: the decode tasks would otherwise wait for a
  CPU that the (idle until fed) actors hold.
  """
  gpus = _num_gpus()
  resources = dict(num_gpus=1, num_cpus=1) if gpus else dict(num_cpus=0)
  count = min(count, gpus) if gpus else count
  cls = ray.remote(max_restarts=-1, max_task_retries=max_retries,
                   scheduling_strategy="SPREAD", **resources)(_FlowWorker)
  return [cls.remote() for _ in range(max(1, count))]


def ray_encoder(max_in_flight: int, flow_actors: int = 0,
                max_retries: int = DEFAULT_MAX_RETRIES,
                encode_fn: Callable = tfrecords.encode_video) -> tfrecords.Encoder:
  """A `tfrecords.convert` encoder running each video as a Ray task.

  Args:
    max_in_flight: videos submitted and not yet consumed (back-pressure).
    flow_actors: flow actors when the settings store flow (0: one per GPU, or
      `max_in_flight // 2` on a cluster without GPUs).
    max_retries: retries of a task whose worker died.
    encode_fn: `tfrecords.encode_video` (tests wrap it); called as
      `encode_fn(task, settings)`, or with `spool_dir=` (its keyword) by a
      worker that sees the driver's spool folder (`_encode_task`).

  Returns:
    jobs -> iterator of results in job order; a task that still fails after
    its retries gives ("skip", error), the dead letter. Without stored flow
    the workers on the driver's node spool their JPEGs (`tfrecords.SpooledJpegs`,
    read back by the shard writer).
  """

  def encoder(jobs):
    if not jobs:
      return
    settings = jobs[0][1]
    actors = []
    if settings.flow_preset:
      actors = _flow_actors(flow_actors or _num_gpus() or max(1, max_in_flight // 2),
                            max_retries)
    task_fn = _encode_task.options(max_retries=max_retries, retry_exceptions=False)
    pending = collections.deque()
    submitted = 0
    # The flow actors read the JPEGs from the result (on any node): no spool then.
    # The folder goes after the cancels (a cancelled task may still write there).
    with (contextlib.nullcontext("") if actors else tfrecords.spool_folder()) as spool_dir:
      try:
        for job in jobs:
          ref = task_fn.remote(encode_fn, *job, spool_dir)
          flow_ref = None
          if actors:
            flow_ref = actors[submitted % len(actors)].flow.remote(ref, settings)
          pending.append((ref, flow_ref))
          submitted += 1
          while len(pending) >= max_in_flight:
            yield _collect(*pending.popleft())
        while pending:
          yield _collect(*pending.popleft())
      finally:
        for ref, flow_ref in pending:
          for r in (ref, flow_ref):
            if r is not None:
              ray.cancel(r, force=False)
        for actor in actors:
          ray.kill(actor)

  return encoder


def _collect(ref, flow_ref):
  """The encode result (plus flow) of one video; a failure is its dead letter."""
  try:
    result = ray.get(ref)
  except ray.exceptions.RayError as e:
    return ("skip", f"failed on the cluster: {_error_line(e)}")
  if flow_ref is None or result[0] != "ok":
    return result
  try:
    flow = ray.get(flow_ref)
  except ray.exceptions.RayError as e:
    return ("skip", f"flow failed on the cluster: {_error_line(e)}")
  return tuple(result) + (flow,)


def convert(video_dir: str, split_dir: str, output_dir: str,
            splits: Sequence[int] = hmdb51.SPLITS,
            settings: tfrecords.ConversionSettings = tfrecords.ConversionSettings(),
            num_workers: int = 0, num_shards: int = 0, overwrite: bool = False,
            progress: bool = True, ray_address: str = "", max_in_flight: int = 0,
            flow_actors: int = 0, max_retries: int = DEFAULT_MAX_RETRIES,
            encode_fn: Callable = tfrecords.encode_video,
            plan: Optional[tfrecords.Plan] = None) -> Dict[str, object]:
  """`tfrecords.convert` on Ray: the same data directory, computed on a cluster.

  Args:
    video_dir, split_dir, output_dir, splits, settings, num_shards, overwrite,
      progress: as `tfrecords.convert`.
    num_workers: CPUs of the local Ray instance started when not connected
      and without `ray_address` (0: all); `max_in_flight` defaults to twice
      the cluster's CPUs.
    ray_address: the cluster (`cluster`); empty: local.
    max_in_flight: videos in flight at once (0: 2 x the cluster's CPUs).
    flow_actors: flow actors with `settings.flow_preset` (0: one per GPU, or
      one per CPU without GPUs).
    max_retries: retries of a video whose worker died.
    encode_fn: per-video encoder run in the tasks (tests wrap it; as
      `ray_encoder`'s).
    plan: as `tfrecords.convert` (e.g. `kinetics.build_plan`).

  Returns:
    The summary dict, as `tfrecords.convert` (dead letters in `skipped`).

  Raises:
    As `tfrecords.convert`, and ClusterUnreachableError.
  """
  settings.validate()  # before starting a cluster
  with cluster(ray_address, num_workers):
    in_flight = max_in_flight or 2 * _num_cpus()
    encoder = ray_encoder(in_flight, flow_actors or (_num_gpus() or _num_cpus()),
                          max_retries, encode_fn)
    return tfrecords.convert(video_dir, split_dir, output_dir, splits=splits, settings=settings,
                             num_shards=num_shards, overwrite=overwrite, progress=progress,
                             encoder=encoder, plan=plan)


# ---------------------------------------------------------------------------
# Flow extraction.


def _limit_cpu_threads() -> None:
  """On a CPU actor, TensorFlow's thread pools sized to the actor's CPUs.

  Otherwise each actor's TV-L1 spreads over every core of the node, and N
  actors on N cores fight over them (measured: 2 actors on 2 cores ran at
  0.43x one process). Not on GPU actors, nor under another Keras backend.
  """
  if ray.get_gpu_ids() or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    return
  cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)) or 1
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    tf.config.threading.set_inter_op_parallelism_threads(cpus)
  except RuntimeError:  # TensorFlow already started its pools in this process
    pass


def default_compile_cache() -> str:
  """This node's folder of compiled TV-L1 programs, shared by its flow actors and reruns.

  Node-local on purpose: an XLA:CPU program is compiled for the CPU it was
  compiled on, so a cache on a shared filesystem could hand one node's program
  to another CPU. Named by user and TensorFlow version (an entry of another
  version is not ours to load).
  """
  try:
    version = importlib.metadata.version("tensorflow")
  except importlib.metadata.PackageNotFoundError:
    version = "none"
  return os.path.join(tempfile.gettempdir(), f"tsnet_tf_xla_{os.getuid()}", f"tf-{version}")


def _use_compile_cache(cache_dir: str) -> None:
  """Points this process's XLA compilations (TF and JAX) at `cache_dir`.

  TV-L1 compiles once per frame size, for seconds (5-25 s at 96x72 here,
  against 0.2 s to run a 50-frame video): without a cache every actor pays it
  for every size it meets, which made 2 actors slower than one process on
  short videos. With it, the first actor to compile a size writes it and the
  others (and a rerun after a kill) load it. TensorFlow reads TF_XLA_FLAGS at
  its first XLA compilation, so setting it here, before any, is in time.
  """
  if not cache_dir:
    return
  os.makedirs(cache_dir, exist_ok=True)
  flags = os.environ.get("TF_XLA_FLAGS", "")
  if "tf_xla_persistent_cache_directory" not in flags:  # the user's own cache wins
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={cache_dir}".strip()
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", cache_dir)


class _Extractor:
  """Extracts whole videos (`flow_extraction.extract_video`); an actor keeps XLA's compiled TV-L1."""

  def __init__(self, output_dir: str, options, read_video=None, compile_cache: str = ""):
    _use_compile_cache(compile_cache)
    self._output_dir = output_dir
    # A URI output: each video is extracted into this node-local folder, then uploaded.
    self._stage = tempfile.mkdtemp(prefix="tsnet_tf_flow_") if remote.is_uri(output_dir) else ""
    self._options = options
    self._read_video = read_video
    self._executor = concurrent.futures.ThreadPoolExecutor(max(1, options.num_writers))
    _limit_cpu_threads()

  def node(self) -> str:
    """The node this actor runs on (compiled sizes are shared per node)."""
    return ray.get_runtime_context().get_node_id()

  def run(self, video) -> Tuple:
    """("done", flows, flow seconds), ("failed", reason) or ("fatal", reason)."""
    # TV-L1 loads Keras: only in the flow actors, never in the decode workers.
    from tsnet_tf.data import flow_extraction as extract  # pylint: disable=g-import-not-at-top
    local_path = video.path
    try:
      # A URI input is copied to a local file for the decoder; the error names the URI.
      with remote.local_copy(video.path) as local_path:
        count, seconds = extract.extract_video(
            extract.Video(local_path, video.name), self._stage or self._output_dir,
            self._options, self._executor, self._read_video)
    except extract.OutputError as e:
      return ("fatal", str(e))
    except (ValueError, OSError) as e:
      return ("failed", str(e).replace(local_path, video.path))
    if self._stage:
      folder = os.path.join(self._stage, video.name)
      try:
        remote.upload_folder(folder, self._output_dir, video.name)
      except (OSError, ValueError) as e:
        return ("fatal", f"cannot write {remote.join(self._output_dir, video.name)!r}: {e}")
      finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ("done", count, seconds)


def _probe(path: str, new_short: int) -> Tuple[Optional[Tuple[int, int]], float]:
  """(frame size TV-L1 will see, work estimate) of a video from its header.

  The size is None when unknown (no readable header; a URI); the work is
  frames x decoded pixels (decoding and resizing a 1080p video cost more than
  its small flow), 0 when unknown.
  """
  try:
    with video_lib.VideoReader(path) as reader:
      (height, width), frames = reader.header_size, reader.header_frames
  except (ValueError, OSError):
    return None, 0.0
  if not height or not width:
    return None, 0.0
  # As stored: a video with a 90-degree display matrix gets the wrong key, which
  # costs at most one compilation more.
  return video_lib.short_side_size(height, width, new_short), float(frames * height * width)


class _SizeAffinity:
  """Picks each actor's next video: a frame size compiled once per node, longest first.

  XLA compiles TV-L1 once per frame size. Among the next `lookahead` videos
  (headers read in this process, ~5 ms a video), an actor gets first one
  whose size is compiled on its node (the compile cache has it) or claimed
  by itself; then one of a size nobody compiles yet (it claims it) or of an
  unknown size; else one whose size another actor is compiling (no actor
  ever waits). Within each class the largest (frames x pixels) goes first, so
  that a long video does not start last and hold the job's tail alone.
  """

  def __init__(self, todo: Sequence, new_short: int, lookahead: int = 64):
    self._queue = collections.deque(todo)
    self._new_short = new_short
    self._lookahead = lookahead
    self._probes: Dict[str, Tuple[Optional[Tuple[int, int]], float]] = {}
    self._warm = set()  # (node, size) compiled
    self._claims: Dict[Tuple[str, Tuple[int, int]], object] = {}  # (node, size) -> actor key

  def __bool__(self) -> bool:
    return bool(self._queue)

  def _probe(self, video):
    if video.name not in self._probes:
      self._probes[video.name] = _probe(video.path, self._new_short)
    return self._probes[video.name]

  def pick(self, actor_key, node: str):
    """The next video for the actor `actor_key` on `node`."""
    best = None
    for i, video in enumerate(itertools.islice(self._queue, self._lookahead)):
      size, work = self._probe(video)
      claim = self._claims.get((node, size))
      if size is not None and ((node, size) in self._warm or claim == actor_key):
        rank = 0
      elif claim is None:
        rank = 1
      else:
        rank = 2
      if best is None or (rank, -work, i) < best:
        best = (rank, -work, i)
    video = self._queue[best[2]]
    del self._queue[best[2]]  # near the front: cheap in a deque
    size = self._probe(video)[0]
    if best[0] == 1 and size is not None:
      self._claims[(node, size)] = actor_key
    return video

  def finished(self, video, node: str, compiled: bool = True) -> None:
    """`video` ended on `node`; when `compiled`, its size is compiled there (and in its cache).

    Its header probe is dropped: the probes held are those of the lookahead and
    of the videos running, not one per video of the job.
    """
    size = self._probes.pop(video.name, (None, 0.0))[0]
    if compiled and size is not None:
      self._warm.add((node, size))


def extract(videos: Sequence, output_dir: str, options, num_workers: int = 0,
            progress: bool = True, log_fn: Callable[[str], None] = print,
            ray_address: str = "", max_retries: int = DEFAULT_MAX_RETRIES,
            read_video=None, compile_cache: Optional[str] = None,
            timings: Optional[Dict[str, float]] = None):
  """`flow_extraction.extract_all` on Ray: the same files, one video per actor call.

  Args:
    videos: `flow_extraction.find_videos`'s list, or `Video`s whose paths are
      URIs (`remote.find_videos`): each is copied to a local file first.
    output_dir: root of the outputs, or a URI (s3://, gs://, file://, ...):
      each video's folder is then uploaded when complete and marked in
      `.complete/` (`remote`); a rerun redoes the unmarked ones.
    options: `flow_extraction.Options`.
    num_workers: extraction actors (0: one per GPU when the cluster has GPUs,
      else one per CPU); also the CPUs of a local instance.
    progress: a tqdm bar counting videos (videos/s, ETA) with flows/s.
    log_fn: where skipped videos are named.
    ray_address: the cluster (`cluster`); empty: local.
    max_retries: retries of a video whose actor died.
    read_video: decoder override (`flow_extraction.extract_video`; tests wrap it).
    compile_cache: folder (on each node) of the actors' compiled TV-L1
      programs (`_use_compile_cache`); None: `default_compile_cache()`, "": none.
    timings: if given, gets "actors_ready_s": seconds from the call until
      every actor had started (its imports done), for benchmarks.

  Returns:
    `flow_extraction.Summary` (also written to `output_dir/extract_summary.json`).

  Raises:
    ValueError: bad options. flow_extraction.OutputError: outputs cannot be written.
    ClusterUnreachableError.
  """
  from tsnet_tf.data import flow_extraction as extract_lib  # pylint: disable=g-import-not-at-top
  options.check()
  summary = extract_lib.Summary()
  start = time.perf_counter()
  if remote.is_uri(output_dir):
    complete = set(remote.complete_names(output_dir))
    todo = [v for v in videos if v.name not in complete]
    summary.skipped.extend(v.name for v in videos if v.name in complete)
  else:
    os.makedirs(output_dir, exist_ok=True)
    todo = extract_lib.pending_videos(videos, output_dir, summary)
  with cluster(ray_address, num_workers):
    gpus = _num_gpus()
    count = num_workers or gpus or _num_cpus()
    resources = dict(num_gpus=1, num_cpus=1) if gpus else dict(num_cpus=1)
    if gpus:
      count = min(count, gpus)
    cls = ray.remote(max_restarts=-1, max_task_retries=max_retries,
                     scheduling_strategy="SPREAD", **resources)(_Extractor)
    if compile_cache is None:
      compile_cache = default_compile_cache()
    actors = [cls.remote(output_dir, options, read_video, compile_cache)
              for _ in range(max(1, min(count, len(todo))))] if todo else []
    # Also waits for the actors to start: the bar's rate then starts with the work.
    nodes = ray.get([actor.node.remote() for actor in actors])
    if timings is not None:
      timings["actors_ready_s"] = time.perf_counter() - start
    bar = None
    if progress:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      bar = tqdm(total=len(todo), unit="video", desc="extract_flow (ray)", dynamic_ncols=True)
    try:
      _run_pool(actors, nodes, _SizeAffinity(todo, options.new_short), summary, bar, log_fn,
                start)
    finally:
      if bar is not None:
        bar.close()
      for actor in actors:
        ray.kill(actor)
  summary.done.sort()
  summary.seconds = time.perf_counter() - start
  if remote.is_uri(output_dir):
    with tempfile.TemporaryDirectory() as folder:
      extract_lib._write_summary(folder, summary, options)  # pylint: disable=protected-access
      remote.upload_file(os.path.join(folder, extract_lib.SUMMARY_FILE), output_dir,
                         extract_lib.SUMMARY_FILE)
  else:
    extract_lib._write_summary(output_dir, summary, options)  # pylint: disable=protected-access
  return summary


def _run_pool(actors, nodes, queue: _SizeAffinity, summary, bar, log_fn, start) -> None:
  """Feeds `queue`'s videos to `actors` (on `nodes`), two calls queued per actor at most
  (back-pressure)."""
  running: Dict[object, Tuple[object, object]] = {}  # ref -> (actor, video)
  load = {id(a): 0 for a in actors}
  node_of = {id(a): n for a, n in zip(actors, nodes)}

  def feed(actor):
    while queue and load[id(actor)] < 2:
      video = queue.pick(id(actor), node_of[id(actor)])
      running[actor.run.remote(video)] = (actor, video)
      load[id(actor)] += 1

  for actor in actors:
    feed(actor)
  while running:
    ready, _ = ray.wait(list(running), num_returns=1)
    ref = ready[0]
    actor, video = running.pop(ref)
    load[id(actor)] -= 1
    try:
      result = ray.get(ref)
    except ray.exceptions.RayError as e:
      result = ("failed", f"failed on the cluster: {_error_line(e)}")
    if result[0] == "fatal":
      for r in running:
        ray.cancel(r)
      from tsnet_tf.data import flow_extraction as extract_lib  # pylint: disable=g-import-not-at-top
      raise extract_lib.OutputError(result[1])
    queue.finished(video, node_of[id(actor)], compiled=result[0] != "failed")
    if result[0] == "failed":
      summary.failed[video.name] = result[1]
      message = f"skipped {video.path}: {result[1]}"
      if bar is not None:
        bar.write(message)
      else:
        log_fn(message)
    else:
      summary.done.append(video.name)
      summary.num_flows += result[1]
      summary.flow_seconds += result[2]
    if bar is not None:
      bar.update(1)
      postfix = {"flows/s": f"{summary.num_flows / max(1e-9, time.perf_counter() - start):.1f}"}
      if summary.failed:
        postfix["failed"] = len(summary.failed)
      bar.set_postfix(postfix)
    feed(actor)
