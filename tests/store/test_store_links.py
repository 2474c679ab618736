"""The link table: written by a numbered migration in both stores, with the same shape, and
replaced only with its source's chunks, in the same transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import postgres_url

from kenning.store import SourceRow, Store, open_store
from kenning.store.sqlite import SQLiteStore
from kenning.store.sqlite.schema import MIGRATIONS
from kenning.text.chunking import Chunk
from kenning.text.links import Link

COLUMNS = ["source_id", "ord", "kind", "target", "heading", "alias", "name"]
LINKS = [
    Link("wikilink", "Vim", "Modes", "the editor"),
    Link("embed", "b/vim.md"),
    Link("markdown", "../Other Note.md", "", "other"),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    location = str(tmp_path / "store.db") if request.param == "sqlite" else postgres_url()
    return lambda: open_store(location)


def row(path: str, links: list[Link] | None) -> SourceRow:
    return SourceRow(0, path, "/r", 1, 1, "h" + path, "markdown", "ok", None, "T", {}, links)


def chunk(text: str) -> list[Chunk]:
    return [Chunk(0, len(text), text, "", None, context="T")]


def test_links_go_in_and_out_with_their_source(make: Callable[[], Store]) -> None:
    s = make()
    s.write_sources([(row("/r/a.md", LINKS), chunk("a")), (row("/r/c.md", []), chunk("c"))], {})
    assert s.links_from("/r/a.md") == LINKS
    # backlink candidates by lower-cased file name without .md, whatever the folder
    assert s.links_to(["vim"]) == [("/r/a.md", LINKS[0]), ("/r/a.md", LINKS[1])]
    assert s.links_to(["other note"]) == [("/r/a.md", LINKS[2])]
    s.write_sources([(row("/r/a.md", None), None)], {})  # a stat-only update keeps them
    assert s.links_from("/r/a.md") == LINKS
    [(dumped, _)] = s.dump(["/r/a.md"])  # a copy of the index carries them
    assert dumped.links == LINKS
    s.move_source("/r/a.md", "/r/moved/a.md", "/r", 1, 2)  # a move keeps them
    assert s.links_from("/r/moved/a.md") == LINKS
    s.write_sources([(row("/r/moved/a.md", LINKS[:1]), chunk("a2"))], {})  # an edit replaces
    assert s.links_from("/r/moved/a.md") == LINKS[:1]
    s.delete_sources(["/r/moved/a.md"])
    assert s.links_to(["vim", "other note"]) == []
    s.write_sources([(row("/r/c.md", LINKS), chunk("c2"))], {})
    s.reset()
    assert s.links_from("/r/c.md") == [] and s.links_to(["vim"]) == []
    s.close()


def test_sqlite_migration_4_adds_the_link_table(tmp_path: Path) -> None:
    """The table, with the same columns as PostgreSQL's; an index with no sources yet is not
    marked for reading again (one that has sources is: tests/index/test_index_links.py)."""
    db = tmp_path / "v3.db"
    con = sqlite3.connect(db)
    script = ";".join(MIGRATIONS[n] for n in (1, 2, 3))
    for statement in script.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute("PRAGMA user_version = 3")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s.db.execute("PRAGMA user_version").fetchone()[0] >= 4
    assert s.get_meta("links_missing") is None  # nothing indexed yet: nothing to read again
    columns = [r[1] for r in s.db.execute("PRAGMA table_info(links)")]
    assert columns == COLUMNS
    s.write_sources([(row("/r/a.md", LINKS), chunk("a"))], {})
    assert s.links_from("/r/a.md") == LINKS
    s.close()


@pytest.mark.postgres
def test_postgres_migration_5_adds_the_same_link_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from kenning.store.postgres import schema

    url = postgres_url()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 4)
    from kenning.store.postgres import PostgresStore
    from kenning.store.sql import SQLStore

    for name in ("_log", "_log_where", "_log_rebuild", "_replace_names"):  # nor these tables
        monkeypatch.setattr(SQLStore, name, lambda *a: None)
    monkeypatch.setattr(PostgresStore, "_log", lambda *a: None)
    old = open_store(url)
    old.write_sources([(row("/r/a.md", None), None)], {})  # no links table yet
    old.close()
    monkeypatch.undo()
    new = open_store(url)
    assert schema.version(new.db) >= 5  # type: ignore[attr-defined]
    columns = new.db.execute(  # type: ignore[attr-defined]
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'kenning' "
        "AND table_name = 'links' ORDER BY ordinal_position"
    ).fetchall()
    assert [c[0] for c in columns] == COLUMNS
    assert new.links_from("/r/a.md") == []  # written before the migration: none yet
    assert new.get_meta("links_missing") == "1"  # so the next sync reads every file again
    new.write_sources([(row("/r/a.md", LINKS), chunk("a2"))], {})
    assert new.links_from("/r/a.md") == LINKS
    new.close()
