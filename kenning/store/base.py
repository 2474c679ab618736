"""The ``Store`` interface: everything an index persists, and the rows it hands back.

A store holds roots, sources, chunks, embeddings keyed by chunk hash, and a keyword index
kept in the same transaction as the chunks it mirrors. Search, sync and the CLI talk only to
this interface, so a server-side database can stand in for the default SQLite file. Filters
are applied by the store itself (in SQL), never by loading every source into Python.
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kenning.filters import Filters
from kenning.registry import Registry
from kenning.text.chunking import Chunk
from kenning.text.links import Link

#: store backends by URL scheme (plugins: entry-point group ``kenning.stores``)
stores: Registry[Store] = Registry("store", "kenning.stores")


@dataclass
class SourceRow:
    """What the index knows about one file."""

    id: int
    path: str
    root: str
    size: int
    mtime_ns: int
    hash: str
    type: str
    status: str  # "ok", "warning", "stale" (last good version kept) or "failed"
    error: str | None
    title: str
    metadata: dict[str, Any]
    #: the note's outgoing links, written with its chunks (None: none read)
    links: list[Link] | None = None


@dataclass
class ChunkRow:
    """A stored chunk joined with its source, as search returns it."""

    id: int
    source_id: int
    path: str
    title: str
    type: str
    start: int
    end: int
    heading: str
    page: int | None
    text: str
    hash: str
    tags: list[str] = field(default_factory=list)  # the source's tags (front matter, inline)


@dataclass
class StoredChunk(Chunk):
    """A chunk read back from a store (``Store.dump``): it keeps the hash it was stored
    under, so its vector and the chunks that share it are found again after a copy."""

    key: str = ""

    @property
    def hash(self) -> str:
        return self.key


class Lock:
    """An advisory lock held by this process until ``release`` (or until it dies)."""

    def release(self) -> None:  # noqa: B027 - the null lock has nothing to release
        """Let the next holder in."""


class FileLock(Lock):
    """A lock file beside the index, held by ``filelock`` (``flock`` on POSIX, ``msvcrt``
    locking on Windows): the operating system drops it when its holder dies, even by
    SIGKILL, so a stale lock never blocks the next process."""

    def __init__(self, held: Any) -> None:
        self.held = held  # a filelock.FileLock, acquired

    def release(self) -> None:
        if self.held.is_locked:
            self.held.release()


class Store(ABC):
    """Persistent state of one index. Every write method is atomic.

    ``location`` is what the user named (a path or URL), shown in messages and status.
    ``side_path`` is a local file prefix where search caches (HNSW graph, in-memory BM25)
    may live, or None when the store has no local folder.
    """

    location: str = ""

    @property
    def address(self) -> str:
        """What reopens this store in another process: ``location``, except where that hides
        a secret (a server URL's password is left out of ``location``)."""
        return self.location

    @classmethod
    @abstractmethod
    def open_location(cls, location: str, create: bool = True) -> Store:
        """Open the store a path or URL names; without ``create``, raise ``NotFound``
        instead of making an empty one."""

    #: True when the store ranks vectors and keywords itself (a server database); the
    #: searcher then asks it instead of loading every vector into this process
    searches_itself: bool = False

    @property
    def side_path(self) -> str | None:
        return None

    def cache_prefix(self) -> str | None:
        """A local file prefix where this process may keep search caches built from the
        store (the in-memory BM25): ``side_path``, or for a server database a name in the
        user's cache folder that only this database maps to."""
        return self.side_path

    def lock(self, name: str, wait: bool = True) -> Lock | None:
        """An advisory lock shared by every process using this index (``embed``, or
        ``sync:<root>``). Without ``wait``, None when another process holds it.

        The default is a lock file beside the index; a store without a local folder has no
        lock (a server database overrides this with its own locks).
        """
        side = self.side_path
        if side is None:
            return Lock()
        import filelock  # only a process that locks pays its import

        slug = name if re.fullmatch(r"\w+", name) else hashlib.sha1(name.encode()).hexdigest()[:16]
        # not thread-local: a lock may be released by another thread than took it
        held = filelock.FileLock(f"{side}.{slug}.lock", thread_local=False)
        try:
            held.acquire(blocking=wait)
        except OSError:  # filelock.Timeout (held elsewhere) is one
            return None
        return FileLock(held)

    @contextmanager
    def locked(self, names: Iterable[str]) -> Iterator[None]:
        """Hold several locks, taken in sorted order so two processes never deadlock."""
        held: list[Lock] = []
        try:
            for name in sorted(set(names)):
                lock = self.lock(name)
                assert lock is not None  # a waiting lock is always granted
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the body in one read transaction, so all its queries see the same committed
        state: a sync that commits meanwhile never shows it half an edited note."""
        yield

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Wrap a large load (a migration, a benchmark build) so the store can defer work
        it does faster in one go, such as building a vector index."""
        yield

    def size_bytes(self) -> int:
        """What the index takes on disk, caches included."""
        side = self.side_path
        if side is None:
            return 0
        return sum(
            os.path.getsize(side + suffix)
            for suffix in ("", "-wal", "-shm", ".vectors.npy", ".hnsw", ".bm25.npz")
            if os.path.exists(side + suffix)
        )

    # -- the change log ----------------------------------------------------------------
    #
    # Searchers keep caches built from the chunks (in-memory BM25, an HNSW graph). A store
    # tells them what changed since the position they last read, so they update in place.
    # The default has no log: its position is the ``generation`` counter, and any move of it
    # means "rebuild" (None); the SQL stores keep a real log (the ``changes`` table).

    def change_position(self) -> int:
        """Where the change log stands now: a cache built from the store as it is now
        reflects every change up to here."""
        return int(self.get_meta("generation") or 0)

    def changes_since(self, seq: int) -> list[tuple[int, int, str]] | None:
        """The (seq, chunk id, ``add`` or ``delete``) changes after ``seq``, oldest first;
        None when they are no longer all known (compacted away), so the reader rebuilds.
        Read both this and the chunks it names inside one ``snapshot``."""
        return [] if seq == self.change_position() else None

    def compact_changes(self, keep: int = 0) -> int:
        """Delete all but the newest ``keep`` changes; readers behind them rebuild. Returns
        how many were deleted."""
        return 0

    @abstractmethod
    def named(self, key: str) -> list[tuple[str, str]]:
        """(path, name) of the sources that have a name whose folded form is ``key``
        (``kenning.text.names``), failed ones aside, in path order."""

    def keyword_rows_for(self, ids: Sequence[int]) -> Iterator[tuple[int, str]]:
        """(chunk id, keyword text) of those of ``ids`` that exist, ids ascending."""
        wanted = set(ids)
        return ((i, body) for i, body in self.keyword_rows() if i in wanted)

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids ascending, float32 rows) of those of ``ids`` that exist and have a vector."""
        all_ids, matrix = self.vectors()
        rows = np.flatnonzero(np.isin(all_ids, np.asarray(list(ids), dtype=np.int64)))
        return all_ids[rows], np.asarray(matrix[rows], dtype=np.float32)

    def vector_search(
        self, query: np.ndarray, k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine), for stores that ``searches_itself``; only among the
        chunks ``scope`` allows, when given."""
        raise NotImplementedError(f"{type(self).__name__} keeps no vector index of its own")

    @abstractmethod
    def meta(self) -> dict[str, str]:
        """Every setting the index keeps (embedder, chunking, generations...), for copying."""

    @abstractmethod
    def dump(self, paths: Sequence[str]) -> list[tuple[SourceRow, list[Chunk]]]:
        """These sources with their chunks as stored (the indexed text as ``body``, so each
        chunk keeps its hash), for copying an index without re-reading or re-embedding.
        Paths not (or no longer) indexed are left out: a source removed while a copy runs
        is simply not copied."""

    @abstractmethod
    def vectors_for(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these chunk hashes (missing ones are left out)."""

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...
    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...
    @abstractmethod
    def roots(self) -> list[str]: ...
    @abstractmethod
    def add_root(self, path: str) -> None: ...
    @abstractmethod
    def remove_root(self, path: str) -> list[str]:
        """Drop a root and its sources; returns the paths dropped."""

    @abstractmethod
    def links_from(self, path: str) -> list[Link]:
        """A source's outgoing links, in the order written (none for a path not indexed)."""

    @abstractmethod
    def links_to(self, names: Iterable[str]) -> list[tuple[str, Link]]:
        """(source path, link) of every link whose target's file name, lower-cased and
        without ``.md`` (``link_name``), is one of ``names``: the candidates for backlinks."""

    @abstractmethod
    def sources(self) -> dict[str, SourceRow]:
        """Every source by path (for sync, which compares them with the disk)."""

    @abstractmethod
    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        """The subset of chunk hashes that already have an embedding."""

    @abstractmethod
    def write_sources(
        self,
        sources: Sequence[tuple[SourceRow, list[Chunk] | None]],
        vectors: dict[str, np.ndarray],
    ) -> None:
        """Upsert sources; a chunk list replaces that source's chunks and links (None keeps
        them)."""

    @abstractmethod
    def pending(
        self, after: int, limit: int, everything: bool = False
    ) -> list[tuple[int, str, str]]:
        """Chunks still waiting for a vector: up to ``limit`` (chunk id, hash, indexed text)
        with id above ``after``, ascending, so the embedder can walk them in order while a
        sync keeps adding (new chunks get higher ids). ``everything`` lists embedded chunks
        too, for re-embedding the whole index with another model."""

    @abstractmethod
    def pending_count(self) -> int:
        """How many distinct chunk texts are still waiting for a vector."""

    @abstractmethod
    def write_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors by chunk hash, in one transaction (hashes already stored are kept)."""

    @abstractmethod
    def replace_vectors(self, vectors: dict[str, np.ndarray], embedder: str) -> None:
        """Swap every stored vector for ``vectors`` and record ``embedder`` (the ``embedder``
        meta JSON) in one transaction, so an index re-embedded by another model (``kenning
        tune``) never holds a mix of two models' vectors, even when killed half-way."""

    @abstractmethod
    def delete_sources(self, paths: Iterable[str]) -> int: ...
    @abstractmethod
    def reset(self) -> None:
        """Forget all sources, chunks and vectors but keep the roots (for re-embedding)."""

    @abstractmethod
    def move_source(self, old: str, new: str, root: str, size: int, mtime_ns: int) -> None: ...
    @abstractmethod
    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All (chunk ids, float32 matrix) pairs, for building vector indexes."""

    @abstractmethod
    def keyword_search(
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        """BM25 top-k as (chunk id, score), higher is better; any term may match; only
        among the chunks ``scope`` allows, when given."""

    @abstractmethod
    def keyword_rows(self) -> Iterator[tuple[int, str]]:
        """(chunk id, keyword-indexed text) of every chunk, for in-memory keyword indexes."""

    @abstractmethod
    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]: ...
    @abstractmethod
    def chunk_ids(self, filters: Filters | None = None) -> np.ndarray:
        """Ids of the chunks whose source passes ``filters`` (all chunks if None), ascending."""

    def chunks_among(self, ids: Sequence[int], filters: Filters) -> np.ndarray:
        """Those of ``ids`` whose source passes ``filters``, ascending: a broad filter is
        tested on a ranking's candidates instead of listing every chunk it allows."""
        return np.intersect1d(np.asarray(ids, dtype=np.int64), self.chunk_ids(filters))

    def filter_share(self, filters: Filters) -> float:
        """The share of the chunks that ``filters`` allows; a store may estimate it from a
        sample (the search planner only compares it with thresholds)."""
        total = self.chunk_count()
        return len(self.chunk_ids(filters)) / total if total else 0.0

    @abstractmethod
    def chunk_count(self) -> int: ...
    @abstractmethod
    def gc_embeddings(self) -> int:
        """Drop embeddings no chunk refers to any more; returns how many."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts of sources, chunks and embeddings, and the files with problems."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Scope:
    """The chunks a filtered search may return: the store works them out once, on demand,
    and both rankings (keyword and dense, in memory or in the store) take them from here,
    so a search evaluates its filter once."""

    def __init__(self, store: Store, filters: Filters) -> None:
        self.store, self.filters = store, filters
        self._ids: np.ndarray | None = None
        self._share: float | None = None

    def chunk_ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = self.store.chunk_ids(self.filters)
        return self._ids

    def share(self) -> float:
        """The share of chunks the filter allows, as the store estimates it without listing
        them (once per search: the planner asks before it lists anything)."""
        if self._share is None:
            self._share = self.store.filter_share(self.filters)
        return self._share

    def among(self, ids: Sequence[int]) -> np.ndarray:
        """Those of ``ids`` the filter allows, ascending, without listing the rest."""
        if self._ids is not None:
            return np.intersect1d(np.asarray(ids, dtype=np.int64), self._ids)
        return self.store.chunks_among(ids, self.filters)
