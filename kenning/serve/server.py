"""Running the application: `kenning serve` in the foreground, ``BackgroundServer`` in a thread.

Both bind their socket before uvicorn starts, so a port in use is a clear ``ConfigError``
(exit code 2) and a test can ask for port 0 and learn which free port it got. ``--watch``
keeps the index in step with the files from a thread of its own, with its own ``Index``,
while the server answers.

``serve_workers`` runs several worker processes on that one socket (the kernel hands each
new connection to one of them), so searches are no longer queued behind one GIL. Each
worker builds its own application from an ``AppSpec`` and reads the index as any reader
does (SQLite WAL readers, PostgreSQL connections); a sync, from ``--watch`` in the parent or
``POST /api/sync`` in any worker, still goes through the index's one writer lock, and every
worker sees it whole once it commits, as separate `kenning search` processes do.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from kenning.config import usable_cores
from kenning.errors import ConfigError
from kenning.index import Index
from kenning.index.watch import watch

from .security import Security

log = logging.getLogger("kenning.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    on_ready: Callable[[str], None] | None = None,
    watch_index: tuple[str | Path, str | None] | None = None,
) -> None:
    """Serve ``app`` until interrupted. ``on_ready`` gets the URL once the application has
    started (``warm``: the models are loaded) and the server accepts requests;
    ``watch_index`` (location, embedder) also runs `kenning watch` on that index."""
    sock = bind(host, port)
    stop = threading.Event()
    watcher = start_watch(*watch_index, stop) if watch_index else None
    try:
        config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
        ReadyServer(config, lambda: on_ready and on_ready(url_of(sock))).run(sockets=[sock])
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(timeout=5)
        sock.close()


@dataclass(frozen=True)
class AppSpec:
    """What a worker process needs to build the application itself: plain, picklable
    settings rather than an application (which holds open indexes and models)."""

    location: str
    embedder: str | None = None
    security: Security = Security()
    llm: str | None = None
    model: str | None = None
    strategy: str | None = None

    def build(self) -> Any:
        from kenning.answer.answerer import Answering

        from .app import create_app

        answering = Answering(self.location, self.llm, self.model, self.strategy)
        return create_app(
            self.location, embedder=self.embedder, security=self.security, answering=answering
        )


def default_workers(llm: str | None) -> int:
    """One worker per usable core, but one in all when answers come from a local model:
    every worker would load its own copy (1-2 GB each) and the copies would share the
    same cores anyway."""
    return 1 if (llm or "") == "local" else usable_cores()


def serve_workers(
    spec: AppSpec,
    workers: int,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    on_ready: Callable[[str], None] | None = None,
    watch_index: tuple[str | Path, str | None] | None = None,
    ready_timeout: float = 300.0,
) -> None:
    """Serve the application ``spec`` builds from ``workers`` processes sharing one socket,
    until interrupted (Ctrl-C or SIGTERM stops every worker). ``on_ready`` gets the URL
    once every worker has warmed up and accepts requests. A worker that dies is replaced.
    Each gets ``KENNING_THREADS`` = its share of the cores, so N workers start as many
    threads in all as one would."""
    with Index.open(spec.location, embedder=spec.embedder, create=False):
        pass  # a missing or unusable index is one clear error here, not one per worker
    sock = bind(host, port)
    url = url_of(sock)
    stop = threading.Event()
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    threads = str(max(1, usable_cores() // workers))

    def start(n: int) -> tuple[Any, Any]:
        ready = context.Event()
        process = context.Process(
            target=_worker,
            args=(spec, sock, log_level, ready, threads),
            name=f"kenning-worker-{n}",
        )
        process.start()
        return process, ready

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    pool: list[tuple[Any, Any]] = []
    watcher = None
    try:
        pool = [start(n) for n in range(workers)]
        deadline = time.monotonic() + ready_timeout
        while not all(ready.is_set() for _, ready in pool):
            dead = [p for p, _ in pool if not p.is_alive()]
            if dead:
                raise ConfigError(
                    f"kenning serve: worker {dead[0].name} exited with code "
                    f"{dead[0].exitcode} while starting (run with --workers 1 to see why)"
                )
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"kenning serve: the workers did not start in {ready_timeout:.0f} s"
                )
            time.sleep(0.05)
        watcher = start_watch(*watch_index, stop) if watch_index else None
        if on_ready:
            on_ready(url)
        while True:
            for n, (process, _) in enumerate(pool):
                if not process.is_alive():
                    log.warning(
                        "%s exited (code %s); starting another", process.name, process.exitcode
                    )
                    pool[n] = start(n)
            time.sleep(0.5)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()
        for process, _ in pool:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGINT)  # uvicorn's graceful shutdown
        for process, _ in pool:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        if watcher is not None:
            watcher.join(timeout=5)
        sock.close()


def _worker(spec: AppSpec, sock: socket.socket, log_level: str, ready: Any, threads: str) -> None:
    """One worker process: build the application, serve the shared socket, say when ready."""
    os.environ["KENNING_THREADS"] = threads
    config = uvicorn.Config(spec.build(), log_level=log_level, timeout_graceful_shutdown=5)
    try:
        ReadyServer(config, ready.set).run(sockets=[sock])
    except KeyboardInterrupt:  # the parent's Ctrl-C reaches the whole process group
        pass


class ReadyServer(uvicorn.Server):
    """uvicorn's server, calling ``started`` once the application has started (its lifespan
    has loaded the models) and the server accepts requests: only then is it ready."""

    def __init__(self, config: uvicorn.Config, started: Callable[[], object]) -> None:
        super().__init__(config)
        self._started = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self._started()


def start_watch(
    location: str | Path, embedder: str | None, stop: threading.Event
) -> threading.Thread:
    """`kenning watch` in a daemon thread with its own index, until ``stop`` is set."""

    def run() -> None:
        try:
            with Index.open(location, embedder=embedder, create=False) as index:
                watch(index, stop_event=stop)
        except Exception:
            log.exception("kenning watch stopped")

    thread = threading.Thread(target=run, name="kenning-watch", daemon=True)
    thread.start()
    return thread


class BackgroundServer:
    """A real uvicorn server for ``app`` on loopback, in a thread: for tests and benchmarks.

    with BackgroundServer(create_app(path)) as server:
        httpx2.get(server.url + "/api/status")
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        sock = bind(self.host, self.port)
        self.url = url_of(sock)
        config = uvicorn.Config(self.app, log_level=self.log_level, timeout_graceful_shutdown=2)
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="kenning-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
