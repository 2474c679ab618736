"""One conformance suite for every keyword index: the same BM25 ranking on real notes.

FTS5's ``bm25()`` (the ``store`` backend on SQLite) is the reference; every other backend
must return the same top results with the same scores, follow edits, and honour filters.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kenning import Filters, Index
from kenning.embedders import HashEmbedder
from kenning.search import ALPHA, DEPTH, fuse
from kenning.search.keywords import keyword_indexes
from kenning.store.base import Scope
from kenning.text.tokens import query_terms

QUERIES = [
    "git rebase interactive",
    "postgres vacuum analyze table",
    "vim macros registers",
    "Résumé café naïve",  # accents fold like FTS5's remove_diacritics
    "increases increased increasing",  # one stem, three words: each adds, like FTS5's OR
    "tmux_split-window 2>&1",
]
BACKENDS = ["store", "memory"]


def test_every_keyword_index_is_covered() -> None:
    assert sorted(keyword_indexes.names()) == sorted(BACKENDS)


@pytest.fixture(scope="module")
def til_db(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("kw") / "i.db"
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([til_notes])
    return db


@pytest.fixture(params=BACKENDS)
def til_index(request: pytest.FixtureRequest, til_db: Path):
    with Index.open(til_db, keyword_index=request.param) as index:
        yield index


@pytest.mark.slow
@pytest.mark.parametrize("query", QUERIES)
def test_same_ranking_as_the_reference(til_index: Index, til_db: Path, query: str) -> None:
    terms = query_terms(query)
    got = til_index.searcher.keywords().search(terms, 50)
    with Index.open(til_db, keyword_index="store") as ref_index:
        ref = ref_index.searcher.keywords().search(terms, 50)
    assert ref, "the reference must find something for the comparison to mean anything"
    assert [c for c, _ in got[:20]] == [c for c, _ in ref[:20]]
    for (_, a), (_, b) in zip(got, ref, strict=False):
        assert a == pytest.approx(b, rel=1e-3)  # token counts differ in rare edge cases


@pytest.mark.slow
def test_filters_narrow_the_ranking(til_index: Index) -> None:
    hits = til_index.search("rebase", mode="bm25", k=5, filters=Filters.parse(paths=["vim/**"]))
    assert hits and all("/vim/" in h.path for h in hits)
    unfiltered = til_index.search("rebase", mode="bm25", k=5)
    assert any("/vim/" not in h.path for h in unfiltered)


@pytest.mark.slow
@pytest.mark.parametrize("filters", [None, Filters.parse(paths=["vim/**", "git/**"])])
def test_hybrid_ranks_memory_bm25_beside_the_query_embedding(til_db: Path, filters) -> None:
    """With the in-memory BM25, hybrid search ranks keywords on a worker thread while the
    query embeds; the hits are those of the same two rankings fused in one thread."""
    with Index.open(til_db, keyword_index="memory") as index:
        searcher = index.searcher
        scope = Scope(index.store, filters) if filters else None
        allowed = scope.chunk_ids() if scope else None
        for query in QUERIES:
            got = index.search(query, k=10, filters=filters)
            bm25 = searcher.keywords().search(query_terms(query), DEPTH, scope)
            qvec = index.embedder.embed_query(query)
            dense = searcher.vectors().search(qvec, DEPTH, allowed)
            want = fuse(bm25, dense, "weighted", ALPHA)[:10]
            assert got and [h.chunk_id for h in got] == [c for c, _ in want]
            if filters:
                assert all("/vim/" in h.path or "/git/" in h.path for h in got)


@pytest.mark.parametrize("backend", BACKENDS)
def test_follows_edits(tmp_path: Path, notes: Path, backend: str) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder(), keyword_index=backend) as idx:
        idx.add([notes])
        assert not idx.search("zebra", mode="bm25")
        (notes / "zoo.md").write_text("# Zoo\n\nA zebra.\n")
        idx.sync()
        assert [Path(h.path).name for h in idx.search("zebra", mode="bm25")] == ["zoo.md"]
        (notes / "zoo.md").unlink()
        idx.sync()
        assert not idx.search("zebra", mode="bm25")


def test_memory_index_is_saved_at_sync_and_reloaded(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    with Index.open(db, embedder=HashEmbedder(), keyword_index="memory") as idx:
        idx.add([notes])
    saved = Path(f"{db}.bm25.npz")
    assert saved.exists()  # built at the end of sync, not on the first search
    from kenning.search.keywords import BM25Index

    with Index.open(db) as idx:
        seq = idx.store.change_position()
    loaded = BM25Index()  # stamped with the change log's position it reflects
    assert loaded.load(saved) and 0 < int(loaded.stamp) <= seq
    assert not BM25Index().load(saved, loaded.stamp + "x")


def test_unknown_keyword_index_lists_the_valid_ones(tmp_path: Path) -> None:
    from kenning.errors import UnknownBackend

    with pytest.raises(UnknownBackend, match="memory, store"):
        Index.open(tmp_path / "i.db", embedder="hash", keyword_index="fts6")
    with pytest.raises(UnknownBackend, match="exact, hnsw"):
        Index.open(tmp_path / "i.db", embedder="hash", vector_index="faiss")
