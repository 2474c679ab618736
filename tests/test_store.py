"""One conformance suite for every Store backend, plus SQLite migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from kenning.store import MIGRATIONS, SCHEMA_VERSION, NewChunk, SourceRow, SQLiteStore, stores


@pytest.fixture(params=stores.names())
def make(request: pytest.FixtureRequest, tmp_path: Path):
    cls = stores.get(request.param)
    return lambda: cls(tmp_path / "store.db")


def source(path: str, digest: str = "h") -> SourceRow:
    return SourceRow(0, path, "/r", 10, 1, digest, "markdown", "ok", None, "T", {"tags": ["x"]})


def chunk(text: str, n: int = 0) -> NewChunk:
    return NewChunk(n, n + len(text), "H", None, text, f"T\n{text}", f"hash-{text}")


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def test_write_read_search_delete_reopen(make) -> None:
    s = make()
    s.add_root("/r")
    s.write_sources(
        [
            (source("/r/a.md"), [chunk("apples and pears"), chunk("blue sky", 20)]),
            (source("/r/b.md", "h2"), [chunk("green apples")]),
        ],
        {"hash-apples and pears": vec(1), "hash-blue sky": vec(2), "hash-green apples": vec(3)},
    )
    assert set(s.sources()) == {"/r/a.md", "/r/b.md"}
    assert s.sources()["/r/a.md"].metadata == {"tags": ["x"]}
    hits = s.keyword_search(["apples"], 10)
    assert len(hits) == 2 and all(score > 0 for _, score in hits)
    rows = s.chunks([cid for cid, _ in hits])
    assert {r.path for r in rows.values()} == {"/r/a.md", "/r/b.md"}
    ids, matrix = s.vectors()
    assert len(ids) == 3 and matrix.shape == (3, 8)
    assert s.known_hashes(["hash-blue sky", "nope"]) == {"hash-blue sky"}
    # Replacing a source's chunks, then deleting a source, keeps everything in step.
    s.write_sources([(source("/r/a.md", "h3"), [chunk("only pears now")])], {})
    s.delete_sources(["/r/b.md"])
    assert s.gc_embeddings() == 3  # no chunk refers to the three old vectors
    assert s.keyword_search(["apples"], 10) == []
    assert s.stats()["chunks"] == 1 and s.stats()["sources"] == 1
    s.close()
    again = make()
    assert set(again.sources()) == {"/r/a.md"} and again.roots() == ["/r"]
    again.close()


def test_move_keeps_chunks(make) -> None:
    s = make()
    s.write_sources([(source("/r/a.md"), [chunk("kept text")])], {"hash-kept text": vec(1)})
    before = s.vectors()[0].tolist()
    s.move_source("/r/a.md", "/r/moved.md", "/r", 10, 2)
    assert set(s.sources()) == {"/r/moved.md"} and s.vectors()[0].tolist() == before
    s.close()


def test_migrates_an_old_file(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[1] + "\nPRAGMA user_version = 1;")
    con.execute("INSERT INTO roots VALUES ('/old', 0)")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert s.roots() == ["/old"] and s.eval_runs() == []
    s.close()


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    from kenning.errors import SchemaTooNew

    db = tmp_path / "new.db"
    sqlite3.connect(db).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="Upgrade kenning"):
        SQLiteStore(db)
