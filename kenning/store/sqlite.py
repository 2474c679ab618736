"""``SQLiteStore``: the whole index in one SQLite file (WAL mode), readable with ``sqlite3``.

Roots, sources, chunks, embeddings keyed by chunk hash, and an FTS5 keyword index updated
in the same transaction as the chunks it mirrors. The schema changes only through the
numbered ``MIGRATIONS``; ``PRAGMA user_version`` records how far a file has come.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from kenning.errors import ConfigError, NotFound, SchemaTooNew
from kenning.filters import Filters
from kenning.text.chunking import Chunk

from .base import UNEMBEDDED, ChunkRow, SourceRow, Store, StoredChunk, stores
from .matrix import read_matrix, write_matrix
from .sqlfilters import filter_sql, register_functions

SCHEMA_VERSION = 3

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE roots (path TEXT PRIMARY KEY, added_at REAL NOT NULL);
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,
        root TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        hash TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        title TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        indexed_at REAL NOT NULL
    );
    CREATE INDEX sources_hash ON sources(hash);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        heading TEXT NOT NULL,
        page INTEGER,
        text TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX chunks_source ON chunks(source_id);
    CREATE INDEX chunks_hash ON chunks(hash);
    CREATE TABLE embeddings (hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        body, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    """,
    # 2 created the evaluation tables; they now belong to ``kenning.eval.history``, which
    # creates them itself (with the same columns), so files of every age agree.
    2: "",
    # Embedders took device="cpu" by default before they could use a GPU; an index recorded
    # that default, not a choice, so it moves to "auto" like a new index (CPU where no GPU).
    # (CASE: only the embedder's value is JSON; other keys must never be parsed.)
    3: """
    UPDATE meta SET value = json_set(value, '$.args.device', 'auto')
    WHERE CASE WHEN key = 'embedder' THEN json_extract(value, '$.args.device') END = 'cpu'
    """,
}


def sqlite_path(location: str) -> Path:
    """The file a plain path or a ``sqlite:///`` URL names."""
    if "://" not in location:
        return Path(location)
    if not location.startswith("sqlite:///"):
        raise ConfigError(
            f"cannot read {location!r}: write sqlite:///relative.db or sqlite:////abs.db"
        )
    return Path(location[len("sqlite:///") :])


def index_file(location: str, create: bool) -> Path:
    """The SQLite file a location names; without ``create`` it must already exist."""
    path = sqlite_path(location)
    if not create and not path.exists():
        raise NotFound(f"no index at {path}; create one with `kenning add PATH`")
    return path


def own_tables(
    location: str | Path, schema: str, what: str, create: bool = False
) -> sqlite3.Connection:
    """A connection to the index's SQLite file for tables that are not the store's (the
    evaluation history, conversations), made with their own ``CREATE ... IF NOT EXISTS``
    schema. Without ``create`` a missing file is ``NotFound``, never a new empty index."""
    text = str(location)
    if "://" in text and not text.startswith("sqlite:///"):
        raise ConfigError(
            f"{what} is kept in a SQLite file; {text!r} is not one (pass --index with a file path)"
        )
    path = index_file(text, create)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(schema)
    return db


