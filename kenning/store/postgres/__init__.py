"""``PostgresStore``: one index in a PostgreSQL database, shared by several kenning processes.

    Index.open("postgresql://user@host:5432/notes")     # or --index / KENNING_INDEX

Tables live in their own schema (``kenning``), created and changed only by the numbered
migrations of ``schema``. Vectors sit in a pgvector column with an HNSW index (cosine),
made once the embedder's dimension is known, with the settings of ``hnsw`` (store URL
query, kenning.toml's ``[postgres]``, measured defaults). Keyword ranking is the same BM25
as the SQLite default, kept and scored in SQL by ``bm25``.

Several processes may write at once: every write is one transaction, rows that two writers
share (term counts, totals, vectors) are locked in sorted order so writers queue instead of
deadlocking, ``sync`` holds an advisory lock per root, and a reader sees each file either
before or after a write, never half of it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from kenning.config import cache_dir, load_settings
from kenning.errors import ConfigError, MissingExtra, NotFound
from kenning.store.base import Lock, Scope, SourceRow, stores
from kenning.store.sql import SQLStore
from kenning.text.chunking import Chunk
from kenning.text.tokens import Tokenizer

from . import hnsw, schema
from .bm25 import count as count_terms
from .bm25 import drop_chunks
from .bm25 import search as bm25_search
from .filters import code_point_order, filter_sql, ranged_filter_sql
from .schema import SCHEMA

T = TypeVar("T")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:
        raise MissingExtra("psycopg", "postgres") from e
    return psycopg


def redact(url: str) -> str:
    """The URL as messages and ``status`` show it: without its password."""
    return re.sub(r"^(\w+://[^:/@]*):[^@]*@", r"\1:***@", url)


class AdvisoryLock(Lock):
    """A session-level advisory lock on a connection of its own: PostgreSQL drops it when
    the connection ends, so a killed process never leaves it behind."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.close()


