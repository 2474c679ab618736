from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kenning.embedders import HashEmbedder
from kenning.text import boilerplate
from kenning.text.chunking import ChunkSpec, chunk_document, embedding_text
from kenning.text.loaders import Document, load

count = HashEmbedder().count_tokens

markdown_line = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.from_regex(r"#{1,4} [A-Za-z ]{1,20}", fullmatch=True),
    st.just("```"),
    st.just(""),
    st.from_regex(r"([A-Z][a-z]{1,9} ){3,30}[a-z]+\.", fullmatch=True),
)


@pytest.mark.slow
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
    # Every non-space character of the source that a reader sees lies in some chunk
    # (markup that reads as nothing, an HTML comment say, may be left out).
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    for s, e, _ in doc.reading.edits:
        covered[s:e] = b"\x01" * (e - s)
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    # Chunks come in source order.
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@pytest.mark.slow
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
    """Short sections share a chunk, headed by the path they share; a section that does not
    fit in the room left starts the next chunk. (Until chunker version 2 every heading
    started a chunk: this test asserted ["Guide", "Guide > Install", "Guide > Install >
    Linux"].)"""
    md = b"# Guide\n\nIntro text.\n\n## Install\n\nRun pip.\n\n### Linux\n\nUse apt.\n"
    doc = load(Path("guide.md"), md)
    chunks = chunk_document(doc, ChunkSpec(16, 0), count)
    assert [c.heading for c in chunks] == ["Guide", "Guide > Install > Linux"]
    assert chunks[0].text.startswith("# Guide") and chunks[0].text.endswith("Run pip.")
    # The context repeats the path but not the heading the chunk itself starts with.
    assert chunks[1].context == "Guide > Install"
    assert chunks[1].indexed_text.startswith("Guide > Install\n### Linux")
    # With room for all of it, the note is one chunk under its title.
    (whole,) = chunk_document(doc, ChunkSpec(), count)
    assert (whole.heading, whole.start, whole.end) == ("Guide", 0, len(md) - 1)


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
    # Size 16 keeps the sections apart (before chunker version 2 the default size did).
    chunks = chunk_document(doc, ChunkSpec(16, 0), HashEmbedder().count_tokens)
    assert chunks[-1].heading == "An Introduction to Dataview > Using Queries and docs well"
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)  # offsets untouched


# -- chunker version 2: merged sections, readable indexed text, boilerplate left out ------

