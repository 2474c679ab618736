"""``Index``: the one object the CLI, the Python API and the servers all drive.

    >>> from kenning import Index
    >>> index = Index.open("notes.db")            # the packaged MiniLM, offline
    >>> index.add(["~/notes"])                     # register a root and index it
    >>> hits = index.search("how do I rebase", k=5)

The file records which embedder built it; opening it with another raises
``EmbedderMismatch`` instead of mixing incompatible vectors.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .chunking import ChunkSpec
from .embedders import Embedder, get_embedder
from .errors import ConfigError, EmbedderMismatch, NotFound
from .filters import Filters
from .keywords import THRESHOLD as KEYWORD_THRESHOLD
from .keywords import BM25Index
from .loaders import MAX_FILE_BYTES
from .search import ALPHA, DEPTH, Hit, check_mode, fuse, query_terms, ranks, snippet
from .store import SQLiteStore, Store
from .sync import Progress, Syncer, SyncReport
from .vectors import HNSW_THRESHOLD, VectorIndex, make_vector_index

DEFAULT_PATH = Path(".kenning") / "index.db"
DEFAULT_EMBEDDER = "minilm"


def default_index_path() -> Path:
    """``$KENNING_INDEX`` if set, else ``./.kenning/index.db``."""
    return Path(os.environ.get("KENNING_INDEX") or DEFAULT_PATH)


class Index:
    """A synced hybrid index of files, stored in one SQLite file."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        chunking: ChunkSpec,
        vector_index: str = "auto",
        path: Path | None = None,
        keyword_index: str = "auto",
    ) -> None:
        self.store, self.embedder, self.chunking = store, embedder, chunking
        self.vector_index_name = vector_index
        self.keyword_index_name = keyword_index
        self.path = path
        self._vindex: VectorIndex | None = None
        self._vgen: str | None = None
        self._kindex: BM25Index | None = None
        self._kgen: str | None = None
        self._count: tuple[str | None, int] = ("", 0)  # (generation, chunks)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        embedder: str | Embedder | None = None,
        chunking: ChunkSpec | None = None,
        vector_index: str = "auto",
        reembed: bool = False,
        keyword_index: str = "auto",
    ) -> Index:
        """Open (or create) the index at ``path`` (default: ``default_index_path()``).

        ``reembed=True`` with an ``embedder`` other than the stored one forgets all indexed
        content (roots are kept) so the next ``sync`` rebuilds it with the new embedder.
        """
        if keyword_index not in ("auto", "fts5", "memory"):
            raise ConfigError(f"keyword_index must be auto, fts5 or memory, not {keyword_index!r}")
        path = Path(path) if path is not None else default_index_path()
        store = SQLiteStore(path)
        try:
            if reembed and embedder is not None:
                stored = json.loads(store.get_meta("embedder") or "{}")
                emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
                if (stored.get("id"), stored.get("dim")) != (emb.id, emb.dim):
                    store.reset()
                embedder = emb
            emb = _resolve_embedder(store, embedder, str(path))
            spec = _resolve_chunking(store, chunking)
        except BaseException:
            store.close()
            raise
        return cls(store, emb, spec, vector_index, path, keyword_index)

    # -- writing ---------------------------------------------------------------

    def add(
        self, paths: list[str | Path], progress: Progress | None = None, **kw: Any
    ) -> SyncReport:
        """Register files or folders as roots and index them."""
        for p in paths:
            resolved = Path(p).expanduser().resolve()
            if not resolved.exists():
                raise NotFound(f"{p}: no such file or folder")
            self.store.add_root(str(resolved))
        return self.sync(progress=progress, **kw)

    def remove(self, path: str | Path) -> int:
        """Drop a root and everything indexed under it; returns the number of files dropped."""
        resolved = str(Path(path).expanduser().resolve())
        if resolved not in self.store.roots():
            raise NotFound(f"{path} is not a root of this index; roots: {self.store.roots()}")
        return len(self.store.remove_root(resolved))

    def sync(
        self, progress: Progress | None = None, max_file_bytes: int = MAX_FILE_BYTES
    ) -> SyncReport:
        """Rescan all roots: index new and changed files, drop deleted ones."""
        stored_spec = self.store.get_meta("chunking")
        spec_json = json.dumps(asdict(self.chunking), sort_keys=True)
        force = stored_spec is not None and stored_spec != spec_json
        syncer = Syncer(
            self.store,
            self.embedder,
            self.chunking,
            index_dir=self.path.parent.resolve() if self.path else None,
            force=force,
            max_file_bytes=max_file_bytes,
            progress=progress,
        )
        report = syncer.run()
        self.store.set_meta("chunking", spec_json)
        if report.added or report.changed or report.deleted or report.moved:
            # Bring the large-index caches up to date now, so the next search is fast.
            if self._use_memory_keywords():
                self._keywords()
            if self.vector_index_name == "hnsw" or (
                self.vector_index_name == "auto" and self._chunk_count() >= HNSW_THRESHOLD
            ):
                self._vectors()
        return report

    # -- reading ---------------------------------------------------------------

    def _vectors(self) -> VectorIndex:
        gen = self.store.get_meta("generation")
        if self._vindex is None or gen != self._vgen:
            ids, matrix = self.store.vectors()
            side = self.path.with_name(self.path.name + ".hnsw") if self.path else None
            vindex = make_vector_index(self.vector_index_name, len(ids), side, self.embedder.id)
            vindex.build(ids, matrix)
            self._vindex, self._vgen = vindex, gen
        return self._vindex

    def _use_memory_keywords(self) -> bool:
        if self.keyword_index_name != "auto":
            return self.keyword_index_name == "memory"
        return self._chunk_count() >= KEYWORD_THRESHOLD

    def _chunk_count(self) -> int:
        gen = self.store.get_meta("generation")
        if self._count[0] != gen:
            self._count = (gen, len(self.store.chunk_ids()))
        return self._count[1]

    def _keywords(self) -> BM25Index:
        gen = self.store.get_meta("generation") or "0"
        if self._kindex is None or gen != self._kgen:
            kindex = BM25Index()
            side = self.path.with_name(self.path.name + ".bm25.npz") if self.path else None
            if side is None or not side.exists() or not kindex.load(side, gen):
                kindex.build(self.store.keyword_rows())
                if side is not None:
                    kindex.save(side, gen)
            self._kindex, self._kgen = kindex, gen
        return self._kindex

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        fusion: str = "weighted",
        alpha: float = ALPHA,
        depth: int = DEPTH,
    ) -> list[Hit]:
        """Top-``k`` chunks for ``query``, fusing keyword and meaning (``mode='hybrid'``)."""
        check_mode(mode, fusion)
        if mode != "hybrid":  # one ranking alone must be deep enough for k results
            depth = max(depth, k)
        source_ids: list[int] | None = None
        if filters:
            source_ids = [r.id for r in self.store.sources().values() if filters.matches(r)]
            if not source_ids:
                return []
        terms = query_terms(query)
        bm25 = dense = []
        allowed = None
        if source_ids is not None:
            allowed = self.store.chunk_ids_for_sources(source_ids)
        if mode in ("hybrid", "bm25"):
            if self._use_memory_keywords():
                bm25 = self._keywords().search(terms, depth, allowed)
            else:
                bm25 = self.store.keyword_search(terms, depth, source_ids)
        if mode in ("hybrid", "dense"):
            qvec = self.embedder.embed_query(query)
            dense = self._vectors().search(qvec, depth, allowed)
        if mode == "hybrid":
            fused = fuse(bm25, dense, fusion, alpha)
        else:
            fused = bm25 or dense
        return self._hits(fused[:k], bm25, dense, terms)

    def _hits(
        self,
        top: list[tuple[int, float]],
        bm25: list[tuple[int, float]],
        dense: list[tuple[int, float]],
        terms: list[str],
    ) -> list[Hit]:
        """Join the winning chunk ids with their text and source, and say how each ranked."""
        rows = self.store.chunks([cid for cid, _ in top])
        b_ranks, d_ranks = ranks(bm25), ranks(dense)
        hits = []
        for cid, score in top:
            row = rows.get(cid)
            if row is None:  # deleted by a concurrent sync since the vectors were loaded
                continue
            b, d = b_ranks.get(cid), d_ranks.get(cid)
            hits.append(
                Hit(
                    chunk_id=cid,
                    score=score,
                    path=row.path,
                    title=row.title,
                    heading=row.heading,
                    page=row.page,
                    start=row.start,
                    end=row.end,
                    type=row.type,
                    text=row.text,
                    snippet=snippet(row.text, terms),
                    bm25_rank=b[0] if b else None,
                    dense_rank=d[0] if d else None,
                    bm25_score=b[1] if b else None,
                    dense_score=d[1] if d else None,
                )
            )
        return hits

    def status(self) -> dict[str, Any]:
        """Roots, counts, size on disk, embedder, last sync and problem files."""
        stats = self.store.stats()
        size = 0
        if self.path:
            for suffix in ("", "-wal", "-shm", ".hnsw", ".bm25.npz"):
                p = self.path.with_name(self.path.name + suffix)
                size += p.stat().st_size if p.exists() else 0
        last = self.store.get_meta("last_sync")
        return {
            "index": str(self.path),
            "roots": self.store.roots(),
            "files": stats["sources"],
            "chunks": stats["chunks"],
            "embeddings": stats["embeddings"],
            "size_bytes": size,
            "embedder": self.embedder.id,
            "dimension": self.embedder.dim,
            "chunking": asdict(self.chunking),
            "last_sync": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(last)))
            if last
            else None,
            "problems": stats["problems"],
        }

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve_embedder(store: Store, embedder: str | Embedder | None, path: str) -> Embedder:
    stored = store.get_meta("embedder")
    stored_cfg = json.loads(stored) if stored else None
    if embedder is None:
        if stored_cfg:
            return get_embedder(stored_cfg["id"], **stored_cfg.get("args", {}))
        embedder = DEFAULT_EMBEDDER
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    if stored_cfg and (stored_cfg["id"], stored_cfg["dim"]) != (emb.id, emb.dim):
        raise EmbedderMismatch(path, stored_cfg["id"], stored_cfg["dim"], emb.id, emb.dim)
    if not stored_cfg:
        store.set_meta("embedder", json.dumps({"id": emb.id, "dim": emb.dim, "args": emb.config()}))
    return emb


def _resolve_chunking(store: Store, chunking: ChunkSpec | None) -> ChunkSpec:
    if chunking is not None:
        return chunking
    stored = store.get_meta("chunking")
    return ChunkSpec(**json.loads(stored)) if stored else ChunkSpec()
