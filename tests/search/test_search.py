from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kenning import ConfigError, EmbedderMismatch, Filters, Index
from kenning.embedders import HashEmbedder
from kenning.search import fuse, highlight_spans
from kenning.text.tokens import query_terms


def paths(hits) -> list[str]:
    return [Path(h.path).name for h in hits]


def test_bm25_dense_and_hybrid_find_the_right_note(index: Index, notes: Path) -> None:
    index.add([notes])
    for mode in ("bm25", "dense", "hybrid"):
        hits = index.search("softmax probabilities", k=3, mode=mode)
        assert paths(hits)[0] == "softmax.md", mode
    hit = index.search("dough rise overnight", k=1)[0]
    assert hit.heading == "Sourdough bread" and hit.text in Path(hit.path).read_text()
    src = Path(hit.path).read_text()
    assert src[hit.start : hit.end] == hit.text
    assert hit.bm25_rank == 1 and hit.dense_rank is not None


def test_filters_combine(index: Index, notes: Path) -> None:
    index.add([notes])
    q = "notes about things"

    def run(**kw) -> set[str]:
        return set(paths(index.search(q, k=20, filters=Filters.parse(**kw))))

    assert run(where=["tag=ml"]) == {"attention.md", "softmax.md"}
    assert run(where=["tag=ml", "date>=2025-01-01"]) == {"attention.md"}
    assert run(where=["date<2025-01-01"]) == {"softmax.md"}
    assert run(where=["tag!=ml"]) == {"bread.md", "plan.txt", "site.html"}
    assert run(paths=["projects/**"]) == {"plan.txt", "site.html"}
    assert run(paths=["ml/*.md"], where=["aliases=attention paper"]) == {"attention.md"}
    assert run(types=["html"]) == {"site.html"}
    assert run(types=["txt"], paths=["projects/**"]) == {"plan.txt"}
    assert run(where=["tag=nothing"]) == set()


def test_filtered_search_uses_keyword_and_dense_rankings(index: Index, notes: Path) -> None:
    index.add([notes])
    hits = index.search("softmax", k=5, filters=Filters.parse(where=["tag=cooking"]))
    assert paths(hits) == ["bread.md"]


def test_bad_filters_and_modes_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        Filters.parse(where=["just-a-word"])
    with pytest.raises(ConfigError, match="unknown --type"):
        Filters.parse(types=["docx"])
    with pytest.raises(ConfigError, match="choose one of"):
        fuse([], [], "max")


def test_fusions_agree_on_clear_winner() -> None:
    bm25 = [(1, 9.0), (2, 5.0), (3, 1.0)]
    dense = [(1, 0.9), (3, 0.5), (4, 0.1)]
    for fusion in ("weighted", "rrf"):
        fused = fuse(bm25, dense, fusion)
        assert fused[0][0] == 1 and {c for c, _ in fused} == {1, 2, 3, 4}
    weighted = dict(fuse(bm25, dense, "weighted", alpha=0.5))
    assert weighted[1] == pytest.approx(1.0)
    assert weighted[2] == pytest.approx(0.5 * (5 - 1) / 8)


def test_query_terms_drop_stopwords_but_never_everything() -> None:
    assert query_terms("What is the Softmax of the scores?") == ["softmax", "scores"]
    assert query_terms("the") == ["the"]


def test_embedder_mismatch_is_an_error_that_says_what_to_do(tmp_path: Path, notes: Path) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder(dim=32)) as idx:
        idx.add([notes])
    with pytest.raises(EmbedderMismatch, match="reembed"):
        Index.open(tmp_path / "i.db", embedder="minilm")
    with Index.open(tmp_path / "i.db") as again:  # no embedder given: the stored one
        assert again.embedder.id == "hash" and again.embedder.dim == 32


def test_reopen_gives_identical_results(tmp_path: Path, notes: Path) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as idx:
        idx.add([notes])
        first = [(h.chunk_id, round(h.score, 6)) for h in idx.search("attention tokens")]
    with Index.open(tmp_path / "i.db") as idx:
        assert [(h.chunk_id, round(h.score, 6)) for h in idx.search("attention tokens")] == first


def test_search_sees_new_files_after_sync(index: Index, notes: Path) -> None:
    index.add([notes])
    assert not index.search("zebra", mode="bm25")
    (notes / "zoo.md").write_text("# Zoo\n\nA zebra has stripes.\n")
    index.sync()
    assert paths(index.search("zebra", mode="bm25")) == ["zoo.md"]
    assert paths(index.search("zebra stripes", mode="dense", k=1)) == ["zoo.md"]


def test_pdf_hits_carry_their_page(index: Index, tmp_path: Path) -> None:
    from conftest import make_pdf

    root = tmp_path / "pdfs"
    root.mkdir()
    make_pdf(root / "paper.pdf", ["An introduction to gardening.", "Photosynthesis in leaves."])
    index.add([root])
    hit = index.search("photosynthesis", k=1, filters=Filters.parse(types=["pdf"]))[0]
    assert hit.page == 2 and hit.type == "pdf" and "Photosynthesis" in hit.text


def test_snippets_read_as_text() -> None:
    from kenning.search import snippet

    raw = (
        'Sync with git. <!-- hidden --> %% private %% <span class="git-footer">'
        "[Edit In GitHub](https://github.dev/x/y)</span> See [[obsidian-git|the git plugin]] "
        "and https://example.org/page for more."
    )
    shown = snippet(raw, ["git"])
    # A bare URL reads as its host, which says where it points without the noise.
    assert shown == "Sync with git. Edit In GitHub See the git plugin and example.org for more."
    assert "<" not in shown and "http" not in shown and "hidden" not in shown


# "İzmir" grows when lower-cased (İ is two code points in lower case), which sends the scan
# to its case-insensitive pattern over the text as written
_WORDS = st.sampled_from(
    ["alpha", "Alphabet", "ALPHAS", "beta", "Über", "über", "naïve", "cat_dog", "4", "İzmir"]
)
_TERMS = st.sampled_from(["alpha", "beta", "über", "cat", "naive", "42", "alphabetic"])


@given(
    st.lists(st.tuples(_WORDS, st.sampled_from([" ", "-", ".", "\n"])), max_size=40),
    st.lists(_TERMS, max_size=3),
)
def test_highlights_are_the_words_that_start_with_a_query_stem(
    pieces: list[tuple[str, str]], terms: list[str]
) -> None:
    """The one-regex scan (over the lower-cased text, or the text as written where lower
    case would move the offsets) marks exactly the words a per-word test marks."""
    text = "".join(w + sep for w, sep in pieces)
    stems = tuple(t[: max(4, len(t) - 2)] for t in terms)
    expected = [
        m.span() for m in re.finditer(r"\w+", text) if stems and m.group().lower().startswith(stems)
    ]
    assert highlight_spans(text, terms) == expected
