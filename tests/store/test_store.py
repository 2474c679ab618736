"""One conformance suite for every registered Store backend, plus SQLite's own migrations.

Only the public ``Store`` interface is used, so every backend (SQLite, and PostgreSQL on a
server this test run starts) passes or fails the same checks. ``test_every_store_is_covered``
fails when a registered backend has no way to be made here.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import postgres_url
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kenning import Filters, Index
from kenning.errors import NotFound, SchemaTooNew, UnknownBackend
from kenning.store import SourceRow, Store, open_store, stores
from kenning.store.base import Scope
from kenning.store.sqlite import SQLiteStore
from kenning.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from kenning.text.chunking import Chunk

#: how to make a fresh location for each backend; a new backend adds its own here
LOCATIONS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: str(tmp / "store.db"),
    "postgresql": lambda tmp: postgres_url(),
}
ALIASES = {"postgres": "postgresql"}
#: the backends as test parameters, each with the marker of what it runs on
BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgresql" else name
    for name in sorted(LOCATIONS)
]


def test_every_store_is_covered() -> None:
    names = {ALIASES.get(n, n) for n in stores.names()}
    assert names <= set(LOCATIONS), "add the new store to LOCATIONS"


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    location = LOCATIONS[request.param](tmp_path)
    return lambda: open_store(location)


def source(path: str, digest: str = "h", meta: dict | None = None, kind: str = "markdown"):
    meta = {"tags": ["x"]} if meta is None else meta
    return SourceRow(0, path, "/r", 10, 1, digest, kind, "ok", None, "T", meta)


def chunk(text: str, n: int = 0) -> Chunk:
    return Chunk(n, n + len(text), text, "H", None, context="T")


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def vectors_for(*chunks: Chunk) -> dict[str, np.ndarray]:
    return {c.hash: vec(i) for i, c in enumerate(chunks)}


def test_write_read_search_delete_reopen(make) -> None:
    s = make()
    s.add_root("/r")
    a1, a2, b1 = chunk("apples and pears"), chunk("blue sky", 20), chunk("green apples")
    s.write_sources(
        [(source("/r/a.md"), [a1, a2]), (source("/r/b.md", "h2"), [b1])], vectors_for(a1, a2, b1)
    )
    assert set(s.sources()) == {"/r/a.md", "/r/b.md"}
    assert s.sources()["/r/a.md"].metadata == {"tags": ["x"]}
    hits = s.keyword_search(["apples"], 10)
    assert len(hits) == 2 and all(score > 0 for _, score in hits)
    rows = s.chunks([cid for cid, _ in hits])
    assert {r.path for r in rows.values()} == {"/r/a.md", "/r/b.md"}
    assert {r.text for r in rows.values()} == {"apples and pears", "green apples"}
    ids, matrix = s.vectors()
    assert len(ids) == 3 and matrix.shape == (3, 8) and s.chunk_count() == 3
    assert s.chunk_ids().tolist() == sorted(ids.tolist())
    assert s.known_hashes([a2.hash, "nope"]) == {a2.hash}
    # Replacing a source's chunks, then deleting a source, keeps everything in step.
    s.write_sources([(source("/r/a.md", "h3"), [chunk("only pears now")])], {})
    s.delete_sources(["/r/b.md"])
    assert s.gc_embeddings() == 3  # no chunk refers to the three old vectors
    assert s.keyword_search(["apples"], 10) == []
    assert s.stats()["chunks"] == 1 and s.stats()["sources"] == 1
    s.close()
    again = make()
    assert set(again.sources()) == {"/r/a.md"} and again.roots() == ["/r"]
    assert [text for _, text in again.keyword_rows()] == ["T\nonly pears now"]
    again.close()


def test_chunks_wait_for_vectors_in_id_order(make) -> None:
    """The keyword pass writes chunks without vectors; ``pending`` walks them by id."""
    s = make()
    a, b, dup = chunk("apples"), chunk("blue sky", 10), chunk("apples")
    s.write_sources([(source("/r/a.md"), [a, b]), (source("/r/b.md", "h2"), [dup])], {})
    assert s.pending_count() == 2  # two distinct texts: the duplicate shares a's vector
    rows = s.pending(0, 10)
    assert [r[1] for r in rows] == [a.hash, b.hash, dup.hash]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert [r[2] for r in rows] == [a.indexed_text, b.indexed_text, dup.indexed_text]
    assert s.pending(rows[0][0], 1) == rows[1:2]  # walks on from a chunk id
    assert s.keyword_search(["apples"], 10) and s.vectors()[0].size == 0
    s.write_vectors({a.hash: vec(1)})
    assert s.pending_count() == 1 and [r[1] for r in s.pending(0, 10)] == [b.hash]
    ids, _ = s.vectors()
    assert sorted(ids.tolist()) == sorted(r[0] for r in rows if r[1] == a.hash)
    s.write_vectors({b.hash: vec(2), a.hash: vec(3)})  # a's first vector is kept
    assert s.pending_count() == 0 and s.pending(0, 10) == []
    ids, matrix = s.vectors()
    assert np.allclose(matrix[ids.tolist().index(rows[0][0])], vec(1))
    s.close()


def test_replace_vectors_swaps_every_vector_and_the_embedder_at_once(make) -> None:
    """Re-embedding with another model (``kenning tune``): ``pending(everything=True)`` lists
    every chunk text, and ``replace_vectors`` swaps all vectors and the embedder record."""
    s = make()
    a, b = chunk("apples"), chunk("blue sky", 10)
    s.write_sources([(source("/r/a.md"), [a, b])], {a.hash: vec(1)})
    s.set_meta("embedder", '{"id": "old", "dim": 8}')
    assert [r[1] for r in s.pending(0, 10)] == [b.hash]
    rows = s.pending(0, 10, everything=True)
    assert [(r[1], r[2]) for r in rows] == [(a.hash, a.indexed_text), (b.hash, b.indexed_text)]
    assert s.pending(rows[0][0], 10, everything=True) == rows[1:]
    gen = s.get_meta("vectors_generation")
    new = {a.hash: vec(5)[:4] / np.linalg.norm(vec(5)[:4]), b.hash: vec(6)[:4]}
    new[b.hash] = new[b.hash] / np.linalg.norm(new[b.hash])
    s.replace_vectors(new, '{"id": "new", "dim": 4}')  # another model, another dimension
    assert s.get_meta("embedder") == '{"id": "new", "dim": 4}'
    assert s.get_meta("vectors_generation") != gen and s.pending_count() == 0
    ids, matrix = s.vectors()
    by_id = dict(zip(ids.tolist(), matrix, strict=True))
    assert matrix.shape == (2, 4)
    assert np.allclose(by_id[rows[0][0]], new[a.hash], atol=1e-6)
    assert np.allclose(by_id[rows[1][0]], new[b.hash], atol=1e-6)
    if s.searches_itself:  # a store that ranks vectors itself ranks with the new ones
        assert s.vector_search(new[b.hash], 1)[0][0] == rows[1][0]
    s.close()


def test_move_keeps_chunks(make) -> None:
    s = make()
    c = chunk("kept text")
    s.write_sources([(source("/r/a.md"), [c])], vectors_for(c))
    before = s.vectors()[0].tolist()
    s.move_source("/r/a.md", "/r/moved.md", "/r", 10, 2)
    assert set(s.sources()) == {"/r/moved.md"} and s.vectors()[0].tolist() == before
    s.close()


def test_remove_root_and_reset(make) -> None:
    s = make()
    s.add_root("/r")
    s.add_root("/other")
    c1, c2 = chunk("in r"), chunk("elsewhere")
    other = SourceRow(0, "/other/x.md", "/other", 1, 1, "h9", "markdown", "ok", None, "X", {})
    s.write_sources([(source("/r/a.md"), [c1]), (other, [c2])], vectors_for(c1, c2))
    assert s.remove_root("/r") == ["/r/a.md"]
    assert s.roots() == ["/other"] and set(s.sources()) == {"/other/x.md"}
    gen = s.get_meta("generation")
    s.set_meta("embedder", '{"id": "hash"}')
    s.reset()
    assert s.roots() == ["/other"]  # roots survive, so the next sync rebuilds everything
    assert s.sources() == {} and s.chunk_count() == 0 and s.vectors()[0].size == 0
    assert s.get_meta("embedder") is None and s.get_meta("generation") != gen
    s.close()


def test_failed_sources_are_kept_but_never_searched(make) -> None:
    s = make()
    ok, broken = chunk("findable words"), source("/r/bad.md", "hb")
    broken.status, broken.error = "failed", "corrupt"
    s.write_sources([(source("/r/a.md"), [ok]), (broken, [])], vectors_for(ok))
    assert s.stats()["problems"] == [{"path": "/r/bad.md", "status": "failed", "reason": "corrupt"}]
    assert s.chunk_ids(Filters.parse(paths=["**"])).size == 1
    s.close()


NOTES = [
    ("/r/ml/a.md", "markdown", {"tags": ["ml", "nlp"], "date": "2025-03-01", "stars": 5}),
    ("/r/ml/b.md", "markdown", {"tags": "ml", "date": "2024-11-20", "stars": 12}),
    ("/r/cook/c.md", "markdown", {"tags": ["cooking"], "draft": True}),
    ("/r/notes.txt", "text", {}),
    ("/r/site.html", "html", {"title": "My site", "author": None}),
]
FILTERS = [
    {"where": ["tag=ml"]},
    {"where": ["tag!=ml"]},
    {"where": ["date>=2025-01-01"]},
    {"where": ["stars>6"]},  # numbers compare as numbers: 12 > 6 although "12" < "6"
    {"where": ["stars<=5", "tag=nlp"]},
    {"where": ["draft=true"]},
    {"where": ["author!=me"]},
    {"where": ["title=my site"]},
    {"where": ["type=text"]},
    {"paths": ["ml/**"]},
    {"paths": ["*.txt", "cook/*"]},
    {"paths": ["/r/ml/a.md"]},
    {"types": ["html", "txt"]},
    {"types": ["markdown"], "where": ["tag!=cooking"], "paths": ["**/*.md"]},
]


@pytest.fixture
def filled(make) -> Store:
    s = make()
    s.add_root("/r")
    rows = []
    for n, (path, kind, meta) in enumerate(NOTES):
        rows.append((source(path, f"h{n}", meta, kind), [chunk(f"common words {path}")]))
    s.write_sources(rows, {})
    yield s
    s.close()


@pytest.mark.parametrize("spec", FILTERS, ids=str)
def test_store_filters_match_the_reference(filled: Store, spec: dict) -> None:
    filters = Filters.parse(**spec)
    expected = {r.path for r in filled.sources().values() if filters.matches(r)}
    got = {r.path for r in filled.chunks(filled.chunk_ids(filters).tolist()).values()}
    assert got == expected
    keyword = {
        r.path
        for r in filled.chunks(
            [c for c, _ in filled.keyword_search(["common"], 50, Scope(filled, filters))]
        ).values()
    }
    assert keyword == expected


scalar = st.one_of(
    st.integers(-20, 20),
    st.sampled_from(["ml", "ML", "x", "2025-01-01", "2024-06-30", "10", "9", "ml/x", "ML/x/y"]),
    st.booleans(),
    st.none(),
)
metadata = st.dictionaries(
    st.sampled_from(["tags", "date", "n", "kind"]),
    st.one_of(scalar, st.lists(scalar, max_size=3)),
    max_size=4,
)
condition = st.builds(
    lambda k, op, v: f"{k}{op}{v}",
    st.sampled_from(["tag", "date", "n", "kind", "missing"]),
    st.sampled_from(["=", "!=", ">=", "<=", ">", "<"]),
    st.sampled_from(["ml", "x", "2025-01-01", "10", "9", "true", "-3", "ml/x", "ml/"]),
)


@pytest.fixture(scope="module", params=BACKENDS)
def one_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store per backend for a whole property test (reset between examples)."""
    s = open_store(LOCATIONS[request.param](tmp_path_factory.mktemp("prop")))
    yield s
    s.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(metas=st.lists(metadata, min_size=1, max_size=6), where=st.lists(condition, max_size=2))
