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
set -u
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
PY=${PY:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if "$PY" -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)" 2>/dev/null; then
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
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
# Training steps first (what the protocol's hours depend on); micro-batch 16 is the
# config's, 32 the whole batch; `on` = the trainer's mixed precision (auto on a GPU).
timeout 400 "$PY" benchmarks/bench_train.py --config=configs/hmdb51.yaml --batch_sizes=16,32 \
  --precisions=on,off --budget_s=360 --output_json="$OUT/bench_train.json" 2>&1 \
  | tee "$OUT/bench_train.log"
if [ -f benchmarks/bench_extract.py ]; then
  timeout 150 "$PY" benchmarks/bench_extract.py --video_dir= --batch_sizes=32,128 \
    --num_frames=257 --num_pairs=0 --noopencv --note="$GPU, $NOTE" 2>&1 | tee "$OUT/bench_extract.log"
fi
"$PY" benchmarks/memory_table.py --micro_batches=8,16,32 | tee "$OUT/memory_table.log"
# Ray flow extraction on the GPU (issue #27, docs/scale.md): `distributed.extract`'s actor
# pool takes one GPU per actor when Ray sees GPUs; bench_scale --only_flow runs it beside the
# local extract_flow on the same generated 320x240 videos (identical files checked) and
# times the per-video overhead. Needs ray and PyAV on this machine (for JAX: add ray==2.60.0
# and av to the pip download above); skipped with one line otherwise.
if "$PY" -c "import ray, av" 2>/dev/null; then
  timeout 240 "$PY" benchmarks/bench_scale.py --only_flow --real_dir= --size=320 \
    --flow_new_short=0 --ray_workers=1 --videos_per_class=4 --note="$GPU, $NOTE" 2>&1 \
    | tee "$OUT/bench_scale_gpu.log"
else
  echo "skipped the Ray GPU actor-pool run: ray or av is not installed here" \
    | tee "$OUT/bench_scale_gpu.log"
fi
