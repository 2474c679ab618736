"""``kenning search`` filters on inline tags and Dataview fields, and shows a hit's tags."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kenning.cli import app

runner = CliRunner()

VAULT = {
    "tmux.md": "# tmux\n\nPrefix keys #shortcuts #area/sub for panes.\n\nstatus:: done\n",
    "vim.md": "# vim\n\nModal keys #area/sub/deeper, not `#shortcuts`.\n",
    "web.md": "# Web\n\nKeys at https://example.org/#shortcuts and [[tmux#area/sub]].\n",
    "front.md": "---\ntags: '#Shortcuts, area'\n---\n# Front\n\nKeys in front matter.\n",
}


def run(db: Path, *args: str) -> str:
    result = runner.invoke(app, ["--index", str(db), *args])
    assert result.exit_code == 0, result.output
    return result.output


def paths(output: str) -> set[str]:
    return {Path(json.loads(line)["path"]).name for line in output.splitlines()}


def test_where_tag_and_field_select_notes_and_hits_carry_tags(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    root.mkdir()
    for name, text in VAULT.items():
        (root / name).write_text(text)
    db = tmp_path / "i.db"
    run(db, "--embedder", "hash", "-q", "add", str(root))
    search = ("search", "keys", "--mode", "bm25", "--json")
    assert paths(run(db, *search, "--where", "tag=shortcuts")) == {"tmux.md", "front.md"}
    assert paths(run(db, *search, "--where", "tag=area/sub")) == {"tmux.md", "vim.md"}
    assert paths(run(db, *search, "--where", "tag=area")) == {"tmux.md", "vim.md", "front.md"}
    assert paths(run(db, *search, "--where", "tag=area/sub/deeper")) == {"vim.md"}
    assert paths(run(db, *search, "--where", "status=done")) == {"tmux.md"}
    hits = [json.loads(line) for line in run(db, *search, "--where", "tag=shortcuts").splitlines()]
    shown = {Path(h["path"]).name: h["tags"] for h in hits}
    assert shown == {"front.md": ["Shortcuts", "area"], "tmux.md": ["shortcuts", "area/sub"]}
    table = run(db, "search", "prefix panes", "--mode", "bm25", "-k", "1")
    assert "#shortcuts #area/sub" in table