@stores.register("postgresql")
class PostgresStore(SQLStore):
    """A PostgreSQL database with pgvector; the URL is a libpq connection URI."""

    searches_itself = True
    param = "%s"
    filter_sql = filter_sql
    json_ids = "CAST(coalesce(json_agg(c.id), '[]') AS text)"
    chunks_first = "chunks c JOIN sources s ON s.id = c.source_id"

    def cache_prefix(self) -> str | None:
        """Under ``~/.cache/kenning/stores``, named after this database's URL and its
        ``store_id``, so a cache built from one database is never read for another."""
        key = hashlib.sha256(f"{self.location}\0{self.get_meta('store_id')}".encode())
        folder = cache_dir() / "stores"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / key.hexdigest()[:20])

    #: a filter that leaves more chunks than this walks the HNSW graph (pgvector >= 0.8)
    exact_below = hnsw.EXACT_BELOW

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        self.location = redact(url)
        self._conninfo, self.hnsw = hnsw.split_url(url, load_settings(url)["postgres"])
        psycopg = _psycopg()
        try:
            self.db = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.OperationalError as e:
            raise ConfigError(f"cannot connect to {self.location}: {str(e).strip()}") from None
        self._vector_type()
        self.pgvector = hnsw.version(self.db)
        self.iterative = hnsw.iterative(self.pgvector)
        if code_point_order(self.db):  # paths sort as in Python: look prefixes up as ranges
            self.filter_sql, self.expands_globs = ranged_filter_sql, True
        self.db.execute(f"SET search_path TO {SCHEMA}, public")
        self._tokens: Tokenizer | None = None
        self._hnsw = False
        self._bulk = False
        if not create and schema.version(self.db) == 0:
            self.db.close()
            raise NotFound(f"no index at {url}; create one with `kenning --index URL add PATH`")
        self._migrate(schema)

    @property
    def address(self) -> str:
        return self.url

    @classmethod
    def open_location(cls, location: str, create: bool = True) -> PostgresStore:
        return cls(location, create)

    def _vector_type(self) -> None:
        """Make sure pgvector is there, and send vectors as binary numpy arrays."""
        try:
            self.db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except _psycopg().Error as e:
            raise ConfigError(
                f"{self.location} has no pgvector extension and this user cannot create it "
                f"({str(e).strip()}); run CREATE EXTENSION vector as a superuser"
            ) from None
        try:
            from pgvector.psycopg import register_vector
        except ImportError as e:
            raise MissingExtra("pgvector", "postgres") from e
        register_vector(self.db)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        if self.db.info.transaction_status != 0:  # already inside a transaction
            yield
            return
        with self.db.transaction():
            self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def _write(self, work: Callable[[], T], tries: int = 5) -> T:
        """One transaction, run again if PostgreSQL breaks a deadlock by aborting it."""
        psycopg = _psycopg()
        for attempt in range(tries):
            try:
                with self.db.transaction():
                    return work()
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == tries - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _matching(self, column: str, values: list[Any]) -> Iterator[tuple[str, list[Any]]]:
        yield f"{column} = ANY(?)", [values]

    def _lock_log(self) -> None:
        self.db.execute("SELECT pg_advisory_xact_lock(hashtext('kenning:changes'))")

    def _log(self, op: str, ids: Sequence[int]) -> None:
        if not ids:
            return
        self._lock_log()
        self.db.execute(  # one statement, ids in their order: as fast as COPY here
            "INSERT INTO changes (chunk_id, op) SELECT u.i, %s "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(i, n) ORDER BY u.n",
            (op, [int(i) for i in ids]),
        )
        self._trim_log()

    @staticmethod
    def _vector(value: Any) -> np.ndarray:
        """A pgvector value as float32 (pgvector 0.3+ returns its own ``Vector``)."""
        if hasattr(value, "to_numpy"):
            value = value.to_numpy()
        return np.asarray(value, dtype=np.float32)

    def lock(self, name: str, wait: bool = True) -> Lock | None:
        conn = _psycopg().connect(self._conninfo, autocommit=True)
        key = f"kenning:{name}"
        if wait:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        else:
            got = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
            ).fetchone()[0]
            if not got:
                conn.close()
                return None
        return AdvisoryLock(conn)

    # -- writing -------------------------------------------------------------------

    def replace_vectors(self, vectors: dict[str, np.ndarray], embedder: str) -> None:
        def work() -> None:
            self._forget_dimension("TRUNCATE embeddings")
            # the index is built once over the new rows rather than row by row
            bulk, self._bulk = self._bulk, True
            try:
                self._insert_vectors(vectors)
            finally:
                self._bulk = bulk
            if vectors and not bulk:
                self._ensure_hnsw(len(next(iter(vectors.values()))))
            self.set_meta("embedder", embedder)
            self._log_rebuild()
            self._bump("vectors_generation")

        self._write(work)

    def _forget_dimension(self, empty: str) -> None:
        """Empty the vectors (``empty``, a TRUNCATE) and untype their column: the next model
        may have another dimension, so the column and its HNSW index start over."""
        self.db.execute("DROP INDEX IF EXISTS embeddings_hnsw")
        self.db.execute(empty)
        self.db.execute("ALTER TABLE embeddings ALTER COLUMN vector TYPE vector")
        self._hnsw = False

    def _insert_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        self._ensure_hnsw(len(next(iter(vectors.values()))))
        with self.db.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(h, np.asarray(vectors[h], dtype=np.float32)) for h in sorted(vectors)],
            )

    def _ensure_hnsw(self, dim: int) -> None:
        """Give the vector column its dimension and an HNSW index, once per database (the
        index waits for the end of a ``bulk`` load)."""
        if self._hnsw:
            return
        exists = "SELECT to_regclass('kenning.embeddings_hnsw') IS NOT NULL"
        if not self.db.execute(exists).fetchone()[0]:
            self.db.execute("SELECT pg_advisory_xact_lock(hashtext('kenning:hnsw'))")
            typed = self.db.execute(
                "SELECT atttypmod FROM pg_attribute "
                "WHERE attrelid = 'kenning.embeddings'::regclass AND attname = 'vector'"
            ).fetchone()[0]
            if typed < 0:  # no dimension yet
                self.db.execute(
                    f"ALTER TABLE embeddings ALTER COLUMN vector TYPE vector({int(dim)})"
                )
            if self._bulk:
                return
            if not self.db.execute(exists).fetchone()[0]:
                rows = self.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
                memory = self.hnsw.build_memory_mb(int(rows), int(dim))
                self.db.execute(f"SET LOCAL maintenance_work_mem = '{memory}MB'")
                self.db.execute(
                    "CREATE INDEX embeddings_hnsw ON embeddings "
                    f"USING hnsw (vector vector_cosine_ops) {self.hnsw.build_options()}"
                )
        self._hnsw = True

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A large load (a migration, a benchmark build): a new database gets its HNSW index
        once at the end, which pgvector builds far faster than it inserts row by row, and
        its tables are vacuumed and analysed."""
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False
        row = self.db.execute("SELECT vector_dims(vector) FROM embeddings LIMIT 1").fetchone()
        if row is not None:
            self._write(lambda: self._ensure_hnsw(int(row[0])))
        # Statistics for the planner, and the visibility map that lets BM25 scan postings
        # index-only, now rather than whenever autovacuum comes round.
        for table in ("postings", "terms", "chunks", "sources"):
            self.db.execute(f"VACUUM (ANALYZE) {table}")

    def write_sources(
        self,
        sources: Sequence[tuple[SourceRow, list[Chunk] | None]],
        vectors: dict[str, np.ndarray],
    ) -> None:
        if self._tokens is None:
            self._tokens = Tokenizer("postgres")
        tokenize = self._tokens
        # Tokenised before the transaction opens, so locks are held only for the writes.
        tokens = {id(c): tokenize(c.indexed_text) for _, chunks in sources for c in chunks or ()}

        def work() -> None:
            db = self.db
            self._lock_log()  # first: every writer takes it before any row lock
            self._insert_vectors_logged(vectors)
            replaced = self._upsert_sources(sorted(sources, key=lambda s: s[0].path))
            self._log_where("delete", "c.source_id = ANY(?)", [[sid for sid, _ in replaced]])
            delta, n_chunks, n_tokens = drop_chunks(
                db, "source_id = ANY(%s)", [[sid for sid, _ in replaced]]
            )
            rows: list[tuple[Any, ...]] = []
            postings: list[tuple[str, int, int, int]] = []
            count = sum(len(chunks) for _, chunks in replaced)
            # Ids handed out up front, so chunks and postings go in with COPY.
            ids = iter(
                sorted(
                    r[0]
                    for r in db.execute(
                        "SELECT nextval('chunks_id_seq') FROM generate_series(1, %s)", (count,)
                    )
                )
            )
            for sid, chunks in replaced:
                for ordinal, c in enumerate(chunks):
                    cid, toks = next(ids), tokens[id(c)]
                    rows.append(
                        (
                            cid,
                            sid,
                            ordinal,
                            c.start,
                            c.end,
                            c.heading,
                            c.page,
                            c.text,
                            c.hash,
                            c.indexed_text,
                            len(toks),
                        )
                    )
                    for term, tf in Counter(toks).items():
                        postings.append((term, cid, tf, len(toks)))
                        delta[term] += 1
                    n_chunks += 1
                    n_tokens += len(toks)
            with db.cursor() as cur:
                if rows:
                    with cur.copy(
                        'COPY chunks (id, source_id, ord, start, "end", heading, page, text, '
                        "hash, body, length) FROM STDIN"
                    ) as copy:
                        for row in rows:
                            copy.write_row(row)
                if postings:
                    with cur.copy("COPY postings (term, chunk_id, tf, length) FROM STDIN") as copy:
                        for posting in postings:
                            copy.write_row(posting)
            count_terms(db, delta, n_chunks, n_tokens)
            self._log("add", [row[0] for row in rows])
            self._bump()

        self._write(work)

    def _delete(self, paths: Sequence[str]) -> int:
        if paths:
            self._log_where(
                "delete",
                "c.source_id IN (SELECT id FROM sources WHERE path = ANY(?))",
                [list(paths)],
            )
            where = "source_id IN (SELECT id FROM sources WHERE path = ANY(%s))"
            count_terms(self.db, *drop_chunks(self.db, where, [list(paths)]))
            self.db.execute("DELETE FROM sources WHERE path = ANY(%s)", (list(paths),))
        self._bump()
        return len(paths)

    def _clear(self) -> None:
        self._forget_dimension(
            "TRUNCATE postings, terms, links, names, chunks, sources, embeddings"
        )
        self.db.execute("UPDATE totals SET chunks = 0, tokens = 0")

    # -- reading -------------------------------------------------------------------

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute(
            "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.hash = c.hash ORDER BY c.id"
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, np.stack([self._vector(r[1]) for r in rows])

    def vector_search(
        self, query: np.ndarray, k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        q = np.asarray(query, dtype=np.float32)
        if scope is not None:
            allowed = scope.chunk_ids().tolist()
            if not allowed:
                return []
            if self._walk_filtered(len(allowed)):
                found = self._filtered_walk(q, k, allowed)
                if len(found) == k:
                    return found
                # the walk stopped (hnsw.max_scan_tuples) before k allowed chunks: exact
            return self._filtered_exact(q, k, allowed)
        with self.db.transaction():
            self.db.execute(f"SET LOCAL hnsw.ef_search = {self.hnsw.ef_search(k)}")
            if k > self.hnsw.ef_search(k) and self.iterative:
                # more than pgvector's widest breadth (a broad filter's candidates): walk on
                self.db.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            rows = self.db.execute(
                "SELECT c.id, 1 - nn.d FROM (SELECT hash, vector <=> %s AS d FROM embeddings "
                "ORDER BY vector <=> %s LIMIT %s) nn JOIN chunks c ON c.hash = nn.hash "
                "ORDER BY nn.d, c.id LIMIT %s",
                (q, q, k, k),
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _walk_filtered(self, allowed: int) -> bool:
        """The planner of a filtered search: walk the graph only on pgvector >= 0.8, with
        an HNSW index, and when the filter leaves more than ``exact_below`` chunks; else
        scan the allowed chunks exactly (few, so quick, and never misses one)."""
        return (
            allowed > self.exact_below
            and self.iterative
            and self.db.execute(
                "SELECT to_regclass('kenning.embeddings_hnsw') IS NOT NULL"
            ).fetchone()[0]
        )

    def _filtered_exact(self, q: np.ndarray, k: int, allowed: list[int]) -> list[tuple[int, float]]:
        """Exact over the allowed chunks, as the in-memory indexes do ("+ 0" keeps the
        planner off the HNSW index). Never prepared: the chunk ids must reach the planner
        as a constant, which it hashes once, not as a parameter it searches per row."""
        rows = self.db.execute(
            "SELECT c.id, 1 - (e.vector <=> %s) FROM chunks c JOIN embeddings e "
            "ON e.hash = c.hash WHERE c.id = ANY(%s::bigint[]) "
            "ORDER BY (e.vector <=> %s) + 0, c.id LIMIT %s",
            (q, allowed, q, k),
            prepare=False,
        )
        return [(int(i), float(s)) for i, s in rows]

    def _filtered_walk(self, q: np.ndarray, k: int, allowed: list[int]) -> list[tuple[int, float]]:
        """pgvector's iterative index scan: the graph walk goes on past ``ef_search``
        candidates until ``k`` vectors of allowed chunks are found (or
        ``hnsw.max_scan_tuples``); relaxed order, sorted again here."""
        with self.db.transaction():
            for setting in self._walk_settings(k):
                self.db.execute(setting)
            args = {"q": q, "ids": allowed, "k": k}
            rows = self.db.execute(self._walk_sql(), args, prepare=False).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def _walk_settings(self, k: int) -> list[str]:
        return [
            "SET LOCAL hnsw.iterative_scan = relaxed_order",
            f"SET LOCAL hnsw.max_scan_tuples = {hnsw.MAX_SCAN_TUPLES}",
            f"SET LOCAL hnsw.ef_search = {self.hnsw.ef_search(k)}",
        ]

    @staticmethod
    def _walk_sql() -> str:
        """Parameters: ``q`` the query vector, ``ids`` the allowed chunk ids (sent once,
        however often named), ``k``. The test is a scalar subquery on each vector the walk
        yields, not an EXISTS, which the planner would turn into a join that starts from
        the allowed chunks and sorts them; the found vectors' chunks are then looked up by
        hash (LATERAL, OFFSET 0), not by reading every allowed chunk."""
        return (
            "WITH nn AS MATERIALIZED (SELECT e.hash, e.vector <=> %(q)s AS d FROM embeddings e "
            "WHERE coalesce((SELECT true FROM chunks c WHERE c.hash = e.hash "
            "AND c.id = ANY(%(ids)s::bigint[]) LIMIT 1), false) "
            "ORDER BY e.vector <=> %(q)s LIMIT %(k)s) "
            "SELECT c.id, 1 - nn.d FROM nn CROSS JOIN LATERAL (SELECT c.id FROM chunks c "
            "WHERE c.hash = nn.hash AND c.id = ANY(%(ids)s::bigint[]) OFFSET 0) c "
            "ORDER BY nn.d, c.id LIMIT %(k)s"
        )

    def keyword_search(
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        if self._tokens is None:
            self._tokens = Tokenizer("postgres")
        tokens = Counter(t for word in terms for t in self._tokens(word))
        allowed = None if scope is None else scope.chunk_ids().tolist()
        return bm25_search(self.db, tokens, k, allowed)

    def keyword_rows(self) -> Iterator[tuple[int, str]]:
        after = 0
        while rows := self.db.execute(
            "SELECT id, body FROM chunks WHERE id > %s ORDER BY id LIMIT 5000", (after,)
        ).fetchall():
            yield from rows
            after = rows[-1][0]

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT chunks FROM totals").fetchone()[0])

    def size_bytes(self) -> int:
        return int(
            self.db.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'",
                (SCHEMA,),
            ).fetchone()[0]
        )


stores.register("postgres")(PostgresStore)
