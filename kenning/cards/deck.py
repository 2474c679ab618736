"""``CardStore``: the cards made from an index's notes and their reviews, in the index file.

These tables live in the index (its SQLite file, or its PostgreSQL database, in kenning's
schema there) but belong to this class, not to the ``Store`` interface (as the evaluation
history and the agent's traces do): they are made by ``CREATE TABLE IF NOT EXISTS`` here,
outside the store's migrations, and a sync never touches them, so reviews survive ``kenning
sync`` and re-indexing. ``update`` brings the stored cards in line with a new
making run: a card whose id is stored is kept (its place in the note refreshed), a new card
that replaces an edited one (same note and rule, and the same answer or most of the span's
words) takes over the old card's id, so its reviews and its Anki note stay; cards whose
source is gone are retired, never deleted, and come back with their history if it returns.

The schedule is FSRS (the ``fsrs`` package) with its default parameters and fuzzing off,
so a card's due date is exactly what replaying its reviews through ``fsrs.Scheduler`` gives.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kenning.answer.sentences import content_words
from kenning.errors import ConfigError, MissingExtra, NotFound
from kenning.store.sqlite import own_tables

from .card import Card, normal

SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    choices TEXT NOT NULL DEFAULT '[]',
    path TEXT NOT NULL,
    heading TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    schedule TEXT,
    due REAL
);
CREATE INDEX IF NOT EXISTS cards_by_path ON cards(path);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id TEXT NOT NULL,
    rating INTEGER NOT NULL,
    reviewed_at REAL NOT NULL,
    choice TEXT,
    due REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_card ON reviews(card_id);
"""
#: the same tables in PostgreSQL: its float and identity types
PG_SCHEMA = SCHEMA.replace(" REAL", " DOUBLE PRECISION").replace(
    "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
)
_FIELDS = (
    "id", "kind", "rule", "question", "answer", "choices", "path", "heading", "start", "end",
    "source", "title",
)  # fmt: skip
_COLUMNS = ", ".join(f'"{f}"' for f in _FIELDS)
#: an edited span still counts as the same card when it keeps this share of its words
SAME_SPAN = 0.5
RATINGS = {1: "again", 2: "hard", 3: "good", 4: "easy"}


@dataclass
class Changes:
    """What ``CardStore.update`` did, by card id."""

    kept: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in vars(self).items()}


def scheduler() -> Any:
    """The FSRS scheduler every review goes through (default parameters, no fuzzing)."""
    MissingExtra.require("fsrs", "fsrs", "cards")
    import fsrs

    return fsrs.Scheduler(enable_fuzzing=False)