@example(metas=[{"tags": [None]}], where=["tag>=ml"])  # a null item matches nothing in both
@example(metas=[{"n": True}, {"n": 10}, {"n": "ML"}], where=["n>=9"])
@example(metas=[{"tags": ["ML/x/y"]}, {"tags": "mlx"}, {"tags": [1]}], where=["tag=ml"])
def test_sql_filters_equal_python_filters(one_store: Store, metas: list, where: list) -> None:
    """Property: for any metadata and conditions, the store selects what ``matches`` does."""
    s = one_store
    s.reset()  # one store serves every example
    rows = [(source(f"/r/{i}.md", f"h{i}", m), [chunk(f"n{i}")]) for i, m in enumerate(metas)]
    s.write_sources(rows, {})
    filters = Filters.parse(where=where)
    expected = {r.path for r in s.sources().values() if filters.matches(r)}
    got = {r.path for r in s.chunks(s.chunk_ids(filters).tolist()).values()}
    assert got == expected


_HOLD = """
import sys, time
from kenning.store import open_store
store = open_store(sys.argv[1])
lock = store.lock("embed")
print("held", flush=True)
time.sleep(120)
"""


def test_a_lock_is_one_holder_s_until_released_or_killed(make) -> None:
    """``Store.lock``: a second holder is refused while the first holds it, and gets it once
    the first releases it, or dies by SIGKILL without releasing anything."""
    s = make()
    held = s.lock("embed", wait=False)
    assert held is not None and s.lock("embed", wait=False) is None
    held.release()
    again = s.lock("embed", wait=False)
    assert again is not None
    again.release()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD, s.address], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "held"
            assert s.lock("embed", wait=False) is None  # another process holds it
        finally:
            child.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (after := s.lock("embed", wait=False)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after is not None, "a killed holder left its lock behind"
    after.release()
    s.close()


def test_kenning_imports_without_fcntl() -> None:
    """Windows has no ``fcntl``: importing kenning and its stores must not need it (the lock
    file is taken through ``filelock``, imported when a lock is taken)."""
    code = "import sys; sys.modules['fcntl'] = None; import kenning, kenning.store; print('ok')"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_locations_pick_the_backend(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/a.db") as s:
        assert isinstance(s, SQLiteStore) and (tmp_path / "a.db").exists()
    with Index.open(f"sqlite:///{tmp_path}/b.db", embedder="hash") as idx:
        assert idx.location == f"{tmp_path}/b.db"  # the file itself, for messages
    assert (tmp_path / "b.db").exists()
    with pytest.raises(UnknownBackend, match=r"'mongo://'.*sqlite://"):
        Index.open("mongo://host/db", embedder="hash")
    with pytest.raises(NotFound, match="no index at"):
        Index.open(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_migrates_an_old_file(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[1] + "\nPRAGMA user_version = 1;")
    con.execute("INSERT INTO roots VALUES ('/old', 0)")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert s.roots() == ["/old"]
    s.close()


@pytest.mark.parametrize(("recorded", "migrated"), [("cpu", "auto"), ("cuda:1", "cuda:1")])
def test_migration_3_moves_the_recorded_cpu_default_to_auto(
    tmp_path: Path, recorded: str, migrated: str
) -> None:
    """Before embedders could use a GPU, every index recorded the default device "cpu";
    migration 3 turns that into "auto", so an old index embeds on a GPU where there is one.
    Any other device was a choice, and stays."""
    db = tmp_path / "v2.db"
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[1] + ";" + MIGRATIONS[2] + "\nPRAGMA user_version = 2;")
    record = {"id": "minilm", "name": "minilm", "dim": 384, "args": {"device": recorded}}
    con.execute("INSERT INTO meta VALUES ('embedder', ?)", (json.dumps(record),))
    con.execute("INSERT INTO meta VALUES ('note', 'not json')")  # other keys stay unread
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert json.loads(s.get_meta("embedder") or "") == {**record, "args": {"device": migrated}}
    assert s.get_meta("note") == "not json"
    s.close()


def test_migration_9_fills_the_names_of_an_older_index(tmp_path: Path) -> None:
    """A note's names moved from the searcher's memory to a table: an index written
    before has its notes' names filled in when a newer kenning opens it, once."""
    db = tmp_path / "v8.db"
    s = SQLiteStore(db)
    tmux = source("/r/tmux.md", "h1", {"aliases": ["Terminal Multiplexer"]})
    failed = SourceRow(0, "/r/bad.md", "/r", 1, 1, "h3", "markdown", "failed", "x", "Bad", {})
    s.write_sources([(tmux, [chunk("a")]), (source("/r/b.md", "h2"), [chunk("b")])], {})
    s.write_sources([(failed, None)], {})
    s.close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE names")
    con.execute("PRAGMA user_version = 8")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert s.named("terminal multiplexer") == [("/r/tmux.md", "Terminal Multiplexer")]
    assert s.named("tmux") == [("/r/tmux.md", "tmux")]
    assert s.named("t") == [("/r/b.md", "T"), ("/r/tmux.md", "T")]  # their title
    assert s.named("bad") == []  # a failed file has no names
    assert s.get_meta("names_missing") is None
    s.close()


def test_names_follow_writes_moves_and_deletes(make) -> None:
    s = make()
    s.add_root("/r")
    s.write_sources([(source("/r/old.md", "h1", {"aliases": "One, Two"}), [chunk("a")])], {})
    assert s.named("two") == [("/r/old.md", "Two")]
    s.move_source("/r/old.md", "/r/new.md", "/r", 10, 2)
    assert s.named("old") == [] and s.named("new") == [("/r/new.md", "new")]
    s.write_sources([(source("/r/new.md", "h2", {"aliases": ["Three"]}), [chunk("b")])], {})
    assert s.named("two") == [] and s.named("three") == [("/r/new.md", "Three")]
    s.delete_sources(["/r/new.md"])
    assert s.named("three") == [] and s.named("new") == []
    s.close()


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    sqlite3.connect(db).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="Upgrade kenning"):
        SQLiteStore(db)


def test_dump_gives_back_what_was_written(make) -> None:
    """``dump`` + ``vectors_for`` are what a copy reads: the same sources, chunk spans,
    indexed text and hashes, and every chunk's vector, in chunk order."""
    s = make()
    a, b = chunk("first part"), chunk("second part", 20)
    a.body = "first part, as it reads"
    s.write_sources([(source("/r/a.md", meta={"tags": ["y"]}), [a, b])], vectors_for(a, b))
    [(src, chunks)] = s.dump(["/r/a.md", "/r/gone.md"])  # one no longer indexed: left out
    assert (src.path, src.metadata) == ("/r/a.md", {"tags": ["y"]})
    assert [(c.start, c.end, c.text, c.hash) for c in chunks] == [
        (x.start, x.end, x.text, x.hash) for x in (a, b)
    ]
    assert [c.indexed_text for c in chunks] == [a.indexed_text, b.indexed_text]
    got = s.vectors_for([c.hash for c in chunks])
    assert set(got) == {a.hash, b.hash} and np.allclose(got[a.hash], vectors_for(a, b)[a.hash])
    assert set(s.meta()) >= {"generation"}
    s.close()


# -- the change log: every store logs each chunk it adds or deletes with the change ---------


def replay(s: Store, since: int = 0) -> set[int]:
    """The chunk ids the log says exist, replayed from ``since`` (0: the log's start)."""
    changes = s.changes_since(since)
    assert changes is not None
    live: set[int] = set()
    for _, cid, op in changes:
        (live.add if op == "add" else live.discard)(cid)
    return live


def test_the_change_log_names_every_chunk_added_and_deleted(make) -> None:
    s = make()
    start = s.change_position()
    a1, a2, b1 = chunk("apples"), chunk("pears", 10), chunk("blue sky")
    s.write_sources([(source("/r/a.md"), [a1, a2]), (source("/r/b.md"), [b1])], {})
    first = s.change_position()
    assert first > start
    ids = set(s.chunk_ids().tolist())
    assert replay(s, start) == ids
    assert [op for _, _, op in s.changes_since(start) or []] == ["add"] * 3
    # an edit deletes the source's old chunks and adds its new ones, in one change
    s.write_sources([(source("/r/a.md", "h2"), [chunk("apples and plums")])], {})
    changes = s.changes_since(first) or []
    gone = {cid for _, cid, op in changes if op == "delete"}
    new = {cid for _, cid, op in changes if op == "add"}
    assert len(gone) == 2 and gone < ids and len(new) == 1 and not new & ids
    assert [q for q, _, _ in changes] == sorted(q for q, _, _ in changes)
    s.delete_sources(["/r/b.md"])
    assert replay(s, start) == set(s.chunk_ids().tolist())
    assert s.changes_since(s.change_position()) == []
    s.close()


def test_a_vector_arriving_later_is_logged_as_an_add(make) -> None:
    s = make()
    c = chunk("waiting for its vector")
    s.write_sources([(source("/r/a.md"), [c])], {})
    before = s.change_position()
    s.write_vectors({c.hash: vec(1)})
    changes = s.changes_since(before) or []
    assert [(cid, op) for _, cid, op in changes] == [(int(s.chunk_ids()[0]), "add")]
    ids, matrix = s.vectors_of(list(s.chunk_ids()))
    assert ids.tolist() == s.chunk_ids().tolist() and np.allclose(matrix[0], vec(1), atol=1e-6)
    s.close()


def test_compaction_and_reset_send_readers_behind_them_to_a_rebuild(make) -> None:
    s = make()
    start = s.change_position()
    s.write_sources([(source("/r/a.md"), [chunk("one")]), (source("/r/b.md"), [chunk("two")])], {})
    middle = s.change_position()
    s.delete_sources(["/r/b.md"])
    assert s.compact_changes(keep=1) == 2  # the two adds; the delete is kept
    assert s.changes_since(start) is None  # behind the compacted point: rebuild
    assert [op for _, _, op in s.changes_since(middle) or []] == ["delete"]
    assert s.compact_changes(keep=1) == 0
    now = s.change_position()
    s.reset()
    assert s.changes_since(now) is None and s.changes_since(s.change_position()) == []
    s.close()


def test_keyword_rows_for_reads_only_the_chunks_asked(make) -> None:
    s = make()
    s.write_sources([(source("/r/a.md"), [chunk("apples"), chunk("pears", 10)])], {})
    ids = s.chunk_ids().tolist()
    rows = list(s.keyword_rows_for([ids[1], 10**9]))
    assert [i for i, _ in rows] == [ids[1]] and "pears" in rows[0][1]
    s.close()


def test_a_position_beyond_the_log_is_another_database_s(make) -> None:
    """A cache stamped by a database that was since deleted and made again at the same
    place is ahead of the new log: it must be rebuilt, not trusted."""
    s = make()
    s.write_sources([(source("/r/a.md"), [chunk("one")])], {})
    assert s.changes_since(s.change_position() + 1000) is None
    s.close()
