#!/usr/bin/env bash
# The GPU checks, as one short script for a lent NVIDIA machine that has JAX and
# no TensorFlow (the device tool's H200): training steps of every stage at the
# paper's shapes (bench_train.py, issue #16) and TV-L1 flow throughput at
# 320x240 with `accurate` (bench_extract.py part 1, issue #15).
#
# Wheels the machine lacks (cp312: keras, namex, optree) go in .whl/ beforehand:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
# then, with the device tool: run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"]).
# Results go to $OUT (or /tmp/gpu_checks): bench_train.{log,json}, bench_extract.log.
set -u
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
if [ -f benchmarks/bench_extract.py ]; then
  timeout 150 python3 benchmarks/bench_extract.py --video_dir= --batch_sizes=32,128,256 \
    --num_frames=513 --num_pairs=0 --noopencv --note="H200, JAX" 2>&1 | tee "$OUT/bench_extract.log"
fi
timeout 380 python3 benchmarks/bench_train.py --budget_s=330 \
  --output_json="$OUT/bench_train.json" 2>&1 | tee "$OUT/bench_train.log"