class CardStore:
    """Cards and reviews in the index at ``location``: its SQLite file, or its PostgreSQL
    database (a ``postgresql://`` URL with its password: the store's ``address``)."""

    def __init__(self, location: str | Path, create: bool = False) -> None:
        text = str(location)
        self.db: Any = (
            _Postgres(text, create)
            if text.startswith(("postgresql://", "postgres://"))
            else own_tables(location, SCHEMA, "cards", create)
        )

    # -- cards -------------------------------------------------------------------

    def update(self, cards: list[Card], scope: set[str], now: float | None = None) -> Changes:
        """Store ``cards``, made from the notes at the paths in ``scope``: the active cards
        of those notes that were not made again are retired (see the module's doc)."""
        now = time.time() if now is None else now
        changes = Changes()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            old = {c.id: c for c in self._select("status = 'active'") if c.path in scope}
            stored = {row[0] for row in self.db.execute("SELECT id FROM cards")}
            fresh = [c for c in cards if c.id not in old]
            taken: set[str] = set()
            for card in cards:
                if card.id in old:
                    taken.add(card.id)
                    changes.kept.append(card.id)
            for card in fresh:
                match = self._replaced(card, old, taken)
                if match is not None:
                    taken.add(match)
                    card.id = match
                    changes.updated.append(match)
                elif card.id in stored:
                    changes.kept.append(card.id)  # a retired card whose source came back
                else:
                    changes.added.append(card.id)
            for card in cards:
                self._write(card, now, card.id in stored or card.id in old)
            gone = [cid for cid in old if cid not in taken]
            self.db.executemany(
                "UPDATE cards SET status = 'retired', updated_at = ? WHERE id = ?",
                [(now, cid) for cid in gone],
            )
            changes.retired = gone
        return changes

    @staticmethod
    def _replaced(card: Card, old: dict[str, Card], taken: set[str]) -> str | None:
        """The stored card an edited one replaces: same note and rule, and the same answer
        or ``SAME_SPAN`` of the span's words."""
        words = content_words(card.source)
        best, score = None, SAME_SPAN
        for cid, o in old.items():
            if cid in taken or o.path != card.path or o.rule != card.rule:
                continue
            other = content_words(o.source)
            share = len(words & other) / max(1, len(words | other))
            if normal(o.answer) == normal(card.answer) and o.heading == card.heading:
                share = max(share, 0.99)
            if share >= score:
                best, score = cid, share
        return best

    def _write(self, card: Card, now: float, exists: bool) -> None:
        values = [getattr(card, f) for f in _FIELDS]
        values[_FIELDS.index("choices")] = json.dumps(card.choices)
        if exists:
            sets = ", ".join(f'"{f}" = ?' for f in _FIELDS[1:])
            self.db.execute(
                f"UPDATE cards SET {sets}, status = 'active', updated_at = ? WHERE id = ?",
                (*values[1:], now, card.id),
            )
        else:
            marks = ", ".join("?" for _ in _FIELDS)
            self.db.execute(
                f"INSERT INTO cards ({_COLUMNS}, created_at, updated_at) VALUES ({marks}, ?, ?)",
                (*values, now, now),
            )

    def _select(self, where: str, args: tuple[Any, ...] = (), order: str = "") -> list[Card]:
        cur = self.db.execute(f"SELECT {_COLUMNS} FROM cards WHERE {where} {order}".rstrip(), args)
        out = []
        for row in cur:
            data = dict(zip(_FIELDS, row, strict=True))
            data["choices"] = json.loads(data["choices"])
            out.append(Card(**data))
        return out

    def cards(self, paths: set[str] | None = None, retired: bool = False) -> list[Card]:
        """The stored cards (active ones unless ``retired``), in note order."""
        found = self._select(
            "status = ?", ("retired" if retired else "active",), "ORDER BY path, start, id"
        )
        return [c for c in found if paths is None or c.path in paths]

    def card(self, card_id: str) -> Card:
        found = self._select("id = ?", (card_id,))
        if not found:
            raise NotFound(f"no card {card_id!r} in this index; `kenning cards` makes them")
        return found[0]

    # -- reviews -----------------------------------------------------------------

    def due(
        self, limit: int = 20, now: float | None = None, paths: set[str] | None = None
    ) -> list[Card]:
        """Cards to review now: those due first (most overdue first), then new ones."""
        now = time.time() if now is None else now
        due = self._select(
            "status = 'active' AND due IS NOT NULL AND due <= ?", (now,), "ORDER BY due, id"
        )
        new = self._select("status = 'active' AND due IS NULL", (), "ORDER BY path, start, id")
        chosen = [c for c in due + new if paths is None or c.path in paths]
        return chosen[:limit]

    def schedule(self, card_id: str) -> dict[str, Any] | None:
        """The card's FSRS state (``fsrs.Card.to_dict()``), None before its first review."""
        row = self.db.execute("SELECT schedule FROM cards WHERE id = ?", (card_id,)).fetchone()
        if row is None:
            raise NotFound(f"no card {card_id!r} in this index")
        return json.loads(row[0]) if row[0] else None

    def review(
        self,
        card_id: str,
        rating: int,
        at: datetime | None = None,
        choice: str | None = None,
    ) -> datetime:
        """Grade a review (1 again, 2 hard, 3 good, 4 easy) and return the next due date."""
        if rating not in RATINGS:
            raise ValueError(f"a rating is 1 (again), 2 (hard), 3 (good) or 4 (easy), not {rating}")
        sched = scheduler()  # names the extra when fsrs is missing
        import fsrs

        at = at or datetime.now(UTC)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            state = self.schedule(card_id)
            if state:
                card = fsrs.Card.from_dict(state)  # type: ignore[arg-type]
            else:
                card = fsrs.Card(card_id=_fsrs_id(card_id))
            card, _ = sched.review_card(card, fsrs.Rating(rating), at)
            due = card.due.timestamp()
            self.db.execute(
                "UPDATE cards SET schedule = ?, due = ? WHERE id = ?",
                (json.dumps(card.to_dict()), due, card_id),
            )
            self.db.execute(
                "INSERT INTO reviews (card_id, rating, reviewed_at, choice, due) "
                "VALUES (?,?,?,?,?)",
                (card_id, rating, at.timestamp(), choice, due),
            )
        return card.due  # type: ignore[no-any-return]

    def reviews(self, card_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE card_id = ?", (card_id,)) if card_id else ("", ())
        cur = self.db.execute(
            f"SELECT card_id, rating, reviewed_at, choice, due FROM reviews {where} ORDER BY id",
            args,
        )
        keys = ("card_id", "rating", "reviewed_at", "choice", "due")
        return [dict(zip(keys, row, strict=True)) for row in cur]

    def stats(self, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        one = self.db.execute(
            "SELECT COUNT(*) FILTER (WHERE status = 'active'), "
            "COUNT(*) FILTER (WHERE status = 'retired'), "
            "COUNT(*) FILTER (WHERE status = 'active' AND due IS NOT NULL AND due <= ?), "
            "COUNT(*) FILTER (WHERE status = 'active' AND due IS NULL) FROM cards",
            (now,),
        ).fetchone()
        reviews = self.db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
        keys = ("active", "retired", "due", "new")
        return {**{k: int(v or 0) for k, v in zip(keys, one, strict=True)}, "reviews": reviews}

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CardStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsrs_id(card_id: str) -> int:
    """fsrs numbers its cards; ours are hex hashes, so the number is the hash's first bytes."""
    return int(card_id[:12], 16)


class _Postgres:
    """A connection of its own to a PostgreSQL index, with the cards' tables made in
    kenning's schema, that ``CardStore`` uses as it uses a ``sqlite3`` connection: ``?``
    marks, ``with`` for a transaction, and ``BEGIN IMMEDIATE`` (SQLite's write lock taken
    up front) as a lock on the cards table for the rest of the transaction."""

    def __init__(self, url: str, create: bool) -> None:
        from kenning.store.postgres import _psycopg, redact
        from kenning.store.postgres.hnsw import split_url
        from kenning.store.postgres.schema import SCHEMA as PG

        psycopg = _psycopg()
        conninfo, _ = split_url(url, {})
        try:
            self.conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as e:
            raise ConfigError(f"cannot connect to {redact(url)}: {str(e).strip()}") from None
        made = self.conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (PG,))
        if made.fetchone() is None and not create:
            self.conn.close()
            raise NotFound(f"no index at {redact(url)}; create one with `kenning add PATH`")
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PG}")
        self.conn.execute(f"SET search_path TO {PG}, public")
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('kenning cards schema'))")
            for statement in filter(str.strip, PG_SCHEMA.split(";")):
                self.conn.execute(statement)
        self._transactions: list[Any] = []

    def execute(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> Any:
        if sql == "BEGIN IMMEDIATE":
            sql = "LOCK TABLE cards IN SHARE ROW EXCLUSIVE MODE"
        return self.conn.execute(sql.replace("?", "%s"), args)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def __enter__(self) -> _Postgres:
        transaction = self.conn.transaction()
        transaction.__enter__()
        self._transactions.append(transaction)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._transactions.pop().__exit__(*exc)

    def close(self) -> None:
        self.conn.close()
