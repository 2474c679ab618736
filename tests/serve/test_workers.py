"""`kenning serve --workers N`: several processes on one socket, over one index.

Real processes on a real SQLite index: the workers share the port, a worker that dies is
replaced while the others answer, and SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from serving import make_index

from kenning.config import usable_cores

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    """The worker processes of ``pid`` (Linux: /proc): its children that multiprocessing
    spawned, not multiprocessing's resource tracker."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return {c for c in found if b"spawn_main" in _cmdline(c)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it exited meanwhile
        return b""


def wait_for(condition, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_workers_share_the_port_replace_a_dead_one_and_stop_together(
    tmp_path: Path,
) -> None:
    db, _ = make_index(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("KENNING_API_KEY", None)
    command = [sys.executable, "-m", "kenning", "-i", str(db), "-q", "serve", "--port", "0"]
    with subprocess.Popen(
        [*command, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith("kenning serve: http://127.0.0.1:"), line
            url = line.split(": ", 1)[1].strip().rstrip("/")
            # ready means every worker has warmed up and answers
            workers = children(proc.pid)
            assert len(workers) == 2
            for _ in range(10):  # a new connection each time: either worker may answer
                r = httpx.get(url + "/api/search", params={"q": "sqlite"}, timeout=10)
                assert r.status_code == 200 and r.json()["hits"]
            victim = sorted(workers)[0]
            os.kill(victim, signal.SIGKILL)
            for _ in range(10):  # the other worker answers meanwhile
                assert httpx.get(url + "/api/status", timeout=10).status_code == 200
            wait_for(lambda: len(children(proc.pid) - {victim}) == 2)
            survivors = children(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, errors = proc.communicate(timeout=60)
    assert proc.returncode == 0, errors
    for pid in survivors:  # no worker outlives the server
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_a_missing_index_is_one_clear_error_before_any_worker_starts(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "index.db"
    result = subprocess.run(
        [sys.executable, "-m", "kenning", "-i", str(missing), "serve", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 5, result.stderr
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
    assert not missing.exists()


def test_kenning_threads_caps_the_cores_each_worker_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("KENNING_THREADS", "1")
    assert usable_cores() == 1
    monkeypatch.setenv("KENNING_THREADS", str(cores + 7))
    assert usable_cores() == cores  # a cap, never more than the process may use
    monkeypatch.setenv("KENNING_THREADS", "zero")
    assert usable_cores() == cores
