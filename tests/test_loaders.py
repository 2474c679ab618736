from __future__ import annotations

from pathlib import Path

import pytest

from kenning.errors import LoadError
from kenning.ingest.loaders import load


def make_pdf(path: Path, pages: list[str]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Test PDF")
    for text in pages:
        c.drawString(72, 720, text)
        c.showPage()
    c.save()
    return path.read_bytes()


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
    doc = load(Path("bad.md"), b"---\ntitle: [unclosed\n---\nbody text\n")
    assert doc.warning and "not valid YAML" in doc.warning
    assert doc.body_start == 0 and "body text" in doc.text


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
        ("empty.md", b"", "empty"),
        ("blank.txt", b"  \n\n", "empty"),
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
