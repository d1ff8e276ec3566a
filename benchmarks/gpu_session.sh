#!/usr/bin/env bash
# The whole GPU measurement for docs/performance.md in one run (sized for the 15-minute
# device budget): the host write side on the device's cores, then engine vs model-only
# ceiling vs naive loop vs MONAI with a batch-size sweep, eager and compiled. Prepare here
# with `bash scripts/device_wheels.sh`, then on the device (carry ".device"):
#     OUT=$OUT bash benchmarks/gpu_session.sh
# Writes JSON into ${OUT:-gpu-results}/. A dry run of the same steps on a CPU, small:
#     DEVICE=cpu LR_SIDE=512 SWEEP=1,2 WRITE_SIDE=2048 COMPILE=0 bash benchmarks/gpu_session.sh
set -euo pipefail
out="${OUT:-gpu-results}"
device="${DEVICE:-cuda}"
lr_side="${LR_SIDE:-8192}"  # 256 tiles of 512 px: several batches, as in a real run
sweep="${SWEEP:-8,16,32,64}"
write_side="${WRITE_SIDE:-16384}"
mkdir -p "$out"
python=${PYTHON:-python3}
if [ -d .device/whl ] && [ "$device" = cuda ]; then  # the image has torch, not our I/O stack
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .device/whl/*.whl
    export PYTHONPATH=/tmp/site:src
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" || true
"$python" -c "import torch, dask, zarr, ome_zarr, imagecodecs; print(torch.__version__)"
# The host side alone (writing + pyramid) on this machine's cores: what can feed the GPU.
timeout 60 "$python" benchmarks/write_throughput.py --side "$write_side" --repeats 1 \
    > "$out/write-throughput.json" 2> "$out/write-throughput.err" || true
# Eager engine (the default: 512 px tiles on CUDA, batch from free memory) with a sweep;
# naive loop and MONAI keep their usual 256 px tiles.
timeout 200 "$python" benchmarks/bench_tiling.py --device "$device" --size "$lr_side" \
    --batch-sweep "$sweep" > "$out/bench-eager.json" 2> "$out/bench-eager.err" || true
# Compiled (one batch size: each size is a compile).
if [ "${COMPILE:-1}" = 1 ]; then
    timeout 240 "$python" benchmarks/bench_tiling.py --device "$device" --size "$lr_side" \
        --compile --repeats 2 --skip-classification > "$out/bench-compiled.json" \
        2> "$out/bench-compiled.err" || true
fi
ls -l "$out"
