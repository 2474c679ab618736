"""The in-memory BM25 index ranks exactly like FTS5's bm25(), on real notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kenning import Filters, Index
from kenning.embedders import HashEmbedder
from kenning.keywords import BM25Index
from kenning.search import query_terms

QUERIES = [
    "git rebase interactive",
    "postgres vacuum analyze table",
    "vim macros registers",
    "Résumé café naïve",  # accents fold like FTS5's remove_diacritics
    "increases increased increasing",  # one stem, three words: each adds, like FTS5's OR
    "tmux_split-window 2>&1",
]


@pytest.fixture(scope="module")
def til_index(til_notes: Path, tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("kw") / "i.db"
    with Index.open(db, embedder=HashEmbedder(), keyword_index="memory") as index:
        index.add([til_notes])
        yield index


@pytest.mark.parametrize("query", QUERIES)
def test_memory_bm25_equals_fts5(til_index: Index, query: str) -> None:
    terms = query_terms(query)
    fts = til_index.store.keyword_search(terms, 50)
    mem = til_index._keywords().search(terms, 50)
    assert [c for c, _ in mem[:20]] == [c for c, _ in fts[:20]]
    for (_, a), (_, b) in zip(mem, fts, strict=False):
        assert a == pytest.approx(b, rel=1e-3)  # token counts differ in rare edge cases


def test_filters_and_index_search_use_the_memory_index(til_index: Index) -> None:
    hits = til_index.search("rebase", mode="bm25", k=5, filters=Filters.parse(paths=["vim/**"]))
    assert hits and all("/vim/" in h.path for h in hits)
    saved = til_index.path.with_name(til_index.path.name + ".bm25.npz")
    assert saved.exists()  # built at the end of sync, not on the first search
    gen = til_index.store.get_meta("generation") or "0"
    assert BM25Index().load(saved, gen) and not BM25Index().load(saved, gen + "x")


def test_memory_index_follows_edits(tmp_path: Path, notes: Path) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder(), keyword_index="memory") as idx:
        idx.add([notes])
        assert not idx.search("zebra", mode="bm25")
        (notes / "zoo.md").write_text("# Zoo\n\nA zebra.\n")
        idx.sync()
        assert [Path(h.path).name for h in idx.search("zebra", mode="bm25")] == ["zoo.md"]
