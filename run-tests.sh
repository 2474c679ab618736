#!/usr/bin/env bash
# Install (if needed) and run the whole test suite, the real packaged model included.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh
export HF_HUB_OFFLINE=1
.venv/bin/ruff check kenning tests benchmarks
.venv/bin/mypy kenning
.venv/bin/python -m pytest "$@"
