"""Sliding-window action recognition over long videos and live streams.

  classifier = load_classifier(model="student.tflite")      # or server=, model_name=
  source = streams.open_source("long.mp4")     # or http(s)://, rtsp://, /dev/video0, "-" (stdin)
  result = recognize(classifier, source, output_dir="out", annotate=True, timeline=True)
  result.segments   # [Segment(label, start, end, score), ...]

Windows (`tsnet_tf.data.streams`). The clip is the artifact's own (`ClipSpec`:
T frames `video_stride` decoded frames apart, in the stored frame format it was
trained on); nothing here re-derives it. A window of decoded frames
`[s, s + span)` is `[s / fps, (s + span) / fps)` seconds. Windows start every
`hop` frames (default half the span).

Threads. A decoding thread reads frames, keeps the last `span` stored-format
frames in a ring buffer (memory does not grow with the stream) and puts each
window's clip on a bounded queue; the calling thread classifies them. From a
file the decoder waits for the classifier (every window is classified); from a
live source (a camera, rtsp, stdin, or a file read at its frame rate with
`realtime`) a full queue drops its oldest window (counted in
`Result.dropped`): labels stay current instead of lagging further behind.

Latency. A window's `latency_ms` is the time from the arrival of its last
frame (decoded, or released at its time for `realtime`) to its label: what
the recognition adds beyond the clip's own length.

Smoothing rule (the segment list): `tsnet_tf.export.segments`.

Outputs under `output_dir` (any may be absent on request):
  windows.jsonl   one JSON object per classified window, flushed per line:
                  {"window", "start", "end", "start_frame", "end_frame",
                   "top": [{"label", "score"}, ...], "latency_ms"};
  segments.json   {"source", "fps", "frames", "windows", "dropped", "end",
                   "smoothing": {...}, "segments": [{"label", "start", "end",
                   "score"}]}, written when the run ends (Ctrl-C included);
  annotated.mp4   the input with the label and score drawn on every frame
                  (each frame shows the first window that ends at or after it),
                  same frame count;
  timeline.png    top class over time (windows) and the segments.
"""

import collections
import dataclasses
import json
import os
import queue
import sys
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from tsnet_tf.data import clip_spec as clip_spec_lib
from tsnet_tf.data import streams
from tsnet_tf.data import video as video_lib
from tsnet_tf.export import annotate as annotate_lib
from tsnet_tf.export import predict as predict_lib
from tsnet_tf.export import segments as segments_lib
from tsnet_tf.export import serving
from tsnet_tf.utils import io as io_utils

WINDOWS_FILE = "windows.jsonl"
SEGMENTS_FILE = "segments.json"
ANNOTATED_FILE = "annotated.mp4"
TIMELINE_FILE = "timeline.png"
MAX_LATENCIES = 100_000  # latencies kept for the summary (an endless stream: the last)


# ----------------------------------------------------------------------------
# classifiers: uint8 stored-format clips -> probabilities


class Classifier:
  """Stored-format clips -> class probabilities, for one model.

  Attributes:
    spec: the clip the model expects (`ClipSpec`).
    labels: class names in label order.
    kind: what runs it (`saved_model`, `keras`, `tflite`, `server`).
  """
  spec: clip_spec_lib.ClipSpec
  labels: List[str]
  kind: str

  def classify(self, clips: np.ndarray) -> np.ndarray:
    """uint8 `[B, T, h, w, 3]` stored-format clips -> float32 probabilities `[B, K]`."""
    raise NotImplementedError


class PredictorClassifier(Classifier):
  """A local artifact (`predict.load_predictor`): `ClipSpec.preprocess`, then the model."""

  def __init__(self, predictor: predict_lib.Predictor):
    self.predictor = predictor
    self.spec = predictor.spec
    self.labels = list(predictor.labels)
    self.kind = predictor.kind

  def classify(self, clips):
    return np.asarray(self.predictor.predict_clips(np.asarray(self.spec.preprocess(clips))))


