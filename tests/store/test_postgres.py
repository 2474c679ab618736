"""The PostgreSQL store beyond the conformance suite, on a server this test run starts:
the same rankings as SQLite, syncs from several processes at once, and ``kenning migrate``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import copy_folders, postgres_url
from typer.testing import CliRunner

from kenning import Index
from kenning.cli import app
from kenning.index.copying import copy_index
from kenning.search import Hit
from kenning.store import open_store

pytestmark = pytest.mark.postgres

QUERIES = [
    "undo the last git commit",
    "rename a branch",
    "postgres json column",
    "list running docker containers",
    "vim split window",
    "how do I squash commits together",
    "ruby hash default value",
    "disk usage of a folder",
]


@pytest.fixture(scope="module")
def til_subset(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_folders(
        til_notes, tmp_path_factory.mktemp("sub"), ["git", "postgres", "vim", "docker"]
    )


def _key(hits: list[Hit]) -> list[tuple[str, int, float]]:
    return [(h.path, h.start, round(h.score, 5)) for h in hits]


def _same(a: list[Hit], b: list[Hit]) -> bool:
    """Equal rankings: the same chunks and scores, in the same order except within ties
    (chunk ids, which break ties, differ between stores)."""
    ka, kb = _key(a), _key(b)
    return sorted(ka, key=lambda t: (-t[2], t)) == sorted(kb, key=lambda t: (-t[2], t))


def test_postgres_ranks_like_sqlite(til_subset: Path, tmp_path: Path) -> None:
    """BM25 scores equal the in-memory BM25 (same tokens, same formula); dense and hybrid
    rankings equal SQLite's exact search on an index this small."""
    sqlite = Index.open(tmp_path / "i.db", embedder="hash", keyword_index="memory")
    pg = Index.open(postgres_url(), embedder="hash")
    sqlite.add([til_subset])
    report = pg.add([til_subset])
    assert report.added == sqlite.status()["files"] > 100
    assert pg.status()["chunks"] == sqlite.status()["chunks"]
    for q in QUERIES:
        for mode in ("bm25", "dense", "hybrid"):
            a, b = sqlite.search(q, k=10, mode=mode), pg.search(q, k=10, mode=mode)
            assert a and _same(a, b), (q, mode, _key(a), _key(b))
    # Filters in SQL select what they select in SQLite.
    from kenning import Filters

    f = Filters.parse(paths=["git/**"])
    a = sqlite.search("commit", k=10, filters=f)
    b = pg.search("commit", k=10, filters=f)
    assert a and _same(a, b) and all("/git/" in h.path for h in b)
    sqlite.close()
    pg.close()


