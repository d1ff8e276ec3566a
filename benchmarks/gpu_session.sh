#!/usr/bin/env bash
# The whole GPU measurement for docs/performance.md in one run (sized for the 15-minute
# device budget): engine vs model-only ceiling vs naive loop vs MONAI, batch-size sweeps,
# eager and compiled. Prepare here with `bash scripts/device_wheels.sh`, then on the device
# (carry ".device"):  OUT=$OUT bash benchmarks/gpu_session.sh
# Writes JSON into ${OUT:-gpu-results}/.
set -euo pipefail
out="${OUT:-gpu-results}"
mkdir -p "$out"
python=${PYTHON:-python3}
if [ -d .device/whl ]; then  # the device image has torch but not our I/O stack
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .device/whl/*.whl
    export PYTHONPATH=/tmp/site:src
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv"
"$python" -c "import torch, dask, zarr, ome_zarr, imagecodecs; print(torch.__version__)"
# Eager engine (the default) with a batch sweep, then everything compiled.
timeout 240 "$python" benchmarks/bench_tiling.py --device cuda --size 4096 \
    --batch-sweep 4,8,16,32,64 > "$out/bench-eager.json" 2> "$out/bench-eager.err" || true
timeout 300 "$python" benchmarks/bench_tiling.py --device cuda --size 4096 --compile \
    --batch-sweep 16,32,64 > "$out/bench-compiled.json" 2> "$out/bench-compiled.err" || true
ls -l "$out"