class ServerClassifier(Classifier):
  """A model on TF-Serving (gRPC, or REST with `rest`), spec and labels from its metadata.

  `serving_default` samples its own centre clip from the frames it is sent, so
  each clip is sent as a run of `span` frames (each clip frame repeated
  `video_stride` times) whose centre clip is that clip.
  """

  def __init__(self, server: str, model_name: str, rest: bool = False,
               timeout: float = 60.0):
    self.kind = "server"
    self._server, self._name, self._rest, self._timeout = server, model_name, rest, timeout
    meta = serving.fetch_metadata(server, model_name, rest=rest, timeout=timeout)
    self.labels = list(meta["labels"])
    self.spec = meta["clip_spec"] or clip_spec_lib.ClipSpec(
        num_frames=int(meta["num_frames"]), crop_size=int(meta["crop_size"]),
        frame_stride=int(meta["frame_stride"]))

  def frames_for(self, clips: np.ndarray) -> np.ndarray:
    """uint8 `[B, span, h, w, 3]` whose served centre clips are `clips`."""
    return np.repeat(clips, self.spec.video_stride, axis=1)[:, :self.spec.video_span]

  def classify(self, clips):
    frames = serving.check_frames(self.frames_for(np.asarray(clips, np.uint8)))
    call = serving.predict_rest if self._rest else serving.predict_grpc
    probabilities, _ = call(self._server, self._name, frames, timeout=self._timeout)
    return probabilities


def load_classifier(model: Optional[str] = None, server: Optional[str] = None,
                    model_name: Optional[str] = None, rest: bool = False,
                    labels_path: Optional[str] = None, num_threads: Optional[int] = None,
                    frame_stride: Optional[int] = None) -> Classifier:
  """A `Classifier` for an artifact (`predict.load_predictor`) or a served model.

  Raises:
    ValueError: neither or both of `model` and `server`, or no `model_name`.
  """
  if bool(model) == bool(server):
    raise ValueError("give either --model or --server")
  if server:
    if not model_name:
      raise ValueError("--server needs --model_name")
    classifier = ServerClassifier(server, model_name, rest)
    if labels_path:
      classifier.labels = predict_lib.read_labels_flag(labels_path)
    if frame_stride:
      classifier.spec = classifier.spec.replace(frame_stride=int(frame_stride))
    return classifier
  return PredictorClassifier(predict_lib.load_predictor(
      model, labels_path, num_threads=num_threads, frame_stride=frame_stride))


@dataclasses.dataclass
class Window:
  """One classified window."""
  index: int
  start_frame: int
  end_frame: int
  start: float
  end: float
  top: List[Tuple[str, float]]
  probabilities: np.ndarray
  latency_ms: float

  def to_dict(self) -> Dict:
    return {"window": self.index, "start": round(self.start, 4), "end": round(self.end, 4),
            "start_frame": self.start_frame, "end_frame": self.end_frame,
            "top": [{"label": n, "score": round(p, 4)} for n, p in self.top],
            "latency_ms": round(self.latency_ms, 2)}

  def line(self) -> str:
    tops = "  ".join(f"{n} {p:.2f}" for n, p in self.top)
    return f"[{self.start:8.2f}s - {self.end:8.2f}s] {tops}"


