"""``IndexPool``: indexes for a server that answers many requests at once.

An ``Index`` is not meant to be shared between threads: it holds one SQLite connection, search
caches that a query may rebuild, and an embedder whose tokenizer is not safe to use from two
threads at once. FastAPI runs each request in a worker thread, so every request *borrows* an
``Index`` of its own for its whole duration and gives it back. The pool opens indexes on demand,
up to ``size`` (each with its own connection, caches and embedder), so memory stays bounded and
two cores are not oversubscribed; further requests wait for one to come back.

A borrowed index reads inside one read transaction (``Store.snapshot``: SQLite's WAL mode, or
PostgreSQL's repeatable read): the request sees a single snapshot of the index, so a sync that
commits meanwhile never shows it half an edited note or a hit whose chunk has just been
deleted. Writes (``sync``) go through one separate index, one at a time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kenning.errors import KenningError
from kenning.index import Index

#: indexes open at once by default: enough to overlap SQLite and numpy work on small machines
POOL_SIZE = 4


class Busy(KenningError):
    """The one writer is taken: another sync is running (HTTP 409)."""


class IndexPool:
    """Up to ``size`` indexes on ``location``, lent to one request at a time."""

    def __init__(
        self, location: str | Path, size: int = POOL_SIZE, embedder: str | None = None
    ) -> None:
        if size < 1:
            raise ValueError("an index pool needs at least one index")
        self.location, self.size, self.embedder = str(location), size, embedder
        self._idle: queue.LifoQueue[Index] = queue.LifoQueue()
        self._all: list[Index] = []
        self._made = 1
        self._lock = threading.Lock()
        self._writer: Index | None = None
        self._write_lock = threading.Lock()
        self._idle.put(self._open())  # fails now, not at the first request, if the index is bad

    def _open(self) -> Index:
        index = Index.open(self.location, embedder=self.embedder, create=False)
        with self._lock:
            self._all.append(index)
        return index

    def _take(self) -> Index:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = self._made < self.size
            self._made += grow
        if not grow:
            return self._idle.get()  # wait for one to come back
        try:
            return self._open()
        except BaseException:
            with self._lock:
                self._made -= 1
            raise

    @contextmanager
    def borrow(self) -> Iterator[Index]:
        """An index for this thread alone, reading one snapshot of the file."""
        index = self._take()
        try:
            with index.store.snapshot():
                yield index
        finally:
            self._idle.put(index)

    @contextmanager
    def writer(self) -> Iterator[Index]:
        """The index that writes (syncs); raises ``Busy`` while another write runs."""
        if not self._write_lock.acquire(blocking=False):
            raise Busy("a sync is already running; try again when it has finished")
        try:
            if self._writer is None:
                self._writer = Index.open(self.location, embedder=self.embedder, create=False)
            yield self._writer
        finally:
            self._write_lock.release()

    def warm(self) -> None:
        """Load what the first request needs now, so that it waits no longer than the tenth:
        the first index's embedder for queries and for an answer's sentences (their ONNX
        sessions), and its search (keyword and vector indexes read into memory)."""
        with self.borrow() as index:
            index.search("warm up", k=1)
            index.embedder.embed_now(["Warm up the path an answer's sentences take."])

    def close(self) -> None:
        with self._lock:
            indexes, self._all = self._all, []
        for index in indexes:
            index.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