noisy_line = st.one_of(
    markdown_line,
    st.sampled_from(
        [
            'This note in GitHub <span class="git-footer">[Edit In GitHub](https://x.dev/a)</span>',
            "See [[Other note|the other note]] and [docs](https://example.org/a_(b)) here.",
            "<!-- a comment",
            "that ends here -->",
            "%% obsidian comment %%",
            "![alt text](img.png) and ![[photo.jpg]] and https://www.gnu.org/s/tar.",
            '<div class="x">Tagged <b>words</b></div>',
            "`inline <code> [x](y)` kept",
            "- [ ] a task with a #tag ^block-1",
        ]
    ),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(noisy_line, max_size=50),
    size=st.integers(16, 120),
    overlap_frac=st.floats(0, 0.45),
    drop=st.sets(st.integers(0, 49), max_size=10),
)
def test_noisy_markdown_keeps_offsets_coverage_and_size(
    lines: list[str], size: int, overlap_frac: float, drop: set[int]
) -> None:
    """For Markdown full of markup, with some of its lines taken as boilerplate: every chunk
    is its exact source span; every character a reader sees is in a chunk; no chunk's
    indexed body exceeds the size, nor its context a quarter of it."""
    text = "\n".join(lines)
    doc = Document("notes/x.md", "markdown", text, "A title")
    keys = [k for _, _, k in boilerplate.lines(doc)]
    bp = frozenset(k for i, k in enumerate(keys) if i in drop)
    spec = ChunkSpec(size, int(size * overlap_frac))
    chunks = chunk_document(doc, spec, count, bp)
    hidden = bytearray(len(text))
    for s, e, _ in doc.reading.hiding(boilerplate.spans(doc, bp)).edits:
        hidden[s:e] = b"\x01" * (e - s)
    covered = bytearray(len(text))
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.body is not None and count(c.body) <= size
        assert count(c.context) <= max(8, size // 4)
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert all(covered[i] or hidden[i] or text[i].isspace() for i in range(len(text)))
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_short_sections_are_merged_under_their_common_heading() -> None:
    sections = "".join(f"## Part {i}\n\nA short paragraph about part {i}.\n\n" for i in range(12))
    doc = load(Path("parts.md"), f"# Parts\n\nIntro.\n\n{sections}".encode())
    chunks = chunk_document(doc, ChunkSpec(60, 0), count)
    assert 1 < len(chunks) < 6  # one section a chunk would be 13
    assert all(c.heading in ("Parts", "Parts > Part 11") or c.heading == "Parts" for c in chunks)
    assert all(count(c.text) <= 60 for c in chunks)


def test_indexed_text_reads_as_the_note_does() -> None:
    md = (
        "# Sync\n\nUse the <b>obsidian-git</b> plugin. <!-- todo: screenshots --> See "
        "[the docs](https://github.com/denolehov/obsidian-git/wiki) and [[Git setup|setup]]. "
        "%% private %% Also https://www.gnu.org/software/tar/manual.\n\n"
        "```html\n<div>[kept](as-is)</div>\n```\n"
    )
    doc = load(Path("sync.md"), md.encode())
    (chunk,) = chunk_document(doc, ChunkSpec(), count)
    assert chunk.text == md.rstrip("\n") and chunk.start == 0  # the source, untouched
    assert chunk.body == (
        "# Sync\n\nUse the obsidian-git plugin. See the docs and setup. Also gnu.org\n\n"
        "```html\n<div>[kept](as-is)</div>\n```"
    )
    assert chunk.indexed_text == f"Sync\n{chunk.body}"  # the title, even though spelled out
    assert chunk.hash == hashlib.sha256(chunk.indexed_text.encode()).hexdigest()


def test_boilerplate_lines_are_left_out_and_a_boilerplate_only_chunk_is_not_made() -> None:
    footer = 'This note in GitHub <span class="git-footer">[Edit In GitHub](https://g.dev/n)</span>'
    body = " ".join(f"Sentence {i} is about rivers and the sea." for i in range(12))
    doc = load(Path("rivers.md"), f"# Rivers\n\n{body}\n\n{footer}\n".encode())
    bp = frozenset(
        boilerplate.block_keys(doc) & {boilerplate.key("This note in GitHub Edit In GitHub")}
    )
    assert len(bp) == 1
    plain = chunk_document(doc, ChunkSpec(40, 0), count)
    assert "Edit In GitHub" in plain[-1].body
    chunks = chunk_document(doc, ChunkSpec(40, 0), count, bp)
    assert all("GitHub" not in c.indexed_text for c in chunks)
    assert chunks[-1].end <= doc.text.index(footer) or chunks[-1].text.endswith("</span>")
    # A note that is nothing but the template is still found by its title.
    (only,) = chunk_document(
        load(Path("Empty note.md"), f"{footer}\n".encode()), ChunkSpec(), count, bp
    )
    assert only.body == "" and only.indexed_text == "Empty note"


def test_the_file_name_joins_the_context_when_the_title_does_not_say_it() -> None:
    named = load(Path("vault/2024-05-01.md"), b"# Standup\n\nWe talked.\n")
    assert chunk_document(named, ChunkSpec(), count)[0].context == "2024-05-01 > Standup"
    same = load(Path("vault/undo-a-commit.md"), b"# Undo A Commit\n\nUse reset.\n")
    assert chunk_document(same, ChunkSpec(), count)[0].context == "Undo A Commit"
    bare = load(Path("vault/Plugins seeking help.md"), b"Some plugins need maintainers.\n")
    assert chunk_document(bare, ChunkSpec(), count)[0].context == "Plugins seeking help"


def test_a_sliver_at_the_end_takes_pieces_of_the_chunk_before_it() -> None:
    """A short last section after a full chunk is balanced with it, not left a sliver."""
    sections = "".join(
        f"## Part {i}\n\nA paragraph about part {i} of the subject, long enough.\n\n"
        for i in range(8)
    )
    doc = load(Path("parts.md"), f"# Parts\n\n{sections}## Related\n\n- [[Other]]\n".encode())
    chunks = chunk_document(doc, ChunkSpec(120, 0), count)
    sizes = [count(c.body or "") for c in chunks]
    assert len(chunks) == 2 and min(sizes) >= 120 // 4, sizes
    assert chunks[0].end <= chunks[1].start  # balanced by moving pieces, not by overlap
    assert chunks[1].text.endswith("[[Other]]") and "## Part" in chunks[1].text


def test_a_long_title_and_heading_path_are_held_to_a_quarter_of_the_size() -> None:
    title = " ".join(f"word{i}" for i in range(80))
    md = f"---\ntitle: {title}\n---\n# A\n## B\n### C\n\n" + "text " * 30
    doc = load(Path("long.md"), md.encode())
    chunks = chunk_document(doc, ChunkSpec(64, 0), count)
    assert all(count(c.context) <= 16 for c in chunks)
    assert chunks[0].context.startswith("long > word0 word1")
    assert chunks[-1].heading == "A > B > C" and "word79" not in chunks[-1].context


@pytest.mark.slow
def test_a_note_of_nothing_but_markup_keeps_its_stored_text_bounded() -> None:
    md = "# Page\n\n" + '<div class="a"></div>\n' * 20_000 + "\nThe end.\n"
    doc = load(Path("page.md"), md.encode())
    chunks = chunk_document(doc, ChunkSpec(16, 0), count)
    assert all(len(c.text) <= 16 * 32 for c in chunks)
    assert chunks[-1].body == "The end."


def test_the_model_reads_a_title_once_where_the_keyword_index_reads_it_twice() -> None:
    """A note's first chunk opens with its title, which its context names too: BM25 keeps
    both (the note's own chunks say its title more often than a note that links to it),
    the embedding drops the context's copy, and a file name that is only a number
    (together 7.9% of SciFact's tokens; hybrid nDCG@10 no lower)."""
    intro = " ".join(["Vitamin D supplements were given to older adults."] * 4)
    md = f"# Vitamin D and bone density\n\n{intro}\n\n## Trials\n\nTwo trials.\n".encode()
    doc = load(Path("4423327.md"), md)
    first, second = chunk_document(doc, ChunkSpec(48, 0), count)
    assert first.indexed_text.startswith(
        "4423327 > Vitamin D and bone density\n# Vitamin D and bone density\n"
    )
    # The model reads the title once, and not the file name, which is only a number.
    assert embedding_text(first.indexed_text) == first.body
    assert second.indexed_text.startswith("4423327 > Vitamin D and bone density\n")
    assert embedding_text(second.indexed_text) == second.indexed_text.removeprefix("4423327 > ")
    # A file name with letters stays: in Obsidian it is the note's name.
    named = load(Path("bone notes.md"), md)
    first, second = chunk_document(named, ChunkSpec(48, 0), count)
    assert embedding_text(first.indexed_text) == "bone notes\n" + first.body
    assert embedding_text(second.indexed_text) == second.indexed_text
    for same in ("a > b\nbody", "no context", "x > Nanog\n## Other\nbody", "t\n# t > u\n"):
        assert embedding_text(same) == same


def test_a_notes_aliases_and_tags_join_its_first_chunks_context_only() -> None:
    text = (
        "---\naliases: [terminal multiplexer, Tmux, tmux cheats]\ntags: [cli]\n---\n"
        "# Tmux\n\nSplit panes. #area/sub\n\n## Later\n\n" + "More words here. " * 60
    )
    doc = load(Path("tools/tmux.md"), text.encode())
    chunks = chunk_document(doc, ChunkSpec(80, 0), count)
    assert len(chunks) > 1
    # the title and file name are said already; aliases, then tags as #tags
    assert chunks[0].context == "Tmux > terminal multiplexer, tmux cheats #cli #area/sub"
    assert "multiplexer" in embedding_text(chunks[0].indexed_text)
    assert all("multiplexer" not in c.indexed_text for c in chunks[1:])
    plain = load(Path("tools/tmux.md"), text.split("---\n", 2)[2].replace("#area/sub", "").encode())
    assert chunk_document(plain, ChunkSpec(80, 0), count)[0].context == "Tmux"


def test_names_are_held_to_a_quarter_of_the_size_later_ones_dropped_first() -> None:
    aliases = ", ".join(f"alias number {i}" for i in range(40))
    doc = load(
        Path("n.md"), f"---\naliases: [{aliases}]\ntags: [a, b]\n---\n# N\n\nBody.\n".encode()
    )
    context = chunk_document(doc, ChunkSpec(40, 0), count)[0].context
    names = context.removeprefix("N > ")
    assert names.startswith("alias number 0, alias number 1") and "#a" not in names
    assert count(names) <= 40 // 4
