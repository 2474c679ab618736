"""``SQLiteStore``: the whole index in one SQLite file (WAL mode), readable with ``sqlite3``.

Roots, sources, chunks, embeddings keyed by chunk hash, and an FTS5 keyword index updated
in the same transaction as the chunks it mirrors. The SQL it shares with the PostgreSQL
store is ``SQLStore``'s; its schema and numbered migrations are in ``schema``, its filters in
``filters``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kenning.errors import ConfigError, NotFound
from kenning.store.base import Scope, SourceRow, stores
from kenning.store.matrix import read_matrix, write_matrix
from kenning.store.sql import SQLStore
from kenning.text.chunking import Chunk

from . import schema
from .filters import filter_sql, register_functions

T = TypeVar("T")


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
class SQLiteStore(SQLStore):
    """One SQLite file; readable with the ``sqlite3`` shell."""

    bodies = "chunks c JOIN chunks_fts f ON f.rowid = c.id"
    body = "f.body"
    filter_sql = filter_sql
    expands_globs = True  # BINARY collation: paths in code-point order

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
        self._migrate(schema)

    @classmethod
    def open_location(cls, location: str, create: bool = True) -> SQLiteStore:
        return cls(index_file(location, create))

    @property
    def side_path(self) -> str | None:
        return str(self.path)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """The file's one write transaction, as migrations take it."""
        return schema.transaction(self.db)

    def _write(self, work: Callable[[], T]) -> T:
        with self.transaction():
            return work()

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

    def _matching(self, column: str, values: list[Any]) -> Iterator[tuple[str, list[Any]]]:
        for i in range(0, len(values), 500):  # well under SQLite's limit on parameters
            part = values[i : i + 500]
            yield f"{column} IN ({','.join('?' * len(part))})", part

    @staticmethod
    def _vector(value: Any) -> np.ndarray:
        return np.frombuffer(value, dtype=np.float32)

    def _insert_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO embeddings VALUES (?, ?)",
            ((h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()),
        )

    def write_sources(
        self,
        sources: Sequence[tuple[SourceRow, list[Chunk] | None]],
        vectors: dict[str, np.ndarray],
    ) -> None:
        with self.transaction() as db:
            self._insert_vectors_logged(vectors)
            replaced = self._upsert_sources(sources)
            for sid, _ in replaced:
                self._log_where("delete", "c.source_id = ?", (sid,))
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
            self._log("add", [row[0] for row in rows])
            self._bump()

    def _delete(self, paths: Sequence[str]) -> int:
        chunks = "SELECT id FROM chunks WHERE source_id = (SELECT id FROM sources WHERE path = ?)"
        for path in paths:
            self._log_where(
                "delete", "c.source_id = (SELECT id FROM sources WHERE path = ?)", (path,)
            )
            self.db.execute(f"DELETE FROM chunks_fts WHERE rowid IN ({chunks})", (path,))
            self.db.execute(f"DELETE FROM chunks WHERE id IN ({chunks})", (path,))
            self.db.execute("DELETE FROM sources WHERE path = ?", (path,))
        self._bump()
        return len(paths)

    def _clear(self) -> None:
        for table in ("chunks_fts", "chunks", "links", "names", "sources", "embeddings"):
            self.db.execute(f"DELETE FROM {table}")

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
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        match = " OR ".join(_escape(t) for t in terms)
        if scope is None:
            q = (
                "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts) LIMIT ?"
            )
            return list(self.db.execute(q, (match, k)))
        allowed = scope.chunk_ids()
        if len(allowed) == 0:
            return []
        # the scope's chunk ids, as the one JSON array SQLite reads them from
        q = (
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "AND rowid IN (SELECT value FROM json_each(?)) ORDER BY bm25(chunks_fts) LIMIT ?"
        )
        return list(self.db.execute(q, (match, json.dumps(allowed.tolist()), k)))

    def keyword_rows(self) -> Iterator[tuple[int, str]]:
        # fetched in batches: the rows stream through, never all held at once
        cur = self.db.execute("SELECT rowid, body FROM chunks_fts ORDER BY rowid")
        while batch := cur.fetchmany(4096):
            yield from batch
