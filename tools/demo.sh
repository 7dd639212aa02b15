#!/usr/bin/env bash
# The main job end to end on a small generated dataset (see README, "make demo").
set -euo pipefail
OUT=${1:-demo_out}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
echo "== 1. Generate HMDB51-format synthetic videos"
$PY tools/make_synthetic.py --output_dir="$OUT/hmdb51_synthetic" --num_classes=4 --videos_per_class=10 --seed=0
find "$OUT/hmdb51_synthetic" -maxdepth 2 | head -20
