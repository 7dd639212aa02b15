"""Evaluation: clip- and video-level accuracy, per-class accuracy, confusion matrix.

Each test video gives K clips spread over its length (centre crops); the
clip-level accuracy scores every clip on its own, the video-level accuracy
scores the mean of the K clips' softmax per video (the literature's two
numbers). Several model directories can be fused at evaluation, per clip,
by a `tsnet_tf.models.LateFusion` rule (two-stream late fusion): `mean` of
their softmax (the classic rule) or `geometric` (normalised product).

Writes `model_dir/eval.json` (top-level `clip_accuracy` and `video_accuracy`,
fractions in [0, 1]) and `model_dir/confusion_matrix.png` (video level).
"""

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tsnet_tf import config as config_lib
from tsnet_tf.data import clip_spec
from tsnet_tf.data import pipeline
from tsnet_tf.layers import LateFusion
from tsnet_tf.training import plots
from tsnet_tf.training import run_dir
from tsnet_tf.utils import errors
from tsnet_tf.utils import tf_graph
from tsnet_tf.utils.io import atomic_write

EVAL_FILE = "eval.json"
CONFUSION_FILE = "confusion_matrix.png"


class EvaluationError(errors.InputError, ValueError):
  """Bad arguments: a missing model or data directory, mismatched models."""


def clip_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of clips whose arg-max class is the label.

  Args:
    probs: float `[N, K]` class probabilities (or any scores).
    labels: int `[N]`.
  """
  if len(labels) == 0:
    raise EvaluationError("no clips to evaluate")
  return float(np.mean(np.argmax(probs, axis=-1) == labels))


def video_level(probs: np.ndarray, labels: np.ndarray,
                video_index: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Averages clip probabilities per video.

  Args:
    probs: float `[N, K]` per-clip probabilities.
    labels: int `[N]` per-clip labels (constant within a video).
    video_index: int `[N]` video id of each clip.

  Returns:
    `(video_probs [V, K], video_labels [V], video_ids [V])`, videos sorted by id.

  Raises:
    EvaluationError: a video's clips disagree on the label.
  """
  ids, inverse = np.unique(video_index, return_inverse=True)
  sums = np.zeros((len(ids), probs.shape[-1]), np.float64)
  np.add.at(sums, inverse, probs)
  counts = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
  video_labels = np.full(len(ids), -1, np.int64)
  video_labels[inverse] = labels
  if np.any(video_labels[inverse] != labels):
    raise EvaluationError("clips of one video have different labels")
  return sums / counts[:, None], video_labels, ids


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int) -> np.ndarray:
  """int `[K, K]`: `m[i, j]` = examples of class i predicted as j."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
  return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
  """Recall per class from a confusion matrix; NaN for a class with no example."""
  totals = matrix.sum(axis=1).astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


def summarize(probs: np.ndarray, labels: np.ndarray, video_index: np.ndarray,
              class_names: Sequence[str]) -> Dict[str, object]:
  """All metrics from per-clip probabilities.

  Returns:
    dict with `clip_accuracy`, `video_accuracy` (fractions), `num_clips`,
    `num_videos`, `per_class_accuracy` ({name: fraction or None}, video level),
    `confusion_matrix` (video level, list of lists), `labels`.
  """
  probs = np.asarray(probs, np.float64)
  labels = np.asarray(labels, np.int64)
  video_probs, video_labels, _ = video_level(probs, labels, np.asarray(video_index))
  video_pred = np.argmax(video_probs, axis=-1)
  matrix = confusion_matrix(video_labels, video_pred, len(class_names))
  per_class = per_class_accuracy(matrix)
  return {
      "clip_accuracy": clip_accuracy(probs, labels),
      "video_accuracy": float(np.mean(video_pred == video_labels)),
      "num_clips": int(len(labels)),
      "num_videos": int(len(video_labels)),
      "per_class_accuracy": {
          name: (None if math.isnan(a) else float(a)) for name, a in zip(class_names, per_class)
      },
      "confusion_matrix": matrix.tolist(),
      "labels": list(class_names),
  }


def _load_model(model_dir: str, checkpoint: str):
  try:
    return run_dir.load_classifier(model_dir, checkpoint)
  except FileNotFoundError as e:
    raise EvaluationError(str(e)) from e


def predict_clips(models, dataset, total_batches: Optional[int] = None,
                  progress: bool = True,
                  fusion: str = "mean") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Runs every model on every clip; fuses their softmax per clip (`LateFusion`).

  Args:
    models: classifiers `[B, T, S, S, 3]` -> logits `[B, K]`.
    dataset: yields `(clips, labels, video_index)`.
    total_batches: for the progress bar.
    progress: show a tqdm bar.
    fusion: `LateFusion` mode when there are several models (`mean` or
      `geometric`); ignored for one model.

  Returns:
    `(probs float32 [N, K], labels int32 [N], video_index int32 [N])`.
  """
  # Several models: the two-stream model's fusion layer. Built even for one
  # model so a bad mode fails the same way whatever is fused.
  fuse = LateFusion(mode=fusion, name="late_fusion")

  # Without Grappler's arithmetic optimizer: with in-graph `accurate` TV-L1 at the
  # paper's 25x224x224 clips its rewrite breaks the TV-L1 loops on the second batch
  # (AlreadyExistsError ... AddOpsRewrite ... tmp_var; tsnet_tf/utils/tf_graph.py).
  @tf_graph.without_add_ops_rewrite
  @tf.function(reduce_retracing=True)
  def fused_softmax(clips):
    logits = [tf.cast(m(clips, training=False), tf.float32) for m in models]
    return tf.nn.softmax(fuse(logits) if len(logits) > 1 else logits[0])

  probs, labels, videos = [], [], []
  for clips, y, v in tqdm(dataset, total=total_batches, unit="batch", desc="evaluate",
                          disable=not progress):
    probs.append(fused_softmax(clips).numpy())
    labels.append(y.numpy())
    videos.append(v.numpy())
  if not probs:
    raise EvaluationError("the evaluation subset is empty")
  return np.concatenate(probs), np.concatenate(labels), np.concatenate(videos)


