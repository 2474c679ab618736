"""Dense search over chunk vectors, behind a ``VectorIndex`` with two required methods.

``exact`` scans all vectors, block by block: exact, no build, fine to ~50k chunks.
``hnsw`` (usearch) answers in about 2 ms at 1M chunks (recall@10 0.95); it is saved beside the
database and brought up to date incrementally (added and removed keys), so it can always be
rebuilt from the database and never disagrees with it for long. A running searcher applies
the store's change log (``catch_up``): added chunks' vectors go into the graph (``add``),
deleted ones out of it (``remove``), with no rebuild. Once up to date it is
memory-mapped (usearch ``view``), not read into RAM: pages come in as searches touch them and
are shared by every process that searches the same index. The graph keeps its own copy of
the vectors in float16 (``HNSWIndex.dtype``: recall@10 against exact search measured by
``benchmarks/scale.py``), and its candidates are re-scored with the float32 vectors.

Both keep the store's float32 matrix as given, which may be a memory-mapped file
(``SQLiteStore.vectors``): a filtered search over a subset, and exact search, read it in
blocks, so neither ever needs the whole matrix in RAM at once.
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import usable_cores
from kenning.registry import Registry
from kenning.store.base import Store
from kenning.store.matrix import STAMP_BYTES

from .changelog import apply_log

vector_indexes: Registry[VectorIndex] = Registry("vector index", "kenning.vector_indexes")

#: ``auto`` switches from exact search to HNSW above this many chunks
HNSW_THRESHOLD = 20_000
#: rows per block of exact search: bounds the float32 temporaries (~25 MB at 384-d)
BLOCK = 16_384
#: fewest rows worth a thread of their own in exact search
SPLIT = 2_048
#: a filtered search reads up to this many allowed rows exactly; more walk the HNSW graph
#: for ``OVERSAMPLE`` times the neighbours the filter's share implies (docs/benchmarks.md,
#: "Filtered queries on both stores")
EXACT_ROWS = 100_000
OVERSAMPLE = 4
#: changes a memory-mapped HNSW graph keeps beside it before it is copied into memory
OVERLAY_MOST = 10_000


class VectorIndex(ABC):
    """Nearest neighbours by inner product over unit vectors (= cosine)."""

    def __init__(self, path: Path | None = None, tag: str = "") -> None:
        """``path``: where a persistent index may keep its file; ``tag``: the embedder id."""
        self.path, self.tag = path, tag
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        #: the position of the store's change log this index reflects
        self.seq = 0
        #: changes applied since ``build``: which built rows are still there (None: all),
        #: and the (ids ascending, float32 rows) of chunks added since
        self.alive: np.ndarray | None = None
        self.extra: tuple[np.ndarray, np.ndarray] = (
            np.zeros(0, dtype=np.int64),
            np.zeros((0, 0), dtype=np.float32),
        )
        self._lock = threading.RLock()

    @property
    def count(self) -> int:
        """Vectors searched: the built ones still there and those added since."""
        built = len(self.ids) if self.alive is None else int(np.count_nonzero(self.alive))
        return built + len(self.extra[0])

    @abstractmethod
    def build(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        """Index these (chunk id, vector) pairs, replacing what was there."""

    @abstractmethod
    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over everything, as (ids, scores) with the best first."""

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine) pairs, optionally only among ``allowed`` chunk ids."""
        if self.count == 0 or k <= 0:
            return []
        if allowed is not None:
            keep = np.isin(self.ids, allowed)
            if self.alive is not None:
                keep &= self.alive
            found = self._filtered(query, k, keep) if keep.any() else []
            xids, xrows = self.extra
            if len(xids):  # chunks added since the build: exact, beside
                found = _merge(found + _exact(xids, xrows, query, k, np.isin(xids, allowed)), k)
            return found
        ids, scores = self._search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def _filtered(self, query: np.ndarray, k: int, keep: np.ndarray) -> list[tuple[int, float]]:
        """Top-k among the rows ``keep`` marks: exact; an index with a graph may walk it
        when the filter leaves many rows."""
        return _exact(self.ids, self.matrix, query, k, keep)

    def catch_up(self, store: Store) -> bool:
        """Apply the changes the store logged since ``seq``; False when they were compacted
        away: rebuild."""

        def apply(touched: list[int]) -> None:
            ids, matrix = store.vectors_of(touched)
            self.apply(np.array(touched, dtype=np.int64), ids, matrix)

        return apply_log(self, store, apply)

    def apply(self, touched: np.ndarray, ids: np.ndarray, matrix: np.ndarray) -> None:
        """Bring the index to the store's state for the chunks ``touched``: ``ids`` and
        ``matrix`` are those of them that have a vector now; the others are removed. A
        chunk's vector never changes under its id (a new embedder rebuilds), so one already
        here stays."""
        gone = touched[self._holds(touched) & ~np.isin(touched, ids)]
        new = ~self._holds(ids)
        ids, matrix = ids[new], _as_f32(matrix[new]) if new.any() else matrix[:0]
        xids, xrows = self.extra
        if len(gone):
            self._remove(gone)
            built = np.isin(gone, self.ids)
            if built.any():
                alive = np.ones(len(self.ids), dtype=bool) if self.alive is None else self.alive
                alive = alive.copy()
                alive[self._row(gone[built])] = False
                self.alive = alive
            keep = ~np.isin(xids, gone)
            xids, xrows = xids[keep], xrows[keep]
        if len(ids):
            self._add(ids, matrix)
            xrows = matrix if len(xids) == 0 else np.concatenate([xrows, matrix])
            xids = np.concatenate([xids, ids])
            order = np.argsort(xids, kind="stable")
            xids, xrows = xids[order], xrows[order]
        self.extra = (xids, xrows)

    def _holds(self, ids: np.ndarray) -> np.ndarray:
        """Per id: whether the index holds it now."""
        built = np.isin(ids, self.ids)
        if self.alive is not None and built.any():
            built[built] = self.alive[self._row(ids[built])]
        return built | np.isin(ids, self.extra[0])

    def _row(self, ids: np.ndarray) -> np.ndarray:
        """The built rows of these built ids (sorted ids: ``build`` keeps them so)."""
        return np.searchsorted(self.ids, ids)

    def _add(self, ids: np.ndarray, matrix: np.ndarray) -> None:  # noqa: B027 - a graph's hook
        """Put added vectors into the index's own structure (exact search has none)."""

    def _remove(self, ids: np.ndarray) -> None:  # noqa: B027 - a graph's hook
        """Take deleted ids out of the index's own structure."""


