#!/usr/bin/env bash
# Set up napari-shisrcnet in ./.venv on a fresh Linux machine.
#   bash scripts/setup.sh          the package and its command line
#   bash scripts/setup.sh --test   plus Xvfb/xcb libraries (GUI tests) and the test extras
# TORCH_SPEC overrides the torch requirement (default torch==2.13.0; pick your own CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

system_packages=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-randr0
  libxcb-render-util0 libxcb-image0 libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0
  libgl1 libegl1 libfontconfig1 libdbus-1-3)
if [[ $with_tests == 1 ]] && command -v apt-get >/dev/null; then
  missing=()
  for package in "${system_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if (( ${#missing[@]} )); then
    sudo=""; [[ $(id -u) != 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
elif [[ $with_tests == 1 ]] && ! command -v Xvfb >/dev/null; then
  echo "setup.sh: install Xvfb and the xcb libraries for the GUI tests (no apt-get here)" >&2
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# CPU/GPU torch first, so the project's torch range does not pull a second build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
if [[ $with_tests == 1 ]]; then
  .venv/bin/python -m pip install -q -e ".[testing]"
else
  .venv/bin/python -m pip install -q -e ".[pyqt6]"
fi
