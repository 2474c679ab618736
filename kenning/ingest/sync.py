"""Bring the index in line with the files under its roots: the keyword pass.

Unchanged files are skipped by (size, mtime), then by content hash. Changed files are
re-chunked and their chunks keyword-indexed; vectors come after, in ``embedding``, for the
chunks whose hash has none yet, so a large folder is searchable by keyword in seconds. A file
that vanished while another with the same hash appeared is a move: its row changes path and
nothing is re-chunked. Work is committed in batches, each in one transaction, so a kill at
any moment leaves a consistent index and the next sync picks up exactly what is missing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kenning.embedders import Embedder  # only to count tokens: chunks fit the model
from kenning.errors import LoadError
from kenning.store.base import SourceRow, Store

from .chunking import Chunk, ChunkSpec, chunk_document
from .loaders import MAX_FILE_BYTES, file_type, load

#: commit once this many new chunks are pending (keyword rows only: cheap to write)
BATCH_CHUNKS = 1000
#: ... or once this many files are pending, so progress is saved on small files too
BATCH_FILES = 200

SKIP_DIRS = {"node_modules", "__pycache__", "venv"}


class Progress(Protocol):
    """What sync reports while it works; the CLI draws it as progress bars."""

    def stage(self, name: str, total: int, unit: str = "files") -> None:
        """A new stage of ``total`` items, counted in ``unit`` (files, or chunks)."""

    def advance(self, files: int, chunks: int) -> None:
        """``files`` more items done (in the stage's unit), which held ``chunks`` chunks."""


@dataclass
class SyncReport:
    """What one sync did, for people and for scripts."""

    scanned: int = 0
    unchanged: int = 0
    added: int = 0
    changed: int = 0
    moved: int = 0
    deleted: int = 0
    chunks_indexed: int = 0
    chunks_reused: int = 0
    chunks_embedded: int = 0
    chunks_pending: int = 0
    embedding_busy: bool = False
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)
    #: until every file was keyword-searchable, and in all (embedding included)
    keyword_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class _Seen:
    path: str
    root: str
    size: int
    mtime_ns: int

    def row(
        self, digest: str, kind: str, status: str, error: str | None, title: str, meta: dict
    ) -> SourceRow:
        return SourceRow(
            0,
            self.path,
            self.root,
            self.size,
            self.mtime_ns,
            digest,
            kind,
            status,
            error,
            title,
            meta,
        )