def _vector_blocks(
    cursor: sqlite3.Cursor, size: int = 16_384
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, float32 matrix) blocks from a cursor over (id, vector blob) rows."""
    while rows := cursor.fetchmany(size):
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        yield ids, matrix.reshape(len(rows), -1)


def _escape(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


@stores.register("sqlite")
class SQLiteStore(Store):
    """One SQLite file; readable with the ``sqlite3`` shell."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=10000")
        register_functions(self.db)
        self._migrate()

    @classmethod
    def open_location(cls, location: str, create: bool = True) -> SQLiteStore:
        return cls(index_file(location, create))

    @property
    def side_path(self) -> str | None:
        return str(self.path)

    def _migrate(self) -> None:
        version = self._version()
        if version < SCHEMA_VERSION:
            with self.transaction():
                # Another process may have migrated while this one waited for the lock.
                version = self._version()
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {number}")

    def _version(self) -> int:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}; this kenning knows up to "
                f"{SCHEMA_VERSION}. Upgrade kenning."
            )
        return version

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        if self.db.in_transaction:  # already inside one (a write, or an outer snapshot)
            yield
            return
        self.db.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")  # nothing was written: ending the read is all

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    def roots(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM roots ORDER BY path")]

    def add_root(self, path: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO roots VALUES (?, ?)", (path, time.time()))

    def remove_root(self, path: str) -> list[str]:
        with self.transaction():
            self.db.execute("DELETE FROM roots WHERE path = ?", (path,))
            gone = [
                r[0] for r in self.db.execute("SELECT path FROM sources WHERE root = ?", (path,))
            ]
            self._delete(gone)
        return gone

    def sources(self) -> dict[str, SourceRow]:
        rows = self.db.execute(
            "SELECT id, path, root, size, mtime_ns, hash, type, status, error, title, metadata "
            "FROM sources"
        )
        return {
            path: SourceRow(
                sid, path, root, size, mtime, digest, kind, status, error, title, json.loads(meta)
            )
            for sid, path, root, size, mtime, digest, kind, status, error, title, meta in rows
        }

    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        items = list(set(hashes))
        for i in range(0, len(items), 500):
            part = items[i : i + 500]
            q = f"SELECT hash FROM embeddings WHERE hash IN ({','.join('?' * len(part))})"
            found.update(r[0] for r in self.db.execute(q, part))
        return found

    def pending(
        self, after: int, limit: int, everything: bool = False
    ) -> list[tuple[int, str, str]]:
        waiting = "" if everything else f"AND {UNEMBEDDED} "
        return list(
            self.db.execute(
                "SELECT c.id, c.hash, f.body FROM chunks c JOIN chunks_fts f ON f.rowid = c.id "
                f"WHERE c.id > ? {waiting}ORDER BY c.id LIMIT ?",
                (after, limit),
            )
        )

    def pending_count(self) -> int:
        return int(
            self.db.execute(
                f"SELECT count(DISTINCT hash) FROM chunks c WHERE {UNEMBEDDED}"
            ).fetchone()[0]
        )

    def write_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        with self.transaction() as db:
            self._insert_vectors(db, vectors)
            self._bump("vectors_generation")

    def replace_vectors(self, vectors: dict[str, np.ndarray], embedder: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM embeddings")
            self._insert_vectors(db, vectors)
            self.set_meta("embedder", embedder)
            self._bump("vectors_generation")

    @staticmethod
    def _insert_vectors(db: sqlite3.Connection, vectors: dict[str, np.ndarray]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO embeddings VALUES (?, ?)",
            ((h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()),
        )

    def write_sources(
        self,
        sources: Sequence[tuple[SourceRow, list[Chunk] | None]],
        vectors: dict[str, np.ndarray],
    ) -> None:
        now = time.time()
        with self.transaction() as db:
            self._insert_vectors(db, vectors)
            replaced: list[tuple[int, list[Chunk]]] = []
            for src, chunks in sources:
                row = db.execute(
                    "INSERT INTO sources (path, root, size, mtime_ns, hash, type, status, error, "
                    "title, metadata, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(path) DO UPDATE SET root=excluded.root, size=excluded.size, "
                    "mtime_ns=excluded.mtime_ns, hash=excluded.hash, type=excluded.type, "
                    "status=excluded.status, error=excluded.error, title=excluded.title, "
                    "metadata=excluded.metadata, indexed_at=excluded.indexed_at RETURNING id",
                    (
                        src.path,
                        src.root,
                        src.size,
                        src.mtime_ns,
                        src.hash,
                        src.type,
                        src.status,
                        src.error,
                        src.title,
                        json.dumps(src.metadata),
                        now,
                    ),
                ).fetchone()
                if chunks is not None:
                    replaced.append((row[0], chunks))
            # Chunk ids are handed out here, inside the write lock, so that chunks and their
            # keyword rows go in with two executemany calls instead of two statements each.
            db.executemany(
                "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE source_id = ?)",
                ((sid,) for sid, _ in replaced),
            )
            db.executemany(
                "DELETE FROM chunks WHERE source_id = ?", ((sid,) for sid, _ in replaced)
            )
            seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
            next_id = (seq[0] if seq else 0) + 1
            rows, bodies = [], []
            for sid, chunks in replaced:
                for ordinal, c in enumerate(chunks):
                    rows.append(
                        (next_id, sid, ordinal, c.start, c.end, c.heading, c.page, c.text, c.hash)
                    )
                    bodies.append((next_id, c.indexed_text))
                    next_id += 1
            db.executemany(
                'INSERT INTO chunks (id, source_id, ord, start, "end", heading, page, text, hash) '
                "VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.executemany("INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", bodies)
            self._bump()

    def _bump(self, key: str = "generation") -> None:
        """Move a generation counter on, so searchers know their caches are stale:
        ``generation`` for chunks, ``vectors_generation`` for vectors added on their own."""
        gen = int(self.get_meta(key) or 0) + 1
        self.set_meta(key, str(gen))

    def _delete_chunks(self, where: str, args: Sequence[Any] = ()) -> None:
        self.db.execute(
            f"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE {where})", args
        )
        self.db.execute(f"DELETE FROM chunks WHERE {where}", args)

    def _delete(self, paths: Sequence[str]) -> int:
        for path in paths:
            self._delete_chunks("source_id = (SELECT id FROM sources WHERE path = ?)", (path,))
            self.db.execute("DELETE FROM sources WHERE path = ?", (path,))
        self._bump()
        return len(paths)

    def gc_embeddings(self) -> int:
        with self.transaction():
            cur = self.db.execute(
                "DELETE FROM embeddings WHERE hash NOT IN (SELECT hash FROM chunks)"
            )
            return cur.rowcount

    def delete_sources(self, paths: Iterable[str]) -> int:
        with self.transaction():
            return self._delete(list(paths))

    def reset(self) -> None:
        with self.transaction():
            for table in ("chunks_fts", "chunks", "sources", "embeddings"):
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("DELETE FROM meta WHERE key = 'embedder'")
            self._bump()

    def move_source(self, old: str, new: str, root: str, size: int, mtime_ns: int) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE sources SET path = ?, root = ?, size = ?, mtime_ns = ? WHERE path = ?",
                (new, root, size, mtime_ns, old),
            )
            self._bump()

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every embedded chunk's (id, vector), ids ascending; the matrix is a read-only
        memory map of a side file (``<index>.vectors.npy``), written from the rows once per
        state of the database (the generations), in blocks: 1M vectors are 1.5 GB, which a
        searcher should neither hold in RAM nor rebuild from rows at every start."""
        side = Path(f"{self.path}.vectors.npy")
        own = not self.db.in_transaction
        if own:  # one snapshot: the generations and the rows they describe
            self.db.execute("BEGIN")
        try:
            stamp = f"{self.get_meta('generation')}/{self.get_meta('vectors_generation')}"
            cached = read_matrix(side, stamp)
            if cached is not None:
                return cached
            join = "FROM chunks c JOIN embeddings e ON e.hash = c.hash"
            count = int(self.db.execute(f"SELECT count(*) {join}").fetchone()[0])
            if count == 0:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
            first = self.db.execute(f"SELECT e.vector {join} LIMIT 1").fetchone()[0]
            cur = self.db.execute(f"SELECT c.id, e.vector {join} ORDER BY c.id")
            write_matrix(side, stamp, count, len(first) // 4, _vector_blocks(cur))
        finally:
            if own:
                self.db.execute("COMMIT")
        cached = read_matrix(side, stamp)
        if cached is None:
            raise OSError(f"could not read back {side}")
        return cached

    def vector_rows(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 rows) blocks of every embedded chunk, ids ascending, for callers
        that stream the vectors instead of mapping them (benchmarks, exports)."""
        yield from _vector_blocks(
            self.db.execute(
                "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.hash = c.hash "
                "ORDER BY c.id"
            )
        )

    def keyword_search(
        self, terms: list[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        match = " OR ".join(_escape(t) for t in terms)
        if not filters:
            q = (
                "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts) LIMIT ?"
            )
            return list(self.db.execute(q, (match, k)))
        where, args = filter_sql(filters)
        q = (
            "SELECT f.rowid, -bm25(chunks_fts) FROM chunks_fts f JOIN chunks c ON c.id = f.rowid "
            "WHERE chunks_fts MATCH ? AND c.source_id IN "
            f"(SELECT s.id FROM sources s WHERE {where}) "
            "ORDER BY bm25(chunks_fts) LIMIT ?"
        )
        return list(self.db.execute(q, (match, *args, k)))

    def keyword_rows(self) -> Iterator[tuple[int, str]]:
        # fetched in batches: the rows stream through, never all held at once
        cur = self.db.execute("SELECT rowid, body FROM chunks_fts ORDER BY rowid")
        while batch := cur.fetchmany(4096):
            yield from batch

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            q = (
                'SELECT c.id, c.source_id, s.path, s.title, s.type, c.start, c."end", c.heading, '
                "c.page, c.text, c.hash FROM chunks c JOIN sources s ON s.id = c.source_id "
                f"WHERE c.id IN ({','.join('?' * len(part))})"
            )
            out.update({r[0]: ChunkRow(*r) for r in self.db.execute(q, part)})
        return out

    def dump(self, paths: Sequence[str]) -> list[tuple[SourceRow, list[Chunk]]]:
        out: list[tuple[SourceRow, list[Chunk]]] = []
        for path in paths:
            row = self.db.execute(
                "SELECT id, path, root, size, mtime_ns, hash, type, status, error, title, "
                "metadata FROM sources WHERE path = ?",
                (path,),
            ).fetchone()
            if row is None:
                continue
            sid, path, root, size, mtime, digest, kind, status, error, title, meta = row
            src = SourceRow(
                sid, path, root, size, mtime, digest, kind, status, error, title, json.loads(meta)
            )
            rows = self.db.execute(
                'SELECT c.start, c."end", c.text, c.heading, c.page, f.body, c.hash FROM chunks c '
                "JOIN chunks_fts f ON f.rowid = c.id WHERE c.source_id = ? ORDER BY c.ord",
                (src.id,),
            )
            out.append(
                (
                    src,
                    [
                        StoredChunk(a, b, t, h, p, body=body, key=key)
                        for a, b, t, h, p, body, key in rows
                    ],
                )
            )
        return out

    def vectors_for(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        items = list(set(hashes))
        for i in range(0, len(items), 500):
            part = items[i : i + 500]
            q = f"SELECT hash, vector FROM embeddings WHERE hash IN ({','.join('?' * len(part))})"
            out.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in self.db.execute(q, part))
        return out

    def chunk_ids(self, filters: Filters | None = None) -> np.ndarray:
        if not filters:
            rows = self.db.execute("SELECT id FROM chunks ORDER BY id")
        else:
            where, args = filter_sql(filters)
            rows = self.db.execute(
                "SELECT id FROM chunks WHERE source_id IN "
                f"(SELECT s.id FROM sources s WHERE {where}) ORDER BY id",
                args,
            )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        one = lambda q: self.db.execute(q).fetchone()[0]  # noqa: E731
        failed = self.db.execute(
            "SELECT path, status, error FROM sources WHERE status != 'ok' ORDER BY path"
        ).fetchall()
        return {
            "sources": one("SELECT count(*) FROM sources WHERE status != 'failed'"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "embeddings": one("SELECT count(*) FROM embeddings"),
            "problems": [{"path": p, "status": s, "reason": e} for p, s, e in failed],
        }

    def close(self) -> None:
        self.db.close()
