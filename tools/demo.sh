#!/usr/bin/env bash
# `make demo`: the main job end to end on a small generated dataset.
#   generate HMDB51-format videos -> TFRecords -> train teacher, student and the
#   rgb baseline -> the paper's Table 1 (accuracy and cost of rgb, flow,
#   two-stream, student) -> export SavedModel -> convert TFLite -> predict.
# Every step is one of the documented tools; re-running replaces the previous demo.
# Everything is written under the output directory (default demo_out/), the export
# included, so the demo never touches a real saved_models/ export.
set -euo pipefail
OUT=${1:-demo_out}
PY=${PY:-.venv/bin/python}
CONFIG=${CONFIG:-configs/synthetic.yaml}
EXPORT_DIR=${EXPORT_DIR:-$OUT/saved_models/student/1}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
START=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - START ))s] $*"; }

mkdir -p "$OUT"
rm -rf "$OUT/models" "$OUT/table1" "$OUT/saved_models"

step "1/10 Generate HMDB51-format synthetic videos (colour x direction classes)"
# Six classes, red/green/blue x move_left/move_right: a frame tells the colour,
# only motion tells the direction (rgb and flow each partly right, as on HMDB51).
$PY tools/make_synthetic.py --output_dir="$OUT/videos_hmdb51" --num_classes=2 \
  --appearances=red,green,blue --videos_per_class=30 --seed=0 --height=64 --width=80 \
  --min_seconds=1 --max_seconds=1.5 --broken=truncated,garbage --overwrite

step "2/10 Convert to TFRecords (broken files are skipped and counted; validation held out)"
$PY tools/prepare_hmdb51.py --video_dir="$OUT/videos_hmdb51/videos" \
  --split_dir="$OUT/videos_hmdb51/splits" --output_dir="$OUT/tfrecords" --splits=1 \
  --short_side=0 --overwrite

step "3/10 Flow pictures of one generated video (paper Fig. 5)"
VIDEO=$(find "$OUT/videos_hmdb51/videos" -name '*.avi' -size +1k | sort | head -n 1)
$PY tools/visualize_flow.py --video="$VIDEO" --output="$OUT/flow.png" --overwrite

step "4/10 Train the teacher (in-graph TV-L1 + 3D CNN on flow)"
$PY tools/train.py --config="$CONFIG" --stage=teacher --model_dir="$OUT/models/teacher" \
  --data_dir="$OUT/tfrecords" --split=1

step "5/10 Train the student (RGB only, Eq. 7 distillation from the frozen teacher)"
$PY tools/train.py --config="$CONFIG" --stage=student --model_dir="$OUT/models/student" \
  --data_dir="$OUT/tfrecords" --split=1 --teacher_dir="$OUT/models/teacher"

step "6/10 Train the rgb baseline (the student's network on RGB, cross-entropy only)"
$PY tools/train.py --config="$CONFIG" --stage=rgb --model_dir="$OUT/models/rgb" \
  --data_dir="$OUT/tfrecords" --split=1

step "7/10 Table 1: evaluate rgb, teacher, two-stream and student; time them per clip"
$PY tools/results_table.py --rgb_dir="$OUT/models/rgb" --flow_dir="$OUT/models/teacher" \
  --student_dir="$OUT/models/student" --data_dir="$OUT/tfrecords" --split=1 \
  --output_dir="$OUT/table1" --progress=false

step "8/10 Export the student as a SavedModel (TF-Serving layout, carrying its clip spec)"
$PY tools/export.py --model_dir="$OUT/models/student" --export_dir="$EXPORT_DIR"

step "9/10 Convert to TFLite (float32 and int8)"
$PY tools/convert_tflite.py --saved_model="$EXPORT_DIR" --output="$OUT/student_fp32.tflite" --quantize=none \
  --overwrite
$PY tools/convert_tflite.py --saved_model="$EXPORT_DIR" --output="$OUT/student_int8.tflite" \
  --quantize=int8 --data_dir="$OUT/tfrecords" --split=1 --overwrite

step "10/10 Predict the same videos with the SavedModel and the int8 TFLite file (same clips: both read the clip spec they carry)"
for V in $(find "$OUT/videos_hmdb51/videos" -name '*.avi' -size +1k | sort | awk 'NR % 90 == 1'); do
  $PY tools/predict.py --model="$EXPORT_DIR" --video="$V" --top_k=2
  $PY tools/predict.py --model="$OUT/student_int8.tflite" --video="$V" --top_k=2
done

step "Results"
$PY - "$OUT" "$EXPORT_DIR" <<'PYEOF'
import os, sys
out, export_dir = sys.argv[1], sys.argv[2]
with open(os.path.join(out, "table1", "table1.md")) as f:
  print(f.read())
print()
for path in (export_dir, os.path.join(out, "student_fp32.tflite"), os.path.join(out, "student_int8.tflite"),
             os.path.join(out, "flow.png"), os.path.join(out, "table1", "student", "confusion_matrix.png")):
  print("wrote", path)
PYEOF
echo "demo finished in $(( $(date +%s) - START ))s"