def walk(root: Path, index_dir: Path | None) -> Iterator[tuple[Path, os.stat_result]]:
    """Files under ``root`` (or root itself), skipping hidden folders and the index."""
    if root.is_file():
        yield root, root.stat()
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS and Path(entry.path) != index_dir:
                    stack.append(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path), entry.stat()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Syncer:
    """One sync run over a store; the ``Index`` makes one per ``sync`` call."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        spec: ChunkSpec,
        index_dir: Path | None = None,
        force: bool = False,
        max_file_bytes: int = MAX_FILE_BYTES,
        progress: Progress | None = None,
    ) -> None:
        self.store, self.embedder, self.spec = store, embedder, spec
        self.index_dir, self.force, self.max_file_bytes = index_dir, force, max_file_bytes
        self.progress = progress
        self.report = SyncReport()
        self._pending: list[tuple[SourceRow, list[Chunk] | None]] = []
        self._pending_chunks = 0

    def run(self) -> SyncReport:
        t0 = time.perf_counter()
        stored = self.store.sources()
        seen = self._scan()
        self.report.scanned = len(seen)
        # A root that vanished (an unmounted drive, a renamed folder) keeps its files:
        # deleting them would throw away every embedding. `kenning remove` drops it.
        missing = set(self.report.missing_roots)
        gone = {p: s for p, s in stored.items() if p not in seen and s.root not in missing}
        todo: list[tuple[_Seen, SourceRow | None]] = []
        for path, s in seen.items():
            old = stored.get(path)
            if old and not self.force and (old.size, old.mtime_ns) == (s.size, s.mtime_ns):
                self.report.unchanged += 1
            else:
                todo.append((s, old))
        by_hash = {row.hash: path for path, row in gone.items()}
        if self.progress and todo:
            self.progress.stage("keyword index", len(todo))
        for s, old in todo:
            self._one(s, old, gone, by_hash)
        self._flush()
        if gone:
            self.report.deleted = self.store.delete_sources(gone)
        self.store.gc_embeddings()
        self.store.set_meta("last_sync", str(time.time()))
        self.report.seconds = time.perf_counter() - t0
        return self.report

    def _scan(self) -> dict[str, _Seen]:
        seen: dict[str, _Seen] = {}
        for root in self.store.roots():
            if not Path(root).exists():
                self.report.missing_roots.append(root)
                continue
            for path, st in walk(Path(root), self.index_dir):
                if file_type(path) is None:
                    self.report.skipped.append((str(path), f"unsupported type {path.suffix}"))
                    continue
                seen[str(path)] = _Seen(str(path), root, st.st_size, st.st_mtime_ns)
        return seen

    def _one(
        self, s: _Seen, old: SourceRow | None, gone: dict[str, SourceRow], by_hash: dict[str, str]
    ) -> None:
        try:
            data = Path(s.path).read_bytes()
        except OSError as e:
            self._fail(s, old.hash if old else "", "unknown", f"cannot read ({e.strerror})", old)
            return
        digest = _sha256(data)
        if old and old.hash == digest and not self.force:
            # Same bytes, new mtime (touched, or restored): only the stat changes.
            old.size, old.mtime_ns = s.size, s.mtime_ns
            self._queue(old, None, 0)
            self.report.unchanged += 1
            return
        if old is None and digest in by_hash and not self.force:
            moved_from = by_hash.pop(digest)
            gone.pop(moved_from)
            self.store.move_source(moved_from, s.path, s.root, s.size, s.mtime_ns)
            self.report.moved += 1
            self._advance(1, 0)
            return
        try:
            doc = load(Path(s.path), data, self.max_file_bytes)
        except LoadError as e:
            self._fail(s, digest, file_type(Path(s.path)) or "unknown", e.reason, old)
            return
        new = chunk_document(doc, self.spec, self.embedder.count_tokens)
        status = "warning" if doc.warning else "ok"
        if doc.warning:
            self.report.warnings.append((s.path, doc.warning))
        meta = {**doc.metadata, "links": doc.links} if doc.links else doc.metadata
        row = s.row(digest, doc.type, status, doc.warning, doc.title, meta)
        if old is None:
            self.report.added += 1
        else:
            self.report.changed += 1
        self._queue(row, new, len(new))

    def _fail(self, s: _Seen, digest: str, kind: str, reason: str, old: SourceRow | None) -> None:
        self.report.failed.append((s.path, reason))
        if old is not None and old.status != "failed":
            # A note that was fine and broke keeps its last good version, marked stale,
            # rather than vanishing from search; fixing the file re-indexes it.
            note = f"{reason}; the last good version stays indexed"
            row = s.row(digest, old.type, "stale", note, old.title, old.metadata)
            self._queue(row, None, 0)
            return
        row = s.row(digest, kind, "failed", reason, Path(s.path).stem, {})
        self._queue(row, [], 0)

    def _queue(self, row: SourceRow, chunks: list[Chunk] | None, n: int) -> None:
        self._pending.append((row, chunks))
        self._pending_chunks += n
        if self._pending_chunks >= BATCH_CHUNKS or len(self._pending) >= BATCH_FILES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        hashes = {c.hash for _, chunks in self._pending for c in chunks or ()}
        self.report.chunks_indexed += self._pending_chunks
        self.report.chunks_reused += len(self.store.known_hashes(hashes))
        self.store.write_sources(self._pending, {})
        self._advance(len(self._pending), self._pending_chunks)
        self._pending, self._pending_chunks = [], 0

    def _advance(self, files: int, chunks: int) -> None:
        if self.progress and files:
            self.progress.advance(files, chunks)
