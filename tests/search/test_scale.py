"""The large-index paths: memory-mapped vectors, HNSW graph and BM25 give the same answers as
in-memory ones, stay in step with the database, and the memory estimate fits real sizes.

(Speed and memory at 100k and 1M chunks are measured by benchmarks/scale.py, not here.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.search import keywords, vectors
from kenning.search import searcher as search
from kenning.search.keywords import BM25Index
from kenning.search.vectors import ExactIndex, HNSWIndex
from kenning.store.matrix import read_matrix, write_matrix
from kenning.store.sqlite import SQLiteStore
from kenning.text.tokens import folded_tokens, query_terms


def clustered(n: int, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around a few hundred centres (like real embeddings, unlike noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // 20, 1), dim))
    m = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.3, (n, dim))
    m = (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
    return np.arange(1, n + 1, dtype=np.int64) * 3, m


def test_matrix_file_round_trip_and_stamp(tmp_path: Path) -> None:
    ids, m = clustered(1000)
    path = tmp_path / "v.npy"
    blocks = [(ids[i : i + 300], m[i : i + 300]) for i in range(0, 1000, 300)]
    write_matrix(path, "7/3", 1000, 64, blocks)
    got = read_matrix(path, "7/3")
    assert got is not None
    got_ids, got_m = got
    assert isinstance(got_m, np.memmap) and not got_m.flags.writeable
    assert np.array_equal(got_ids, ids) and np.array_equal(got_m, m)
    assert np.array_equal(np.load(path), m)  # a plain .npy to any other reader
    assert read_matrix(path, "7/4") is None  # another state of the database
    with open(path, "r+b") as f:  # cut short: damaged, so rebuilt, never misread
        f.truncate(path.stat().st_size - 100)
    assert read_matrix(path, "7/3") is None
    with pytest.raises(ValueError):
        write_matrix(path, "x", 1001, 64, blocks)


def test_store_vectors_are_mapped_and_follow_the_database(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([notes])
        store = index.store
        assert isinstance(store, SQLiteStore)
        ids, m = store.vectors()
        assert isinstance(m, np.memmap) and len(ids) == store.chunk_count() > 0
        rows = dict(
            store.db.execute("SELECT c.id, e.vector FROM chunks c JOIN embeddings e USING (hash)")
        )
        for cid, row in zip(ids, m, strict=True):
            assert np.array_equal(np.frombuffer(rows[int(cid)], np.float32), row)
        again_ids, again = store.vectors()  # same state: the same file, not rewritten
        assert np.array_equal(again_ids, ids)
        (notes / "zoo.md").write_text("# Zoo\n\nA zebra and a yak.\n")
        index.sync()
        new_ids, _ = store.vectors()
        assert len(new_ids) == len(ids) + 1
        hits = index.search("zebra yak", mode="dense", k=1)
        assert hits and Path(hits[0].path).name == "zoo.md"


@pytest.mark.parametrize("cls", [ExactIndex, HNSWIndex])
def test_memory_mapped_vectors_give_the_same_top_k(
    cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, m = clustered(3000)
    write_matrix(tmp_path / "v.npy", "1", len(ids), m.shape[1], [(ids, m)])
    got = read_matrix(tmp_path / "v.npy", "1")
    assert got is not None
    monkeypatch.setattr(vectors, "BLOCK", 256)  # many blocks, and a partial last one
    in_ram, mapped = cls(tmp_path / "a.hnsw", "t"), cls(tmp_path / "b.hnsw", "t")
    in_ram.build(ids, m)
    mapped.build(*got)
    allowed = ids[::7]
    for q in m[[0, 5, 999, 2999]]:
        if cls is ExactIndex:
            assert mapped.search(q, 10) == in_ram.search(q, 10)
        else:  # two threaded HNSW builds may link a few nodes differently: both near exact
            best = ids[np.argsort(-(m @ q))[:10]].tolist()
            for graph in (mapped, in_ram):
                top = [i for i, _ in graph.search(q, 10)]
                assert top[0] == best[0] and len(set(best) & set(top)) >= 9
        filtered = mapped.search(q, 20, allowed=allowed)
        assert filtered == in_ram.search(q, 20, allowed=allowed)
        assert {i for i, _ in filtered} <= set(allowed.tolist())
        # exact reference: the filtered search is exact, with float32 scores
        scores = m[np.isin(ids, allowed)] @ q
        assert [s for _, s in filtered] == pytest.approx(sorted(scores, reverse=True)[:20])


@pytest.mark.slow
def test_hnsw_is_mapped_once_up_to_date_and_matches_exact(tmp_path: Path) -> None:
    ids, m = clustered(5000)
    exact = ExactIndex()
    exact.build(ids, m)
    first = HNSWIndex(tmp_path / "g.hnsw", "t")
    first.build(ids, m)  # built in RAM, saved, then mapped
    reopened = HNSWIndex(tmp_path / "g.hnsw", "t")
    reopened.build(ids, m)
    assert mapped(tmp_path / "g.hnsw")
    for index in (first, reopened):  # a mapped graph is read-only: usearch refuses to add
        with pytest.raises(RuntimeError):
            index.index.add(np.array([10**9]), m[:1])  # type: ignore[union-attr]
    found = total = 0
    for q in m[:200]:
        truth = exact.search(q, 10)
        got = reopened.search(q, 10)
        assert got == first.search(q, 10)
        # candidates are re-scored with the float32 vectors: exact cosines, best first
        for cid, score in got:
            assert score == pytest.approx(float(m[np.searchsorted(ids, cid)] @ q), abs=1e-5)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        found += len({i for i, _ in truth} & {i for i, _ in got})
        total += 10
    assert found / total >= 0.95
    # a change loads the graph, updates and saves it, and maps it again
    changed = HNSWIndex(tmp_path / "g.hnsw", "t")
    changed.build(ids[100:], m[100:])
    assert ids[0] not in {i for i, _ in changed.search(m[0], 50)}
    del first, reopened  # (their maps are of the file the update replaced)
    assert mapped(tmp_path / "g.hnsw")


def mapped(path: Path) -> bool:
    """Whether this process memory-maps the file now at ``path`` (Linux)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps")
    lines = maps.read_text().splitlines()
    return any(line.endswith(str(path)) for line in lines)  # a replaced file ends "(deleted)"


