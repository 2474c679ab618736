"""What the index asks of its store: one chunk type from chunking to the store, no evaluation
tables in the store's interface, and filters applied by the store, not by loading every
source."""

from __future__ import annotations

from pathlib import Path

from kenning import Filters, Index


def test_the_store_interface_carries_no_evaluation_tables() -> None:
    from kenning.store import Store

    for name in ("save_questions", "questions", "add_eval_run", "eval_runs"):
        assert not hasattr(Store, name), name


def test_filtered_search_never_loads_every_source(index: Index, notes: Path) -> None:
    index.add([notes])
    # the note-name lookup reads every source once per index generation (cached, as warm()
    # does after a sync); what must not happen is a filter applied by loading every source
    index.searcher.warm()

    def refuse() -> None:
        raise AssertionError("filtered search loaded every source row")

    index.store.sources = refuse  # type: ignore[method-assign]
    hits = index.search("dough", filters=Filters.parse(where=["tag=cooking"]))
    assert [Path(h.path).name for h in hits] == ["bread.md"]


def test_sync_stores_the_chunker_s_own_chunks(index: Index, notes: Path) -> None:
    """One chunk type: what chunking makes is what the store takes, field for field."""
    import kenning.store.base as base

    assert not hasattr(base, "NewChunk") and not hasattr(
        __import__("kenning.store", fromlist=["x"]), "NewChunk"
    )
    index.add([notes])
    row = index.search("sourdough", k=1, mode="bm25")[0]
    assert Path(row.path).read_text()[row.start : row.end] == row.text
