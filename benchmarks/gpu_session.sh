#!/usr/bin/env bash
# The whole GPU measurement for docs/performance.md in one run (fits the 15-minute device
# budget with margin): engine vs model-only ceiling vs naive loop vs MONAI (if installed),
# batch-size sweep, eager and compiled. Writes JSON into ${OUT:-gpu-results}/.
#
#   OUT=gpu-results bash benchmarks/gpu_session.sh
set -euo pipefail
out="${OUT:-gpu-results}"
mkdir -p "$out"
python=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv"
# Eager engine (the default) with the batch sweep, then everything compiled.
timeout 240 "$python" benchmarks/bench_tiling.py --device cuda --size 4096 \
    --batch-sweep 4,8,16,32,64 > "$out/bench-eager.json" 2> "$out/bench-eager.err" || true
timeout 300 "$python" benchmarks/bench_tiling.py --device cuda --size 4096 --compile \
    --batch-sweep 16,32,64 > "$out/bench-compiled.json" 2> "$out/bench-compiled.err" || true
ls -l "$out"
