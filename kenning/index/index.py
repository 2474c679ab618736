"""``Index``: the one object the CLI, the Python API and the servers all drive.

    >>> from kenning import Index
    >>> index = Index.open("notes.db")            # the packaged MiniLM, offline
    >>> index.add(["~/notes"])                     # register a root and index it
    >>> hits = index.search("how do I rebase", k=5)

The location is a file path or a store URL (``sqlite:///notes.db``). The store records which
embedder built it; opening it with another raises ``EmbedderMismatch`` instead of mixing
incompatible vectors. Syncing lives in ``kenning.ingest``, searching in ``kenning.search``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import default_index
from kenning.embedders import Embedder, embedders, get_embedder
from kenning.errors import ConfigError, EmbedderMismatch, NotFound
from kenning.filters import Filters
from kenning.ingest.embedding import (
    EmbedReport,
    embed_everything,
    embed_pending,
    embedding_status,
    start_worker,
)
from kenning.ingest.sync import Progress, Syncer, SyncReport
from kenning.search import DEPTH, Hit, Searcher, memory_needed
from kenning.search.tuned import META_KEY as TUNING_KEY
from kenning.store import Store, open_store
from kenning.text.chunking import VERSION as CHUNKER
from kenning.text.chunking import ChunkSpec
from kenning.text.loaders import MAX_FILE_BYTES

DEFAULT_EMBEDDER = "minilm"


class Index:
    """A synced hybrid index of files, kept in one store."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        chunking: ChunkSpec,
        vector_index: str = "auto",
        keyword_index: str = "auto",
    ) -> None:
        self.store, self.embedder, self.chunking = store, embedder, chunking
        self.searcher = Searcher(store, embedder, vector_index, keyword_index)

    @property
    def location(self) -> str:
        return self.store.location

    @classmethod
    def open(
        cls,
        location: str | Path | None = None,
        embedder: str | Embedder | None = None,
        chunking: ChunkSpec | None = None,
        vector_index: str = "auto",
        reembed: bool = False,
        keyword_index: str = "auto",
        create: bool = True,
    ) -> Index:
        """Open the index at a path or URL (default: ``$KENNING_INDEX`` or ./.kenning/index.db).

        ``create=False`` raises ``NotFound`` instead of creating an empty index.
        ``reembed=True`` with an ``embedder`` other than the stored one forgets all indexed
        content (roots are kept) so the next ``sync`` rebuilds it with the new embedder; it
        forgets any tuning too (``kenning tune`` learnt it for the old vectors).
        """
        store = open_store(location if location is not None else default_index(), create)
        try:
            if reembed and embedder is not None:
                stored = json.loads(store.get_meta("embedder") or "{}")
                emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
                if not emb.matches(stored):
                    store.reset()
                    store.set_meta(TUNING_KEY, "")
                embedder = emb
            emb = _resolve_embedder(store, embedder)
            spec = _resolve_chunking(store, chunking)
            return cls(store, emb, spec, vector_index, keyword_index)
        except BaseException:
            store.close()
            raise

    # -- writing ---------------------------------------------------------------

    def add(
        self, paths: list[str | Path], progress: Progress | None = None, **kw: Any
    ) -> SyncReport:
        """Register files or folders as roots and index them (only them: the other roots
        wait for ``sync``, so processes adding different roots to a shared index never
        queue behind each other's locks)."""
        added: list[str | Path] = []
        for p in paths:
            resolved = Path(p).expanduser().resolve()
            if not resolved.exists():
                raise NotFound(f"{p}: no such file or folder")
            self.store.add_root(str(resolved))
            added.append(resolved)
        return self.sync(progress=progress, roots=added, **kw)

    def remove(self, path: str | Path) -> int:
        """Drop a root and everything indexed under it; returns the number of files dropped."""
        return len(self.store.remove_root(self._root(path)))

    def _root(self, path: str | Path) -> str:
        """A root of this index, as stored; ``NotFound`` for any other path."""
        resolved = str(Path(path).expanduser().resolve())
        if resolved not in self.store.roots():
            raise NotFound(f"{path} is not a root of this index; roots: {self.store.roots()}")
        return resolved

    def sync(
        self,
        progress: Progress | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
        embed: bool = True,
        roots: list[str | Path] | None = None,
    ) -> SyncReport:
        """Rescan all roots (or only ``roots``): index new and changed files, drop deleted ones.

        Two phases: every changed file is keyword-searchable once the first commits, then
        (with ``embed``) the new chunks are embedded. ``embed=False`` stops after the first;
        ``embed()`` or a background worker (``embed_in_background``) finishes the job.
        """
        stored_spec = self.store.get_meta("chunking")
        # The chunker's version goes in too: a better chunker re-chunks old indexes.
        spec_json = json.dumps({**asdict(self.chunking), "version": CHUNKER}, sort_keys=True)
        force = stored_spec is not None and stored_spec != spec_json
        if force:  # new chunking settings re-chunk every root, not just the ones named
            roots = None
        side = self.store.side_path
        syncer = Syncer(
            self.store,
            self.embedder,
            self.chunking,
            index_dir=Path(side).parent.resolve() if side else None,
            force=force,
            max_file_bytes=max_file_bytes,
            progress=progress,
            roots=None if roots is None else [self._root(r) for r in roots],
        )
        report = syncer.run()
        self.store.set_meta("chunking", spec_json)
        if report.added or report.changed or report.deleted or report.moved:
            self.searcher.warm()
        report.keyword_seconds = report.seconds
        if embed:
            done = self.embed(progress)
            report.chunks_embedded, report.embedding_busy = done.embedded, done.busy
            report.seconds += done.seconds
        report.chunks_pending = self.pending()
        return report

    def pending(self) -> int:
        """Chunks still waiting for a vector: search covers them by keyword only, so far."""
        return self.store.pending_count()

    def embed(self, progress: Progress | None = None, limit: int | None = None) -> EmbedReport:
        """Embed the chunks still waiting for vectors, or about ``limit`` of them (a no-op
        when another process is already doing it: see ``EmbedReport.busy``)."""
        return embed_pending(self.store, self.embedder, progress, limit)

    def switch_embedder(
        self,
        embedder: Embedder,
        vectors: dict[str, np.ndarray] | None = None,
        progress: Progress | None = None,
    ) -> float:
        """Make ``embedder`` the index's model: every chunk re-embedded (or ``vectors``, already
        computed for every chunk text by ``embed_everything``) and swapped in with the new
        embedder's record in one transaction, so searches see one model or the other, never
        a mix, and a kill half-way leaves the old model in place. Returns the seconds spent
        embedding. Unlike ``open(reembed=True)`` no file is re-read and the index stays
        searchable throughout (``kenning tune`` swaps to and from a fine-tuned model)."""
        started = time.perf_counter()
        if vectors is None:
            vectors = embed_everything(self.store, embedder, progress)
        seconds = time.perf_counter() - started
        with self.store.locked(["embed"]):  # no other process writes old-model vectors now
            self.store.replace_vectors(vectors, embedder_meta(embedder))
        old = self.searcher  # a new searcher: its caches and tuning belong to the old model
        self.embedder = embedder
        self.searcher = Searcher(self.store, embedder, old.vector_index, old.keyword_index)
        return seconds

    def embed_in_background(self) -> int:
        """Hand the waiting chunks to a worker process that outlives this one; its pid."""
        return start_worker(self.store)

    # -- reading ---------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        fusion: str = "weighted",
        alpha: float | None = None,
        depth: int = DEPTH,
        rerank: bool = False,
    ) -> list[Hit]:
        """Top-``k`` chunks for ``query``, fusing keyword and meaning (``mode='hybrid'``).

        ``alpha`` defaults to the weight ``kenning tune`` fitted, else ``search.ALPHA``;
        ``rerank`` re-orders the top candidates with the reranker it trained."""
        return self.searcher.search(query, k, filters, mode, fusion, alpha, depth, rerank)

    def status(self) -> dict[str, Any]:
        """Roots, counts, size on disk, the memory a search process will map (``memory``,
        bytes by part), embedder, last sync and problem files."""
        stats = self.store.stats()
        last = self.store.get_meta("last_sync")
        return {
            "index": self.location,
            "roots": self.store.roots(),
            "files": stats["sources"],
            "chunks": stats["chunks"],
            "embeddings": stats["embeddings"],
            "size_bytes": self.store.size_bytes(),
            # A store that searches itself (PostgreSQL) keeps its indexes in the server.
            "memory": {}
            if self.store.searches_itself
            else memory_needed(stats["chunks"], self.embedder.dim),
            "embedder": self.embedder.id,
            "dimension": self.embedder.dim,
            "chunking": asdict(self.chunking),
            "last_sync": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(last)))
            if last
            else None,
            "problems": stats["problems"],
            "embedding": embedding_status(self.store),
        }

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve_embedder(store: Store, embedder: str | Embedder | None) -> Embedder:
    """The embedder to use, checked against (or recorded as) the one that built the index."""
    stored = store.get_meta("embedder")
    stored_cfg = json.loads(stored) if stored else None
    if embedder is None:
        if stored_cfg:
            name = stored_cfg.get("name") or stored_cfg["id"]
            return get_embedder(name, **stored_cfg.get("args", {}))
        embedder = DEFAULT_EMBEDDER
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    if stored_cfg and not emb.matches(stored_cfg):
        raise EmbedderMismatch(store.location, stored_cfg["id"], stored_cfg["dim"], emb.id, emb.dim)
    if not stored_cfg:
        store.set_meta("embedder", embedder_meta(emb))
    return emb


def embedder_meta(emb: Embedder) -> str:
    """What the index records about its embedder: enough to rebuild it when reopened."""
    name = embedders.name_of(type(emb))
    if name is None:
        raise ConfigError(
            f"embedder {emb.id!r} is not registered, so the index could not be reopened "
            "with it; register its class in kenning.embedders.embedders"
        )
    return json.dumps({"id": emb.id, "name": name, "dim": emb.dim, "args": emb.config()})


def _resolve_chunking(store: Store, chunking: ChunkSpec | None) -> ChunkSpec:
    if chunking is not None:
        return chunking
    stored = json.loads(store.get_meta("chunking") or "{}")
    stored.pop("version", None)
    return ChunkSpec(**stored)
