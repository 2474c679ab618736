"""``PostgresStore``: one index in a PostgreSQL database, shared by several kenning processes.

    Index.open("postgresql://user@host:5432/notes")     # or --index / KENNING_INDEX

Tables live in their own schema (``kenning``), created and changed only by the numbered
migrations of ``pgschema``. Vectors sit in a pgvector column with an HNSW index (cosine),
made once the embedder's dimension is known. Keyword ranking is the same BM25 as the SQLite
default, kept and scored in SQL by ``pgbm25``.

Several processes may write at once: every write is one transaction, rows that two writers
share (term counts, totals, vectors) are locked in sorted order so writers queue instead of
deadlocking, ``sync`` holds an advisory lock per root, and a reader sees each file either
before or after a write, never half of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from kenning.config import cache_dir
from kenning.errors import ConfigError, MissingExtra, NotFound
from kenning.filters import Filters
from kenning.text.chunking import Chunk
from kenning.text.tokens import Tokenizer

from .base import UNEMBEDDED, ChunkRow, Lock, SourceRow, Store, StoredChunk, stores
from .pgbm25 import count as count_terms
from .pgbm25 import drop_chunks
from .pgbm25 import search as bm25_search
from .pgfilters import filter_sql
from .pgschema import SCHEMA, migrate, version

#: HNSW search breadth: pgvector's default of 40 misses neighbours at depth 100
EF_SEARCH = 200


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:
        raise MissingExtra("psycopg", "postgres") from e
    return psycopg


def redact(url: str) -> str:
    """The URL as messages and ``status`` show it: without its password."""
    return re.sub(r"^(\w+://[^:/@]*):[^@]*@", r"\1:***@", url)


def _array(value: Any) -> np.ndarray:
    """A pgvector value as float32 (pgvector 0.3+ returns its own ``Vector``)."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


