#!/usr/bin/env bash
# Refresh requirements/dev.lock, the exact versions (with hashes) that ./install.sh puts in
# .venv for development, the tests and CI. pyproject.toml keeps ranges (a library installs
# beside other packages); the lock pins what those ranges resolve to today.
#
#   scripts/lock.sh                          after editing pyproject.toml: add what is new,
#                                            keep every other pin as it is
#   scripts/lock.sh --upgrade                every package to its newest release in range
#   scripts/lock.sh --upgrade-package NAME   one package (repeatable), e.g. transformers
#
# It prints each pin that moved (old -> new). To see what a new release breaks:
#   scripts/lock.sh --upgrade && ./install.sh && ./run-tests.sh
# and `git checkout requirements/dev.lock && ./install.sh` goes back.
#
# pip-compile runs with pip's own configuration, so it sees what pip sees: on this machine
# torch 2.13.0 resolves to the CPU wheel (2.13.0+cpu, from pip's find-links /opt/wheels),
# not the CUDA build on PyPI; the script refuses a lock that pins any other torch build.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements/dev.lock
compile=.venv/bin/pip-compile
[ -x "$compile" ] || { echo "no $compile: run ./install.sh first (pip-tools is in the lock)" >&2; exit 1; }
old=$(mktemp); trap 'rm -f "$old"' EXIT
[ -f "$lock" ] && cp "$lock" "$old"
"$compile" --quiet --extra dev --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links --output-file "$lock" "$@" pyproject.toml
# The dev extra names kenning's own extras (kenning[eval,...]), which pip-compile writes as a
# line "kenning @ file:///this/folder" that no hash can check: install.sh installs kenning
# itself apart (editable, no deps), so the line and its warning go.
python3 - "$lock" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
block = r"# WARNING: pip install will require the following package to be hashed\.\n(#.*\n)*"
text = re.sub(block + r"kenning @ file:.*\n(    #.*\n)*", "", text)
open(path, "w").write(text)
PY
if ! grep -q '^torch==[0-9.]*+cpu ' "$lock"; then
  echo "error: $lock does not pin a CPU build of torch ($(grep '^torch==' "$lock")); is the" \
    "torch CPU wheel in pip's find-links?" >&2
  exit 1
fi
export LC_ALL=C
pins() { grep -oE '^[A-Za-z0-9_.-]+==[^ ]+' "$1" | sed 's/==/=/' | sort -t= -k1,1; }
echo "pins that moved ($lock):"
join -a1 -a2 -e '-' -o 0,1.2,2.2 -t= <(pins "$old") <(pins "$lock") \
  | awk -F= '$2 != $3 { printf "  %s: %s -> %s\n", $1, $2, $3; n++ } END { if (!n) print "  none" }'
