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
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kenning.embedders import Embedder  # only to count tokens: chunks fit the model
from kenning.errors import LoadError
from kenning.ingest.exclusions import Exclusions, summary
from kenning.store.base import SourceRow, Store
from kenning.text.boilerplate import block_keys, repeated
from kenning.text.chunking import Chunk, ChunkSpec, chunk_document
from kenning.text.links import outgoing
from kenning.text.loaders import MAX_FILE_BYTES, Document, file_type, load

#: commit once this many new chunks are pending (keyword rows only: cheap to write)
BATCH_CHUNKS = 1000
#: ... or once this many files are pending, so progress is saved on small files too
BATCH_FILES = 200

SKIP_DIRS = {"node_modules", "__pycache__", "venv"}
#: meta key: the metadata fields the indexed sources have (JSON list), kept by every sync so
#: a ``--where`` on a field that none has can be told apart from one that matches nothing
FIELDS_KEY = "fields"
#: meta key: per root, what the last sync left out on purpose and why (``exclusions.summary``)
EXCLUDED_KEY = "excluded"
#: meta key: per root, the options ``add`` was given (``{"exclude": [GLOB, ...]}``)
ROOT_OPTIONS_KEY = "root_options"
#: a pass that re-reads this share of the files learns the boilerplate anew
LEARN_SHARE = 0.5
#: documents loaded for that kept in memory for the pass, at most this many file bytes
CACHE_BYTES = 256 * 1024 * 1024


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
    #: paths left out on purpose (``.kenningignore``, the vault's settings, drawings), with
    #: the reason; a folder (ending in /) stands for everything in it
    excluded: list[tuple[str, str]] = field(default_factory=list)
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


def own_file(path: Path, index_path: Path | None) -> bool:
    """Whether ``path`` is one of the index's own files: the database, its SQLite companions
    (-wal, -shm, -journal) and the caches and locks kept beside it (``index.db.*``)."""
    if index_path is None or path.parent != index_path.parent:
        return False
    name, own = path.name, index_path.name
    return name == own or name.startswith((own + ".", own + "-"))


