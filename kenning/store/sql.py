"""``SQLStore``: what the SQLite and PostgreSQL stores share, written once.

Both keep the same tables (``meta``, ``roots``, ``sources``, ``chunks``, ``embeddings`` keyed
by chunk hash) and answer most of the ``Store`` interface with the same SQL. That SQL is
written here with ``?`` markers, and ``_run`` hands it to the driver in the backend's own
parameter style (``param``: ``?`` for sqlite3, ``%s`` for psycopg). A backend supplies its
transactions, how it tests a column against many values, how it decodes a stored vector, and
the parts that really differ: writing chunks with their keyword index, vectors, keyword search.

Filters and migrations are split the same way: ``SQLFilters`` (in ``sqlfilters``) walks a
filter and each backend's ``filters`` module writes the SQL of one condition;
``SQLStore._migrate`` applies the numbered migrations of the backend's ``schema`` module
(``Schema``).
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import numpy as np

from kenning.errors import SchemaTooNew
from kenning.filters import Filters
from kenning.text.chunking import Chunk
from kenning.text.links import Link, link_name
from kenning.text.names import folded_names

from .base import ChunkRow, SourceRow, Store, StoredChunk
from .sqlfilters import GlobLookup

T = TypeVar("T")

#: the SQL condition, over chunks aliased ``c``, of a chunk still waiting for its vector
UNEMBEDDED = "NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.hash = c.hash)"

#: a source's columns in ``SourceRow``'s order; metadata as JSON text in both databases
_SOURCE = (
    "SELECT id, path, root, size, mtime_ns, hash, type, status, error, title, "
    "CAST(metadata AS text) FROM sources"
)
_UPSERT_SOURCE = (
    "INSERT INTO sources (path, root, size, mtime_ns, hash, type, status, error, title, "
    "metadata, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (path) DO UPDATE SET root=excluded.root, size=excluded.size, "
    "mtime_ns=excluded.mtime_ns, hash=excluded.hash, type=excluded.type, "
    "status=excluded.status, error=excluded.error, title=excluded.title, "
    "metadata=excluded.metadata, indexed_at=excluded.indexed_at RETURNING id"
)
_CHUNK = (
    'SELECT c.id, c.source_id, s.path, s.title, s.type, c.start, c."end", c.heading, '
    "c.page, c.text, c.hash, CAST(s.metadata AS text) FROM chunks c "
    "JOIN sources s ON s.id = c.source_id"
)


def _source(row: Sequence[Any]) -> SourceRow:
    sid, path, root, size, mtime, digest, kind, status, error, title, meta = row
    return SourceRow(
        sid, path, root, size, mtime, digest, kind, status, error, title, json.loads(meta)
    )


def _chunk(row: Sequence[Any]) -> ChunkRow:
    """A ``_CHUNK`` row: the chunk's columns, then its source's metadata for its tags."""
    cid, sid, path, title, kind, start, end, heading, page, text, digest, meta = row
    tags = json.loads(meta).get("tags") if meta else None
    items = tags if isinstance(tags, list) else [] if tags is None else [tags]
    return ChunkRow(
        cid,
        sid,
        path,
        title,
        kind,
        start,
        end,
        heading,
        page,
        text,
        digest,
        [str(t) for t in items],
    )


class Schema(Protocol):
    """What a store's ``schema`` module provides: numbered migrations, and how its database
    records how far it has come."""

    SCHEMA_VERSION: int
    MIGRATIONS: dict[int, str]

    def version(self, db: Any) -> int:
        """The last migration applied (0: none yet)."""

    def transaction(self, db: Any) -> AbstractContextManager[Any]:
        """The transaction migrations run in, one migrating process at a time."""

    def apply(self, db: Any, number: int) -> None:
        """Run migration ``number`` and record it."""


class SQLStore(GlobLookup, Store):
    """The ``Store`` methods whose SQL both databases share, over the connection ``db``."""

    db: Any
    #: the driver's parameter marker, put in place of the ``?`` of the SQL written here
    param = "?"
    #: chunks ``c`` joined with where their keyword-indexed text lives, and that text
    bodies = "chunks c"
    body = "c.body"

    def _run(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Execute SQL written with ``?`` markers in this driver's parameter style."""
        if self.param != "?":
            sql = sql.replace("?", self.param)
        return self.db.execute(sql, args)

    @abstractmethod
    def _write(self, work: Callable[[], T]) -> T:
        """Run ``work`` in one write transaction (again, where the database may abort it to
        break a deadlock) and return what it returns."""

    @abstractmethod
    def _matching(self, column: str, values: list[Any]) -> Iterator[tuple[str, list[Any]]]:
        """``column`` is one of ``values``: a (condition, parameters) pair per batch of values
        the database takes in one statement."""

    @staticmethod
    @abstractmethod
    def _vector(value: Any) -> np.ndarray:
        """A stored vector as float32."""

    @abstractmethod
    def _insert_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors by chunk hash inside the current transaction (stored ones are kept)."""

    @abstractmethod
    def _delete(self, paths: Sequence[str]) -> int:
        """Delete these sources with their chunks inside the current transaction."""

    @abstractmethod
    def _clear(self) -> None:
        """Empty sources, chunks, their keyword index and vectors, inside the current
        transaction."""

    def _migrate(self, schema: Schema) -> None:
        """Apply the migrations the database lacks, in one transaction; raise ``SchemaTooNew``
        for a database a newer kenning has migrated further."""
        if schema.version(self.db) < schema.SCHEMA_VERSION:
            with schema.transaction(self.db):
                # Another process may have migrated while this one waited for the lock.
                for number in range(schema.version(self.db) + 1, schema.SCHEMA_VERSION + 1):
                    schema.apply(self.db, number)
                self._fill_names()
        found = schema.version(self.db)
        if found > schema.SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.location} has schema version {found}; this kenning knows up to "
                f"{schema.SCHEMA_VERSION}. Upgrade kenning."
            )

    def _bump(self, key: str = "generation") -> None:
        """Move a generation counter on, so searchers know their caches are stale:
        ``generation`` for chunks, ``vectors_generation`` for vectors added on their own."""
        self._run(
            "INSERT INTO meta VALUES (?, '1') ON CONFLICT (key) DO UPDATE SET "
            "value = CAST(CAST(meta.value AS bigint) + 1 AS text)",
            (key,),
        )

    # -- the change log ----------------------------------------------------------------

    #: newest changes the log keeps (``compact_changes``): a searcher further behind
    #: rebuilds its caches, which is then about as quick as applying that many changes
    changes_kept = 100_000

    def _lock_log(self) -> None:
        """Take the right to hand out change ``seq``s until the transaction ends. SQLite's
        one writer has it already; PostgreSQL takes an advisory lock, so seqs commit in
        order and a reader never passes one that a slower writer has yet to commit."""

    def _log(self, op: str, ids: Sequence[int]) -> None:
        """Log ``op`` for these chunks, inside the current write transaction."""
        if not ids:
            return
        self._lock_log()
        sql = "INSERT INTO changes (chunk_id, op) VALUES (?, ?)"
        if self.param != "?":
            sql = sql.replace("?", self.param)
        self.db.cursor().executemany(sql, [(int(i), op) for i in ids])
        self._trim_log()

    def _log_where(self, op: str, where: str, args: Sequence[Any]) -> None:
        """Log ``op`` for the chunks ``c`` that ``where`` selects (before a delete removes
        them, after an insert adds them)."""
        self._lock_log()
        self._run(
            f"INSERT INTO changes (chunk_id, op) SELECT c.id, ? FROM chunks c WHERE {where} "
            "ORDER BY c.id",
            (op, *args),
        )
        self._trim_log()

    def _log_rebuild(self) -> None:
        """Every chunk or vector changed (a reset, a new embedder): compact the whole log
        past a marker row, so every reader rebuilds."""
        self._lock_log()
        self._run("INSERT INTO changes (chunk_id, op) VALUES (0, 'delete')")
        self._compact(0)

    def _trim_log(self) -> None:
        """Compact once the log holds twice ``changes_kept``, so it never grows unbounded
        and compacts rarely."""
        top = self._run("SELECT max(seq) FROM changes").fetchone()[0] or 0
        if top - int(self.get_meta("changes_compacted") or 0) > 2 * self.changes_kept:
            self._compact(self.changes_kept)

    def _compact(self, keep: int) -> int:
        top = self._run("SELECT max(seq) FROM changes").fetchone()[0] or 0
        cut = int(top) - keep
        if cut <= int(self.get_meta("changes_compacted") or 0):
            return 0
        gone = int(self._run("DELETE FROM changes WHERE seq <= ?", (cut,)).rowcount)
        self.set_meta("changes_compacted", str(cut))
        return gone

    def compact_changes(self, keep: int = 0) -> int:
        return self._write(lambda: self._compact(keep))

    def change_position(self) -> int:
        with self.snapshot():
            top = self._run("SELECT max(seq) FROM changes").fetchone()[0] or 0
            return max(int(top), int(self.get_meta("changes_compacted") or 0))

    def changes_since(self, seq: int) -> list[tuple[int, int, str]] | None:
        with self.snapshot():
            floor = int(self.get_meta("changes_compacted") or 0)
            top = self._run("SELECT max(seq) FROM changes").fetchone()[0] or 0
            if seq < floor or seq > max(int(top), floor):  # compacted, or another database's
                return None
            rows = self._run(
                "SELECT seq, chunk_id, op FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            )
            return [(int(q), int(c), str(op)) for q, c, op in rows]

    def named(self, key: str) -> list[tuple[str, str]]:
        rows = self._run(
            "SELECT s.path, n.name FROM names n JOIN sources s ON s.id = n.source_id "
            "WHERE n.key = ?",
            (key,),
        )
        return sorted((str(p), str(n)) for p, n in rows)  # Python's order, any collation

    def keyword_rows_for(self, ids: Sequence[int]) -> Iterator[tuple[int, str]]:
        for where, args in self._matching("c.id", sorted({int(i) for i in ids})):
            yield from self._run(
                f"SELECT c.id, {self.body} FROM {self.bodies} WHERE {where} ORDER BY c.id", args
            )

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        found: list[tuple[int, np.ndarray]] = []
        for where, args in self._matching("c.id", sorted({int(i) for i in ids})):
            rows = self._run(
                "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.hash = c.hash "
                f"WHERE {where}",
                args,
            )
            found.extend((int(i), self._vector(v)) for i, v in rows)
        found.sort(key=lambda r: r[0])
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.array([i for i, _ in found], dtype=np.int64), np.stack([v for _, v in found])

    def _insert_vectors_logged(self, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors (``_insert_vectors``) and log an ``add`` for every chunk already
        stored that they give its first vector (a new chunk logs its own)."""
        new = sorted(set(vectors) - self.known_hashes(vectors))
        self._insert_vectors(vectors)
        for where, args in self._matching("c.hash", new):
            self._log_where("add", where, args)

    def _upsert_sources(
        self, sources: Iterable[tuple[SourceRow, list[Chunk] | None]]
    ) -> list[tuple[int, list[Chunk]]]:
        """Insert or update source rows; the (source id, chunks) of those whose chunks are
        replaced."""
        now = time.time()
        replaced: list[tuple[int, list[Chunk]]] = []
        for src, chunks in sources:
            sid = self._run(
                _UPSERT_SOURCE,
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
            ).fetchone()[0]
            if chunks is not None:
                replaced.append((sid, chunks))
                self._replace_links(sid, src.links or [])
            self._replace_names(sid, src.path, src.title, src.metadata, src.status)
        return replaced

    def _replace_names(
        self, sid: int, path: str, title: str, metadata: dict[str, Any], status: str
    ) -> None:
        """A source's folded names (none for a failed one), replaced in the current
        transaction: the note-name lookup (``named``) reads them."""
        self._run("DELETE FROM names WHERE source_id = ?", (sid,))
        if status != "failed":
            self._insert_names([(k, sid, n) for k, n in folded_names(path, title, metadata)])

    def _insert_names(self, rows: list[tuple[str, int, str]]) -> None:
        if rows:
            sql = "INSERT INTO names (key, source_id, name) VALUES (?, ?, ?)"
            self.db.cursor().executemany(sql.replace("?", self.param), rows)

    def _fill_names(self) -> None:
        """Every source's names, once, for an index made before they had a table (the
        migration that made it marks the index ``names_missing``)."""
        if self._run("SELECT 1 FROM meta WHERE key = 'names_missing'").fetchone() is None:
            return
        self._run("DELETE FROM names")  # a file whose version was set back keeps its table
        rows = self._run(
            "SELECT id, path, title, CAST(metadata AS text) FROM sources WHERE status <> 'failed'"
        )
        self._insert_names(
            [
                (key, int(sid), name)
                for sid, path, title, meta in rows.fetchall()
                for key, name in folded_names(path, title, json.loads(meta))
            ]
        )
        self._run("DELETE FROM meta WHERE key = 'names_missing'")

    def _replace_links(self, sid: int, links: list[Link]) -> None:
        """A source's links, replaced in the current transaction (with its chunks)."""
        self._run("DELETE FROM links WHERE source_id = ?", (sid,))
        if links:
            sql = "INSERT INTO links VALUES (?,?,?,?,?,?,?)"
            if self.param != "?":
                sql = sql.replace("?", self.param)
            self.db.cursor().executemany(
                sql,
                [
                    (sid, i, x.kind, x.target, x.heading, x.alias, link_name(x.target))
                    for i, x in enumerate(links)
                ],
            )

    # -- meta and roots ------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._run("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._run(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self) -> dict[str, str]:
        return dict(self._run("SELECT key, value FROM meta").fetchall())

    def roots(self) -> list[str]:
        return [r[0] for r in self._run("SELECT path FROM roots ORDER BY path")]

    def add_root(self, path: str) -> None:
        self._run("INSERT INTO roots VALUES (?, ?) ON CONFLICT DO NOTHING", (path, time.time()))

    def remove_root(self, path: str) -> list[str]:
        def work() -> list[str]:
            self._run("DELETE FROM roots WHERE path = ?", (path,))
            gone = [r[0] for r in self._run("SELECT path FROM sources WHERE root = ?", (path,))]
            self._delete(gone)
            return gone

        return self._write(work)

    # -- writing -------------------------------------------------------------------

    def write_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        def work() -> None:
            self._insert_vectors_logged(vectors)
            self._bump("vectors_generation")

        self._write(work)

    def replace_vectors(self, vectors: dict[str, np.ndarray], embedder: str) -> None:
        def work() -> None:
            self._run("DELETE FROM embeddings")
            self._insert_vectors(vectors)
            self.set_meta("embedder", embedder)
            self._log_rebuild()
            self._bump("vectors_generation")

        self._write(work)

    def delete_sources(self, paths: Iterable[str]) -> int:
        items = sorted(paths)  # the order two writers lock rows in
        return self._write(lambda: self._delete(items))

    def gc_embeddings(self) -> int:
        def work() -> int:
            cur = self._run(
                "DELETE FROM embeddings WHERE NOT EXISTS "
                "(SELECT 1 FROM chunks c WHERE c.hash = embeddings.hash)"
            )
            return int(cur.rowcount)

        return self._write(work)

    def reset(self) -> None:
        def work() -> None:
            self._clear()
            self._run("DELETE FROM meta WHERE key = 'embedder'")
            self._log_rebuild()
            self._bump()

        self._write(work)

    def move_source(self, old: str, new: str, root: str, size: int, mtime_ns: int) -> None:
        def work() -> None:
            row = self._run(
                "UPDATE sources SET path = ?, root = ?, size = ?, mtime_ns = ?, indexed_at = ? "
                "WHERE path = ? RETURNING id, title, CAST(metadata AS text), status",
                (new, root, size, mtime_ns, time.time(), old),
            ).fetchone()
            if row is not None:  # its file name is one of its names
                sid, title, meta, status = row
                self._replace_names(int(sid), new, title, json.loads(meta), status)
            self._bump()

        self._write(work)

    # -- reading -------------------------------------------------------------------

    def sources(self) -> dict[str, SourceRow]:
        return {row.path: row for row in map(_source, self._run(_SOURCE))}

    def links_from(self, path: str) -> list[Link]:
        rows = self._run(
            "SELECT l.kind, l.target, l.heading, l.alias FROM links l "
            "JOIN sources s ON s.id = l.source_id WHERE s.path = ? ORDER BY l.ord",
            (path,),
        )
        return [Link(*r) for r in rows]

    def links_to(self, names: Iterable[str]) -> list[tuple[str, Link]]:
        out: list[tuple[str, Link]] = []
        for where, args in self._matching("l.name", sorted(set(names))):
            rows = self._run(
                "SELECT s.path, l.kind, l.target, l.heading, l.alias FROM links l "
                f"JOIN sources s ON s.id = l.source_id WHERE {where} ORDER BY s.path, l.ord",
                args,
            )
            out.extend((r[0], Link(*r[1:])) for r in rows)
        return out

    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for where, args in self._matching("hash", list(set(hashes))):
            found.update(
                r[0] for r in self._run(f"SELECT hash FROM embeddings WHERE {where}", args)
            )
        return found

    def vectors_for(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for where, args in self._matching("hash", list(set(hashes))):
            rows = self._run(f"SELECT hash, vector FROM embeddings WHERE {where}", args)
            out.update((h, self._vector(v)) for h, v in rows)
        return out

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        for where, args in self._matching("c.id", list(ids)):
            out.update({r[0]: _chunk(r) for r in self._run(f"{_CHUNK} WHERE {where}", args)})
        return out

    def dump(self, paths: Sequence[str]) -> list[tuple[SourceRow, list[Chunk]]]:
        out: list[tuple[SourceRow, list[Chunk]]] = []
        for path in paths:
            row = self._run(f"{_SOURCE} WHERE path = ?", (path,)).fetchone()
            if row is None:
                continue
            src = _source(row)
            src.links = self.links_from(path)
            rows = self._run(
                f'SELECT c.start, c."end", c.text, c.heading, c.page, {self.body}, c.hash '
                f"FROM {self.bodies} WHERE c.source_id = ? ORDER BY c.ord",
                (src.id,),
            )
            chunks: list[Chunk] = [
                StoredChunk(a, b, t, h, p, body=body, key=key) for a, b, t, h, p, body, key in rows
            ]
            out.append((src, chunks))
        return out

    def pending(
        self, after: int, limit: int, everything: bool = False
    ) -> list[tuple[int, str, str]]:
        waiting = "" if everything else f"AND {UNEMBEDDED} "
        rows = self._run(
            f"SELECT c.id, c.hash, {self.body} FROM {self.bodies} "
            f"WHERE c.id > ? {waiting}ORDER BY c.id LIMIT ?",
            (after, limit),
        )
        return [(i, h, body) for i, h, body in rows]

    def pending_count(self) -> int:
        sql = f"SELECT count(DISTINCT hash) FROM chunks c WHERE {UNEMBEDDED}"
        return int(self._run(sql).fetchone()[0])

    def chunk_ids(self, filters: Filters | None = None) -> np.ndarray:
        if not filters:
            rows = self._run("SELECT id FROM chunks ORDER BY id")
        else:
            where, args = self.filter_where(filters)
            # the sources the filter picks (through the path index), then their chunks
            # (through chunks' source index, or a scan when they are many: 100 against 141 ms
            # for 50,000 of 100k on SQLite), as one JSON array (quicker than a row per chunk);
            # the SQL is in the driver's style
            (found,) = self.db.execute(
                f"SELECT {self.json_ids} FROM chunks c WHERE c.source_id IN "
                f"(SELECT s.id FROM sources s WHERE {where})",
                args,
            ).fetchone()
            return np.sort(np.array(json.loads(found or "[]"), dtype=np.int64))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    #: the chunk ids ``c.id`` of a query as one JSON array, in text
    json_ids = "json_group_array(c.id)"
    #: chunks ``c`` joined with their sources ``s``, the chunks read first (SQLite's CROSS
    #: JOIN fixes that order; else its planner may start from a broad filter's path range)
    chunks_first = "chunks c CROSS JOIN sources s ON s.id = c.source_id"
    #: chunk ids drawn to estimate a filter's share (about ±1.5 points at half the chunks)
    SAMPLE = 1_000

    def chunks_among(self, ids: Sequence[int], filters: Filters) -> np.ndarray:
        # each candidate's path tested against the globs as written: the ranges of the path
        # index that ``filter_where`` looks up (one per folder of a broad glob) would all be
        # tried on every candidate
        where, args = self.filter_sql(filters)
        found: list[int] = []
        for among, part in self._matching("c.id", sorted({int(i) for i in ids})):
            among = among.replace("?", self.param)  # ``where`` is in the driver's style
            rows = self.db.execute(
                f"SELECT c.id FROM {self.chunks_first} WHERE {among} AND ({where})",
                [*part, *args],
            )
            found.extend(int(r[0]) for r in rows)
        return np.sort(np.array(found, dtype=np.int64))

    def filter_share(self, filters: Filters) -> float:
        """From ``SAMPLE`` chunk ids drawn at random between the lowest and the highest
        (ids the database gave out in order: gaps are deletions, which the draw skips), so
        a broad filter is never listed to be measured. Drawn with a fixed seed: the same
        index and filter always plan the same way."""
        # (two subqueries: SQLite reads min() or max() from the index only when alone)
        lo, hi = self._run(
            "SELECT (SELECT min(id) FROM chunks), (SELECT max(id) FROM chunks)"
        ).fetchone()
        if lo is None:
            return 0.0
        rng = np.random.default_rng(0)
        draw = np.unique(rng.integers(int(lo), int(hi) + 1, size=self.SAMPLE)).tolist()
        where, args = self.filter_sql(filters)  # as ``chunks_among`` tests candidates
        present = allowed = 0
        for among, part in self._matching("c.id", draw):  # each drawn chunk read once
            among = among.replace("?", self.param)
            n, kept = self.db.execute(
                f"SELECT count(*), count(CASE WHEN {where} THEN 1 END) "
                f"FROM {self.chunks_first} WHERE {among}",
                [*args, *part],
            ).fetchone()
            present, allowed = present + int(n), allowed + int(kept)
        if present < self.SAMPLE // 4:  # ids too sparse for the draw: count exactly
            return super().filter_share(filters)
        return allowed / present

    def chunk_count(self) -> int:
        return int(self._run("SELECT count(*) FROM chunks").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        one = lambda q: self._run(q).fetchone()[0]  # noqa: E731
        failed = self._run(
            "SELECT path, status, error FROM sources WHERE status <> 'ok' ORDER BY path"
        ).fetchall()
        return {
            "sources": one("SELECT count(*) FROM sources WHERE status <> 'failed'"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "embeddings": one("SELECT count(*) FROM embeddings"),
            "problems": [{"path": p, "status": s, "reason": e} for p, s, e in failed],
        }

    def close(self) -> None:
        self.db.close()
