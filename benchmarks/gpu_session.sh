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
# The host side alone (writing + pyramid) on this machine's cores: what can feed the GPU.
timeout 60 "$python" benchmarks/write_throughput.py --side 16384 --repeats 1 \
    > "$out/write-throughput.json" 2> "$out/write-throughput.err" || true
# Eager engine (the default: 512 px tiles, batch from free memory) with a batch sweep, then
# compiled (one batch size: each size is a compile). 8192 px LR: 256 tiles, several batches.
timeout 200 "$python" benchmarks/bench_tiling.py --device cuda --size 8192 \
    --batch-sweep 8,16,32,64 > "$out/bench-eager.json" 2> "$out/bench-eager.err" || true
timeout 240 "$python" benchmarks/bench_tiling.py --device cuda --size 8192 --compile \
    --repeats 2 --skip-classification > "$out/bench-compiled.json" \
    2> "$out/bench-compiled.err" || true
ls -l "$out"
