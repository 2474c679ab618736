"""One conformance suite that every vector index must pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kenning.embedders import HashEmbedder
from kenning.search import vectors
from kenning.search.vectors import vector_indexes

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron".split()


def corpus(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=6)) for _ in range(n)]
    return np.arange(1, n + 1, dtype=np.int64) * 7, HashEmbedder(dim=32).embed_documents(texts)


@pytest.fixture(params=vector_indexes.names())
def make(request: pytest.FixtureRequest, tmp_path: Path):
    cls = vector_indexes.get(request.param)
    return lambda: cls(tmp_path / "vectors.bin", "hash")


def test_finds_itself_first(make) -> None:
    ids, matrix = corpus(300)
    index = make()
    index.build(ids, matrix)
    for row in (0, 17, 299):
        top = index.search(matrix[row], 5)
        assert top[0][1] == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(matrix[list(ids).index(top[0][0])], matrix[row])
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def test_allowed_restricts_results(make) -> None:
    ids, matrix = corpus(200)
    index = make()
    index.build(ids, matrix)
    allowed = ids[::10]
    top = index.search(matrix[3], 50, allowed=allowed)
    assert {i for i, _ in top} == set(allowed.tolist())


def test_rebuild_after_removals_and_additions(make) -> None:
    ids, matrix = corpus(300)
    index = make()
    index.build(ids, matrix)
    keep = np.r_[0:100, 150:300]
    new_ids, new_matrix = np.r_[ids[keep], [9001]], np.vstack([matrix[keep], matrix[120:121]])
    again = make()  # reopened: a persisted index syncs to the new key set
    again.build(new_ids, new_matrix)
    hits = {i for i, _ in again.search(matrix[120], 300)}
    assert 9001 in hits and not hits & set(ids[100:150].tolist())


def test_empty_and_reopen_same_results(make) -> None:
    index = make()
    index.build(np.zeros(0, dtype=np.int64), np.zeros((0, 32), dtype=np.float32))
    assert index.search(np.ones(32, dtype=np.float32), 5) == []
    ids, matrix = corpus(100)
    first = make()
    first.build(ids, matrix)
    second = make()
    second.build(ids, matrix)
    q = matrix[5]
    assert [i for i, _ in first.search(q, 10)] == [i for i, _ in second.search(q, 10)]


def test_every_vector_index_is_covered() -> None:
    # The suite runs on every registered id (``make``'s params); this pins the list so a new
    # built-in is noticed, and a plugin found in a developer's environment shows up here.
    assert vector_indexes.names() == ["exact", "hnsw"]


def test_plugins_are_found_under_the_documented_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real installed distribution (a dist-info folder on sys.path) exposes a backend."""
    from kenning.registry import Registry

    (tmp_path / "flatplugin.py").write_text(
        "from kenning.search.vectors import ExactIndex\n\nclass FlatIndex(ExactIndex):\n    pass\n"
    )
    info = tmp_path / "flatplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flatplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[kenning.vector_indexes]\nflat = flatplugin:FlatIndex\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert vector_indexes.group == "kenning.vector_indexes"  # what the README documents
    fresh = Registry("vector index", vector_indexes.group)
    cls = fresh.get("flat")
    assert cls.__name__ == "FlatIndex" and "flat" in fresh.names()
    ids, matrix = corpus(50)
    index = cls(None, "hash")
    index.build(ids, matrix)
    assert index.search(matrix[7], 1)[0][0] == ids[7]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 9000),
    k=st.integers(1, 120),
    keep=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_exact_scan_in_parallel_blocks_matches_one_sort(
    n: int, k: int, keep: float, seed: int
) -> None:
    """The exact scan splits its rows into blocks scanned on several threads (with small
    blocks here, so every split is exercised); its top-k must be the one full sort's."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n * 3)[:n].astype(np.int64)
    matrix = rng.normal(size=(n, 8)).astype(np.float32)
    query = rng.normal(size=8).astype(np.float32)
    mask = rng.random(n) < keep
    with patch.object(vectors, "BLOCK", 1_000), patch.object(vectors, "SPLIT", 300):
        got = vectors._exact(ids, matrix, query, k, mask)
    scores = matrix[mask] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    assert [i for i, _ in got] == ids[mask][order].tolist()
    assert np.allclose([s for _, s in got], scores[order], atol=1e-6)


@pytest.mark.parametrize("most", [10_000, 5], ids=["beside", "folded"])
def test_a_mapped_graph_takes_changes_beside_it_until_they_are_many(
    tmp_path: Path, most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes to a memory-mapped graph are not made in it (that copies the whole graph
    into memory first): added vectors are searched exactly beside it and deleted ones
    skipped, until there are more than ``OVERLAY_MOST``; then the copy takes them."""
    monkeypatch.setattr(vectors, "OVERLAY_MOST", most)
    ids, matrix = corpus(400)
    path = tmp_path / "g.hnsw"
    vectors.HNSWIndex(path, "t").build(ids, matrix)  # saved, so the next build maps it
    index = vectors.HNSWIndex(path, "t")
    index.build(ids, matrix)
    assert index._viewed
    gone = ids[::7]
    new_ids, new_rows = corpus(6, seed=9)
    new_ids = new_ids + 10_000
    touched = np.concatenate([gone, new_ids])
    index.apply(touched, new_ids, new_rows)
    assert index._viewed == (most > 10)
    live = {int(i): r for i, r in zip(ids, matrix, strict=True) if i not in set(gone)}
    live.update({int(i): r for i, r in zip(new_ids, new_rows, strict=True)})
    keys = np.array(sorted(live))
    rows = np.stack([live[int(i)] for i in keys])
    for q in [*new_rows, *matrix[:5]]:
        got = index.search(q, 10)
        want = vectors._exact(keys, rows, q, 10)
        assert {c for c, _ in got} <= set(live)  # never a deleted one
        # nearly the same scores (the hash vectors tie often, so which of equals comes first
        # is free; and the graph is approximate: its threaded build may miss one)
        common = Counter(round(s, 4) for _, s in got) & Counter(round(s, 4) for _, s in want)
        assert sum(common.values()) >= 9
    assert index.search(new_rows[0], 1)[0][0] == new_ids[0]
