#!/usr/bin/env bash
# Install (from the lock, if needed) and run the checks: ruff, mypy, the docs build, then the
# whole test suite, the real packaged model included. Arguments go to pytest, e.g.
# `./run-tests.sh -m "not slow"` for the fast lane.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh
export HF_HUB_OFFLINE=1
.venv/bin/ruff check kenning tests benchmarks
.venv/bin/mypy kenning
if [ -f mkdocs.yml ]; then
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
fi
.venv/bin/python -m pytest "$@"