@dataclasses.dataclass
class Result:
  """What a run did.

  Attributes:
    frames: frames decoded.
    windows: windows classified.
    dropped: windows dropped (live source, classifier too slow).
    end: how it ended, one line (`end of stream`, `stalled: ...`,
      `stream ended early: ...`, `interrupted`).
    segments: the smoothed segment list.
    latencies_ms: the latency of each classified window (the last `MAX_LATENCIES`).
    elapsed_s: wall seconds from the first frame to the end.
    fps: the source's frame rate.
    outputs: {kind: path} of the files written.
  """
  frames: int
  windows: int
  dropped: int
  end: str
  segments: List[segments_lib.Segment]
  latencies_ms: List[float]
  elapsed_s: float
  fps: float
  outputs: Dict[str, str]
  interrupted: bool = False

  @property
  def realtime_factor(self) -> float:
    """Video seconds processed per wall second."""
    return (self.frames / self.fps) / self.elapsed_s if self.elapsed_s and self.fps else 0.0

  def summary(self, source: str) -> str:
    line = (f"{source}: {self.end} after {self.frames} frames ({self.frames / self.fps:.1f} s "
            f"of video in {self.elapsed_s:.1f} s, {self.realtime_factor:.1f}x real time): "
            f"{self.windows} windows, {self.dropped} dropped, {len(self.segments)} segments")
    if self.latencies_ms:
      line += (f", latency median {np.median(self.latencies_ms):.0f} ms, "
               f"p95 {np.percentile(self.latencies_ms, 95):.0f} ms")
    return line


class _Decoder(threading.Thread):
  """Reads the source, slices windows, puts them on the queue (drops when live)."""

  def __init__(self, source: streams.FrameSource, slicer: streams.WindowSlicer,
               out: "queue.Queue", annotator: Optional[annotate_lib.AnnotatedWriter]):
    super().__init__(name="recognize-decoder", daemon=True)
    self.source, self.slicer, self.out, self.annotator = source, slicer, out, annotator
    self.stop = threading.Event()
    self.dropped = 0
    self.error: Optional[BaseException] = None
    self.last_frame_time = time.monotonic()
    self.first_frame_time: Optional[float] = None
    self.done = threading.Event()

  def _put(self, clip: streams.Clip) -> None:
    if not self.source.live:
      while not self.stop.is_set():
        try:
          self.out.put(clip, timeout=0.1)
          self.last_frame_time = time.monotonic()  # waiting on the classifier is no stall
          return
        except queue.Full:
          continue
      return
    while True:
      try:
        self.out.put_nowait(clip)
        return
      except queue.Full:
        try:
          self.out.get_nowait()  # the oldest window: labels stay current
          self.dropped += 1
        except queue.Empty:
          pass

  def run(self):
    try:
      for frame in self.source.frames():
        now = time.monotonic()
        if self.first_frame_time is None:
          self.first_frame_time = now
        self.last_frame_time = now
        if self.stop.is_set():
          break
        if self.annotator is not None:
          self.annotator.add(self.slicer.num_frames, frame)
        for clip in self.slicer.push(frame, now):
          self._put(clip)
      if not self.stop.is_set():
        for clip in self.slicer.finish():
          self._put(clip)
    except BaseException as e:  # pylint: disable=broad-except
      self.error = e
    finally:
      self.done.set()
      if self.stop.is_set():
        self._put_end()
      else:  # the end of a stream drops no window, live or not
        while not self.stop.is_set():
          try:
            self.out.put(None, timeout=0.1)
            break
          except queue.Full:
            continue

  def _put_end(self):
    while True:
      try:
        self.out.put_nowait(None)
        return
      except queue.Full:
        try:
          self.out.get_nowait()
          self.dropped += 1
        except queue.Empty:
          pass


