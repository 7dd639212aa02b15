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
