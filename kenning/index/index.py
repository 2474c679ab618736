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
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import default_index
from kenning.embedders import Embedder, embedders, get_embedder
from kenning.errors import (
    CannotCreateIndex,
    ConfigError,
    EmbedderMismatch,
    IndexUnusable,
    NotAnIndex,
    NotFound,
)
from kenning.filters import Filters
from kenning.index.links import NoteLinks, note_links
from kenning.ingest.embedding import (
    EmbedReport,
    embed_everything,
    embed_pending,
    embedding_status,
    start_worker,
)
from kenning.ingest.exclusions import EXAMPLES, check_globs
from kenning.ingest.sync import (
    EXCLUDED_KEY,
    FIELDS_KEY,
    ROOT_OPTIONS_KEY,
    Progress,
    Syncer,
    SyncReport,
)
from kenning.search import DEPTH, Hit, Searcher, memory_needed
from kenning.search.tuned import META_KEY as TUNING_KEY
from kenning.store import Store, open_store
from kenning.text.chunking import VERSION as CHUNKER
from kenning.text.chunking import ChunkSpec
from kenning.text.loaders import MAX_FILE_BYTES

DEFAULT_EMBEDDER = "minilm"
#: meta key set by the migration that made the link table in an index holding sources
LINKS_MISSING = "links_missing"


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

        ``create=False`` raises ``NotFound`` instead of creating an empty index. A folder, a
        file that is not an index, or a place where no file can be made raises ``NotAnIndex``
        or ``CannotCreateIndex`` before anything is created (``check_location``), and a new
        index whose opening fails (say, an unknown embedder) is removed again.
        ``reembed=True`` with an ``embedder`` other than the stored one forgets all indexed
        content (roots are kept) so the next ``sync`` rebuilds it with the new embedder; it
        forgets any tuning too (``kenning tune`` learnt it for the old vectors).
        """
        location = location if location is not None else default_index()
        check_location(location, create)
        new = _new_paths(location) if create else []
        try:
            store = open_store(location, create)
        except (OSError, sqlite3.Error) as e:
            _remove(new)
            raise _unusable(location, e) from None
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
            _remove(new)  # a command that fails to open an index leaves no new one behind
            raise

    # -- writing ---------------------------------------------------------------

    def add(
        self,
        paths: list[str | Path],
        progress: Progress | None = None,
        exclude: list[str] | None = None,
        **kw: Any,
    ) -> SyncReport:
        """Register files or folders as roots and index them (only them: the other roots
        wait for ``sync``, so processes adding different roots to a shared index never
        queue behind each other's locks).

        ``exclude`` (gitignore-style globs, relative to each root) is kept with the roots and
        applies to every later sync, like a ``.kenningignore``; given again, it replaces the
        root's globs (``[]`` clears them), and left out it keeps them."""
        resolved = check_paths(paths)
        if exclude is not None:
            check_globs(exclude)  # before anything is kept
            options = self._root_options()
            for root in resolved:
                opts = options.setdefault(str(root), {})
                if exclude:
                    opts["exclude"] = list(exclude)
                else:
                    opts.pop("exclude", None)
            self._save_root_options(options)
        for root in resolved:
            self.store.add_root(str(root))
        return self.sync(progress=progress, roots=list(resolved), **kw)

    def remove(self, path: str | Path) -> int:
        """Drop a root and everything indexed under it; returns the number of files dropped."""
        root = self._root(path)
        options = self._root_options()
        if options.pop(root, None) is not None:
            self._save_root_options(options)
        return len(self.store.remove_root(root))

    def _root_options(self) -> dict[str, dict[str, Any]]:
        return dict(json.loads(self.store.get_meta(ROOT_OPTIONS_KEY) or "{}"))

    def _save_root_options(self, options: dict[str, dict[str, Any]]) -> None:
        kept = {root: opts for root, opts in options.items() if opts}
        self.store.set_meta(ROOT_OPTIONS_KEY, json.dumps(kept, sort_keys=True))

    def excluded(self) -> list[dict[str, Any]]:
        """What the last syncs left out on purpose, per reason: ``count`` (paths; a folder
        counts once), a few ``examples`` and the ``roots`` concerned, largest count first."""
        saved = json.loads(self.store.get_meta(EXCLUDED_KEY) or "{}")
        roots = set(self.store.roots())
        by_reason: dict[str, dict[str, Any]] = {}
        for root, reasons in sorted(saved.items()):
            if root not in roots:
                continue
            for why, entry in reasons.items():
                out = by_reason.setdefault(
                    why, {"reason": why, "count": 0, "examples": [], "roots": []}
                )
                out["count"] += entry["count"]
                out["examples"] = (out["examples"] + entry["examples"])[:EXAMPLES]
                out["roots"].append(root)
        return sorted(by_reason.values(), key=lambda e: (-e["count"], e["reason"]))

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
        # An index made before the link table (store migrations) reads every file once more.
        links_missing = self.store.get_meta(LINKS_MISSING) == "1"
        if force or links_missing:  # re-chunk every root, not just the ones named
            roots, force = None, True
        side = self.store.side_path
        syncer = Syncer(
            self.store,
            self.embedder,
            self.chunking,
            index_path=Path(side).resolve() if side else None,
            force=force,
            max_file_bytes=max_file_bytes,
            progress=progress,
            roots=None if roots is None else [self._root(r) for r in roots],
        )
        report = syncer.run()
        self.store.set_meta("chunking", spec_json)
        if links_missing:
            self.store.set_meta(LINKS_MISSING, "0")
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
        ``rerank`` re-orders the top candidates with the reranker it trained. An empty
        query is a ``ConfigError``: it has nothing to rank by."""
        check_query(query)
        if filters:
            filters = filters.for_roots(self.store.roots())
        return self.searcher.search(query, k, filters, mode, fusion, alpha, depth, rerank)

    def links(self, note: str | Path) -> NoteLinks:
        """A note's outgoing links, backlinks and unresolved links, resolved now as Obsidian
        would (``kenning.index.links``). ``note``: its path as search shows it, or its name;
        ``NotFound`` for a note the index does not hold."""
        return note_links(self.store, note)

    def filter_warnings(self, filters: Filters | None) -> list[str]:
        """What looks wrong in ``filters`` for this index: a ``--where`` field that no indexed
        source has (a typo, most likely), with the close field names that exist."""
        if not filters or all(c.key in ("title", "type", "path") for c in filters.where):
            return []
        saved = self.store.get_meta(FIELDS_KEY)  # kept by every sync
        if saved is not None:
            fields = set(json.loads(saved))
        else:  # an index last synced by an older kenning: read every source's metadata
            fields = {key for row in self.store.sources().values() for key in row.metadata}
        return filters.unknown_fields(fields)

    def status(self) -> dict[str, Any]:
        """Roots, counts, size on disk, the memory a search process will map (``memory``,
        bytes by part), embedder, last sync, problem files and what was excluded."""
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
            "excluded": self.excluded(),
            "embedding": embedding_status(self.store),
        }

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: the first bytes of every SQLite database file
SQLITE_HEADER = b"SQLite format 3\x00"


def _local_file(location: str | Path) -> Path | None:
    """The file a location names when it is a local SQLite file (None for a server URL)."""
    text = str(location)
    if "://" not in text:
        return Path(text)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///") :])
    return None


def check_location(location: str | Path, create: bool = True) -> None:
    """Refuse, before anything is created, an index path that cannot hold an index: a folder,
    a file that is not a SQLite database, or (with ``create``) a new file whose folder cannot
    be made. Each error names the path and what to pass instead."""
    path = _local_file(location)
    if path is None:
        return
    if path.is_dir():
        inside = path / ".kenning" / "index.db"
        hint = (
            f"did you mean --index {inside}?"
            if inside.is_file()
            else f"pass a file path, e.g. --index {path / 'index.db'}"
        )
        raise NotAnIndex(f"the index {path} is a folder, not an index file; {hint}")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as e:
            raise NotAnIndex(
                f"cannot read the index {path} ({e.strerror}); check its permissions, or pass "
                "another --index"
            ) from None
        if head and head != SQLITE_HEADER:  # an empty file is an empty database to SQLite
            raise NotAnIndex(
                f"{path} is not a kenning index (not a SQLite database); pass --index with an "
                "index file, or a new path to create one there"
            )
        return
    if not create:
        return  # the store says there is no index there, and how to make one
    folder = path.absolute().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise CannotCreateIndex(
            f"cannot create the index {path}: {existing} is a file, not a folder; pass "
            "--index with a path in a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CannotCreateIndex(
            f"cannot create the index {path}: {existing} is not writable; pass --index with "
            "a path in a folder you can write to"
        )


def _new_paths(location: str | Path) -> list[Path]:
    """What opening a new local index would create and does not exist yet: the file, its
    SQLite companions, and the missing folders above it (deepest first, after the files)."""
    path = _local_file(location)
    if path is None or path.exists():
        return []
    files = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    folders = []
    for folder in (path.absolute().parent, *path.absolute().parent.parents):
        if folder.exists():
            break
        folders.append(folder)
    return [f for f in files if not f.exists()] + folders


def _remove(paths: list[Path]) -> None:
    for p in paths:
        try:
            p.rmdir() if p.is_dir() else p.unlink(missing_ok=True)
        except OSError:
            pass  # a folder something else wrote to meanwhile stays


def _unusable(location: str | Path, e: OSError | sqlite3.Error) -> IndexUnusable:
    """The error to show for a store that SQLite or the file system would not open."""
    path = _local_file(location) or location
    if isinstance(e, sqlite3.DatabaseError) and "not a database" in str(e):
        return NotAnIndex(
            f"{path} is not a kenning index (not a SQLite database); pass --index with an "
            "index file, or a new path to create one there"
        )
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    where = f" ({e.filename})" if isinstance(e, OSError) and e.filename else ""
    return CannotCreateIndex(
        f"cannot open or create the index {path}: {reason}{where}; pass --index with a path "
        "in a folder you can write to"
    )


def check_paths(paths: list[str | Path]) -> list[Path]:
    """The paths, resolved; ``NotFound`` naming the first that does not exist, so a command
    can check them before it creates anything."""
    resolved = []
    for p in paths:
        r = Path(p).expanduser().resolve()
        if not r.exists():
            raise NotFound(f"{p}: no such file or folder; check the path (nothing was indexed)")
        resolved.append(r)
    return resolved


def check_query(query: str) -> None:
    """An empty (or blank) query is an error: it has no words to rank by."""
    if not query.strip():
        raise ConfigError("the query is empty; say what to look for, in words")


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
