from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kenning.cli import app

runner = CliRunner()


def command_paths() -> list[str]:
    """Every runnable command, found by walking the command tree (groups included)."""
    import typer.main

    def walk(command, prefix: str) -> list[str]:
        subs = getattr(command, "commands", None)
        if not subs:
            return [prefix]
        return [p for name, sub in sorted(subs.items()) for p in walk(sub, f"{prefix} {name}")]

    return [p.strip() for p in walk(typer.main.get_command(app), "")]


COMMANDS = command_paths()


def test_the_command_walk_finds_groups_and_their_commands() -> None:
    assert {"add", "search", "eval retrieval", "eval history"} <= set(COMMANDS)


def run(db: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--index", str(db), *args])
    assert result.exit_code == code, result.output
    return result.output


def test_add_search_status_remove(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    run(db, "--embedder", "hash", "-q", "add", str(notes))
    lines = run(db, "search", "softmax probabilities", "--json", "-k", "3").strip().splitlines()
    hits = [json.loads(line) for line in lines]
    assert len(hits) == 3 and hits[0]["path"].endswith("softmax.md")
    assert {"score", "heading", "snippet", "bm25_rank", "dense_rank", "start", "end"} <= hits[
        0
    ].keys()
    table = run(db, "search", "softmax probabilities", "--explain")
    assert "softmax" in table and "bm25" in table and "dense" in table
    filtered = run(db, "search", "anything", "--where", "tag=cooking", "--json")
    assert [json.loads(x)["path"].endswith("bread.md") for x in filtered.splitlines()] == [True]
    status = json.loads(run(db, "status", "--json"))
    assert status["files"] == 5 and status["embedder"] == "hash" and status["chunks"] > 0
    assert status["memory"]["vectors"] >= status["chunks"] * status["dimension"] * 4
    table = run(db, "status")
    assert "roots" in table and "MB to search" in table
    sync = json.loads(run(db, "sync", "--json"))
    assert sync["unchanged"] == 5
    run(db, "remove", str(notes))
    assert json.loads(run(db, "status", "--json"))["files"] == 0


def test_errors_become_exit_codes_with_messages(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    run(db, "--embedder", "hash", "-q", "add", str(notes))
    out = run(db, "search", "x", "--where", "nonsense", code=2)
    assert "KEY=VALUE" in out
    out = run(db, "--embedder", "minilm", "status", code=4)
    assert "was built with embedder 'hash'" in out
    out = run(db, "remove", str(tmp_path / "not-a-root"), code=5)
    assert "not a root" in out
    out = run(tmp_path / "none.db", "search", "x", code=5)
    assert "no index at" in out and "kenning add" in out
    out = run(tmp_path / "other.db", "--embedder", "nope", "add", str(notes), code=2)
    assert "choose one of" in out and "minilm" in out
    run(db, "add", str(tmp_path / "missing"), code=5)


def test_embedder_options_ride_on_the_embedder_id(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    run(db, "--embedder", "hash:dim=32", "-q", "add", str(notes))
    assert json.loads(run(db, "status", "--json"))["dimension"] == 32
    assert json.loads(run(db, "search", "softmax", "--json", "-k", "1"))["path"].endswith(
        "softmax.md"
    )  # reopened with the recorded options, no --embedder needed
    out = run(tmp_path / "j.db", "--embedder", "hash:size=3", "add", str(notes), code=2)
    assert "does not accept ['size']" in out
    out = run(tmp_path / "k.db", "--embedder", "hash:dim", "add", str(notes), code=2)
    assert "NAME:KEY=VALUE" in out


@pytest.mark.real_model
def test_reembed_switches_embedder_and_keeps_roots(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "i.db"
    run(db, "--embedder", "hash", "-q", "add", str(notes))
    before = json.loads(run(db, "status", "--json"))
    report = json.loads(run(db, "reembed", "--embedder", "minilm", "--json"))
    assert report["added"] == 5 and report["chunks_embedded"] > 0
    after = json.loads(run(db, "status", "--json"))
    assert after["embedder"] == "minilm" and after["dimension"] == 384
    assert after["roots"] == before["roots"] and after["chunks"] == before["chunks"]


def test_add_reports_failures_by_name(tmp_path: Path) -> None:
    root = tmp_path / "n"
    root.mkdir()
    (root / "ok.md").write_text("fine")
    (root / "bad.md").write_bytes(b"\xff\xfe\x00\x00")
    result = runner.invoke(app, ["--index", str(tmp_path / "i.db"), "-e", "hash", "add", str(root)])
    assert result.exit_code == 7  # some files failed (kenning.errors.FilesFailed)
    assert "bad.md" in result.output and "binary" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for command in COMMANDS:
        assert f"kenning {command}" in readme, command


@pytest.mark.slow
def test_console_script_help_is_fast_and_skips_heavy_imports() -> None:
    code = (
        "import sys; from kenning.cli import app\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'onnxruntime', 'usearch') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_paths_show_under_their_root() -> None:
    from kenning.cli.shell import short_path

    roots = ["/home/me/vault", "/home/me/vault/archive", "/data/paper.pdf"]
    assert short_path("/home/me/vault/ml/a.md", roots) == "vault/ml/a.md"
    assert short_path("/home/me/vault/archive/b.md", roots) == "archive/b.md"  # deepest root
    assert short_path("/data/paper.pdf", roots) == "paper.pdf"
    assert short_path("/elsewhere/c.md", roots) == "/elsewhere/c.md"
