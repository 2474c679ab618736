"""``SQLStore``: what the SQLite and PostgreSQL stores share, written once.

Both keep the same tables (``meta``, ``roots``, ``sources``, ``chunks``, ``embeddings`` keyed
by chunk hash) and answer most of the ``Store`` interface with the same SQL. That SQL is
written here with ``?`` markers, and ``_run`` hands it to the driver in the backend's own
parameter style (``param``: ``?`` for sqlite3, ``%s`` for psycopg). A backend supplies its
transactions, how it tests a column against many values, how it decodes a stored vector, and
the parts that really differ: writing chunks with their keyword index, vectors, keyword search.

Filters and migrations are split the same way: ``SQLFilters`` walks a filter and each
backend's ``filters`` module writes the SQL of one condition; ``SQLStore._migrate`` applies the
numbered migrations of the backend's ``schema`` module (``Schema``).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import numpy as np

from kenning.errors import SchemaTooNew
from kenning.filters import (
    NESTED,
    Filters,
    glob_regex,
    literal_prefix,
    nested_prefix,
    prefix_end,
    relative,
)
from kenning.text.chunking import Chunk
from kenning.text.links import Link, link_name

from .base import ChunkRow, SourceRow, Store, StoredChunk

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
#: columns a filter may name that are columns of ``sources``, not metadata keys
COLUMNS = ("title", "type", "path")
#: one way a path glob can match: (the root the source must have, or None for any; a glob
#: of the whole path)
Way = tuple[str | None, str]
#: more distinct roots than this: path globs test every source instead of looking up a
#: range of paths per root
MOST_ROOTS = 64
#: index probes a search may spend turning a glob's wildcards into literal prefixes, and
#: the fewest paths under a prefix worth it
PROBES = 256
EXPAND_ABOVE = 2_000


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


class SQLFilters(ABC):
    """``Filters`` compiled to a WHERE clause over ``sources s`` and its parameters.

    The rules are ``Filters.matches``' (the reference): a failed source never matches, a
    metadata list matches when any item does and ``!=`` when none does, a path glob matches
    the path under its root or the whole path. The walk is shared; each backend gives the SQL
    of each condition, with its driver's parameter markers.

    A path glob is looked up, not scanned for: given the roots of the indexed sources, the
    paths it can match start with its literal prefix, or with a root and that prefix, so
    the clause names those ranges of the path index (``starts``) before the exact test
    (``pattern``), which then runs on the candidates only.
    """

    #: the path under its root, as ``kenning.filters.relative`` gives it, over ``sources s``
    relative: str
    #: the source column ``{key}`` compares: its parameters are the operator and the value
    column: str
    #: some item of the metadata value at a key is a nested child: the key, then the
    #: lower-cased prefix the child starts with (``kenning.filters.nested_prefix``)
    nested: str
    #: some item of the metadata value at a key compares: the key, the operator, the value
    metadata: str

    @abstractmethod
    def types(self, types: list[str]) -> tuple[str, list[Any]]:
        """The source's type is one of ``types``."""

    @abstractmethod
    def pattern(self, text: str, glob: str) -> tuple[str, list[Any]]:
        """The SQL expression ``text`` matches the path glob ``glob`` (``glob_regex``'s
        rules: ``*`` and ``?`` stay inside a folder, ``**`` crosses folders), exactly."""

    @abstractmethod
    def starts(self, prefix: str) -> tuple[str, list[Any]]:
        """``s.path`` starts with ``prefix``, as a condition the path index answers."""

    def __call__(
        self, filters: Filters, ways: Callable[[str], list[Way] | None] | None = None
    ) -> tuple[str, list[Any]]:
        """The clause and its parameters. ``ways``: where the store looks up the paths a
        glob can match (``SQLStore._glob_ways``); without it, or when it gives None, a glob
        is tested on every source."""
        parts: list[tuple[str, list[Any]]] = []
        if filters.types:
            parts.append(self.types(list(filters.types)))
        if filters.paths:
            globs = [self._glob(pattern, ways) for pattern in filters.paths]
            test = "(" + " OR ".join(g for g, _ in globs) + ")"
            parts.append((test, [a for _, x in globs for a in x]))
        for c in filters.where:
            op = "=" if c.op == "!=" else c.op
            if c.key in COLUMNS:
                test, args = self.column.format(key=c.key), [op, c.value]
            else:
                test, args = self.metadata, [c.key, op, c.value]
                if op == "=" and c.key in NESTED:  # tag=area matches area/sub too
                    test = f"({test} OR {self.nested})"
                    args += [c.key, nested_prefix(c.value)]
            parts.append((f"NOT {test}" if c.op == "!=" else test, args))
        # last: the path tests read the path index alone, the status needs the row
        parts.append(("s.status <> 'failed'", []))
        return " AND ".join(p for p, _ in parts), [arg for _, args in parts for arg in args]

    def _glob(
        self, pattern: str, ways: Callable[[str], list[Way] | None] | None
    ) -> tuple[str, list[Any]]:
        """One path glob: the path under its root or the whole path matches it; each way
        the store gives is a range of the path index and a test of the paths in it."""
        found = ways(pattern) if ways is not None else None
        if found is None:
            rel, rel_args = self.pattern(f"({self.relative})", pattern)
            whole, whole_args = self.pattern("s.path", pattern)
            return f"(({rel}) OR ({whole}))", [*rel_args, *whole_args]
        parts: list[tuple[str, list[Any]]] = []
        for root, glob in found:
            test, args = self.pattern("s.path", glob)
            lead = literal_prefix(glob)
            if lead:
                where, at = self.starts(lead)
                test, args = f"{where} AND {test}", [*at, *args]
            if root is not None:
                test, args = f"s.root = {self.marker} AND {test}", [root, *args]
            parts.append((f"({test})", args))
        if not parts:
            return "(1 = 0)", []
        return "(" + " OR ".join(p for p, _ in parts) + ")", [a for _, x in parts for a in x]

    #: the driver's parameter marker
    marker = "?"


