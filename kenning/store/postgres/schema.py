"""The PostgreSQL store's schema: its own PostgreSQL schema (``kenning``), created and changed
only by the numbered ``MIGRATIONS``; the applied numbers are rows of
``kenning.schema_version``, so a database tells which kenning made it. ``SQLStore._migrate``
applies them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .filters import COMPARE

SCHEMA = "kenning"
SCHEMA_VERSION = 10

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE roots (path text PRIMARY KEY, added_at double precision NOT NULL);
    CREATE TABLE sources (
        id bigserial PRIMARY KEY,
        path text NOT NULL UNIQUE,
        root text NOT NULL,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        hash text NOT NULL,
        type text NOT NULL,
        status text NOT NULL,
        error text,
        title text NOT NULL DEFAULT '',
        metadata jsonb NOT NULL DEFAULT '{}',
        indexed_at double precision NOT NULL
    );
    CREATE INDEX sources_root ON sources (root);
    CREATE TABLE chunks (
        id bigserial PRIMARY KEY,
        source_id bigint NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        ord integer NOT NULL,
        start integer NOT NULL,
        "end" integer NOT NULL,
        heading text NOT NULL,
        page integer,
        text text NOT NULL,
        hash text NOT NULL,
        body text NOT NULL,
        length integer NOT NULL
    );
    CREATE INDEX chunks_source ON chunks (source_id);
    CREATE INDEX chunks_hash ON chunks (hash);
    CREATE TABLE embeddings (hash text PRIMARY KEY, vector vector NOT NULL);
    CREATE TABLE postings (
        term text NOT NULL,
        chunk_id bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
        tf real NOT NULL,
        length integer NOT NULL,
        PRIMARY KEY (term, chunk_id)
    );
    CREATE INDEX postings_chunk ON postings (chunk_id);
    CREATE TABLE terms (term text PRIMARY KEY, df bigint NOT NULL);
    CREATE TABLE totals (
        one integer PRIMARY KEY DEFAULT 1 CHECK (one = 1),
        chunks bigint NOT NULL,
        tokens bigint NOT NULL
    );
    INSERT INTO totals VALUES (1, 0, 0);
    """
    + COMPARE,
    # The postings' primary key carries tf and length, so BM25 reads a query's postings by
    # an index-only scan instead of one heap page per posting (3x faster at 100k chunks).
    2: """
    ALTER TABLE postings DROP CONSTRAINT postings_pkey,
        ADD PRIMARY KEY (term, chunk_id) INCLUDE (tf, length);
    """,
    # A name for this database that no other one shares (a database dropped and created
    # again at the same URL gets a new one): it keys the search caches that processes keep
    # on their own disks (``cache_prefix``).
    3: """
    INSERT INTO meta VALUES ('store_id', md5(random()::text || clock_timestamp()::text))
        ON CONFLICT (key) DO NOTHING;
    """,
    # Embedders took device="cpu" by default before they could use a GPU; an index recorded
    # that default, not a choice, so it moves to "auto" like a new index (as in SQLite's 3).
    # (CASE: only the embedder's value is JSON; other keys must never be cast.)
    4: """
    UPDATE meta SET value = jsonb_set(value::jsonb, '{args,device}', '"auto"')::text
    WHERE CASE WHEN key = 'embedder' THEN value::jsonb #>> '{args,device}' END = 'cpu';
    """,
    # A note's outgoing links, the same table as SQLite's migration 4 (see there).
    5: """
    CREATE TABLE links (
        source_id bigint NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        ord integer NOT NULL,
        kind text NOT NULL,
        target text NOT NULL,
        heading text NOT NULL,
        alias text,
        name text NOT NULL,
        PRIMARY KEY (source_id, ord)
    );
    CREATE INDEX links_name ON links (name);
    INSERT INTO meta SELECT 'links_missing', '1' WHERE EXISTS (SELECT 1 FROM sources);
    """,
    # Reserved for conflicts, agent traces and cards; their tables went to the layers that
    # own them, so these do nothing.
    6: "SELECT 1",
    7: "SELECT 1",
    8: "SELECT 1",
    # The change log, as SQLite's migration 8 (see there). Writers that log take one
    # advisory lock (``PostgresStore._lock_log``) before their first ``seq``, so seqs commit
    # in order and a reader never skips one still being written.
    9: """
    CREATE TABLE IF NOT EXISTS changes (
        seq bigserial PRIMARY KEY,
        chunk_id bigint NOT NULL,
        op text NOT NULL CHECK (op IN ('add', 'delete'))
    );
    CREATE INDEX IF NOT EXISTS sources_indexed_at ON sources (indexed_at);
    """,
    # A note's folded names, as SQLite's migration 9 (see there).
    10: """
    CREATE TABLE IF NOT EXISTS names (
        key text NOT NULL,
        source_id bigint NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        name text NOT NULL,
        PRIMARY KEY (key, source_id)
    );
    CREATE INDEX IF NOT EXISTS names_source ON names (source_id);
    INSERT INTO meta SELECT 'names_missing', '1' WHERE EXISTS (SELECT 1 FROM sources)
    ON CONFLICT DO NOTHING;
    """,
}


def version(db: Any) -> int:
    """The last migration applied to the database ``db`` is connected to (0: none yet)."""
    row = db.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_version",)).fetchone()
    if row[0] is None:
        return 0
    return int(db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)


@contextmanager
def transaction(db: Any) -> Iterator[Any]:
    """The transaction migrations run in: one migrating process at a time (the others find
    the work done), in the store's own schema."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext('kenning:migrate'))")
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        yield db


def apply(db: Any, number: int) -> None:
    """Run migration ``number`` and record it."""
    db.execute(MIGRATIONS[number])
    db.execute("INSERT INTO schema_version VALUES (%s)", (number,))
