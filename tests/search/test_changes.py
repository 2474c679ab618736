"""Searchers apply the store's change log in place instead of rebuilding their caches.

The in-memory paths are forced on at a small scale (``keyword_index="memory"``,
``vector_index="hnsw"``): one searcher is running, another ``Index`` on the same store (or
another process) syncs an edited note, and the running one must find the new text, lose the
old, rank exactly as a fresh build does, and build nothing. Builds are counted by wrapping
``BM25Index.build`` and ``HNSWIndex.build``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import postgres_url

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.search import keywords
from kenning.search.keywords import BM25Index
from kenning.search.vectors import HNSWIndex
from kenning.store import open_store

QUERIES = ["zebra giraffe", "ocean tides", "harbour lighthouse", "mountain trail", "quartz"]


def write_notes(root: Path, n: int = 40) -> Path:
    words = ["ocean", "tides", "harbour", "lighthouse", "mountain", "trail", "river", "forest"]
    rng = np.random.default_rng(7)
    for i in range(n):
        body = " ".join(rng.choice(words, size=30 + i % 17).tolist())
        (root / f"note{i:02d}.md").parent.mkdir(parents=True, exist_ok=True)
        (root / f"note{i:02d}.md").write_text(
            f"# Note {i}\n\n{body} quartz{i}\n\n## More\n\n{body}\n"
        )
    return root


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each in-memory index was built from the whole store."""
    count = {"bm25": 0, "hnsw": 0}

    def counting(name: str, build: Callable) -> Callable:
        def wrapped(self: object, *args: object) -> None:
            count[name] += 1
            build(self, *args)

        return wrapped

    monkeypatch.setattr(BM25Index, "build", counting("bm25", BM25Index.build))
    monkeypatch.setattr(HNSWIndex, "build", counting("hnsw", HNSWIndex.build))
    return count


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def location(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "cache"))
    yield str(tmp_path / "index.db") if request.param == "sqlite" else postgres_url()


def open_memory(location: str) -> Index:
    return Index.open(
        location, embedder=HashEmbedder(), keyword_index="memory", vector_index="hnsw"
    )


def fresh(location: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Index:
    """An index whose caches are built from scratch: nothing shared with the others."""
    monkeypatch.setattr(keywords, "_shared", weakref.WeakValueDictionary())
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "fresh-cache"))
    if "://" not in location:
        for suffix in (".bm25.npz", ".hnsw", ".hnsw.json"):
            Path(location + suffix).unlink(missing_ok=True)
    return open_memory(location)


def ranking(idx: Index, query: str, mode: str) -> list[tuple[int, float]]:
    return [(h.chunk_id, h.score) for h in idx.search(query, k=10, mode=mode)]


def assert_same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [c for c, _ in got] == [c for c, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-6)


def edit(notes: Path) -> None:
    text = (notes / "note03.md").read_text().replace("quartz3", "zebra giraffe")
    (notes / "note03.md").write_text(text)
    (notes / "note07.md").unlink()


