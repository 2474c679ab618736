"""Running the application: `kenning serve` in the foreground, ``BackgroundServer`` in a thread.

Both bind their socket before uvicorn starts, so a port in use is a clear ``ConfigError``
(exit code 2) and a test can ask for port 0 and learn which free port it got. ``--watch``
keeps the index in step with the files from a thread of its own, with its own ``Index``,
while the server answers.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from kenning.errors import ConfigError
from kenning.index import Index
from kenning.index.watch import watch

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