class _Status:
  """tqdm bar for files, a one-line status for live sources (stderr)."""

  def __init__(self, source: streams.FrameSource, slicer: streams.WindowSlicer,
               enabled: bool):
    self.enabled = enabled
    self._bar = None
    self._last = 0.0
    self._live = source.live or not source.expected_frames
    if enabled and not self._live:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      total = max(1, (source.expected_frames - slicer.span) // slicer.hop + 2)
      self._bar = tqdm(total=total, unit="win", file=sys.stderr, dynamic_ncols=True,
                       leave=False)

  def write(self, text: str, stream) -> None:
    if self._bar is not None and stream is sys.stdout:
      self._bar.write(text, file=stream)
    else:
      print(text, file=stream, flush=True)

  def update(self, window: Window, frames: int, dropped: int, elapsed: float, fps: float):
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.update(1)
      return
    now = time.monotonic()
    tty = sys.stderr.isatty()
    if now - self._last < (0.5 if tty else 10.0):  # a log file gets a line every 10 s
      return
    self._last = now
    top = f"{window.top[0][0]} {window.top[0][1]:.2f}" if window.top else ""
    status = (f"{frames / fps if fps else 0:7.1f}s  {frames} frames  {window.index + 1} "
              f"windows  {dropped} dropped  latency {window.latency_ms:5.0f} ms  {top}")
    sys.stderr.write(f"\r{status}\x1b[K" if tty else f"{status}\n")
    sys.stderr.flush()

  def close(self):
    if self._bar is not None:
      self._bar.close()
    elif self.enabled and self._last and sys.stderr.isatty():
      sys.stderr.write("\n")


def recognize(classifier: Classifier, source: streams.FrameSource, output_dir: Optional[str] = None,
              hop: Optional[int] = None, top_k: int = 5, smooth: int = 3,
              min_segment: Optional[float] = None, annotate: bool = False,
              timeline: bool = False, queue_size: int = 2, stall_timeout: float = 10.0,
              print_windows: bool = True, progress: bool = True,
              on_window: Optional[Callable[[Window], None]] = None) -> Result:
  """Slides the classifier's clip over the source; see the module doc.

  Args:
    classifier: a `Classifier` (`load_classifier`).
    source: a `FrameSource` (`open_source`); closed when done.
    output_dir: where windows.jsonl, segments.json (and annotated.mp4,
      timeline.png on request) go; None writes nothing.
    hop: decoded frames between window starts (default: half a clip).
    top_k: classes per window.
    smooth: windows in the moving average of the smoothing rule.
    min_segment: shortest segment kept, seconds (default: one clip's span).
    annotate, timeline: also write annotated.mp4 / timeline.png.
    queue_size: windows waiting for the classifier (then a live source drops).
    stall_timeout: seconds without a frame before the stream counts as stalled.
    print_windows: print each window's line on stdout.
    progress: tqdm bar (files) or status line (streams) on stderr.
    on_window: called with each classified `Window`.

  Returns:
    A `Result`. Ctrl-C during the run ends it with `end="interrupted"` and
    `interrupted=True`, outputs closed and complete.

  Raises:
    video.VideoDecodeError: the source yields no frame.
  """
  if top_k < 1:
    raise ValueError(f"--top_k must be >= 1, got {top_k}")
  if hop is not None and hop < 1:
    raise ValueError(f"--hop must be >= 1 frame, got {hop}")
  spec = classifier.spec
  fps = source.fps
  slicer = streams.WindowSlicer(spec, hop)
  min_segment = slicer.span / fps if min_segment is None else float(min_segment)
  builder = segments_lib.SegmentBuilder(classifier.labels, smooth, min_segment)
  outputs: Dict[str, str] = {}
  jsonl = annotator = None
  if output_dir:
    os.makedirs(output_dir, exist_ok=True)
    outputs["windows"] = os.path.join(output_dir, WINDOWS_FILE)
    # Written in place, line by line, so another program can follow it live.
    jsonl = open(outputs["windows"], "w", encoding="utf-8")  # pylint: disable=consider-using-with
    if annotate:
      outputs["annotated"] = os.path.join(output_dir, ANNOTATED_FILE)
      annotator = annotate_lib.AnnotatedWriter(outputs["annotated"], fps,
                                  max_pending=slicer.span + (queue_size + 2) * slicer.hop)
  windows_q: "queue.Queue" = queue.Queue(maxsize=max(1, queue_size))
  decoder = _Decoder(source, slicer, windows_q, annotator)
  status = _Status(source, slicer, progress)
  latencies: Deque[float] = collections.deque(maxlen=MAX_LATENCIES)  # bounded memory
  num_windows = 0
  end = "end of stream"
  interrupted = False
  started = time.monotonic()
  decoder.start()
  try:
    while True:
      try:
        clip = windows_q.get(timeout=0.2)
      except queue.Empty:
        idle = time.monotonic() - decoder.last_frame_time
        if not decoder.done.is_set() and idle > stall_timeout:
          end = f"stalled: no frame for {idle:.0f} s"
          break
        continue
      if clip is None:
        break
      probs = np.asarray(classifier.classify(clip.frames[None]))[0]
      window = Window(clip.index, clip.start_frame, clip.end_frame, clip.start_frame / fps,
                      clip.end_frame / fps, predict_lib.top_k(probs, classifier.labels, top_k),
                      probs, (time.monotonic() - clip.arrival) * 1000.0)
      num_windows += 1
      latencies.append(window.latency_ms)
      builder.add(window.start, window.end, probs)
      if jsonl is not None:
        jsonl.write(json.dumps(window.to_dict()) + "\n")
        jsonl.flush()
      if annotator is not None:
        annotator.label_until(window.end_frame, f"{window.top[0][0]} {window.top[0][1]:.2f}")
      if print_windows:
        status.write(window.line(), sys.stdout)
      status.update(window, slicer.num_frames, decoder.dropped, time.monotonic() - started, fps)
      if on_window is not None:
        on_window(window)
  except KeyboardInterrupt:
    end, interrupted = "interrupted", True
  except BaseException:  # the classifier failed (e.g. a server error): close what is open
    decoder.stop.set()
    _close_outputs(jsonl, annotator)
    raise
  finally:
    decoder.stop.set()
    status.close()
  decoder.join(timeout=0.1 if end.startswith("stalled") else 2.0)  # a stalled read never returns
  if decoder.error is not None and not interrupted:
    error = decoder.error
    if isinstance(error, video_lib.VideoDecodeError) and not slicer.num_frames:
      _close_outputs(jsonl, annotator)
      raise error
    end = f"stream failed: {error}"
  elif end == "end of stream" and source.end_error:
    # the reader's own timeout fired before stall_timeout did: the same stall
    end = (f"stalled: {source.end_error}" if source.stalled
           else f"stream ended early ({source.end_error})")
  elapsed = time.monotonic() - (decoder.first_frame_time or started)
  if decoder.done.is_set():  # else a stalled read still holds it (a daemon thread)
    source.close()
  segments = builder.finish()
  result = Result(frames=slicer.num_frames, windows=num_windows, dropped=decoder.dropped,
                  end=end, segments=segments, latencies_ms=list(latencies), elapsed_s=elapsed,
                  fps=fps, outputs=outputs, interrupted=interrupted)
  _close_outputs(jsonl, annotator)
  if output_dir:
    outputs["segments"] = os.path.join(output_dir, SEGMENTS_FILE)
    with io_utils.atomic_write(outputs["segments"]) as tmp, open(tmp, "w",
                                                                encoding="utf-8") as f:
      json.dump({"source": source.name, "fps": fps, "frames": result.frames,
                 "windows": num_windows, "dropped": result.dropped, "end": end,
                 "clip": spec.to_dict(), "hop_frames": slicer.hop,
                 "smoothing": {"moving_average_windows": builder.smooth,
                               "min_segment_s": round(min_segment, 4)},
                 "segments": [s.to_dict() for s in segments]}, f, indent=1)
    if timeline:
      outputs["timeline"] = os.path.join(output_dir, TIMELINE_FILE)
      annotate_lib.write_timeline(outputs["timeline"], outputs["windows"], classifier.labels,
                                  segments)
  if annotator is not None and not annotator.num_written:
    outputs.pop("annotated", None)
  return result


def _close_outputs(jsonl, annotator) -> None:
  if jsonl is not None and not jsonl.closed:
    jsonl.close()
  if annotator is not None:
    annotator.close()
