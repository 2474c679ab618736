"""The SQLite store's schema: created and changed only by the numbered ``MIGRATIONS``;
``PRAGMA user_version`` records how far a file has come. ``SQLStore._migrate`` applies them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA_VERSION = 9

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
    # A note's outgoing links, as written (``kenning.text.links``); which source a target
    # names is resolved when asked, so renames and deletes elsewhere need no rewrite here.
    # ``name``: the target's lower-cased file name without ``.md``, to find backlinks fast.
    # An index that already holds sources is marked: its next sync reads every file again
    # (``Index.sync``), so older notes get their links too; vectors are kept, by chunk hash.
    4: """
    CREATE TABLE links (
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        heading TEXT NOT NULL,
        alias TEXT,
        name TEXT NOT NULL,
        PRIMARY KEY (source_id, ord)
    );
    CREATE INDEX links_name ON links(name);
    INSERT INTO meta SELECT 'links_missing', '1' WHERE EXISTS (SELECT 1 FROM sources)
    """,
    # Reserved for conflicts, agent traces and cards; their tables went to the layers that
    # own them (``kenning.eval.history`` and the like create their own), so these are empty.
    5: "",
    6: "",
    7: "",
    # The change log: one row per chunk added (or given its vector) or deleted, written in
    # the same transaction as the change, so a searcher's in-memory caches apply only what
    # changed since the last ``seq`` they read (``SQLStore.changes_since``). Old rows are
    # deleted by ``SQLStore.compact_changes``, which records in ``meta`` (key
    # ``changes_compacted``) the last ``seq`` it removed: a reader behind it rebuilds.
    # AUTOINCREMENT: a ``seq`` is never handed out twice, even after compaction. (IF NOT
    # EXISTS: a file whose version was set back, as tests of older files do, keeps its log.)
    # ``sources_indexed_at``: the sources written since a time (once for the note names a
    # searcher kept in memory; unused since migration 9 put them in a table).
    8: """
    CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        chunk_id INTEGER NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('add', 'delete'))
    );
    CREATE INDEX IF NOT EXISTS sources_indexed_at ON sources(indexed_at)
    """,
    # A note's names (title, aliases, file name), folded as ``kenning.text.names.name_key``
    # folds a query: a query that names a note is one indexed lookup (held in memory
    # instead, a million notes' names took 1.3 GB and 17 s to read). Written with the source
    # (``SQLStore._replace_names``); an index that holds sources already is marked, and
    # ``SQLStore._migrate`` fills them in the same transaction.
    9: """
    CREATE TABLE IF NOT EXISTS names (
        key TEXT NOT NULL,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (key, source_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS names_source ON names(source_id);
    INSERT OR IGNORE INTO meta SELECT 'names_missing', '1' WHERE EXISTS (SELECT 1 FROM sources)
    """,
}


def version(db: sqlite3.Connection) -> int:
    """The last migration applied to the file (0: none yet)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction (``BEGIN IMMEDIATE``: it waits for the file's one writer, so
    two processes never both migrate), rolled back if its body raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def apply(db: sqlite3.Connection, number: int) -> None:
    """Run migration ``number`` statement by statement (``executescript`` would commit) and
    record it."""
    for statement in MIGRATIONS[number].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {number}")