def _merge(found: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    """The top k of (id, score) pairs from several searches, best first, lower ids first
    among ties."""
    return sorted(found, key=lambda f: (-f[1], f[0]))[:k]


def _exact(
    ids: np.ndarray, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """Exact top-k by inner product, a block of rows at a time (``matrix`` may be a memory
    map: only the rows in ``mask`` are read, and never more than ``BLOCK`` at once).

    One BLAS thread per block, and the blocks shared among one thread per core: a
    matrix-vector product is bound by memory, and OpenBLAS's own idle threads spin for a
    while after it, on the cores the next query's embedding needs (7.0 against 9.2 ms), so
    one BLAS thread was about 1 ms faster per query; splitting the rows between the cores
    then read SciFact's 12.6k vectors in 1.6 ms instead of 2.7.
    """
    with _one_blas_thread():
        return _exact_top(ids, matrix, np.asarray(query, dtype=np.float32), k, mask)


def _one_blas_thread() -> Any:
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


_BLAS: Any = None


def _exact_top(
    ids: np.ndarray, matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None
) -> list[tuple[int, float]]:
    n = len(ids)  # numpy releases the GIL while it multiplies, so the threads overlap
    size = min(BLOCK, max(SPLIT, -(-n // usable_cores())))
    blocks = [(lo, min(lo + size, n)) for lo in range(0, n, size)]

    def scan(block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = block
        if mask is None:
            rows, part = np.arange(lo, hi), matrix[lo:hi]
        else:
            rows = lo + np.flatnonzero(mask[lo:hi])
            if len(rows) == 0:
                return rows, np.zeros(0, dtype=np.float32)
            part = matrix[rows] if len(rows) < hi - lo else matrix[lo:hi]
        scores = np.asarray(part, dtype=np.float32) @ query
        if len(rows) > k:
            keep = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[keep], scores[keep]
        return ids[rows], scores

    if not blocks:
        return []
    threads = min(usable_cores(), len(blocks))
    shares = [blocks[i::threads] for i in range(threads)]  # one share a thread
    rest = _scanners().map(lambda share: [scan(b) for b in share], shares[1:])
    found = [scan(b) for b in shares[0]]  # the calling thread scans the first share
    for more in rest:
        found += more
    return _top(np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]), k)


@lru_cache(maxsize=1)
def _scanners() -> ThreadPoolExecutor:
    """Threads that scan blocks beside the calling thread: a pool of their own, so a scan
    never waits behind other work."""
    return ThreadPoolExecutor(
        max_workers=max(1, usable_cores() - 1), thread_name_prefix="kenning-scan"
    )


def _top(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    if len(ids) == 0:
        return []
    k = min(k, len(ids))
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in order]


@vector_indexes.register("exact")
class ExactIndex(VectorIndex):
    """Brute force with numpy: exact results, zero build time."""

    def build(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids, self.matrix = ids, _as_f32(matrix)

    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        top = _exact(self.ids, self.matrix, query, k, self.alive) if len(self.ids) else []
        xids, xrows = self.extra
        if len(xids):
            top = _merge(top + _exact(xids, xrows, query, k), k)
        return np.array([t[0] for t in top], dtype=np.int64), np.array([t[1] for t in top])


def _as_f32(matrix: np.ndarray) -> np.ndarray:
    """The matrix as float32 rows, without copying one that already is (a memory map)."""
    if matrix.dtype == np.float32 and matrix.flags.c_contiguous:
        return np.asarray(matrix)  # a plain view of a memory map: no per-access overhead
    return np.ascontiguousarray(matrix, dtype=np.float32)


@vector_indexes.register("hnsw")
class HNSWIndex(VectorIndex):
    """usearch HNSW, persisted to ``path`` and synced to the database by key differences.

    An up-to-date file is memory-mapped (``view``); only a change loads it into RAM, where it
    is updated, saved, and mapped again.
    """

    #: links per node, and candidates searched: at 1M chunks with many near duplicates
    #: (benchmarks/scale.py), 16 and 256 found 68% of the exact top 10, 16 and 1024 77%,
    #: 32 and 256 93%, 32 and 512 95%, 32 and 1024 97%, 32 and 2048 99% (2.2 ms against
    #: 1.3 at 512, on an AVX-512 machine; a broad filter's candidates, taken from the top
    #: few hundred, need the breadth most); 32 costs ~130 bytes a chunk more than 16
    connectivity = 32
    expansion_add = 128
    expansion_search = 2048
    #: the scalar type of the graph's own copy of the vectors (the search ranks by it; the
    #: float32 vectors then re-score its candidates)
    dtype = "f16"

    def __init__(self, path: Path | None = None, tag: str = "") -> None:
        super().__init__(path, tag)  # the tag keeps another embedder's graph from being reused
        self.index: object | None = None
        self._viewed = False  # whether ``index`` is a memory map of the file (read-only)
        self._rows: np.ndarray | None = None  # row of each id when ids are not sorted

    def _new(self, dim: int) -> object:
        Index = _usearch_index()  # noqa: N806

        return Index(
            ndim=dim,
            metric="ip",
            dtype=self.dtype,
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )

    def _stamp_path(self) -> Path | None:
        return self.path.with_name(self.path.name + ".json") if self.path else None

    def _meta(self, dim: int) -> dict[str, object]:
        return {"dim": dim, "tag": self.tag, "dtype": self.dtype, "m": self.connectivity}

    def build(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids, self.matrix = ids, _as_f32(matrix)
        sorted_ids = len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))
        self._rows = None if sorted_ids else np.argsort(ids, kind="stable")
        if len(ids) == 0:
            self.index, self._viewed = None, False
            return
        dim = self.matrix.shape[1]
        view = self._open(dim, view=True)
        if view is not None:
            have = np.asarray(view.keys, dtype=np.int64)  # type: ignore[attr-defined]
            if len(have) == len(ids) and np.array_equal(np.sort(have), np.sort(ids)):
                self.index, self._viewed = view, True
                return
            del view  # unmap before the file is replaced
        index = self._open(dim, view=False)
        if index is None:
            index = self._new(dim)
            index.add(ids, self.matrix)  # type: ignore[attr-defined]
        else:
            have = np.asarray(index.keys, dtype=np.int64)  # type: ignore[attr-defined]
            stale = np.setdiff1d(have, ids)
            if len(stale):
                index.remove(stale)  # type: ignore[attr-defined]
            new = ~np.isin(ids, have)
            if new.any():
                index.add(ids[new], self.matrix[new])  # type: ignore[attr-defined]
        self.index, self._viewed = index, False
        if self._save():
            # map the saved file instead of keeping the graph in RAM
            view = self._open(dim, view=True)
            if view is not None:
                self.index, self._viewed = view, True

    def _open(self, dim: int, view: bool) -> object | None:
        """The saved graph, mapped (``view``) or loaded; None when missing, stale or damaged."""
        stamp = self._stamp_path()
        if self.path is None or stamp is None or not self.path.exists() or not stamp.exists():
            return None
        try:
            meta = json.loads(stamp.read_text())
            if any(meta.get(key) != value for key, value in self._meta(dim).items()):
                return None
            index = self._new(dim)
            if view:
                index.view(str(self.path))  # type: ignore[attr-defined]
            else:
                index.load(str(self.path))  # type: ignore[attr-defined]
            return index
        except (OSError, ValueError, RuntimeError):
            return None  # a damaged file is rebuilt from the database

    def _save(self) -> bool:
        stamp = self._stamp_path()
        if self.path is None or stamp is None or self.index is None:
            return False
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        self.index.save(str(tmp))  # type: ignore[attr-defined]
        os.replace(tmp, self.path)
        meta = {**self._meta(int(self.matrix.shape[1])), "count": len(self.ids)}
        stamp.write_text(json.dumps(meta))
        return True

    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        index = self.index
        if index is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        query = np.asarray(query, dtype=np.float32)
        # a mapped graph holds exactly the built chunks: those deleted since are skipped
        # (so asked for beyond k), and those added since are searched exactly beside it
        dead = self._dead() if self._viewed else 0
        overlay = self._viewed and dead + len(self.extra[0]) > 0
        want = k + dead
        index.expansion_search = max(self.expansion_search, 2 * want)  # type: ignore[attr-defined]
        size = len(index)  # type: ignore[arg-type]
        if size == 0 or want <= 0:
            keys = np.zeros(0, dtype=np.int64)
        else:
            m = index.search(query, min(want, size))  # type: ignore[attr-defined]
            keys = np.asarray(m.keys, dtype=np.int64)
        if overlay and self.alive is not None:
            keys = keys[self.alive[self._row(keys)]]
        # Re-score the candidates with the float32 vectors: exact cosines, whatever the
        # graph's own precision (a handful of rows, even from a memory-mapped matrix); those
        # added since the build are in ``extra``.
        xids, xrows = self.extra
        added = np.isin(keys, xids)
        rows = np.sort(self._row(keys[~added]))
        new = np.sort(keys[added])
        found = np.concatenate([self.ids[rows], new])
        parts = [np.asarray(self.matrix[rows], dtype=np.float32)] if len(rows) else []
        if len(new):
            parts.append(xrows[np.searchsorted(xids, new)])
        scores = np.concatenate(parts) @ query if parts else np.zeros(0, dtype=np.float32)
        if overlay and len(xids):
            beside = _exact(xids, xrows, query, k)
            found = np.concatenate([found, np.array([i for i, _ in beside], dtype=np.int64)])
            scores = np.concatenate([scores, np.array([v for _, v in beside], dtype=np.float32)])
        order = np.lexsort((found, -scores))[:k]
        return found[order], scores[order]

    def _row(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, ids) if self._rows is None else self._row_of(ids)

    def _graph(self, dim: int) -> Any:
        """The graph, ready to change: a memory-mapped one is copied into RAM first (usearch
        cannot change a view, and removing from one crashes the process; the copy, not the
        file, which another process may have replaced since)."""
        if self.index is None:
            self.index = self._new(dim)
        elif self._viewed:
            self.index = self.index.copy()  # type: ignore[attr-defined]
        self._viewed = False
        return self.index

    def apply(self, touched: np.ndarray, ids: np.ndarray, matrix: np.ndarray) -> None:
        """A memory-mapped graph is left as it is: the chunks added since are searched
        exactly beside it (``extra``) and the deleted ones dropped from its results
        (``alive``), until they are more than ``OVERLAY_MOST``; only then is the graph copied
        into memory (1 GB and 0.6-1.9 s at 1M chunks) and changed there."""
        super().apply(touched, ids, matrix)
        if self._viewed and self._overlay() > OVERLAY_MOST:
            graph = self._graph(self.matrix.shape[1])  # a copy in RAM: no longer viewed
            if self.alive is not None:
                graph.remove(self.ids[~self.alive])  # type: ignore[attr-defined]
            xids, xrows = self.extra
            if len(xids):
                graph.add(xids, xrows)  # type: ignore[attr-defined]

    def _overlay(self) -> int:
        """Changes kept beside the graph: deleted built chunks and added ones."""
        return self._dead() + len(self.extra[0])

    def _dead(self) -> int:
        """Built chunks deleted since the build."""
        return 0 if self.alive is None else len(self.alive) - int(np.count_nonzero(self.alive))

    def _add(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        if not self._viewed:  # a mapped graph's additions stay in ``extra`` (``apply``)
            self._graph(matrix.shape[1]).add(ids, matrix)

    def _remove(self, ids: np.ndarray) -> None:
        if self.index is not None and not self._viewed:
            self._graph(0).remove(ids)

    def _filtered(self, query: np.ndarray, k: int, keep: np.ndarray) -> list[tuple[int, float]]:
        """The planner of a filtered search: exact over the allowed rows up to
        ``EXACT_ROWS`` of them (reading them costs less than a wide walk, and misses none);
        above, the graph's ``k * OVERSAMPLE / share`` nearest, of which the allowed ones
        are the answer when there are ``k`` (else exact after all)."""
        allowed = int(np.count_nonzero(keep))
        if allowed > EXACT_ROWS and self.index is not None:
            want = min(len(self.ids), int(np.ceil(k * OVERSAMPLE * len(self.ids) / allowed)))
            ids, scores = self._search(query, want)
            built = ~np.isin(ids, self.extra[0])  # those added since: searched beside
            ids, scores = ids[built], scores[built]
            rows = np.searchsorted(self.ids, ids) if self._rows is None else self._row_of(ids)
            hit = keep[rows]
            if np.count_nonzero(hit) >= k:
                top = zip(ids[hit][:k], scores[hit][:k], strict=True)
                return [(int(i), float(s)) for i, s in top]
        return _exact(self.ids, self.matrix, query, k, keep)

    def _row_of(self, keys: np.ndarray) -> np.ndarray:
        assert self._rows is not None
        return self._rows[np.searchsorted(self.ids[self._rows], keys)]


def _usearch_index() -> type:
    """Import usearch, loading onnxruntime first when it is installed.

    Importing onnxruntime (1.28 and 1.32 seen) *after* usearch 2.26 segfaults the process,
    while the opposite order works; the default embedder needs onnxruntime, so load it first.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    from usearch.index import Index

    return Index


def memory_estimate(chunks: int, dim: int, hnsw: bool | None = None) -> dict[str, int]:
    """Bytes the dense side of an index of ``chunks`` vectors of ``dim`` needs.

    ``vectors``: the float32 matrix (a memory-mapped file: resident only as far as searches
    touch it: re-scoring, filters, exact search); ``graph``: the HNSW file (memory-mapped,
    pages touched by searches stay resident), 0 when ``auto`` (``hnsw=None``) or the caller
    picks exact search. Measured against real files by tests/search/test_scale.py.
    """
    if hnsw is None:
        hnsw = chunks >= HNSW_THRESHOLD
    vectors = chunks * (dim * 4 + 8) + 128 + STAMP_BYTES
    scalar = {"f32": 4, "f16": 2, "bf16": 2, "i8": 1}.get(HNSWIndex.dtype, 4)
    # per node: its vector, its key, and its level-0 neighbour list (2 * connectivity slots of
    # 4 bytes plus a count), plus the upper levels (~1/connectivity of nodes, ~half as big)
    m = HNSWIndex.connectivity
    node = dim * scalar + 8 + (2 * m + 1) * 4 + (m * 4 + 8) // 2
    graph = chunks * node if hnsw and chunks else 0
    return {"vectors": vectors, "graph": graph}


def make_vector_index(name: str, size: int, path: Path | None, tag: str) -> VectorIndex:
    """Build the named index; ``auto`` picks exact or HNSW by collection size."""
    if name == "auto":
        name = "hnsw" if size >= HNSW_THRESHOLD else "exact"
    return vector_indexes.get(name)(path, tag)
