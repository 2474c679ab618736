"""``Index.links``: a vault's links resolved as Obsidian resolves them, following sync through
edits, renames and deletes; an unchanged vault re-synced rewrites no link row."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from conftest import write_notes

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.errors import NotFound
from kenning.text.chunking import ChunkSpec

VAULT = {
    "Home.md": (
        "# Home\n\nSee [[Tmux]], [[tools/vim#Modes|the editor]], ![[Vim]] and [[Screen]].\n"
        "Also [keys](tools/Vim.md#Keys), [spaced](tools/My%20Tool.md) and "
        "[web](https://example.org/a.md). `[[NotALink]]` ![[diagram.png]] [[#Here]]\n"
    ),
    "tools/Vim.md": "# Vim\n\nModal editing. Back to [home](../Home.md).\n",
    "tools/My Tool.md": "# My Tool\n\nA tool. [[tmux]]\n",
    "deep/er/tmux.md": "# tmux (old)\n\nAn older copy.\n",
    "Tmux.md": "# Tmux\n\nTerminal multiplexer. [[home]]\n",
}


@pytest.fixture
def vault(tmp_path: Path) -> tuple[Index, Path]:
    root = tmp_path / "vault"
    write_notes(root, VAULT)
    idx = Index.open(tmp_path / "index.db", embedder=HashEmbedder(), chunking=ChunkSpec())
    idx.add([root], embed=False)
    yield idx, root.resolve()
    idx.close()


def out(idx: Index, note: str, root: Path) -> list[tuple[str, str, str, str | None]]:
    """(kind, target, heading, resolved path under the root) of a note's outgoing links."""
    return [
        (x.kind, x.target, x.heading, x.path and Path(x.path).relative_to(root).as_posix())
        for x in idx.links(note).outgoing
    ]


def back(idx: Index, note: str, root: Path) -> list[tuple[str, str]]:
    return [
        (Path(x.source).relative_to(root).as_posix(), x.target) for x in idx.links(note).backlinks
    ]


def test_links_resolve_as_obsidian_resolves_them(vault: tuple[Index, Path]) -> None:
    idx, root = vault
    assert out(idx, "Home", root) == [
        ("wikilink", "Tmux", "", "Tmux.md"),  # the shortest of two paths named tmux
        ("wikilink", "tools/vim", "Modes", "tools/Vim.md"),  # a path, case-insensitive
        ("embed", "Vim", "", "tools/Vim.md"),  # by file name alone
        ("wikilink", "Screen", "", None),  # no such note: kept, unresolved
        ("markdown", "tools/Vim.md", "Keys", "tools/Vim.md"),
        ("markdown", "tools/My Tool.md", "", "tools/My Tool.md"),  # URL-decoded
    ]  # not: a web address, a link in code, an image, this note's own heading
    home = idx.links("Home")
    assert [x.alias for x in home.outgoing][:2] == [None, "the editor"]
    assert [(x.target, x.path) for x in home.unresolved] == [("Screen", None)]
    assert back(idx, "Home.md", root) == [("Tmux.md", "home"), ("tools/Vim.md", "../Home.md")]
    assert back(idx, "Tmux", root) == [("Home.md", "Tmux"), ("tools/My Tool.md", "tmux")]
    assert back(idx, str(root / "deep/er/tmux.md"), root) == []
    assert idx.links(str(root / "tools" / "Vim.md")).path == str(root / "tools" / "Vim.md")
    with pytest.raises(NotFound, match="Nowhere"):
        idx.links("Nowhere")


def test_links_follow_renames_additions_and_deletes(vault: tuple[Index, Path]) -> None:
    idx, root = vault
    (root / "Screen.md").write_text("# Screen\n\nThe older multiplexer.\n")  # a wanted name
    os.rename(root / "tools/Vim.md", root / "tools/Neovim.md")  # its backlinks break
    (root / "Tmux.md").unlink()  # the deeper tmux takes its links
    idx.sync(embed=False)
    assert out(idx, "Home", root) == [
        ("wikilink", "Tmux", "", "deep/er/tmux.md"),
        ("wikilink", "tools/vim", "Modes", None),
        ("embed", "Vim", "", None),
        ("wikilink", "Screen", "", "Screen.md"),
        ("markdown", "tools/Vim.md", "Keys", None),
        ("markdown", "tools/My Tool.md", "", "tools/My Tool.md"),
    ]
    assert back(idx, "Screen", root) == [("Home.md", "Screen")]
    assert back(idx, "Neovim", root) == []
    assert back(idx, "Home", root) == [("tools/Neovim.md", "../Home.md")]  # its own links moved
    with pytest.raises(NotFound):
        idx.links(str(root / "Tmux.md"))
    (root / "Home.md").write_text("# Home\n\nOnly [[Neovim]] now.\n")  # an edit replaces
    idx.sync(embed=False)
    assert out(idx, "Home", root) == [("wikilink", "Neovim", "", "tools/Neovim.md")]
    assert back(idx, "Screen", root) == []


def test_an_unchanged_vault_rewrites_no_link_row(vault: tuple[Index, Path]) -> None:
    """Acceptance 4: a trigger counts every link row written (inserted or deleted)."""
    idx, root = vault
    con = sqlite3.connect(idx.location)
    con.executescript(
        "CREATE TABLE written (n INTEGER);"
        "CREATE TRIGGER links_in AFTER INSERT ON links BEGIN INSERT INTO written VALUES (1); END;"
        "CREATE TRIGGER links_out AFTER DELETE ON links BEGIN INSERT INTO written VALUES (1); END;"
    )
    written = lambda: con.execute("SELECT count(*) FROM written").fetchone()[0]  # noqa: E731
    before = idx.links("Home").to_dict()
    os.utime(root / "Home.md", ns=(1, 1))  # touched: a new mtime, the same bytes
    report = idx.sync(embed=False)
    assert report.changed == 0 and written() == 0
    assert idx.links("Home").to_dict() == before
    (root / "Tmux.md").write_text("# Tmux\n\nNow with [[Vim]] and [[home]].\n")
    idx.sync(embed=False)
    assert written() == 1 + 2  # the one old link out, the two new ones in
    con.close()


def test_an_index_older_than_the_link_table_gets_links_on_its_next_sync(tmp_path: Path) -> None:
    """Migration 4 marks an index that holds sources; its next sync reads every file again
    (embedding nothing new), and the one after that is back to skipping unchanged files."""
    root = tmp_path / "vault"
    write_notes(root, VAULT)
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder(), chunking=ChunkSpec()) as old:
        old.add([root])
    con = sqlite3.connect(tmp_path / "i.db")  # as a kenning before the link table left it
    con.executescript("DROP TABLE links; PRAGMA user_version = 3;")
    con.close()
    with Index.open(tmp_path / "i.db") as idx:
        assert idx.links("Home").outgoing == []
        first = idx.sync()
        assert first.changed == len(VAULT) and first.chunks_embedded == 0
        assert len(idx.links("Home").outgoing) == 6
        assert back(idx, "Tmux", root.resolve()) == [
            ("Home.md", "Tmux"),
            ("tools/My Tool.md", "tmux"),
        ]
        assert idx.sync().unchanged == len(VAULT)
