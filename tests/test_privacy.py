"""kenning is local and private: `add`, `search` and `ask` on a fresh home folder write
nothing outside the index and kenning's cache folder, and open no network socket.

The commands run as a user runs them, in subprocesses, with a new HOME, no XDG_* or
KENNING_* variables, and none of the switches (HF_HUB_OFFLINE, ORT_DISABLE_TELEMETRY...)
that kenning sets for itself, so the test checks kenning's own defaults. The first `add` in a
fresh home exports the packaged model into the cache, as a new user's first `add` does.

Two watchers, each for what the other cannot see:
- a ``sitecustomize`` on PYTHONPATH installs an audit hook (``sys.addaudithook``) in every
  Python process kenning starts, and records each internet socket, connect and name lookup;
- where ``strace`` is installed, it records every connect/sendto/sendmsg/bind of the whole
  process tree at the system call level, native libraries (onnxruntime, torch) included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "notes"

AUDIT_HOOK = """
import os, sys

_LOG = os.environ.get("KENNING_TEST_NETWORK_LOG")
_INTERNET = {2, 10}  # AF_INET, AF_INET6
_NAMES = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
          "socket.gethostbyaddr", "socket.getnameinfo"}


def _record(event, args):
    if event == "socket.__new__":
        bad = args[1] in _INTERNET
    elif event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
        bad = not isinstance(args[1], (str, bytes))  # a tuple: an internet address
    else:
        bad = event in _NAMES
    if bad:
        with open(_LOG, "a") as log:
            log.write(f"{os.getpid()} {event} {args[1:]!r}\\n")


if _LOG:
    sys.addaudithook(_record)
"""

#: variables that would point kenning (or a library) somewhere else than the fresh home, or
#: switch off what kenning must switch off itself
CLEARED = re.compile(
    r"^(HOME|XDG_.*|KENNING_.*|HF_.*|HUGGINGFACE_.*|TRANSFORMERS_.*|SENTENCE_TRANSFORMERS_.*"
    r"|TORCH_HOME|TORCHINDUCTOR_.*|ORT_.*|DO_NOT_TRACK|TMPDIR|PYTHONPATH|PYTHONSTARTUP)$"
)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


@pytest.mark.slow
@pytest.mark.real_model
def test_add_search_ask_stay_in_the_index_and_the_cache(tmp_path: Path) -> None:
    home, tmp, cwd, site, index_dir = (
        tmp_path / n for n in ("home", "tmp", "cwd", "site", "index")
    )
    for folder in (home, tmp, cwd, site, index_dir):
        folder.mkdir()
    vault = tmp_path / "notes"
    shutil.copytree(EXAMPLES, vault)
    before = {p: p.stat().st_mtime_ns for p in files_under(vault)}
    (site / "sitecustomize.py").write_text(AUDIT_HOOK)
    network_log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items() if not CLEARED.match(k)}
    env |= {
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "PYTHONPATH": str(site),
        "KENNING_TEST_NETWORK_LOG": str(network_log),
        "COLUMNS": "200",  # the answer's lines unwrapped
    }
    index = index_dir / "index.db"
    strace = shutil.which("strace")
    traces: list[Path] = []

    def kenning(*args: str) -> str:
        command = [sys.executable, "-m", "kenning", "--index", str(index), *args]
        if strace:
            traces.append(tmp_path / f"strace.{len(traces)}")
            command = [strace, "-f", "--seccomp-bpf", "-qq", "-o", str(traces[-1]),
                       "-e", "trace=connect,sendto,sendmsg,bind", *command]  # fmt: skip
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"kenning {args}: {done.stderr}"
        return done.stdout

    kenning("add", str(vault))
    found = kenning("search", "back up a live database", "--json")
    hits = [json.loads(line) for line in found.splitlines()]
    assert "sqlite-backup.md" in {Path(hit["path"]).name for hit in hits[:3]}
    answer = kenning("ask", "how do I undo the last commit but keep my changes?")
    assert "git reset --soft HEAD~1" in answer and "[1]" in answer
    assert "Sources" in answer and "git-undo.md" in answer

    # what was written: the index (its folder holds nothing else) and kenning's cache
    cache = home / ".cache" / "kenning"
    assert files_under(cache), "the first add exports the model into kenning's cache"
    assert sorted(files_under(home) - files_under(cache)) == []
    assert all(p.name.startswith("index.db") for p in files_under(index_dir))
    assert sorted(files_under(tmp)) == []
    assert sorted(files_under(cwd)) == []
    assert {p: p.stat().st_mtime_ns for p in files_under(vault)} == before

    # what was sent: no internet socket, connection or name lookup, from Python or native code
    assert not network_log.exists(), network_log.read_text()
    for trace in traces:
        internet = [
            line
            for line in trace.read_text().splitlines()
            if "AF_INET" in line  # AF_INET and AF_INET6; local (AF_UNIX, netlink) calls pass
        ]
        assert internet == [], "\n".join(internet)
