#!/usr/bin/env bash
# `make demo`: the main job end to end on a small generated dataset.
#   generate HMDB51-format videos -> TFRecords -> train teacher -> train student
#   -> evaluate -> export SavedModel -> convert TFLite -> predict on one video.
# Every step is one of the documented tools; re-running replaces the previous demo.
set -euo pipefail
OUT=${1:-demo_out}
PY=${PY:-.venv/bin/python}
CONFIG=${CONFIG:-configs/synthetic.yaml}
EXPORT_DIR=${EXPORT_DIR:-saved_models/student/1}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
START=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - START ))s] $*"; }

mkdir -p "$OUT"
rm -rf "$OUT/models"

step "1/9 Generate HMDB51-format synthetic videos (motion-only classes)"
$PY tools/make_synthetic.py --output_dir="$OUT/videos_hmdb51" --num_classes=4 \
  --videos_per_class=24 --seed=0 --height=120 --width=160 --broken=truncated,garbage --overwrite

step "2/9 Convert to TFRecords (broken files are skipped and counted)"
$PY tools/prepare_hmdb51.py --video_dir="$OUT/videos_hmdb51/videos" \
  --split_dir="$OUT/videos_hmdb51/splits" --output_dir="$OUT/tfrecords" --splits=1 \
  --short_side=72 --overwrite

step "3/9 Flow pictures of one generated video (paper Fig. 5)"
VIDEO=$(find "$OUT/videos_hmdb51/videos" -name '*.avi' -size +1k | sort | head -n 1)
$PY tools/visualize_flow.py --video="$VIDEO" --output="$OUT/flow.png"

step "4/9 Train the teacher (in-graph TV-L1 + 3D CNN on flow)"
$PY tools/train.py --config="$CONFIG" --stage=teacher --model_dir="$OUT/models/teacher" \
  --data_dir="$OUT/tfrecords" --split=1

step "5/9 Train the student (RGB only, Eq. 7 distillation from the frozen teacher)"
$PY tools/train.py --config="$CONFIG" --stage=student --model_dir="$OUT/models/student" \
  --data_dir="$OUT/tfrecords" --split=1 --teacher_dir="$OUT/models/teacher"

step "6/9 Evaluate teacher and student (clip and video level)"
$PY tools/evaluate.py --model_dir="$OUT/models/teacher" --data_dir="$OUT/tfrecords" --split=1
$PY tools/evaluate.py --model_dir="$OUT/models/student" --data_dir="$OUT/tfrecords" --split=1

step "7/9 Export the student as a SavedModel (TF-Serving layout)"
$PY tools/export.py --model_dir="$OUT/models/student" --export_dir="$EXPORT_DIR" --overwrite

step "8/9 Convert to TFLite (float32 and int8)"
$PY tools/convert_tflite.py --saved_model="$EXPORT_DIR" --output="$OUT/student_fp32.tflite" --quantize=none
$PY tools/convert_tflite.py --saved_model="$EXPORT_DIR" --output="$OUT/student_int8.tflite" \
  --quantize=int8 --data_dir="$OUT/tfrecords" --split=1

step "9/9 Predict one video with the SavedModel and with the int8 TFLite file"
$PY tools/predict.py --model="$EXPORT_DIR" --video="$VIDEO"
$PY tools/predict.py --model="$OUT/student_int8.tflite" --video="$VIDEO"

step "Results"
$PY - "$OUT" "$EXPORT_DIR" <<'PYEOF'
import json, os, sys
out, export_dir = sys.argv[1], sys.argv[2]
print(f"{'model':<10} {'clip acc':>9} {'video acc':>10}")
for name in ("teacher", "student"):
  with open(os.path.join(out, "models", name, "eval.json")) as f:
    ev = json.load(f)
  print(f"{name:<10} {ev['clip_accuracy']:>9.3f} {ev['video_accuracy']:>10.3f}")
print()
for path in (export_dir, os.path.join(out, "student_fp32.tflite"), os.path.join(out, "student_int8.tflite"),
             os.path.join(out, "flow.png"), os.path.join(out, "models", "student", "confusion_matrix.png")):
  print("wrote", path)
PYEOF
echo "demo finished in $(( $(date +%s) - START ))s"