class SQLStore(Store):
    """The ``Store`` methods whose SQL both databases share, over the connection ``db``."""

    db: Any
    #: the driver's parameter marker, put in place of the ``?`` of the SQL written here
    param = "?"
    #: chunks ``c`` joined with where their keyword-indexed text lives, and that text
    bodies = "chunks c"
    body = "c.body"
    #: compiles ``Filters`` for this database
    filter_sql: SQLFilters
    #: (generation, distinct roots of the sources), for path globs (``_source_roots``)
    _roots_cache: tuple[str | None, list[str]] | None = None

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

    def source_names(self, since: float | None = None) -> list[tuple[str, str, str, bool, float]]:
        rows = self._run(
            "SELECT path, title, CAST(metadata AS text), status = 'failed', indexed_at "
            "FROM sources WHERE indexed_at >= ?",
            (-1.0 if since is None else since,),
        )
        # in Python's order, whatever the database's collation
        return sorted((p, t, m, bool(f), float(at)) for p, t, m, f, at in rows)

    def source_count(self) -> int:
        return int(self._run("SELECT count(*) FROM sources WHERE status <> 'failed'").fetchone()[0])

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
        return replaced

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
            self._run(
                "UPDATE sources SET path = ?, root = ?, size = ?, mtime_ns = ?, indexed_at = ? "
                "WHERE path = ?",
                (new, root, size, mtime_ns, time.time(), old),
            )
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

    def filter_where(self, filters: Filters) -> tuple[str, list[Any]]:
        """``filters`` as a WHERE clause over ``sources s`` in the driver's style, with the
        path globs looked up by prefix under the roots of the indexed sources."""
        budget = [PROBES]
        return self.filter_sql(filters, lambda glob: self._glob_ways(glob, budget))

    def _glob_ways(self, glob: str, budget: list[int]) -> list[Way] | None:
        """The ways a path glob can match, each a glob of the whole path that starts with
        as long a literal prefix as can be had: the glob itself (the whole path), and per
        root the root's folder and the glob (the path under it), or the root itself when
        it is a file the glob names. None when the roots are too many or hold wildcards."""
        roots = self._source_roots()
        if len(roots) > MOST_ROOTS or any(c in r for r in roots for c in "*?"):
            return None
        ways: list[Way] = [(None, glob)]
        for root in roots:
            ways.append((root, (root if root.endswith("/") else root + "/") + glob))
            if glob_regex(glob).match(relative(root, root)):
                ways.append((root, root))
        if not self.expands_globs:
            return ways
        return [(root, g) for root, whole in ways for g in self._expand(whole, budget)]

    #: whether the path index is in code-point order, so ``_expand`` can walk it
    expands_globs = False
    #: the chunk ids ``c.id`` of a query as one JSON array, in text
    json_ids = "json_group_array(c.id)"

    def _expand(self, glob: str, budget: list[int]) -> list[str]:
        """``glob`` as globs with longer literal prefixes that match the same indexed paths:
        a ``?``, or a ``*`` that ends its folder, right after the prefix becomes each
        character or folder name found there, by skipping through the path index (one
        probe each, while ``budget`` lasts), so a glob like ``notes/?/**`` reads the
        paths of those folders only, not all of ``notes/``."""
        lead = literal_prefix(glob)
        i = len(lead)
        if not lead or i == len(glob) or glob.startswith("**", i):
            return [glob]
        if glob[i] == "*" and not glob.startswith("/", i + 1):
            return [glob]
        low, above, end = lead, False, prefix_end(lead)
        crowded = self._run(  # few paths under the prefix: reading them all is as quick
            "SELECT 1 FROM sources WHERE path >= ? AND path < ? LIMIT 1 OFFSET ?",
            (lead, end, EXPAND_ABOVE),
        ).fetchone()
        if crowded is None:
            return [glob]
        out: list[str] = []
        while True:
            if budget[0] <= 0:
                return [glob]
            budget[0] -= 1
            row = self._run(
                f"SELECT path FROM sources WHERE path {'>' if above else '>='} ? AND path < ? "
                "ORDER BY path LIMIT 1",
                (low, end),
            ).fetchone()
            if row is None:
                return out
            path: str = row[0]
            slash = path.find("/", i)
            if glob[i] == "?":
                piece = path[i]
                low, above = prefix_end(lead + piece), False
                if piece == "/":
                    continue
            elif slash < 0:  # a file right under the prefix: no folder for "*/..."
                low, above = path, True
                continue
            else:
                piece = path[i:slash]
                low, above = prefix_end(lead + piece + "/"), False
            if "*" in piece or "?" in piece:  # not a literal in a glob
                return [glob]
            out += self._expand(lead + piece + glob[i + 1 :], budget)

    def _source_roots(self) -> list[str]:
        """The distinct roots of the sources, read again only when the sources change."""
        generation = self.get_meta("generation")
        cached = self._roots_cache
        if cached is None or cached[0] != generation:
            roots = [r[0] for r in self._run("SELECT DISTINCT root FROM sources ORDER BY root")]
            cached = self._roots_cache = (generation, roots)
        return list(cached[1])

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
