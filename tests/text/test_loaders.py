from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_pdf

from kenning.errors import LoadError
from kenning.text.loaders import load


def test_markdown_front_matter_is_typed() -> None:
    md = (
        b"---\ntitle: Notes on X\ntags: ml, deep learning\naliases: [x-notes]\n"
        b"date: 2025-01-02\nrating: 4\n---\n# Heading\n\nSee [[Other Note]] and [[Third#part|t]].\n"
    )
    doc = load(Path("n.md"), md)
    assert doc.title == "Notes on X"
    assert doc.metadata["tags"] == ["ml", "deep learning"]
    assert doc.metadata["aliases"] == ["x-notes"]
    assert doc.metadata["date"] == "2025-01-02"
    assert doc.metadata["rating"] == 4
    assert doc.links == ["Other Note", "Third"]
    assert doc.text[doc.body_start :].startswith("# Heading")


def test_markdown_title_falls_back_to_h1_then_file_name() -> None:
    assert load(Path("a.md"), b"intro\n# Real Title\n").title == "Real Title"
    assert load(Path("plain-name.md"), b"no heading here").title == "plain-name"


def test_invalid_yaml_front_matter_is_a_warning_not_a_failure() -> None:
    """Front matter that strict YAML rejects is read leniently, with a warning (until
    lenient reading, this note's whole text was indexed as plain text); front matter
    that yields nothing even so is still indexed as plain text."""
    doc = load(Path("bad.md"), b"---\ntitle: [unclosed\n---\nbody text\n")
    assert doc.warning and "not valid YAML" in doc.warning and "leniently" in doc.warning
    assert doc.title == "[unclosed" and doc.text[doc.body_start :] == "body text\n"
    junk = load(Path("junk.md"), b"---\n{{{ ]]\n---\nbody text\n")
    assert junk.warning and "indexed as plain text" in junk.warning
    assert junk.body_start == 0 and junk.metadata == {} and junk.title == "junk"


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        # "@" is reserved in YAML; Obsidian users write it in lists of people
        (
            "authors:\n- @kepano\n- Tony Grosinger\ntags: plugin",
            {"authors": ["@kepano", "Tony Grosinger"], "tags": ["plugin"]},
        ),
        # a value with colons of its own
        (
            "title: Git: sync a vault: the easy way\nrating: 4",
            {"title": "Git: sync a vault: the easy way", "rating": 4},
        ),
        # tabs, which YAML forbids in indentation
        ("title: Tabs\ntags:\n\t- a\n\t- b", {"title": "Tabs", "tags": ["a", "b"]}),
        # an unterminated quote, read line by line
        ('title: "Half quoted\ndate: 2025-01-02', {"title": '"Half quoted', "date": "2025-01-02"}),
        # a backtick starts no YAML value
        (
            "title: `code` in a title\naliases: [one, two]",
            {"title": "`code` in a title", "aliases": ["one", "two"]},
        ),
    ],
)
def test_front_matter_that_obsidian_accepts_is_read_leniently(
    front: str, expected: dict[str, object]
) -> None:
    doc = load(Path("n.md"), f"---\n{front}\n---\n# Heading\n\nBody.\n".encode())
    assert doc.metadata == expected
    assert doc.warning is not None and "leniently" in doc.warning
    assert doc.text[doc.body_start :].startswith("# Heading")
    assert doc.title == expected.get("title", "Heading")


def test_valid_front_matter_has_no_warning() -> None:
    doc = load(Path("n.md"), b"---\ntitle: 'Git: sync'\nauthors: ['@kepano']\n---\nBody.\n")
    assert doc.warning is None and doc.metadata["authors"] == ["@kepano"]


def test_a_comment_in_a_code_fence_is_no_title() -> None:
    """Notes without a ``#`` heading are titled by their file name, even with code in them."""
    md = b"Install it:\n\n```sh\n# fetch the plugin\ngit clone x\n```\n"
    assert load(Path("Plugins seeking help.md"), md).title == "Plugins seeking help"


def test_html_keeps_title_and_main_text() -> None:
    html = (
        b"<html><head><title>Page</title><style>p{}</style></head><body><nav>menu</nav>"
        b"<main><h1>Hello</h1><p>Main text.</p></main><footer>foot</footer></body></html>"
    )
    doc = load(Path("p.html"), html)
    assert doc.title == "Page"
    assert "Main text." in doc.text and "menu" not in doc.text and "foot" not in doc.text


def test_pdf_text_per_page(tmp_path: Path) -> None:
    data = make_pdf(tmp_path / "t.pdf", ["first page words", "second page words"])
    doc = load(tmp_path / "t.pdf", data)
    assert doc.type == "pdf" and doc.title == "Test PDF"
    assert len(doc.pages) == 2
    second = doc.text[doc.pages[1] :]
    assert second.startswith("second page words")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("corrupt.pdf", b"%PDF-1.4\n this is not really a pdf", "PDF"),
        ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("empty.html", b"", "no text"),
        ("empty.pdf", b"", "PDF"),
        ("latin1.txt", "caf\xe9 au lait".encode("latin-1"), "invalid UTF-8"),
        ("huge.md", b"a" * (21 * 1024 * 1024), "too large"),
        ("image.png", b"\x89PNG", "unsupported"),
    ],
)
def test_bad_input_names_file_and_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(LoadError) as e:
        load(Path(name), data)
    assert e.value.path == name
    assert reason in e.value.reason
    assert name in str(e.value)
