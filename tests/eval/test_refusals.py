"""Near-miss question pairs generated from the notes, and the share the answerer declines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kenning import Index
from kenning.answer.prompt import REFUSAL
from kenning.answer.specifics import holds, specifics
from kenning.cli import app
from kenning.eval.refusals import generate, run
from tests.conftest import write_notes

NOTES = {
    "sport/euro.md": "# The Euro final\n\nThe 2016 final in Paris was won by Portugal after "
    "extra time, with a goal from Eder.\n",
    "sport/worldcup.md": "# World Cup\n\nThe 2014 World Cup final in Rio was won by Germany "
    "against Argentina in extra time.\n",
    "code/rails.md": "# Secrets in Rails\n\nAccess encrypted secrets in a Rails 5.2 app with "
    "the credentials command, which Rails keeps in a YAML file.\n",
    "code/ruby.md": "# Bundled gems\n\nThe rexml library became a bundled gem in Ruby 3.0 "
    "so Rails apps must add it to their Gemfile.\n",
    "code/postgres.md": "# Postgres time zones\n\nSet the session time zone in Postgres with "
    "set time zone, and Postgres converts stored timestamps for display.\n",
    "code/vim.md": "# Vim registers\n\nVim keeps the last yanked text in register zero, so "
    "Vim users can paste it after a delete.\n",
    "code/editors.md": "# Editors\n\nWriting SQL for Postgres in Vim works well, and Rails "
    "developers often use Vim for templates too.\n",
}


def test_pairs_change_one_specific_to_a_value_the_notes_do_not_cover(
    index: Index, tmp_path: Path
) -> None:
    index.add([write_notes(tmp_path / "notes", NOTES)])
    pairs = generate(index, n=20, seed=1)
    assert len(pairs) >= 4
    texts = {p: Path(p).read_text() for p in {pair.path for pair in pairs}}
    for pair in pairs:
        assert pair.original.startswith("What do my notes say about ")
        assert pair.changed == pair.original.replace(pair.value, pair.new, 1)
        source = texts[pair.path]
        # every specific of the original is in its note; the new value is in no note on it
        assert all(holds(source, s) for s in specifics(pair.original))
        new = next(s for s in specifics(pair.changed) if s.text == pair.new.lower())
        assert not any(holds(t, new) for t in texts.values() if pair.value in t)
    assert {p.kind for p in pairs} >= {"year", "name"}
    assert generate(index, n=20, seed=1) == pairs  # seeded


def test_run_reports_the_declined_share_of_each_kind(index: Index, tmp_path: Path) -> None:
    index.add([write_notes(tmp_path / "notes", NOTES)])
    pairs = generate(index, n=20, seed=1)
    summary, rows = run(index, pairs)
    assert summary["pairs"] == len(pairs) == len(rows)
    assert summary["changed_declined"] == sum(r["changed_refused"] for r in rows) / len(rows)
    assert summary["changed_declined"] >= 0.75 and summary["original_declined"] <= 0.25
    declined = [r for r in rows if r["changed_refused"]]
    assert all(r["changed_answer"].startswith(REFUSAL) for r in declined)
    explained = [r for r in declined if r["changed_answer"] != REFUSAL]  # past the threshold
    assert explained and all(f"not {r['new']}." in r["changed_answer"] for r in explained)


def test_eval_refusals_on_the_command_line(tmp_path: Path, monkeypatch) -> None:
    notes = write_notes(tmp_path / "notes", NOTES)
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "i.db")
    runner = CliRunner()
    added = runner.invoke(app, ["--index", db, "--embedder", "hash", "add", str(notes)])
    assert added.exit_code == 0, added.output
    result = runner.invoke(
        app, ["--index", db, "eval", "refusals", "-n", "6", "-o", "out", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answerer"] == "extractive" and data["metrics"]["pairs"] >= 4
    rows = (tmp_path / "out" / "refusals.jsonl").read_text().splitlines()
    assert len(rows) == data["metrics"]["pairs"]