def _sync(url: str, root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kenning", "--index", url, "-e", "hash", "-q", "add", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _chunk_set(url: str) -> set[tuple[str, int, int, str]]:
    with open_store(url) as s:
        rows = s.chunks(s.chunk_ids().tolist())
        return {(r.path, r.start, r.end, r.hash) for r in rows.values()}


def test_two_processes_sync_while_a_third_searches(til_notes: Path, tmp_path: Path) -> None:
    a = copy_folders(til_notes, tmp_path / "a", ["git", "vim", "ruby"])
    b = copy_folders(til_notes, tmp_path / "b", ["postgres", "javascript", "rails"])
    url = postgres_url()
    Index.open(url, embedder="hash").close()  # made once, so both writers find the schema
    writers = [_sync(url, a), _sync(url, b)]
    searches, errors = 0, []
    seen: list[Counter[str]] = []  # chunks per file, as each snapshot saw them
    with Index.open(url, embedder="hash") as reader:
        while any(w.poll() is None for w in writers):
            try:
                for hit in reader.search("commit a change", k=5):
                    assert hit.text and hit.path
                searches += 1
                with reader.store.snapshot():
                    rows = reader.store.chunks(reader.store.chunk_ids().tolist())
                seen.append(Counter(r.path for r in rows.values()))
            except Exception as e:  # noqa: BLE001 - every error is a failure, listed
                errors.append(repr(e))
            time.sleep(0.01)
    for w in writers:
        _, stderr = w.communicate()
        assert w.returncode == 0, stderr.decode()
    assert not errors and searches > 0
    clean = postgres_url()
    with Index.open(clean, embedder="hash") as one:
        one.add([a, b])
    assert _chunk_set(url) == _chunk_set(clean)
    # No snapshot ever held part of a file: each file it held had all its chunks.
    final = Counter(path for path, *_ in _chunk_set(url))
    assert any(0 < sum(c.values()) < sum(final.values()) for c in seen)  # caught mid-sync
    for counts in seen:
        assert all(n == final[path] for path, n in counts.items())
    with Index.open(url, embedder="hash") as idx:
        assert idx.pending() == 0 and idx.store.roots() == sorted([str(a), str(b)])


def test_migrate_to_postgres_and_back(til_subset: Path, tmp_path: Path) -> None:
    """SQLite -> PostgreSQL -> SQLite with the CLI: nothing re-embedded, the same results."""
    first = tmp_path / "first.db"
    with Index.open(first, embedder="hash") as idx:
        idx.add([til_subset])
        before = {q: idx.search(q, k=10) for q in QUERIES}
    url = postgres_url()
    runner = CliRunner()
    result = runner.invoke(app, ["--index", str(first), "migrate", "--to", url, "--json"])
    assert result.exit_code == 0, result.output
    back = tmp_path / "back.db"
    result = runner.invoke(app, ["--index", url, "migrate", "--to", str(back)])
    assert result.exit_code == 0, result.output
    with Index.open(url) as pg, Index.open(back) as again:
        assert pg.embedder.id == again.embedder.id == "hash"  # the settings came along
        assert pg.pending() == again.pending() == 0  # every vector came along
        hnsw = "SELECT to_regclass('kenning.embeddings_hnsw') IS NOT NULL"
        assert pg.store.db.execute(hnsw).fetchone()[0]  # built once, after the bulk load
        for q, hits in before.items():
            assert _key(again.search(q, k=10)) == _key(hits), q
            # PostgreSQL's BM25 is the in-memory one; FTS5 may order near-ties otherwise.
            assert {h.path for h in pg.search(q, k=10)} & {h.path for h in hits}
    # A second copy into a non-empty target is refused, naming it.
    result = runner.invoke(app, ["--index", str(first), "migrate", "--to", url])
    assert result.exit_code == 2 and "already holds an index" in result.output


@pytest.mark.real_model
def test_migrate_keeps_real_minilm_results(til_notes: Path, tmp_path: Path) -> None:
    """The til notes' vim folder with the packaged MiniLM: SQLite -> PostgreSQL -> SQLite
    keeps every hybrid result, and PostgreSQL's own dense ranking agrees with exact search."""
    notes = copy_folders(til_notes, tmp_path / "notes", ["vim"])
    first = tmp_path / "first.db"
    with Index.open(first) as idx:
        idx.add([notes])
        assert idx.embedder.id == "minilm" and idx.pending() == 0
        before = {q: idx.search(q, k=10) for q in QUERIES}
        dense = {q: idx.search(q, k=10, mode="dense") for q in QUERIES}
    url, back = postgres_url(), tmp_path / "back.db"
    with open_store(first) as source, open_store(url) as target:
        copied = copy_index(source, target)
    with open_store(url) as source, open_store(back) as target:
        assert copy_index(source, target).vectors == copied.vectors > 100
    with Index.open(url) as pg, Index.open(back) as again:
        for q, hits in before.items():
            assert _key(again.search(q, k=10)) == _key(hits), q
            assert _same(pg.search(q, k=10, mode="dense"), dense[q]), q


def test_background_worker_embeds_a_postgres_index(notes: Path) -> None:
    """The worker finds the database through its environment, and its lock is advisory:
    a second worker started meanwhile leaves at once."""
    with Index.open(postgres_url(), embedder="hash") as idx:
        report = idx.add([notes], embed=False)
        assert report.chunks_pending > 0 and idx.pending() == report.chunks_pending
        first = idx.embed_in_background()
        deadline = time.monotonic() + 60
        while idx.pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert idx.pending() == 0 and first > 0
        assert idx.search("sourdough starter", k=3, mode="dense")


def test_migration_4_moves_the_recorded_cpu_default_to_auto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As SQLite's migration 3: the "cpu" every index recorded before embedders could use a
    GPU becomes "auto"; the other settings stay."""
    from kenning.store.postgres import schema

    url = postgres_url()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    old = open_store(url)
    record = {"id": "minilm", "dim": 384, "args": {"device": "cpu", "precision": "int8"}}
    old.set_meta("embedder", json.dumps(record))
    old.close()
    monkeypatch.undo()
    new = open_store(url)
    assert schema.version(new.db) == schema.SCHEMA_VERSION  # type: ignore[attr-defined]
    args = json.loads(new.get_meta("embedder") or "")["args"]
    assert args == {"device": "auto", "precision": "int8"}
    new.close()


def test_a_version_1_database_is_migrated_in_place(
    notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made by the first schema keeps its index when a newer kenning opens it:
    migration 2 (postings read index-only) runs once, and BM25 ranks as before."""
    from kenning.search.names import NoteNames
    from kenning.store.postgres import schema
    from kenning.store.sql import SQLStore
    from kenning.text.names import name_key

    url = postgres_url()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(SQLStore, "_replace_links", lambda *a: None)  # no link table then
    monkeypatch.setattr(SQLStore, "_replace_names", lambda *a: None)  # nor a name table
    monkeypatch.setattr(NoteNames, "matching", lambda self, query: [])
    from kenning.store.postgres import PostgresStore

    for name in ("_log", "_log_where", "_log_rebuild"):  # nor a change log
        monkeypatch.setattr(SQLStore, name, lambda *a: None)
    monkeypatch.setattr(PostgresStore, "_log", lambda *a: None)
    with Index.open(url, embedder="hash") as old:
        old.add([notes])
        before = _key(old.search("softmax probabilities", k=5, mode="bm25"))
    monkeypatch.undo()
    with Index.open(url) as new:
        store = new.store
        assert schema.version(store.db) == schema.SCHEMA_VERSION  # type: ignore[attr-defined]
        assert store.get_meta("store_id")  # migration 3 names the database
        key = store.db.execute(  # type: ignore[attr-defined]
            "SELECT pg_get_indexdef('kenning.postings_pkey'::regclass)"
        ).fetchone()[0]
        assert "INCLUDE (tf, length)" in key
        assert _key(new.search("softmax probabilities", k=5, mode="bm25")) == before
        # migration 10 filled every note's names in: its file name finds it
        for path in store.sources():
            assert path in [p for p, _ in store.named(name_key(Path(path).stem))]
        assert store.get_meta("names_missing") is None


def test_a_large_postgres_index_ranks_bm25_in_memory_and_caches_it_locally(
    til_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``SERVER_THRESHOLD`` chunks, ``auto`` ranks BM25 in this process instead of in
    SQL, with the same scores. The postings are saved in the user's cache under a name only
    this database maps to, so the next process loads them, and a database made again at
    the same URL never reads the old file."""
    from kenning.search import keywords
    from kenning.search import searcher as search

    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "cache"))
    url = postgres_url()
    with Index.open(url, embedder="hash") as idx:
        idx.add([til_subset])
        in_sql = {q: idx.search(q, k=10, mode="bm25") for q in QUERIES}
        assert type(idx.searcher.keywords()) is keywords.StoreKeywords
        prefix = idx.store.cache_prefix()
    monkeypatch.setattr(search, "SERVER_THRESHOLD", 100)
    with Index.open(url) as idx:
        assert type(idx.searcher.keywords()) is keywords.MemoryKeywords
        for q in QUERIES:
            assert _same(in_sql[q], idx.search(q, k=10, mode="bm25")), q
    assert prefix and prefix.startswith(str(tmp_path / "cache"))
    saved = Path(prefix + ".bm25.npz")
    assert saved.exists()
    built = saved.stat().st_mtime_ns
    with Index.open(url) as idx:  # another process: the saved postings are loaded
        assert _same(in_sql[QUERIES[0]], idx.search(QUERIES[0], k=10, mode="bm25"))
    assert saved.stat().st_mtime_ns == built
    with open_store(url) as store:
        store.db.execute("DROP SCHEMA kenning CASCADE")  # type: ignore[attr-defined]
    with Index.open(url, embedder="hash") as idx:  # made again at the same URL
        assert idx.store.cache_prefix() != prefix
