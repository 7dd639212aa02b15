"""Computed accelerator memory of each stage at the paper's shapes, per micro-batch and precision.

  .venv/bin/python benchmarks/memory_table.py [--micro_batches=4,8,16,32] [--margin_gib=2]

Peak device memory of a training step grows linearly with the clips in it
(activations kept for the backward pass), on top of a fixed part (weights,
optimizer state, workspace). This fits `fixed + per_clip * micro_batch` to the
measured peaks below, per stage and precision, and prints the memory every
micro-batch takes and whether it fits a 24, 40 or 80 GB GPU (with
`--margin_gib` left for the framework's allocator, cuDNN workspaces and the
CUDA context). Rows that were measured say so; the others are computed.

MEASURED: `benchmarks/bench_train.py` at configs/hmdb51.yaml's shapes (R3D-18,
25x224x224, in-graph `accurate` TV-L1 for teacher and student), peak device
memory in GiB, on one NVIDIA H200 under JAX 0.11.2 (docs/performance.md, "Training step
time at the paper's scale"; benchmarks/results/h200_bench_train.log). Float32
has one point per stage (batch 8) and the teacher none: their per-clip slope is
the mixed-precision slope times the float32 / mixed ratio of rgb and student
(1.9), with the mixed-precision fixed part. TensorFlow was not measured; its
BFC allocator may round up more than XLA's.
"""

import os
import sys

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# {(stage, precision): {batch: peak GiB}}: measured, see the module doc.
MEASURED = {
    ("rgb", "mixed"): {8: 5.1, 16: 9.8, 32: 19.2},
    ("rgb", "float32"): {8: 9.4},
    ("teacher", "mixed"): {8: 4.7, 16: 9.0},
    ("student", "mixed"): {8: 5.2, 16: 9.7, 32: 18.9},
    ("student", "float32"): {8: 9.5},
}
STAGES = ("rgb", "teacher", "student")
PRECISIONS = ("mixed", "float32")
CARDS_GB = (24, 40, 80)
MEASURED_ON = "H200, JAX 0.11.2, benchmarks/bench_train.py"

_MICRO_BATCHES = flags.DEFINE_list("micro_batches", ["4", "8", "16", "32"],
                                   "Micro-batch sizes (train.micro_batch_size).")
_MARGIN = flags.DEFINE_float("margin_gib", 2.0, "GiB a card keeps free for the framework.")


def _fit(points):
  """Least-squares (fixed, per_clip) of a line through {batch: GiB}."""
  xs, ys = list(points), list(points.values())
  n = len(xs)
  mx, my = sum(xs) / n, sum(ys) / n
  slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
  return my - slope * mx, slope


def model(stage: str, precision: str):
  """(fixed GiB, GiB per clip) of `stage` under `precision` (`mixed` or `float32`)."""
  fixed, slope = _fit(MEASURED[(stage, "mixed")])
  if precision == "mixed":
    return fixed, slope
  ratios = []
  for s in ("rgb", "student"):
    (batch, gib), = MEASURED[(s, "float32")].items()
    f, m = _fit(MEASURED[(s, "mixed")])
    ratios.append(((gib - f) / batch) / m)
  if (stage, "float32") in MEASURED:
    (batch, gib), = MEASURED[(stage, "float32")].items()
    return fixed, (gib - fixed) / batch
  return fixed, slope * sum(ratios) / len(ratios)


def gib(stage: str, precision: str, micro_batch: int) -> float:
  """Peak GiB of one training step of `micro_batch` clips (computed)."""
  fixed, slope = model(stage, precision)
  return fixed + slope * micro_batch


def fits(gib_needed: float, card_gb: int, margin_gib: float = 2.0) -> bool:
  """Whether a `card_gb` GB card (GiB: a 24 GB card has 24 GiB) holds it with the margin."""
  return gib_needed <= card_gb - margin_gib


def format_table(micro_batches, margin_gib: float = 2.0) -> str:
  lines = ["| stage | precision | micro-batch | peak GiB | source | "
           + " | ".join(f"{c} GB" for c in CARDS_GB) + " |",
           "| --- | --- | ---: | ---: | --- |" + " :---: |" * len(CARDS_GB)]
  for stage in STAGES:
    for precision in PRECISIONS:
      for m in micro_batches:
        value = gib(stage, precision, m)
        measured = MEASURED.get((stage, precision), {}).get(m)
        source = f"measured {measured:.1f}" if measured is not None else "computed"
        marks = " | ".join("yes" if fits(value, c, margin_gib) else "no" for c in CARDS_GB)
        lines.append(f"| {stage} | {precision} | {m} | {value:.1f} | {source} | {marks} |")
  return "\n".join(lines)


def main(argv):
  del argv
  micro = [int(m) for m in _MICRO_BATCHES.value]
  print(f"Peak accelerator memory per training step, R3D-18 at 25x224x224 "
        f"(configs/hmdb51.yaml): fixed + per clip x micro-batch, fitted to {MEASURED_ON}; "
        f"'fits' leaves {_MARGIN.value:g} GiB free.\n")
  print(format_table(micro, _MARGIN.value))
  for stage in STAGES:
    for precision in PRECISIONS:
      fixed, slope = model(stage, precision)
      print(f"{stage} {precision}: {fixed:.2f} GiB + {slope:.3f} GiB/clip")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, REPO)
  app.run(main)