class AdvisoryLock(Lock):
    """A session-level advisory lock on a connection of its own: PostgreSQL drops it when
    the connection ends, so a killed process never leaves it behind."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.close()


@stores.register("postgresql")
class PostgresStore(Store):
    """A PostgreSQL database with pgvector; the URL is a libpq connection URI."""

    searches_itself = True

    def cache_prefix(self) -> str | None:
        """Under ``~/.cache/kenning/stores``, named after this database's URL and its
        ``store_id``, so a cache built from one database is never read for another."""
        key = hashlib.sha256(f"{self.location}\0{self.get_meta('store_id')}".encode())
        folder = cache_dir() / "stores"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / key.hexdigest()[:20])

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        self.location = redact(url)
        psycopg = _psycopg()
        try:
            self.db = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as e:
            raise ConfigError(f"cannot connect to {self.location}: {str(e).strip()}") from None
        self._vector_type()
        self.db.execute(f"SET search_path TO {SCHEMA}, public")
        self._tokens: Tokenizer | None = None
        self._hnsw = False
        self._bulk = False
        if not create and version(self.db) == 0:
            self.db.close()
            raise NotFound(f"no index at {url}; create one with `kenning --index URL add PATH`")
        migrate(self.db, self.location)

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
    def transaction(self) -> Iterator[Any]:
        """One transaction; retried by the caller's ``_retry`` if PostgreSQL breaks a
        deadlock by aborting it."""
        with self.db.transaction():
            yield self.db

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        if self.db.info.transaction_status != 0:  # already inside a transaction
            yield
            return
        with self.db.transaction():
            self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def _retry(self, work: Any, tries: int = 5) -> Any:
        psycopg = _psycopg()
        for attempt in range(tries):
            try:
                with self.transaction() as db:
                    return work(db)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == tries - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None

    # -- locks -------------------------------------------------------------------

    def lock(self, name: str, wait: bool = True) -> Lock | None:
        conn = _psycopg().connect(self.url, autocommit=True)
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

    # -- meta and roots ------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
            "excluded.value",
            (key, value),
        )

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    def roots(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM roots ORDER BY path")]

    def add_root(self, path: str) -> None:
        self.db.execute(
            "INSERT INTO roots VALUES (%s, %s) ON CONFLICT DO NOTHING", (path, time.time())
        )

    def remove_root(self, path: str) -> list[str]:
        def work(db: Any) -> list[str]:
            db.execute("DELETE FROM roots WHERE path = %s", (path,))
            gone = [r[0] for r in db.execute("SELECT path FROM sources WHERE root = %s", (path,))]
            self._delete(db, gone)
            return gone

        return list(self._retry(work))

    # -- sources and chunks --------------------------------------------------------

    def sources(self) -> dict[str, SourceRow]:
        rows = self.db.execute(
            "SELECT id, path, root, size, mtime_ns, hash, type, status, error, title, metadata "
            "FROM sources"
        )
        return {r[1]: SourceRow(*r) for r in rows}

    def known_hashes(self, hashes: Iterable[str]) -> set[str]:
        rows = self.db.execute(
            "SELECT hash FROM embeddings WHERE hash = ANY(%s)", (list(set(hashes)),)
        )
        return {r[0] for r in rows}

    def pending(
        self, after: int, limit: int, everything: bool = False
    ) -> list[tuple[int, str, str]]:
        waiting = "" if everything else f"AND {UNEMBEDDED} "
        rows = self.db.execute(
            f"SELECT c.id, c.hash, c.body FROM chunks c WHERE c.id > %s {waiting}"
            "ORDER BY c.id LIMIT %s",
            (after, limit),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def pending_count(self) -> int:
        return int(
            self.db.execute(
                f"SELECT count(DISTINCT hash) FROM chunks c WHERE {UNEMBEDDED}"
            ).fetchone()[0]
        )

    def write_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        def work(db: Any) -> None:
            self._insert_vectors(db, vectors)
            self._bump(db, "vectors_generation")

        self._retry(work)

    def replace_vectors(self, vectors: dict[str, np.ndarray], embedder: str) -> None:
        def work(db: Any) -> None:
            # the new model may have another dimension: the column and its index start over,
            # and the index is built once over the new rows rather than row by row
            db.execute("DROP INDEX IF EXISTS embeddings_hnsw")
            db.execute("TRUNCATE embeddings")
            db.execute("ALTER TABLE embeddings ALTER COLUMN vector TYPE vector")
            self._hnsw, bulk, self._bulk = False, self._bulk, True
            try:
                self._insert_vectors(db, vectors)
            finally:
                self._bulk = bulk
            if vectors and not bulk:
                self._ensure_hnsw(db, len(next(iter(vectors.values()))))
            db.execute(
                "INSERT INTO meta VALUES ('embedder', %s) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value",
                (embedder,),
            )
            self._bump(db, "vectors_generation")

        self._retry(work)

    def _insert_vectors(self, db: Any, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        self._ensure_hnsw(db, len(next(iter(vectors.values()))))
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(h, np.asarray(vectors[h], dtype=np.float32)) for h in sorted(vectors)],
            )

    def _ensure_hnsw(self, db: Any, dim: int) -> None:
        """Give the vector column its dimension and an HNSW index, once per database (the
        index waits for the end of a ``bulk`` load)."""
        if self._hnsw:
            return
        exists = "SELECT to_regclass('kenning.embeddings_hnsw') IS NOT NULL"
        if not db.execute(exists).fetchone()[0]:
            db.execute("SELECT pg_advisory_xact_lock(hashtext('kenning:hnsw'))")
            typed = db.execute(
                "SELECT atttypmod FROM pg_attribute "
                "WHERE attrelid = 'kenning.embeddings'::regclass AND attname = 'vector'"
            ).fetchone()[0]
            if typed < 0:  # no dimension yet
                db.execute(f"ALTER TABLE embeddings ALTER COLUMN vector TYPE vector({int(dim)})")
            if self._bulk:
                return
            if not db.execute(exists).fetchone()[0]:
                db.execute("SET LOCAL maintenance_work_mem = '2GB'")
                db.execute(
                    "CREATE INDEX embeddings_hnsw ON embeddings "
                    "USING hnsw (vector vector_cosine_ops)"
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
            self._retry(lambda db: self._ensure_hnsw(db, int(row[0])))
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

        def work(db: Any) -> None:
            self._insert_vectors(db, vectors)
            now = time.time()
            replaced: list[tuple[int, list[Chunk]]] = []
            for src, chunks in sorted(sources, key=lambda s: s[0].path):
                sid = db.execute(
                    "INSERT INTO sources (path, root, size, mtime_ns, hash, type, status, "
                    "error, title, metadata, indexed_at) VALUES "
                    "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                    "ON CONFLICT (path) DO UPDATE SET root=excluded.root, size=excluded.size, "
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
                ).fetchone()[0]
                if chunks is not None:
                    replaced.append((sid, chunks))
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
            self._bump(db)

        self._retry(work)

    def _bump(self, db: Any, key: str = "generation") -> None:
        db.execute(
            "INSERT INTO meta VALUES (%s, '1') ON CONFLICT (key) DO UPDATE SET value = "
            "(meta.value::bigint + 1)::text",
            (key,),
        )

    def _delete(self, db: Any, paths: Sequence[str]) -> int:
        if paths:
            count_terms(
                db,
                *drop_chunks(
                    db, "source_id IN (SELECT id FROM sources WHERE path = ANY(%s))", [list(paths)]
                ),
            )
            db.execute("DELETE FROM sources WHERE path = ANY(%s)", (list(paths),))
        self._bump(db)
        return len(paths)

    def delete_sources(self, paths: Iterable[str]) -> int:
        items = sorted(paths)
        return int(self._retry(lambda db: self._delete(db, items)))

    def gc_embeddings(self) -> int:
        def work(db: Any) -> int:
            cur = db.execute(
                "DELETE FROM embeddings e WHERE NOT EXISTS "
                "(SELECT 1 FROM chunks c WHERE c.hash = e.hash)"
            )
            return int(cur.rowcount)

        return int(self._retry(work))

    def reset(self) -> None:
        def work(db: Any) -> None:
            db.execute("TRUNCATE postings, terms, chunks, sources, embeddings")
            db.execute("UPDATE totals SET chunks = 0, tokens = 0")
            # The next embedder may have another dimension: the column forgets this one.
            db.execute("DROP INDEX IF EXISTS embeddings_hnsw")
            db.execute("ALTER TABLE embeddings ALTER COLUMN vector TYPE vector")
            db.execute("DELETE FROM meta WHERE key = 'embedder'")
            self._bump(db)

        self._retry(work)
        self._hnsw = False

    def move_source(self, old: str, new: str, root: str, size: int, mtime_ns: int) -> None:
        def work(db: Any) -> None:
            db.execute(
                "UPDATE sources SET path = %s, root = %s, size = %s, mtime_ns = %s WHERE path = %s",
                (new, root, size, mtime_ns, old),
            )
            self._bump(db)

        self._retry(work)

    # -- reading -------------------------------------------------------------------

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute(
            "SELECT c.id, e.vector FROM chunks c JOIN embeddings e ON e.hash = c.hash ORDER BY c.id"
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, np.stack([_array(r[1]) for r in rows])

    def vectors_for(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        rows = self.db.execute(
            "SELECT hash, vector FROM embeddings WHERE hash = ANY(%s)", (list(set(hashes)),)
        )
        return {h: _array(v) for h, v in rows}

    def vector_search(
        self, query: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        q = np.asarray(query, dtype=np.float32)
        if filters:
            # Exact over the allowed chunks, as the in-memory indexes do: an HNSW walk
            # filtered afterwards would miss neighbours. "+ 0" keeps the planner off it.
            where, args = filter_sql(filters)
            rows = self.db.execute(
                "SELECT c.id, 1 - (e.vector <=> %s) FROM chunks c JOIN embeddings e "
                "ON e.hash = c.hash WHERE c.source_id IN "
                f"(SELECT s.id FROM sources s WHERE {where}) "
                "ORDER BY (e.vector <=> %s) + 0, c.id LIMIT %s",
                (q, *args, q, k),
            )
            return [(int(i), float(s)) for i, s in rows]
        with self.db.transaction():
            self.db.execute(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, min(2 * k, 1000))}")
            rows = self.db.execute(
                "SELECT c.id, 1 - nn.d FROM (SELECT hash, vector <=> %s AS d FROM embeddings "
                "ORDER BY vector <=> %s LIMIT %s) nn JOIN chunks c ON c.hash = nn.hash "
                "ORDER BY nn.d, c.id LIMIT %s",
                (q, q, k, k),
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def keyword_search(
        self, terms: list[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        if self._tokens is None:
            self._tokens = Tokenizer("postgres")
        tokens = Counter(t for word in terms for t in self._tokens(word))
        return bm25_search(self.db, tokens, k, filters)

    def keyword_rows(self) -> Iterator[tuple[int, str]]:
        after = 0
        while rows := self.db.execute(
            "SELECT id, body FROM chunks WHERE id > %s ORDER BY id LIMIT 5000", (after,)
        ).fetchall():
            yield from rows
            after = rows[-1][0]

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        rows = self.db.execute(
            'SELECT c.id, c.source_id, s.path, s.title, s.type, c.start, c."end", c.heading, '
            "c.page, c.text, c.hash FROM chunks c JOIN sources s ON s.id = c.source_id "
            "WHERE c.id = ANY(%s)",
            (list(ids),),
        )
        return {r[0]: ChunkRow(*r) for r in rows}

    def dump(self, paths: Sequence[str]) -> list[tuple[SourceRow, list[Chunk]]]:
        out: list[tuple[SourceRow, list[Chunk]]] = []
        for path in paths:
            row = self.db.execute(
                "SELECT id, path, root, size, mtime_ns, hash, type, status, error, title, "
                "metadata FROM sources WHERE path = %s",
                (path,),
            ).fetchone()
            if row is None:
                continue
            rows = self.db.execute(
                'SELECT start, "end", text, heading, page, body, hash FROM chunks '
                "WHERE source_id = %s ORDER BY ord",
                (row[0],),
            )
            chunks: list[Chunk] = [
                StoredChunk(a, b, t, h, p, body=body, key=key) for a, b, t, h, p, body, key in rows
            ]
            out.append((SourceRow(*row), chunks))
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
        return int(self.db.execute("SELECT chunks FROM totals").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        one = lambda q: self.db.execute(q).fetchone()[0]  # noqa: E731
        failed = self.db.execute(
            "SELECT path, status, error FROM sources WHERE status <> 'ok' ORDER BY path"
        ).fetchall()
        return {
            "sources": one("SELECT count(*) FROM sources WHERE status <> 'failed'"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "embeddings": one("SELECT count(*) FROM embeddings"),
            "problems": [{"path": p, "status": s, "reason": e} for p, s, e in failed],
        }

    def size_bytes(self) -> int:
        return int(
            self.db.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'",
                (SCHEMA,),
            ).fetchone()[0]
        )

    def close(self) -> None:
        self.db.close()


stores.register("postgres")(PostgresStore)
