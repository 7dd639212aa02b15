#!/usr/bin/env bash
# The GPU checks, as one short script for a lent NVIDIA machine: training steps of
# every stage of configs/hmdb51.yaml at the paper's shapes (R3D-18, 25x224x224,
# `accurate` TV-L1; benchmarks/bench_train.py: step time, clips/s, peak device
# memory, hours per HMDB51 split) at the config's micro-batch (16) and the whole
# batch (32), mixed precision on and off, and TV-L1 flow throughput at 320x240
# (bench_extract.py part 1).
#
# Backend: TensorFlow where it is installed with a GPU (what tools/train.py uses),
# else JAX (the device tool's machines have JAX and no TensorFlow). For JAX,
# the wheels the machine lacks (cp312: keras, namex, optree) go in .whl/ beforehand:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
# then, with the device tool: run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"]).
# Results go to $OUT (or /tmp/gpu_checks): bench_train.{log,json}, bench_extract.log;
# compare the peaks with benchmarks/memory_table.py (computed from the H200/JAX run)
# and put the numbers, with this machine, in docs/hmdb51.md.
# GPU_CHECKS_STORED_FLOW=1 adds graph vs stored flow steps at 25x224 (bench_stored_flow.py,
# ~2 more minutes: over a 10-minute device call with the rest).
#
# GPU_CHECKS_DRY_RUN=1: the same parts on this machine's CPU at tiny shapes (4-frame
# 32-px clips, light backbone, batch 2, 1 step; a 9-frame 64x48 flow clip) through the
# installed backend, no wheels: checks the script end to end before a GPU session
# spends minutes on it (tests/benchmarks/test_gpu_checks.py). Its numbers mean nothing.
# Exits non-zero if any part failed (every part still runs).
set -u -o pipefail
RC=0
trap 'st=$?; [ "$RC" -ne 0 ] && exit "$RC"; exit "$st"' EXIT
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
PY=${PY:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
DRY=${GPU_CHECKS_DRY_RUN:-0}
if [ "$DRY" = 1 ]; then
  SHAPES="--params_override=data.num_frames=4,data.crop_size=32,model.backbone=light,model.width=4"
  # 6 groups of a TensorFlow start-up and a compile each: minutes on 2 loaded cores.
  TRAIN_ARGS=(--batch_sizes=2 --steps=1 --warmup=0 --budget_s=1500 "$SHAPES")
  EXTRACT_ARGS=(--batch_sizes=4 --num_frames=9 --width=64 --height=48 --repeats=1)
  STORED_ARGS=(--shapes=4x32 --batch_size=2 --steps=1 --warmup=0 --nostudent "$SHAPES")
  TRAIN_TIMEOUT=1600
else
  SHAPES=""
  # micro-batch 16 is the config's, 32 the whole batch.
  TRAIN_ARGS=(--batch_sizes=16,32 --budget_s=360)
  EXTRACT_ARGS=(--batch_sizes=32,128 --num_frames=257)
  STORED_ARGS=(--shapes=25x224 --batch_size=16 --steps=3)
  TRAIN_TIMEOUT=400
fi
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || RC=1
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
else
  echo "no nvidia-smi: no NVIDIA GPU here"
  GPU="no GPU"
fi
if [ "$DRY" = 1 ] && "$PY" -c "import tensorflow" 2>/dev/null; then
  export KERAS_BACKEND=tensorflow PYTHONPATH=$PWD CUDA_VISIBLE_DEVICES=""
  NOTE="TensorFlow, dry run on CPU"
  "$PY" -c "import tensorflow as tf, keras; print('tensorflow', tf.__version__, 'keras', keras.__version__, '(dry run, CPU)')"
elif [ "$DRY" = 1 ]; then
  export KERAS_BACKEND=jax PYTHONPATH=$PWD JAX_PLATFORMS=cpu
  NOTE="JAX, dry run on CPU"
  "$PY" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, '(dry run)')"
elif "$PY" -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)" 2>/dev/null; then
  export KERAS_BACKEND=tensorflow PYTHONPATH=$PWD
  NOTE="TensorFlow"
  "$PY" -c "import tensorflow as tf, keras; print('tensorflow', tf.__version__, tf.config.list_physical_devices('GPU'), 'keras', keras.__version__)"
else
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax
  NOTE="JAX"
  "$PY" -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
fi
export PYTHONUNBUFFERED=1
# Training steps first (what the protocol's hours depend on): every stage of the
# config (rgb, teacher, student; two-stream trains nothing), step time, clips/s, peak
# device memory and hours per split; `on` = the trainer's mixed precision (auto on a GPU).
timeout "$TRAIN_TIMEOUT" "$PY" benchmarks/bench_train.py --config=configs/hmdb51.yaml \
  --stages=rgb,teacher,student --precisions=on,off "${TRAIN_ARGS[@]}" \
  --output_json="$OUT/bench_train.json" 2>&1 | tee "$OUT/bench_train.log" || RC=1
if [ -f benchmarks/bench_extract.py ]; then
  timeout 150 "$PY" benchmarks/bench_extract.py --video_dir= "${EXTRACT_ARGS[@]}" \
    --num_pairs=0 --noopencv --note="$GPU, $NOTE" 2>&1 | tee "$OUT/bench_extract.log" || RC=1
fi
if [ "${GPU_CHECKS_STORED_FLOW:-0}" = 1 ] || [ "$DRY" = 1 ]; then
  timeout 150 "$PY" benchmarks/bench_stored_flow.py --config=configs/hmdb51.yaml \
    "${STORED_ARGS[@]}" 2>&1 | tee "$OUT/bench_stored_flow.log" || RC=1
fi
"$PY" benchmarks/memory_table.py --micro_batches=8,16,32 | tee "$OUT/memory_table.log"
# Ray flow extraction on the GPU (issue #27, docs/scale.md): `distributed.extract`'s actor
# pool takes one GPU per actor when Ray sees GPUs; bench_scale --only_flow runs it beside the
# local extract_flow on the same generated 320x240 videos (identical files checked) and
# times the per-video overhead. Needs ray and PyAV on this machine (for JAX: add ray==2.60.0
# and av to the pip download above); skipped with one line otherwise.
SCALE_ARGS=(--size=320 --videos_per_class=4)
[ "$DRY" = 1 ] && SCALE_ARGS=(--size=64 --videos_per_class=1)
if "$PY" -c "import ray, av" 2>/dev/null; then
  timeout 240 "$PY" benchmarks/bench_scale.py --only_flow --real_dir= "${SCALE_ARGS[@]}" \
    --flow_new_short=0 --ray_workers=1 --note="$GPU, $NOTE" 2>&1 \
    | tee "$OUT/bench_scale_gpu.log" || RC=1
else
  echo "skipped the Ray GPU actor-pool run: ray or av is not installed here" \
    | tee "$OUT/bench_scale_gpu.log"
fi