def test_hnsw_graph_of_another_precision_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, m = clustered(500)
    HNSWIndex(tmp_path / "g.hnsw", "t").build(ids, m)
    size = (tmp_path / "g.hnsw").stat().st_size
    monkeypatch.setattr(HNSWIndex, "dtype", "f32")
    index = HNSWIndex(tmp_path / "g.hnsw", "t")
    index.build(ids, m)
    assert (tmp_path / "g.hnsw").stat().st_size > size  # 4 bytes a dimension, not 2
    assert index.search(m[3], 1)[0][0] == ids[3]


@pytest.fixture(scope="module")
def til_rows(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, str]]:
    db = tmp_path_factory.mktemp("scale") / "i.db"
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([til_notes])
        return list(index.store.keyword_rows())


@pytest.mark.slow
def test_bm25_built_in_batches_equals_one_batch(
    til_rows: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = BM25Index()
    whole.build(til_rows)
    monkeypatch.setattr(BM25Index, "BATCH_TOKENS", 500)
    parts = BM25Index()
    parts.build(iter(til_rows))
    for name in BM25Index._ARRAYS:
        assert np.array_equal(getattr(whole, name), getattr(parts, name)), name
    # every term's documents ascend, and the vocabulary is sorted (found by bisection)
    for t in range(0, whole.terms, 97):
        docs = whole.docs[whole.indptr[t] : whole.indptr[t + 1]]
        assert np.all(np.diff(docs) > 0)
        word = whole.blob[whole.offsets[t] : whole.offsets[t + 1]].tobytes().decode()
        assert whole._term(word) == t
    assert whole._term("zzzzqqqq") is None


@pytest.mark.slow
def test_bm25_mapped_from_disk_ranks_as_built(
    til_rows: list[tuple[int, str]], tmp_path: Path
) -> None:
    built = BM25Index()
    built.build(til_rows)
    built.save(tmp_path / "k.bm25.npz", "5")
    loaded = BM25Index()
    assert loaded.load(tmp_path / "k.bm25.npz", "5")
    assert mapped(tmp_path / "k.bm25.npz")
    assert not loaded.docs.flags.owndata and not loaded.docs.flags.writeable  # views of the map
    allowed = np.array([cid for cid, _ in til_rows[::3]])
    for query in ("git rebase interactive", "vim macros registers", "Résumé café", "qqqzzz"):
        terms = query_terms(query)
        assert loaded.search(terms, 20) == built.search(terms, 20)
        assert loaded.search(terms, 20, allowed) == built.search(terms, 20, allowed)
    assert not BM25Index().load(tmp_path / "k.bm25.npz", "6")
    (tmp_path / "old.npz").write_bytes(b"not a zip")
    assert not BM25Index().load(tmp_path / "old.npz", "5")


def test_searchers_of_one_process_share_the_loaded_bm25(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    with Index.open(db, embedder=HashEmbedder(), keyword_index="memory") as index:
        index.add([notes])
    with (
        Index.open(db, keyword_index="memory") as a,
        Index.open(db, keyword_index="memory") as b,
    ):
        assert a.search("rebase", mode="bm25") == b.search("rebase", mode="bm25")
        assert a.searcher.keywords()._index() is b.searcher.keywords()._index()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_memory_estimate_matches_real_sizes(
    tmp_path: Path, til_rows: list[tuple[int, str]]
) -> None:
    ids, m = clustered(4000, dim=384)
    write_matrix(tmp_path / "v.npy", "1", len(ids), 384, [(ids, m)])
    est = vectors.memory_estimate(len(ids), 384, hnsw=True)
    assert est["vectors"] == pytest.approx((tmp_path / "v.npy").stat().st_size, rel=0.01)
    HNSWIndex(tmp_path / "g.hnsw", "t").build(ids, m)
    assert est["graph"] == pytest.approx((tmp_path / "g.hnsw").stat().st_size, rel=0.25)
    assert vectors.memory_estimate(1000, 384)["graph"] == 0  # ``auto``: exact below 20k
    bm25 = BM25Index()
    bm25.build(til_rows)
    guess = keywords.memory_estimate(len(til_rows))["keywords"]
    assert bm25.nbytes / 3 <= guess <= bm25.nbytes * 3


def test_memory_needed_follows_auto() -> None:
    small = search.memory_needed(1_000, 384)
    assert small["graph"] == 0 and small["keywords"] == 0  # exact vectors and FTS5
    big = search.memory_needed(1_000_000, 384)
    assert big["graph"] > 0 and big["keywords"] > 0
    assert big["total"] == big["vectors"] + big["graph"] + big["keywords"]
    assert 1.5e9 < big["vectors"] < 1.6e9  # 1M float32 384-d vectors


@pytest.mark.slow
def test_bm25_pruning_is_exact(til_rows: list[tuple[int, str]]) -> None:
    """MaxScore skips posting lists, never results: the same top k as scoring everything."""
    bm25 = BM25Index()
    bm25.build(til_rows)
    n = len(bm25.ids)
    norm = bm25._doc_norm()
    allowed = np.array([cid for cid, _ in til_rows[::4]])
    queries = ["git rebase interactive branch", "how to use the command line", "the a of"]
    queries += [body.split("\n")[0][:80] for _, body in til_rows[::250]]
    for query in queries:
        terms = query_terms(query)
        full = np.zeros(n)
        for word in terms:
            for token in folded_tokens(word):
                t = bm25._term(bm25._stem(token))
                if t is None:
                    continue
                lo, hi = bm25.indptr[t], bm25.indptr[t + 1]
                docs, tf = bm25.docs[lo:hi], bm25.tf[lo:hi].astype(np.float64)
                idf = max(float(np.log((n - (hi - lo) + 0.5) / (hi - lo + 0.5))), 1e-6)
                full[docs] += idf * tf * (keywords.K1 + 1) / (tf + norm[docs])
        for k in (1, 3, 10, 100):
            for only in (None, allowed):
                got = bm25.search(terms, k, only)
                keep = full > 0 if only is None else (full > 0) & np.isin(bm25.ids, only)
                ref = sorted(zip(-full[keep], bm25.ids[keep], strict=True))[:k]
                assert [c for c, _ in got] == [int(c) for _, c in ref], (query, k)
                assert [s for _, s in got] == pytest.approx([-s for s, _ in ref])