def evaluate(model_dir: str, data_dir: str, split: int = 1,
             num_clips: Optional[int] = None, subset: str = "test",
             batch_size: int = 8, checkpoint: str = "model.keras",
             fuse_dirs: Sequence[str] = (), output_dir: Optional[str] = None,
             progress: bool = True, fusion: str = "mean") -> Dict[str, object]:
  """Evaluates `model_dir/<checkpoint>` (optionally fused with others) on a subset.

  The clips (length, stride, crop size) are the ones the model's clip contract
  names (`clip_spec`; runs saved before it: the model's input shape and the
  run's `data.frame_stride`), the class names come from `data_dir/labels.txt`.

  Args:
    model_dir: a training output directory.
    data_dir: output of tools/prepare_hmdb51.py.
    split: official split.
    num_clips: K clips per video; None = the model's config (eval.num_clips), else 10.
    subset: `test` or `train`.
    batch_size: clips per batch.
    checkpoint: `model.keras` (final) or `best.keras`.
    fuse_dirs: more model dirs whose softmax is fused with this one's
      (late fusion, e.g. an rgb and a flow model).
    output_dir: where eval.json and confusion_matrix.png go (default `model_dir`).
    progress: show a progress bar.
    fusion: the late-fusion rule with `fuse_dirs`, one of
      `tsnet_tf.models.FUSION_MODES`: `mean` (average of the softmax, the
      classic rule) or `geometric` (normalised product of the softmax).

  Returns:
    The eval.json dict (see `summarize`, plus `split`, `subset`,
    `clips_per_video`, `models`, and `fusion` when several models are fused).

  Raises:
    EvaluationError: missing model or data, mismatched inputs or classes, an
      unknown fusion rule.
  """
  if fusion not in config_lib.FUSION_MODES:
    raise EvaluationError(f"unknown fusion rule {fusion!r}; expected one of: "
                          f"{', '.join(config_lib.FUSION_MODES)}")
  if not os.path.isdir(data_dir or ""):
    raise EvaluationError(f"--data_dir {data_dir!r} is not a directory")
  try:
    class_names = pipeline.load_labels(data_dir)
    num_videos = pipeline.count_videos(data_dir, split, subset)
  except (FileNotFoundError, ValueError, KeyError) as e:
    raise EvaluationError(f"--data_dir {data_dir!r}: {e}") from e
  if num_videos == 0:
    raise EvaluationError(f"--data_dir {data_dir!r} has no {subset} videos in split {split}")
  dirs = [model_dir] + list(fuse_dirs)
  for d in dirs:
    if not os.path.isdir(d or ""):
      raise EvaluationError(f"model directory {d!r} does not exist")
  models = [_load_model(d, checkpoint) for d in dirs]
  shape = tuple(models[0].input_shape[1:])
  for d, m in zip(dirs, models):
    if tuple(m.input_shape[1:]) != shape:
      raise EvaluationError(
          f"{d!r} takes clips {tuple(m.input_shape[1:])}, {dirs[0]!r} takes {shape}")
    if m.output_shape[-1] != len(class_names):
      raise EvaluationError(
          f"{d!r} predicts {m.output_shape[-1]} classes; {data_dir!r} has {len(class_names)}")
  run_config = run_dir.load_run_config(model_dir)
  if num_clips is None:
    num_clips = run_config.eval.num_clips if run_config is not None else 10
  # The clip each model expects comes from the model itself (its clip contract).
  contracts = {d: run_dir.clip_contract(d, m) for d, m in zip(dirs, models)}
  for d in dirs:
    try:
      run_dir.check_classes(d, "--model_dir" if d == model_dir else "--fuse_with",
                            class_names, labels_model=contracts[d][1])
    except run_dir.RunDirError as e:
      raise EvaluationError(str(e)) from e
  specs = {d: c[0] for d, c in contracts.items()}
  spec = specs[model_dir]
  if len(set(specs.values())) > 1:
    raise EvaluationError("models expect different clips: " + "; ".join(
        f"{d}: {s.describe()}" for d, s in specs.items()))
  clip_spec.warn_if_stored_differently(spec, data_dir)
  dataset = pipeline.make_dataset(data_dir, split=split, subset=subset, training=False,
                                  num_frames=spec.num_frames, crop_size=spec.crop_size,
                                  frame_stride=spec.frame_stride,
                                  batch_size=batch_size, num_clips=num_clips,
                                  return_video_index=True)
  total = math.ceil(num_videos * num_clips / batch_size)
  probs, labels, videos = predict_clips(models, dataset, total, progress, fusion=fusion)
  result = summarize(probs, labels, videos, class_names)
  result.update(split=int(split), subset=subset, clips_per_video=int(num_clips),
                checkpoint=checkpoint, models=[os.path.abspath(d) for d in dirs],
                clip_spec=spec.to_dict())
  if len(models) > 1:
    result["fusion"] = fusion
  out = output_dir or model_dir
  os.makedirs(out, exist_ok=True)
  with atomic_write(os.path.join(out, EVAL_FILE)) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
  title = (f"split {split} {subset}: video acc {result['video_accuracy']:.3f}, "
           f"clip acc {result['clip_accuracy']:.3f}")
  plots.plot_confusion_matrix(np.asarray(result["confusion_matrix"]), class_names,
                              os.path.join(out, CONFUSION_FILE), title=title)
  return result
