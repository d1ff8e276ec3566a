#!/usr/bin/env bash
# Run the test suite from a fresh clone: set up (idempotent), then pytest.
# GUI tests run under Xvfb, started by pytest-xvfb. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export QT_QPA_PLATFORM=xcb
exec .venv/bin/python -m pytest "$@"