def test_a_running_searcher_applies_another_s_sync_without_rebuilding(
    location: str, tmp_path: Path, builds: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = write_notes(tmp_path / "notes")
    with open_memory(location) as writer:
        writer.add([notes])
    with open_memory(location) as reader, open_memory(location) as writer:
        for q in QUERIES:  # caches loaded (and built where none was saved)
            ranking(reader, q, "bm25"), ranking(reader, q, "dense")
        assert not reader.search("zebra", mode="bm25")
        edit(notes)
        writer.sync()
        writer_builds = dict(builds)
        hits = reader.search("zebra giraffe", k=3, mode="bm25")
        assert hits and Path(hits[0].path).name == "note03.md"
        assert not reader.search("quartz3", mode="bm25")  # the old text is gone
        assert all(Path(h.path).name != "note07.md" for h in reader.search("quartz7", k=40))
        got = {(q, m): ranking(reader, q, m) for q in QUERIES for m in ("bm25", "dense", "hybrid")}
        assert builds == writer_builds  # the reader built nothing
    with fresh(location, monkeypatch, tmp_path) as rebuilt:
        for (q, m), want in got.items():
            assert_same(want, ranking(rebuilt, q, m))


def test_the_writer_itself_applies_its_sync_in_place(
    location: str, tmp_path: Path, builds: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = write_notes(tmp_path / "notes")
    with open_memory(location) as idx:
        idx.add([notes])
        ranking(idx, "ocean", "hybrid")
        before = dict(builds)
        edit(notes)
        idx.sync()
        got = {q: ranking(idx, q, "hybrid") for q in QUERIES}
        assert builds == before
        assert Path(idx.search("zebra giraffe", k=1)[0].path).name == "note03.md"
    with fresh(location, monkeypatch, tmp_path) as rebuilt:
        for q, want in got.items():
            assert_same(want, ranking(rebuilt, q, "hybrid"))


def test_a_compacted_log_rebuilds_each_cache_exactly_once(
    location: str, tmp_path: Path, builds: dict[str, int]
) -> None:
    notes = write_notes(tmp_path / "notes")
    with open_memory(location) as writer:
        writer.add([notes])
    with open_memory(location) as reader, open_memory(location) as writer:
        ranking(reader, "ocean", "hybrid")
        edit(notes)
        writer.sync()
        writer.store.compact_changes(keep=0)
        before = dict(builds)
        hits = reader.search("zebra giraffe", k=1, mode="hybrid")
        assert Path(hits[0].path).name == "note03.md"
        for q in QUERIES:
            ranking(reader, q, "hybrid")
        assert builds == {"bm25": before["bm25"] + 1, "hnsw": before["hnsw"] + 1}


@pytest.mark.slow
def test_a_sync_in_another_process_is_applied_in_place(
    tmp_path: Path, builds: dict[str, int]
) -> None:
    notes = write_notes(tmp_path / "notes")
    db = str(tmp_path / "index.db")
    with open_memory(db) as idx:
        idx.add([notes])
    with open_memory(db) as reader:
        ranking(reader, "ocean", "hybrid")
        before = dict(builds)
        edit(notes)
        code = (
            "from kenning import Index\nfrom kenning.embedders import HashEmbedder\n"
            f"Index.open({db!r}, embedder=HashEmbedder()).sync()\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        assert Path(reader.search("zebra giraffe", k=1)[0].path).name == "note03.md"
        assert not reader.search("quartz3", mode="bm25")
        assert builds == before


@pytest.mark.slow
def test_a_sync_killed_mid_write_leaves_the_log_and_the_chunks_agreeing(
    tmp_path: Path, builds: dict[str, int]
) -> None:
    """The log is written in the chunks' transaction: a writer killed before it commits
    leaves neither, and a running searcher sees nothing of it."""
    notes = write_notes(tmp_path / "notes")
    db = str(tmp_path / "index.db")
    with open_memory(db) as idx:
        idx.add([notes])
    with open_memory(db) as reader:
        ranking(reader, "ocean", "hybrid")
        before = dict(builds)
        start = reader.store.change_position()
        edit(notes)
        # a writer that stops for good inside its transaction, just before it commits
        code = (
            "import sys, time\nfrom kenning import Index\nfrom kenning.embedders import "
            "HashEmbedder\nfrom kenning.store.sqlite import SQLiteStore\n"
            "bump = SQLiteStore._bump\n"
            "def stall(self, key='generation'):\n    bump(self, key)\n"
            "    print('inside', flush=True)\n    time.sleep(600)\n"
            "SQLiteStore._bump = stall\n"
            f"Index.open({db!r}, embedder=HashEmbedder()).sync()\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "inside"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        store = open_store(db)
        assert store.change_position() == start and store.changes_since(start) == []
        log = {cid for _, cid, op in store.changes_since(0) or [] if op == "add"}
        log -= {cid for _, cid, op in store.changes_since(0) or [] if op == "delete"}
        assert log == set(store.chunk_ids().tolist())
        store.close()
        assert not reader.search("zebra", mode="bm25")
        assert reader.search("quartz3", mode="bm25")
        assert builds == before


def test_bm25_with_changes_applied_ranks_as_a_fresh_build() -> None:
    """Random rounds of deleted and added chunks (longer ones too, so the average length
    grows and MaxScore's built bounds must be scaled), filtered and not: the same top 10
    and scores as postings built from the chunks that remain."""
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(60)]
    weights = np.linspace(2, 0.1, 60) / np.linspace(2, 0.1, 60).sum()  # common to rare

    def text(n: int) -> str:
        return " ".join(rng.choice(vocab, size=n, p=weights).tolist())

    live = {i: text(int(rng.integers(5, 30))) for i in range(1, 400)}
    bm25 = BM25Index()
    bm25.build(sorted(live.items()))
    next_id = 400
    for _ in range(6):
        gone = rng.choice(sorted(live), size=25, replace=False).tolist()
        for cid in gone:
            del live[cid]
        added = {next_id + i: text(int(rng.integers(20, 80))) for i in range(30)}
        next_id += 30
        live.update(added)
        bm25.apply(sorted(gone) + sorted(added), sorted(added.items()))
        fresh = BM25Index()
        fresh.build(sorted(live.items()))
        allowed = np.array(sorted(live)[::3], dtype=np.int64)
        for query in (["w0"], ["w1", "w7"], ["w3", "w20", "w55"], ["w59", "w0", "w2"]):
            for scope in (None, allowed):
                got, want = bm25.search(query, 10, scope), fresh.search(query, 10, scope)
                assert_same(got, want)


@pytest.mark.parametrize("name", ["exact", "hnsw"])
def test_vectors_with_changes_applied_search_as_a_fresh_build(name: str, tmp_path: Path) -> None:
    from kenning.search.vectors import vector_indexes

    rng = np.random.default_rng(5)
    unit = lambda m: (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    live = dict(zip(range(1, 301), unit(rng.normal(size=(300, 16))), strict=True))
    index = vector_indexes.get(name)(tmp_path / "g.hnsw", "t")
    ids = np.array(sorted(live), dtype=np.int64)
    index.build(ids, np.stack([live[i] for i in ids]))
    for r in range(4):
        gone = rng.choice(sorted(live), size=20, replace=False)
        for cid in gone:
            del live[int(cid)]
        new = np.arange(1000 + 25 * r, 1025 + 25 * r, dtype=np.int64)
        rows = unit(rng.normal(size=(25, 16)))
        live.update(zip(new.tolist(), rows, strict=True))
        index.apply(np.concatenate([np.sort(gone), new]), new, rows)
        keys = np.array(sorted(live), dtype=np.int64)
        fresh = vector_indexes.get("exact")()
        fresh.build(keys, np.stack([live[int(i)] for i in keys]))
        assert index.count == len(live)
        for q in [*unit(rng.normal(size=(5, 16))), rows[0]]:
            assert_same(index.search(q, 10, keys[::4]), fresh.search(q, 10, keys[::4]))
            got, want = index.search(q, 10), fresh.search(q, 10)
            if name == "exact":
                assert_same(got, want)
            else:  # approximate (its float16 copy may swap near ties), never a deleted one
                assert len({c for c, _ in got} & {c for c, _ in want}) >= 9
                assert {c for c, _ in got} <= set(live)
                exact = {int(c): float(live[int(c)] @ q) for c, _ in got}
                assert all(abs(score - exact[c]) < 1e-5 for c, score in got)
        assert index.search(rows[0], 1)[0][0] == new[0]  # an added one is found


def test_note_names_follow_edits_moves_and_deletes_as_a_fresh_lookup(tmp_path: Path) -> None:
    from kenning.search.names import NoteNames

    notes = write_notes(tmp_path / "notes", n=12)
    with open_memory(str(tmp_path / "index.db")) as idx:
        idx.add([notes])
        names = NoteNames(idx.store)
        assert names.matching("note03")
        (notes / "note03.md").write_text("# Zebra Crossing\n\nstripes\n")
        (notes / "note05.md").rename(notes / "renamed05.md")
        (notes / "note07.md").unlink()
        idx.sync()
        assert [p for p, _ in names.matching("zebra crossing")] == [str(notes / "note03.md")]
        assert names.matching("renamed05") and not names.matching("note07")
        assert names.matching("note07") == [] and names.matching("note05") == []
