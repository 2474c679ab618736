from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kenning.embedders import HashEmbedder
from kenning.ingest.chunking import ChunkSpec, chunk_document
from kenning.ingest.loaders import Document, load

count = HashEmbedder().count_tokens

markdown_line = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.from_regex(r"#{1,4} [A-Za-z ]{1,20}", fullmatch=True),
    st.just("```"),
    st.just(""),
    st.from_regex(r"([A-Z][a-z]{1,9} ){3,30}[a-z]+\.", fullmatch=True),
)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(markdown_line, max_size=40),
    size=st.integers(16, 120),
    overlap_frac=st.floats(0, 0.45),
    kind=st.sampled_from(["markdown", "text"]),
)
def test_offsets_rebuild_source(
    lines: list[str], size: int, overlap_frac: float, kind: str
) -> None:
    text = "\n".join(lines)
    spec = ChunkSpec(size, int(size * overlap_frac))
    doc = Document("x", kind, text, "T")
    chunks = chunk_document(doc, spec, count)
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.text.strip()
    # Every non-space character of the source lies in some chunk.
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    # Chunks come in source order.
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@settings(max_examples=100, deadline=None)
@given(words=st.lists(st.from_regex(r"[a-z]{1,12}", fullmatch=True), min_size=1, max_size=400))
def test_no_overlap_means_a_partition(words: list[str]) -> None:
    text = " ".join(words)
    chunks = chunk_document(Document("x", "text", text, ""), ChunkSpec(24, 0), count)
    rebuilt = "".join(text[c.start : c.end] for c in chunks)
    assert re.sub(r"\s", "", rebuilt) == re.sub(r"\s", "", text)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(count(c.text) <= 24 + 2 for c in chunks)


def test_heading_path_and_context() -> None:
    md = b"# Guide\n\nIntro text.\n\n## Install\n\nRun pip.\n\n### Linux\n\nUse apt.\n"
    doc = load(Path("g.md"), md)
    chunks = chunk_document(doc, ChunkSpec(16, 0), count)
    assert [c.heading for c in chunks] == ["Guide", "Guide > Install", "Guide > Install > Linux"]
    # The context repeats the path but not the heading the chunk itself starts with.
    assert chunks[2].context == "Guide > Install"
    assert chunks[2].indexed_text.startswith("Guide > Install\n### Linux")


def test_code_fence_is_not_split_on_headings() -> None:
    md = b"# T\n\n```sh\n# not a heading\necho hi\n```\n"
    chunks = chunk_document(load(Path("c.md"), md), ChunkSpec(), count)
    assert all(c.heading == "T" for c in chunks)


def test_chunks_respect_size_and_carry_overlap() -> None:
    sentences = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    chunks = chunk_document(Document("x", "text", sentences, ""), ChunkSpec(40, 12), count)
    assert len(chunks) > 3
    assert all(count(c.text) <= 40 + 2 for c in chunks)
    assert any(a.end > b.start for a, b in zip(chunks, chunks[1:], strict=False))  # overlap


def test_pdf_pages_are_kept_apart() -> None:
    doc = Document("p.pdf", "pdf", "page one text.\n\npage two text.", "P", pages=[0, 16])
    chunks = chunk_document(doc, ChunkSpec(), count)
    assert [(c.page, c.text) for c in chunks] == [(1, "page one text."), (2, "page two text.")]


def test_one_huge_word_is_cut_into_windows() -> None:
    text = "x" * 100_000
    chunks = chunk_document(Document("x", "text", text, ""), ChunkSpec(32, 0), count)
    assert "".join(c.text for c in chunks) == text


def test_links_in_headings_read_as_their_text() -> None:
    """Obsidian: `# An Introduction to [[dataview|Dataview]]` is titled as it reads."""
    text = (
        "# An Introduction to [[dataview|Dataview]]\n\nQueries over notes.\n\n"
        "## Using [[Queries#Basics]] and [docs](https://example.org) well\n\nMore text.\n"
    )
    doc = load(Path("intro.md"), text.encode())
    assert doc.title == "An Introduction to Dataview"
    chunks = chunk_document(doc, ChunkSpec(), HashEmbedder().count_tokens)
    assert chunks[-1].heading == "An Introduction to Dataview > Using Queries and docs well"
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)  # offsets untouched
