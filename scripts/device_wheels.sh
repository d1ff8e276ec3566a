#!/usr/bin/env bash
# Wheels the GPU device image lacks (it has torch, numpy, scikit-image, tifffile, imageio,
# safetensors, ...; not dask, zarr, ome-zarr, imagecodecs, MONAI), for its Python 3.12, into
# .device/whl (git-ignored, ~38 MB, under the 64 MiB carry limit). Run here, then carry
# ".device" to the device and run benchmarks/gpu_session.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64 -d .device/whl \
    dask==2026.8.0 partd==1.4.2 locket==1.0.0 zarr==3.1.6 numcodecs==0.16.6 \
    donfig==0.8.1.post1 google-crc32c ome-zarr==0.18.0 Deprecated imagecodecs==2026.3.6 \
    monai==1.6.1
du -sh .device/whl
