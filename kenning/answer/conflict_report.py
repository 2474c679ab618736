"""``kenning conflicts``: every pair of notes in the index that make different claims.

The claims of each note (``conflicts.claims``) are kept beside the index, keyed by the
note's content hash, with the conflicts found between them. Two claims can only conflict
when their subject wording (``Claim.frame``) is the same, so claims are looked up by that
wording: a run compares each claim of a new or changed note with the claims that share its
wording, and nothing else. After the first run, only pairs involving changed notes are
re-checked; pairs between two unchanged notes are read back as they were. With no question
to tie two notes to one subject, the report also asks that their titles or file names share
a word, and not be one file name in two folders (``_related``), that the two notes share
another sentence worded alike (``_share_wording``), and that two differing names not be
each note's own subject (``conflicts.own_subjects``).

These tables live in the index's SQLite file but belong to this class, not to the ``Store``
interface (as ``kenning.eval.history`` does); an index in PostgreSQL has no room for them,
so its report is computed afresh each run (in memory).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kenning.index import Index
from kenning.store.sqlite import own_tables

from .conflicts import Claim, Conflict, Side, compare, date_sides, explained, own_subjects
from .sentences import Fact, content_words

#: a wording shared by this many notes, with as many different values less one, is a template
TEMPLATE = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS conflict_notes (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conflict_claims (
    path TEXT NOT NULL,
    start INTEGER NOT NULL,
    frame TEXT NOT NULL,
    claim TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conflict_claims_frame ON conflict_claims(frame);
CREATE INDEX IF NOT EXISTS conflict_claims_path ON conflict_claims(path);
CREATE TABLE IF NOT EXISTS conflict_pairs (
    path_a TEXT NOT NULL,
    path_b TEXT NOT NULL,
    confidence REAL NOT NULL,
    conflict TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conflict_pairs_a ON conflict_pairs(path_a);
CREATE INDEX IF NOT EXISTS conflict_pairs_b ON conflict_pairs(path_b);
"""


@dataclass
class RunStats:
    """What one run did: notes read again, pairs of claims compared, conflicts known."""

    notes: int  # notes in the index
    checked_notes: int  # new or changed notes whose claims were read and compared
    removed_notes: int
    compared: int  # pairs of claims compared this run
    conflicts: int  # conflicts known after the run
    compared_paths: list[tuple[str, str]]  # the note pairs compared (for tests and --json)


