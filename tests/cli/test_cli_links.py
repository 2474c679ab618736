"""``kenning links NOTE``: a note's outgoing links, backlinks and unresolved links, as a
table and as JSON; a note the index does not hold exits 5 with one line."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_notes
from typer.testing import CliRunner

from kenning.cli import app

runner = CliRunner()

VAULT = {
    "Home.md": "# Home\n\n[[Tmux#Panes|panes]], ![[Vim]], [[Missing]] and [vim](tools/vim.md).\n",
    "Tmux.md": "# Tmux\n\nBack [[home]].\n",
    "tools/Vim.md": "# Vim\n\nModal.\n",
}


def index(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "vault"
    write_notes(root, VAULT)
    db = tmp_path / "i.db"
    result = runner.invoke(app, ["--index", str(db), "--embedder", "hash", "-q", "add", str(root)])
    assert result.exit_code == 0, result.output
    return db, root.resolve()


def test_links_json_lists_outgoing_backlinks_and_unresolved(tmp_path: Path) -> None:
    db, root = index(tmp_path)
    result = runner.invoke(app, ["--index", str(db), "links", "Home", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert got["path"] == str(root / "Home.md")
    assert [
        (x["kind"], x["target"], x["heading"], x["alias"], x["path"]) for x in got["outgoing"]
    ] == [
        ("wikilink", "Tmux", "Panes", "panes", str(root / "Tmux.md")),
        ("embed", "Vim", "", None, str(root / "tools/Vim.md")),
        ("wikilink", "Missing", "", None, None),
        ("markdown", "tools/vim.md", "", "vim", str(root / "tools/Vim.md")),
    ]
    assert [(x["source"], x["target"]) for x in got["backlinks"]] == [
        (str(root / "Tmux.md"), "home")
    ]
    assert [x["target"] for x in got["unresolved"]] == ["Missing"]
    # the path as search shows it names the same note
    again = runner.invoke(app, ["--index", str(db), "links", str(root / "Home.md"), "--json"])
    assert json.loads(again.output) == got


def test_links_table_reads_and_unknown_note_exits_5(tmp_path: Path) -> None:
    db, _ = index(tmp_path)
    result = runner.invoke(app, ["--index", str(db), "links", "vim"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].strip() == "vault/tools/Vim.md"
    assert sum(1 for line in lines if line.split()[:1] == ["in"]) == 2  # embed + Markdown link
    assert "0 outgoing (0 unresolved), 2 backlinks" in result.output
    missing = runner.invoke(app, ["--index", str(db), "links", "Nowhere"])
    assert missing.exit_code == 5
    assert "Nowhere is not a note in this index" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
