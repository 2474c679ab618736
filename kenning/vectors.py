"""Dense search over chunk vectors, behind a ``VectorIndex`` with two required methods.

``exact`` scans all vectors with one matrix product: exact, no build, fine to ~50k chunks.
``hnsw`` (usearch) answers in well under a millisecond at 100k chunks; it is saved beside
the database and brought up to date incrementally (added and removed keys), so it can always
be rebuilt from the database and never disagrees with it for long. Both hold the vectors,
so a filtered search over a small subset is always exact.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .registry import Registry

vector_indexes: Registry[VectorIndex] = Registry("vector index", "kenning.vector_indexes")

#: ``auto`` switches from exact search to HNSW above this many chunks
HNSW_THRESHOLD = 20_000


class VectorIndex(ABC):
    """Nearest neighbours by inner product over unit vectors (= cosine)."""

    def __init__(self, path: Path | None = None, tag: str = "") -> None:
        """``path``: where a persistent index may keep its file; ``tag``: the embedder id."""
        self.path, self.tag = path, tag
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)

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
        if len(self.ids) == 0 or k <= 0:
            return []
        if allowed is not None:
            mask = np.isin(self.ids, allowed)
            return _top(self.ids[mask], self.matrix[mask] @ query, k)
        ids, scores = self._search(query, k)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]


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
        self.ids, self.matrix = ids, np.ascontiguousarray(matrix, dtype=np.float32)

    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        top = _top(self.ids, self.matrix @ query, k)
        return np.array([t[0] for t in top]), np.array([t[1] for t in top])


@vector_indexes.register("hnsw")
class HNSWIndex(VectorIndex):
    """usearch HNSW, persisted to ``path`` and synced to the database by key differences."""

    connectivity = 16
    expansion_add = 128
    expansion_search = 256

    def __init__(self, path: Path | None = None, tag: str = "") -> None:
        super().__init__(path, tag)  # the tag keeps another embedder's graph from being reused
        self.index: object | None = None

    def _new(self, dim: int) -> object:
        Index = _usearch_index()  # noqa: N806

        return Index(
            ndim=dim,
            metric="ip",
            dtype="f32",
            connectivity=self.connectivity,
            expansion_add=self.expansion_add,
            expansion_search=self.expansion_search,
        )

    def _stamp_path(self) -> Path | None:
        return self.path.with_name(self.path.name + ".json") if self.path else None

    def build(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        self.ids, self.matrix = ids, np.ascontiguousarray(matrix, dtype=np.float32)
        if len(ids) == 0:
            self.index = None
            return
        dim = self.matrix.shape[1]
        index = self._load(dim)
        if index is None:
            index = self._new(dim)
            index.add(ids, self.matrix)  # type: ignore[attr-defined]
        else:
            have = np.asarray(index.keys, dtype=np.int64)  # type: ignore[attr-defined]
            stale = np.setdiff1d(have, ids)
            for key in stale:
                index.remove(int(key))  # type: ignore[attr-defined]
            new = ~np.isin(ids, have)
            if new.any():
                index.add(ids[new], self.matrix[new])  # type: ignore[attr-defined]
            if not len(stale) and not new.any():
                self.index = index
                return
        self.index = index
        self._save()

    def _load(self, dim: int) -> object | None:
        stamp = self._stamp_path()
        if self.path is None or stamp is None or not self.path.exists() or not stamp.exists():
            return None
        try:
            meta = json.loads(stamp.read_text())
            if meta.get("dim") != dim or meta.get("tag") != self.tag:
                return None
            index = self._new(dim)
            index.load(str(self.path))  # type: ignore[attr-defined]
            return index
        except (OSError, ValueError, RuntimeError):
            return None  # a damaged file is rebuilt from the database

    def _save(self) -> None:
        stamp = self._stamp_path()
        if self.path is None or stamp is None or self.index is None:
            return
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        self.index.save(str(tmp))  # type: ignore[attr-defined]
        os.replace(tmp, self.path)
        stamp.write_text(
            json.dumps({"dim": int(self.matrix.shape[1]), "tag": self.tag, "count": len(self.ids)})
        )

    def _search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        self.index.expansion_search = max(self.expansion_search, 2 * k)  # type: ignore[attr-defined]
        m = self.index.search(query.astype(np.float32), k)  # type: ignore[attr-defined]
        return np.asarray(m.keys, dtype=np.int64), 1.0 - np.asarray(m.distances)


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


def make_vector_index(name: str, size: int, path: Path | None, tag: str) -> VectorIndex:
    """Build the named index; ``auto`` picks exact or HNSW by collection size."""
    if name == "auto":
        name = "hnsw" if size >= HNSW_THRESHOLD else "exact"
    return vector_indexes.get(name)(path, tag)
