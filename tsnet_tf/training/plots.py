"""PNG figures: training curves and confusion matrices (matplotlib, Agg backend)."""

from typing import Mapping, Optional, Sequence

import numpy as np

from tsnet_tf.utils.io import atomic_write


def _pyplot():
  # Agg: no display on training machines; set per figure, not at import time,
  # so importing this module never changes a user's interactive backend.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_history(history: Mapping[str, Sequence[float]], path: str,
                 title: Optional[str] = None) -> None:
  """Writes loss / accuracy / learning-rate curves per epoch as a PNG.

  Args:
    history: `{"epoch": [...], "loss": [...], "val_loss": [...], ...}` as in
      `history.json`; metrics without a value for an epoch are skipped.
    path: output PNG, written atomically.
    title: figure title.
  """
  plt = _pyplot()
  epochs = [e + 1 for e in history.get("epoch", range(len(history.get("loss", []))))]
  panels = [
      ("loss", [k for k in ("loss", "val_loss", "ce_loss", "val_ce_loss", "distill_loss")
                if k in history]),
      ("accuracy", [k for k in ("accuracy", "val_accuracy") if k in history]),
      ("learning rate", [k for k in ("learning_rate",) if k in history]),
  ]
  panels = [p for p in panels if p[1]]
  fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.5 * max(1, len(panels)), 3.5),
                           squeeze=False)
  for ax, (name, keys) in zip(axes[0], panels):
    for key in keys:
      values = [np.nan if v is None else v for v in history[key]]
      ax.plot(epochs[:len(values)], values, marker="o", markersize=3, label=key)
    ax.set_xlabel("epoch")
    ax.set_title(name)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  with atomic_write(path) as tmp:
    fig.savefig(tmp, dpi=100, format="png")
  plt.close(fig)


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: str,
                          title: Optional[str] = None) -> None:
  """Writes a row-normalised confusion matrix (true class per row) as a PNG.

  Args:
    matrix: int `[K, K]`, `matrix[i, j]` = videos of class i predicted as j.
    labels: K class names.
    path: output PNG, written atomically.
    title: figure title.
  """
  plt = _pyplot()
  matrix = np.asarray(matrix, dtype=np.float64)
  rows = matrix.sum(axis=1, keepdims=True)
  normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
  k = len(labels)
  side = min(30.0, max(4.0, 0.3 * k + 2.0))
  fig, ax = plt.subplots(figsize=(side, side))
  image = ax.imshow(normalised, vmin=0.0, vmax=1.0, cmap="Blues")
  fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
  ax.set_xticks(range(k))
  ax.set_yticks(range(k))
  fontsize = 8 if k <= 20 else 5
  ax.set_xticklabels(labels, rotation=90, fontsize=fontsize)
  ax.set_yticklabels(labels, fontsize=fontsize)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  if k <= 20:
    for i in range(k):
      for j in range(k):
        if matrix[i, j]:
          ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                  color="white" if normalised[i, j] > 0.5 else "black")
  if title:
    ax.set_title(title, fontsize=9, wrap=True)
  fig.tight_layout()
  with atomic_write(path) as tmp:
    # bbox "tight" keeps a title wider than the axes inside the picture.
    fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight")
  plt.close(fig)


def plot_activation_maps(clips: np.ndarray, maps: Mapping[str, np.ndarray],
                         row_titles: Sequence[str], path: str,
                         title: Optional[str] = None) -> None:
  """Writes, per clip, its middle frame and each model's class activation map on it.

  Args:
    clips: `[N, T, S, S, 3]` frames in [0, 255].
    maps: {model name: `[N, T', H', W']` maps (`models.cam.class_activation_maps`)};
      each is averaged over time, scaled to [0, 1] per clip (positive evidence
      only) and drawn over the frame.
    row_titles: N labels (e.g. the video and its class).
    path: output PNG, written atomically.
    title: figure title.
  """
  plt = _pyplot()
  n = len(clips)
  cols = 1 + len(maps)
  fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols, 2.2 * n), squeeze=False)
  for i in range(n):
    frame = np.clip(clips[i][len(clips[i]) // 2], 0, 255).astype(np.uint8)
    size = frame.shape[:2]
    axes[i, 0].imshow(frame)
    axes[i, 0].set_ylabel(row_titles[i], fontsize=7)
    for j, (name, m) in enumerate(maps.items(), start=1):
      heat = np.maximum(np.asarray(m[i], np.float32).mean(axis=0), 0.0)
      heat = heat / heat.max() if heat.max() > 0 else heat
      # Nearest upsampling to the frame: each cell is one position of the map.
      reps = (int(np.ceil(size[0] / heat.shape[0])), int(np.ceil(size[1] / heat.shape[1])))
      heat = np.kron(heat, np.ones(reps))[:size[0], :size[1]]
      axes[i, j].imshow(frame)
      axes[i, j].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
      if i == 0:
        axes[i, j].set_title(name, fontsize=8)
    if i == 0:
      axes[i, 0].set_title("middle frame", fontsize=8)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  with atomic_write(path) as tmp:
    fig.savefig(tmp, dpi=100, format="png")
  plt.close(fig)
