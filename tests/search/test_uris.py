"""``Hit.open_url``: obsidian://open for a note in a vault, file:// (with the line) otherwise."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.search.uris import first_line, link_heading, open_url, vault_of
from kenning.text.chunking import ChunkSpec


def vault(tmp_path: Path, name: str = "My Vault") -> Path:
    root = tmp_path / name
    (root / ".obsidian").mkdir(parents=True)
    return root


def query(url: str) -> dict[str, str]:
    """The decoded query of a URL (each parameter once)."""
    parts = urlsplit(url)
    return {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def test_a_note_at_the_vault_root_opens_by_its_name_without_md(tmp_path: Path) -> None:
    root = vault(tmp_path)
    note = root / "Daily note.md"
    note.write_text("# Daily note\n")
    url = open_url(str(note), "markdown")
    assert url == "obsidian://open?vault=My%20Vault&file=Daily%20note"
    assert query(url) == {"vault": "My Vault", "file": "Daily note"}


def test_a_root_inside_a_vault_links_the_path_from_the_vault(tmp_path: Path) -> None:
    root = vault(tmp_path)
    sub = root / "projects" / "kenning"  # the indexed root sits inside the vault
    sub.mkdir(parents=True)
    note = sub / "plan (v2).md"
    note.write_text("text\n")
    url = open_url(str(note), "markdown", heading="Plan > Next steps")
    # every reserved character is encoded, "/" and "#" included, parentheses too
    assert url == (
        "obsidian://open?vault=My%20Vault&file=projects%2Fkenning%2Fplan%20%28v2%29%23Next%20steps"
    )
    assert query(url)["file"] == "projects/kenning/plan (v2)#Next steps"


def test_a_heading_with_spaces_and_hash_becomes_a_link_obsidian_resolves(tmp_path: Path) -> None:
    root = vault(tmp_path)
    note = root / "langs.md"
    note.write_text("# Languages\n\n## C# and F#: tips | tricks\n\nbody\n")
    url = open_url(str(note), "markdown", heading="Languages > C# and F#: tips | tricks")
    assert query(url)["file"] == "langs#C and F tips tricks"
    assert "%23C%20and%20F%20tips%20tricks" in url and url.count("%23") == 1
    assert link_heading("A >  B  [[x]] ^block") == "B x block"
    assert link_heading("") == ""


def test_other_files_keep_their_extension_and_pdfs_their_page(tmp_path: Path) -> None:
    root = vault(tmp_path)
    (root / "a.txt").write_text("x\n")
    (root / "paper.pdf").write_bytes(b"%PDF")
    assert query(open_url(str(root / "a.txt"), "text", heading="H"))["file"] == "a.txt"
    pdf = open_url(str(root / "paper.pdf"), "pdf", page=3)
    assert query(pdf)["file"] == "paper.pdf#page=3"


def test_outside_a_vault_a_file_uri_with_the_chunks_first_line(tmp_path: Path) -> None:
    notes = tmp_path / "plain notes"
    notes.mkdir()
    note = notes / "ünïcode.md"
    text = "first\nsecond ✓\n\nthe chunk\nmore\n"
    note.write_text("\ufeff" + text, encoding="utf-8")
    start = text.index("the chunk")
    url = open_url(str(note), "markdown", "H", None, start, "the chunk\nmore")
    assert url == note.as_uri() + "#L4"
    assert unquote(urlsplit(url).path) == str(note)
    # a file that changed since it was indexed gets no line; HTML never has one
    assert open_url(str(note), "markdown", "", None, start, "stale text") == note.as_uri()
    assert open_url(str(note), "html", "", None, start, "the chunk") == note.as_uri()
    pdf = notes / "p.pdf"
    assert open_url(str(pdf), "pdf", "", 2, 0, "x") == pdf.as_uri() + "#page=2"
    assert open_url(str(notes / "gone.md"), "markdown", "", None, 0, "x") == (
        (notes / "gone.md").as_uri()
    )


def test_an_ascii_file_is_read_as_bytes_with_or_without_a_bom(tmp_path: Path) -> None:
    text = "# t\n\none\ntwo\n\nthe chunk here\n"
    start = text.index("the chunk")
    for name, data in (("a.md", text.encode()), ("bom.md", b"\xef\xbb\xbf" + text.encode())):
        note = tmp_path / name
        note.write_bytes(data)
        assert first_line(note, start, "the chunk here") == 6
        assert first_line(note, start, "the chunk HERE") is None  # changed since
        assert first_line(note, start + 1, "the chunk here") is None
    assert first_line(tmp_path / "a.md", 0, "# t") == 1
    assert first_line(tmp_path / "gone.md", 0, "x") is None


def test_a_vault_made_later_is_seen_within_a_minute(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    clock = [1_000_000.0]
    monkeypatch.setattr("kenning.search.uris.time.monotonic", lambda: clock[0])
    assert vault_of(folder) is None
    (folder / ".obsidian").mkdir()
    clock[0] += 1
    assert vault_of(folder) is None  # remembered...
    clock[0] += 60
    assert vault_of(folder) == folder  # ...for a minute at most


def test_hits_carry_their_link(tmp_path: Path) -> None:
    root = vault(tmp_path, "Work Notes")
    (root / "tools").mkdir()
    intro = " ".join(f"word{i}" for i in range(40))  # a chunk of its own (size 16)
    (root / "tools" / "tmux.md").write_text(
        f"# tmux\n\n{intro}\n\n## Split panes\n\nPress prefix then % to split a pane.\n"
    )
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "vim.md").write_text("# vim\n\nline two\n\nSplit windows with :split in vim.\n")
    spec = ChunkSpec(size=16, overlap=0)
    with Index.open(tmp_path / "index.db", embedder=HashEmbedder(), chunking=spec) as index:
        index.add([root / "tools", plain])
        by_name = {Path(h.path).name: h for h in index.search("split", k=5, mode="bm25")}
    tmux, vim = by_name["tmux.md"], by_name["vim.md"]
    # the vault is the folder above the indexed root; the chunk's heading rides on the file
    assert tmux.heading.endswith("Split panes")
    assert query(tmux.open_url) == {"vault": "Work Notes", "file": "tools/tmux#Split panes"}
    assert tmux.to_dict()["open_url"] == tmux.open_url
    line = Path(vim.path).read_text()[: vim.start].count("\n") + 1
    assert vim.open_url == f"{Path(vim.path).as_uri()}#L{line}"
