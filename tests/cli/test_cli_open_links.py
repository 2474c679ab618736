"""`kenning search --json` and `kenning ask` give each hit and source the link that opens it:
obsidian://open in an Obsidian vault, file:// (with the chunk's first line) elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from typer.testing import CliRunner

from kenning.cli import app

runner = CliRunner()
NOTE = "# tmux\n\n## Split panes\n\nPress the prefix, then % to split the pane in two.\n"


def run(db: Path, *args: str) -> str:
    result = runner.invoke(app, ["--index", str(db), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_search_and_ask_json_carry_the_link(tmp_path: Path) -> None:
    vault, plain = tmp_path / "Work Vault", tmp_path / "plain"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / "tools").mkdir()
    (vault / "tools" / "tmux.md").write_text(NOTE)
    plain.mkdir()
    (plain / "screen.md").write_text("# screen\n\nintro\n\nSplit the screen with C-a S.\n")
    db = tmp_path / "idx" / "index.db"
    run(db, "--embedder", "hash", "-q", "add", str(vault), str(plain))
    (db.parent / "kenning.toml").write_text("[thresholds]\nrefuse = 0.0\n")

    lines = run(db, "search", "split", "--json", "--mode", "bm25").splitlines()
    hits = {Path(h["path"]).name: h for h in map(json.loads, lines)}
    tmux = urlsplit(hits["tmux.md"]["open_url"])
    assert (tmux.scheme, tmux.netloc) == ("obsidian", "open")
    assert parse_qs(tmux.query) == {"vault": ["Work Vault"], "file": ["tools/tmux#Split panes"]}
    screen = hits["screen.md"]
    line = Path(screen["path"]).read_text()[: screen["start"]].count("\n") + 1
    assert screen["open_url"] == f"{Path(screen['path']).as_uri()}#L{line}"

    answer = json.loads(run(db, "ask", "how do I split a pane in tmux?", "--json"))
    assert not answer["refused"]
    by_name = {Path(s["path"]).name: s for s in answer["sources"]}
    assert by_name["tmux.md"]["open_url"] == hits["tmux.md"]["open_url"]

    # the text answer spells the Obsidian link out under its source
    text = run(db, "ask", "how do I split a pane in tmux?")
    sources = text.split("Sources", 1)[1]
    assert hits["tmux.md"]["open_url"] in sources
    assert "file://" not in sources  # a file's path is already shown