def walk(
    root: Path,
    index_path: Path | None,
    unreadable: list[tuple[str, str]] | None = None,
    exclusions: Exclusions | None = None,
    excluded: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[Path, os.stat_result]]:
    """Files under ``root`` (or root itself), skipping hidden folders and the index's own
    files. A folder that cannot be listed goes into ``unreadable`` with the reason; a file or
    folder that ``exclusions`` leaves out goes into ``excluded`` with its reason (a folder is
    not entered, its path ends in /)."""
    if root.is_file():
        yield root, root.stat()
        return
    stack = [root]
    skip = len(str(root).rstrip(os.sep)) + 1  # an entry's path under root: after this many chars
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            if unreadable is not None:
                unreadable.append((str(folder), f"cannot read folder ({e.strerror})"))
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir and entry.name in SKIP_DIRS:
                continue
            if not is_dir and (not entry.is_file() or own_file(Path(entry.path), index_path)):
                continue
            why = None
            if exclusions is not None:
                why = exclusions.reason(entry.path[skip:].replace(os.sep, "/"), is_dir)
            if why is not None:
                if excluded is not None:
                    excluded.append((entry.path + ("/" if is_dir else ""), why))
            elif is_dir:
                stack.append(Path(entry.path))
            else:
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
        index_path: Path | None = None,
        force: bool = False,
        max_file_bytes: int = MAX_FILE_BYTES,
        progress: Progress | None = None,
        roots: Sequence[str] | None = None,
    ) -> None:
        self.store, self.embedder, self.spec = store, embedder, spec
        self.roots = list(roots) if roots is not None else None
        self.index_path, self.force, self.max_file_bytes = index_path, force, max_file_bytes
        self.progress = progress
        self.report = SyncReport()
        self.boilerplate: frozenset[str] = frozenset()
        self._docs: dict[str, tuple[bytes, Document]] = {}  # loaded while learning boilerplate
        self._pending: list[tuple[SourceRow, list[Chunk] | None]] = []
        self._pending_chunks = 0
        self._unreadable: list[str] = []  # folders that could not be listed this pass
        self._fields: set[str] = set()  # metadata keys of the sources, for FIELDS_KEY
        self._written: set[str] = set()  # paths whose rows this pass rewrites
        self._excluded: dict[str, dict] = {}  # per root, exclusions.summary of this pass

    def run(self) -> SyncReport:
        """Sync the chosen roots (all by default) under their ``sync:<root>`` locks, so two
        processes never interleave on one root while syncs of other roots go on."""
        roots = self.store.roots() if self.roots is None else self.roots
        with self.store.locked(f"sync:{root}" for root in roots):
            return self._run(roots)

    def _run(self, roots: list[str]) -> SyncReport:
        t0 = time.perf_counter()
        every = self.store.sources()
        stored = {p: s for p, s in every.items() if s.root in roots}
        seen = self._scan(roots)
        self.report.scanned = len(seen)
        # A root that vanished (an unmounted drive, a renamed folder) keeps its files:
        # deleting them would throw away every embedding. `kenning remove` drops it.
        # Likewise the files of a folder that cannot be read now (its rights changed).
        missing = set(self.report.missing_roots)
        unread = tuple(folder + os.sep for folder in self._unreadable)
        gone = {
            p: s
            for p, s in stored.items()
            if p not in seen and s.root not in missing and not p.startswith(unread)
        }
        todo: list[tuple[_Seen, SourceRow | None]] = []
        for path, s in seen.items():
            old = stored.get(path)
            if old and not self.force and (old.size, old.mtime_ns) == (s.size, s.mtime_ns):
                self.report.unchanged += 1
            else:
                todo.append((s, old))
        by_hash = {row.hash: path for path, row in gone.items()}
        self.boilerplate = self._boilerplate(todo, len(seen))
        if self.progress and todo:
            self.progress.stage("keyword index", len(todo))
        for s, old in todo:
            self._one(s, old, gone, by_hash)
        self._flush()
        if gone:
            self.report.deleted = self.store.delete_sources(gone)
        self.store.gc_embeddings()
        for path, row in every.items():  # the rest keep the fields they had
            if path not in gone and path not in self._written:
                self._fields.update(row.metadata)
        self.store.set_meta(FIELDS_KEY, json.dumps(sorted(self._fields)))
        self._save_excluded()
        self.store.set_meta("last_sync", str(time.time()))
        self.report.seconds = time.perf_counter() - t0
        return self.report

    def _scan(self, roots: list[str]) -> dict[str, _Seen]:
        seen: dict[str, _Seen] = {}
        options = json.loads(self.store.get_meta(ROOT_OPTIONS_KEY) or "{}")
        rules = {  # read first: a bad .kenningignore stops the sync before anything changes
            root: Exclusions.load(Path(root), options.get(root, {}).get("exclude", ()))
            for root in roots
            if Path(root).is_dir()
        }
        for root in roots:
            if not Path(root).exists():
                self.report.missing_roots.append(root)
                continue
            unreadable: list[tuple[str, str]] = []
            excluded: list[tuple[str, str]] = []
            for path, st in walk(
                Path(root), self.index_path, unreadable, rules.get(root), excluded
            ):
                if file_type(path) is None:
                    self.report.skipped.append((str(path), f"unsupported type {path.suffix}"))
                    continue
                seen[str(path)] = _Seen(str(path), root, st.st_size, st.st_mtime_ns)
            # reported as an unreadable file is: by path and reason, among the failures
            self.report.failed += unreadable
            self._unreadable += [folder for folder, _ in unreadable]
            self.report.excluded += excluded
            self._excluded[root] = summary(excluded)
        return seen

    def _save_excluded(self) -> None:
        """Keep what this pass left out of its roots, for ``kenning status``; the other
        roots keep what their last sync recorded, and roots no longer in the index go."""
        saved = json.loads(self.store.get_meta(EXCLUDED_KEY) or "{}")
        known = set(self.store.roots())
        saved = {r: v for r, v in saved.items() if r in known and r not in self._excluded}
        saved.update({r: v for r, v in self._excluded.items() if v})
        self.store.set_meta(EXCLUDED_KEY, json.dumps(saved, sort_keys=True))

    def _boilerplate(
        self, todo: list[tuple[_Seen, SourceRow | None]], files: int
    ) -> frozenset[str]:
        """The template lines to leave out of indexed text (``boilerplate``'s rule).

        Learnt from the files of a pass that re-reads at least half the folder (the first
        ``add``, a re-chunk, a mass edit) and saved; smaller syncs reuse the saved set, since
        a few new notes say little about what repeats. The documents loaded to count lines
        are kept (up to ``CACHE_BYTES``) for the pass itself, so most files are read once.
        """
        saved = self.store.get_meta("boilerplate")
        if saved is not None and len(todo) < LEARN_SHARE * files:
            return frozenset(json.loads(saved))
        counts: Counter[str] = Counter()
        counted, cached = 0, 0
        for s, _ in todo:
            if file_type(Path(s.path)) not in ("markdown", "text"):
                continue
            try:
                data = Path(s.path).read_bytes()
                doc = load(Path(s.path), data, self.max_file_bytes)
            except (OSError, LoadError):
                continue  # reported when the file's turn comes
            counts.update(block_keys(doc))
            counted += 1
            if cached + len(data) <= CACHE_BYTES:
                self._docs[s.path] = (data, doc)
                cached += len(data)
        found = repeated(counts, counted)
        self.store.set_meta("boilerplate", json.dumps(sorted(found)))
        return found

    def _one(
        self, s: _Seen, old: SourceRow | None, gone: dict[str, SourceRow], by_hash: dict[str, str]
    ) -> None:
        data, doc = self._docs.pop(s.path, (None, None))
        if data is None:
            try:
                data = Path(s.path).read_bytes()
            except OSError as e:
                reason = f"cannot read ({e.strerror})"
                self._fail(s, old.hash if old else "", "unknown", reason, old)
                return
        digest = _sha256(data)
        if old and old.hash == digest and not self.force:
            # Same bytes, new mtime (touched, or restored): only the stat changes.
            old.size, old.mtime_ns = s.size, s.mtime_ns
            self._queue(old, None, 0)
            self.report.unchanged += 1
            return
        # A move keeps its chunks, unless the file's name changed: in a vault the name is
        # the note's title, which every chunk's indexed text carries.
        if (
            old is None
            and digest in by_hash
            and not self.force
            and Path(by_hash[digest]).stem == Path(s.path).stem
        ):
            moved_from = by_hash.pop(digest)
            gone.pop(moved_from)
            self.store.move_source(moved_from, s.path, s.root, s.size, s.mtime_ns)
            self.report.moved += 1
            self._advance(1, 0)
            return
        if doc is None:
            try:
                doc = load(Path(s.path), data, self.max_file_bytes)
            except LoadError as e:
                self._fail(s, digest, file_type(Path(s.path)) or "unknown", e.reason, old)
                return
        new = chunk_document(doc, self.spec, self.embedder.count_tokens, self.boilerplate)
        status = "warning" if doc.warning else "ok"
        if doc.warning:
            self.report.warnings.append((s.path, doc.warning))
        meta = {**doc.metadata, "links": doc.links} if doc.links else doc.metadata
        row = s.row(digest, doc.type, status, doc.warning, doc.title, meta)
        row.links = outgoing(doc.reading)  # written with the chunks, in one transaction
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
        self._fields.update(row.metadata)
        self._written.add(row.path)
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