class ConflictReport:
    """The conflicts of an index, kept up to date incrementally in its SQLite file."""

    def __init__(self, index: Index) -> None:
        self.index = index
        try:
            self.db = own_tables(index.location, SCHEMA, "the conflicts report", create=True)
        except Exception:  # noqa: BLE001 - PostgreSQL: no side tables, a report in memory
            self.db = sqlite3.connect(":memory:", isolation_level=None)
            self.db.executescript(SCHEMA)

    def update(self) -> RunStats:
        """Bring the stored claims and conflicts in line with the index."""
        sources = self.index.store.sources()
        stored = dict(self.db.execute("SELECT path, hash FROM conflict_notes"))
        changed = sorted(p for p, src in sources.items() if stored.get(p) != src.hash)
        removed = sorted(set(stored) - set(sources))
        compared: set[tuple[str, str]] = set()
        count = 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for path in changed + removed:
                self.db.execute("DELETE FROM conflict_claims WHERE path = ?", (path,))
                self.db.execute(
                    "DELETE FROM conflict_pairs WHERE path_a = ? OR path_b = ?", (path, path)
                )
                self.db.execute("DELETE FROM conflict_notes WHERE path = ?", (path,))
            fresh: dict[str, list[Claim]] = {}
            for src, chunks in self.index.store.dump(changed):
                title = f"{src.title} {Path(src.path).stem}"
                seen: dict[int, Claim] = {}
                for chunk in chunks:
                    for c in _claims(chunk.text, src.path, chunk.start, title):
                        seen.setdefault(c.start, c)
                fresh[src.path] = list(seen.values())
                self.db.executemany(
                    "INSERT INTO conflict_claims VALUES (?,?,?,?)",
                    [(c.path, c.start, _frame_key(c), _dump(c)) for c in fresh[src.path]],
                )
                self.db.execute("INSERT INTO conflict_notes VALUES (?,?)", (src.path, src.hash))
            found: dict[tuple[str, ...], Conflict] = {}
            by_frame: dict[str, list[Claim]] = {}
            for path in sorted(fresh):
                for c in fresh[path]:
                    by_frame.setdefault(_frame_key(c), []).append(c)
            for key, news in by_frame.items():
                rows = self.db.execute(
                    "SELECT claim FROM conflict_claims WHERE frame = ?", (key,)
                ).fetchall()
                group = [_load(data) for (data,) in rows]
                if _template(group):
                    continue
                # claims that state the same values (and the same yes or no) agree: only
                # claims of different buckets are compared
                buckets: dict[tuple[Any, ...], list[Claim]] = {}
                for c in group:
                    buckets.setdefault(_signature(c), []).append(c)
                if len(buckets) < 2:
                    continue
                for a in news:
                    for signature, members in buckets.items():
                        if signature == _signature(a):
                            continue
                        for b in members:
                            if b.path in fresh and (b.path, b.start) < (a.path, a.start):
                                continue  # both new: compared once, from the first
                            count += 1
                            compared.add((a.path, b.path))
                            if not _related(a, b):
                                continue
                            conflict = compare(a, b)
                            if conflict is None or explained(conflict) or own_subjects(conflict):
                                continue
                            if a.path == b.path or self._share_wording(a, b):
                                found.setdefault(conflict.key(), conflict)
            self.db.executemany(
                "INSERT INTO conflict_pairs VALUES (?,?,?,?)",
                [
                    (c.sides[0].path, c.sides[1].path, c.confidence, json.dumps(asdict(c)))
                    for c in found.values()
                ],
            )
        total = self.db.execute("SELECT count(*) FROM conflict_pairs").fetchone()[0]
        return RunStats(len(sources), len(changed), len(removed), count, total, sorted(compared))

    def _share_wording(self, a: Claim, b: Claim) -> bool:
        """Whether the two notes have another sentence worded alike (values aside) that is
        not a template: notes copied from one source, or one half updated from the other,
        do; sibling pages on two subjects ("Start the server for the current Laravel
        application" in php-artisan.md, "... Yii application" in php-yii.md) mostly do not."""
        rows = self.db.execute(
            "SELECT x.frame FROM conflict_claims x JOIN conflict_claims y ON x.frame = y.frame "
            "WHERE x.path = ? AND y.path = ? AND x.frame != ? GROUP BY x.frame",
            (a.path, b.path, _frame_key(a)),
        ).fetchall()
        for (frame,) in rows:
            notes = self.db.execute(
                "SELECT count(DISTINCT path) FROM conflict_claims WHERE frame = ?", (frame,)
            ).fetchone()[0]
            if notes < TEMPLATE:
                return True
        return False

    def conflicts(self, paths: list[str] | None = None, limit: int | None = None) -> list[Conflict]:
        """Known conflicts, most confident first; with ``paths``, those with a side under one
        of them. Each side is dated (text, front matter or file time) as in answers."""
        rows = self.db.execute(
            "SELECT conflict FROM conflict_pairs ORDER BY confidence DESC, path_a, path_b"
        ).fetchall()
        out = [_conflict(json.loads(r[0])) for r in rows]
        if paths:
            prefixes = [str(Path(p).expanduser().resolve()) for p in paths]
            out = [
                c
                for c in out
                if any(
                    s.path == p or s.path.startswith(p.rstrip("/") + "/")
                    for s in c.sides
                    for p in prefixes
                )
            ]
        out = out[:limit] if limit else out
        if out:
            sources = self.index.store.sources()
            notes = {
                p: {"metadata": s.metadata, "mtime_ns": s.mtime_ns} for p, s in sources.items()
            }
            for c in out:
                date_sides(c, notes)
                for side in c.sides:
                    side.lines = _lines(side.path, side.start)
        return out

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ConflictReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lines(path: str, start: int) -> tuple[int, int] | None:
    """The line of an offset in a text file; None when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError):
        return None
    line = text.count("\n", 0, start) + 1
    return line, line


def _claims(text: str, path: str, offset: int, title: str) -> list[Claim]:
    from .conflicts import claims

    return claims(text, path, 0, offset, title)


def _template(group: list[Claim]) -> bool:
    """A wording many notes fill with their own values ("See the X docs for more details",
    "Manage X containers") is a template, not one subject: at least ``TEMPLATE`` notes, each
    with other values."""
    notes = {c.path for c in group}
    values = {tuple(sorted(f.value for f in c.facts)) for c in group}
    return len(notes) >= TEMPLATE and len(values) >= TEMPLATE - 1


def _related(a: Claim, b: Claim) -> bool:
    """Whether two notes may be about one subject: the same note, or titles (or file names)
    that share a word. Without a question to tie them, two look-alike sentences of notes
    on unrelated subjects ("Start the server on port 8000" in python.md and ruby.md) are
    two subjects, not a dispute. Notes of one file name in folders of different names are
    each their folder's version (``common/tail.md`` and ``osx/tail.md``, ``2023/goals.md``
    and ``2024/goals.md``): two subjects as well."""
    if a.path == b.path:
        return True
    pa, pb = Path(a.path), Path(b.path)
    if pa.name == pb.name and pa.parent.name != pb.parent.name:
        return False
    return bool(content_words(a.title) & content_words(b.title))


def _signature(c: Claim) -> tuple[Any, ...]:
    return (c.negated, tuple(sorted(f.value for f in c.facts)))


def _frame_key(c: Claim) -> str:
    return " ".join(sorted(c.frame))


def _dump(c: Claim) -> str:
    data = asdict(c)
    data["frame"] = sorted(c.frame)
    return json.dumps(data)


def _load(text: str) -> Claim:
    data: dict[str, Any] = json.loads(text)
    data["frame"] = frozenset(data["frame"])
    data["facts"] = [Fact(**f) for f in data["facts"]]
    return Claim(**data)


def _conflict(data: dict[str, Any]) -> Conflict:
    sides = [
        Side(**{**s, "lines": tuple(s["lines"]) if s["lines"] else None}) for s in data["sides"]
    ]
    return Conflict(**{**data, "sides": sides})
