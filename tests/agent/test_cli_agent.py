"""`kenning agent`, `kenning trace` and `kenning eval agent` on a real index (hash embedder),
and the question sets that `eval agent` builds from links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_notes
from typer.testing import CliRunner

from kenning import Index
from kenning.agent.evaluate import build_questions, compare
from kenning.answer.extractive import ExtractiveLLM
from kenning.cli import app

LINKED = {
    "retro.md": "# March retro\n\nWe looked back at the quarter. Details in [[billing]].\n",
    "billing.md": "# Billing project\n\nThe team met every week.\n\n"
    "We chose PostgreSQL for the ledger after the load test.\n",
    "garden.md": "# Garden\n\nTomatoes went in early. See [[compost]].\n",
    "compost.md": "# Compost\n\nTurn the heap often.\n\nThe heap reached 60 degrees in July.\n",
    "README.md": "# Index\n\n[[retro]] [[billing]] [[garden]] [[compost]]\n",
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    root = write_notes(tmp_path / "vault", LINKED)
    location = tmp_path / "idx" / "index.db"
    with Index.open(location, embedder="hash") as index:
        index.add([root])
    return location


def kenning(db: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--index", str(db), "--embedder", "hash", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_agent_json_then_trace(db: Path) -> None:
    data = json.loads(kenning(db, "agent", "which database did we choose?", "--json"))
    assert "PostgreSQL" in data["text"] and data["sentences"][0]["status"] == "supported"
    assert [s["tool"] for s in data["steps"]] == ["search"] and data["stopped"] is None
    listed = kenning(db, "trace", "--list")
    assert data["run_id"][:12] in listed and "which database" in listed
    tree = kenning(db, "trace", data["run_id"][:8])
    assert "invoke_agent kenning" in tree and "execute_tool search" in tree
    as_json = json.loads(kenning(db, "trace", "--json"))
    assert as_json["trace_id"] == data["run_id"]
    assert as_json["children"][1]["attributes"]["gen_ai.tool.name"] == "search"


def test_agent_prints_steps_answer_and_sources(db: Path) -> None:
    out = kenning(db, "agent", "which database did we choose?", "--steps", "2")
    assert "step 1: search(query='which database did we choose?')" in out
    assert "PostgreSQL" in out and "Sources" in out and "billing.md" in out


def test_agent_remembers(db: Path, tmp_path: Path) -> None:
    out = kenning(db, "agent", "remember that the dentist is on Friday")
    assert "Remembered" in out
    assert "dentist is on Friday" in (db.parent / "kenning-memory.md").read_text()
    data = json.loads(kenning(db, "agent", "when is the dentist?", "--json"))
    assert "Friday" in data["text"]


def test_trace_without_runs_is_not_found(db: Path) -> None:
    result = CliRunner().invoke(app, ["--index", str(db), "trace"])
    assert result.exit_code == 5 and "no agent run" in result.output


def test_questions_are_built_from_links(db: Path) -> None:
    with Index.open(db, embedder="hash") as index:
        questions = build_questions(index, 10)
    multi = {q.named.rsplit("/", 1)[-1]: q for q in questions if q.kind == "multi"}
    assert set(multi) == {"retro.md", "garden.md"}  # the README links to all: no question
    assert multi["retro.md"].gold == "postgresql" and multi["garden.md"].gold == "60"
    assert multi["retro.md"].question == (
        'Which note does "March retro" link to, and what does it say?'
    )
    controls = [q for q in questions if q.kind == "control"]
    assert {q.answer_note for q in controls} == {q.answer_note for q in multi.values()}
    assert all(q.named == q.answer_note for q in controls)


def test_compare_reports_both_kinds(db: Path) -> None:
    with Index.open(db, embedder="hash") as index:
        questions = build_questions(index, 10)
        report = compare(index, questions, ExtractiveLLM(), steps=2, k=3)
    for kind in ("multi", "control"):
        r = report[kind]
        assert r["questions"] == 2 and r["valid_rate"] == 1.0 and r["repeat_rate"] == 0.0
        assert 0.0 <= r["agent_correct"] <= 1.0 and r["agent_seconds"] > 0
    assert len(report["rows"]) == 4 and all(row["run_id"] for row in report["rows"])


def test_eval_agent_command(db: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    data = json.loads(kenning(db, "eval", "agent", "--limit", "1", "--json", "-o", str(rows)))
    assert data["multi"]["questions"] == 1 and data["control"]["questions"] == 1
    lines = [json.loads(x) for x in rows.read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["multi", "control"]


def test_chat_agent_turns_follow_the_conversation(db: Path) -> None:
    from kenning.agent import TraceStore
    from kenning.answer.memory import Conversations

    lines = "how hot did the compost heap get?\nand in which month?\n"
    out = CliRunner().invoke(
        app, ["--index", str(db), "--embedder", "hash", "chat", "--agent"], input=lines
    )
    assert out.exit_code == 0, out.output
    assert "step 1: search(query='how hot did the compost heap get?')" in out.output
    # the follow-up is searched with what it leans on, carried over from the first turn
    follow = [x for x in out.output.splitlines() if "step 1: search" in x][1]
    assert "in which month" in follow and "compost" in follow and "heap" in follow
    assert "July" in out.output
    with Conversations(db) as convos:
        turns = convos.turns(convos.last() or 0)
    assert [t["question"] for t in turns] == lines.splitlines()
    with TraceStore(db) as traces:
        ids = {r.trace_id for r in traces.runs()}
    assert {t["details"]["run_id"] for t in turns} == ids and len(ids) == 2


def test_chat_agent_remembers_across_conversations(db: Path) -> None:
    said = "remember that the dentist is on Friday\n"
    base = ["--index", str(db), "--embedder", "hash", "chat", "--agent"]
    first = CliRunner().invoke(app, base, input=said)
    assert first.exit_code == 0 and "Remembered" in first.output
    later = CliRunner().invoke(app, base, input="when is the dentist?\n")
    assert later.exit_code == 0 and "Friday" in later.output
    (db.parent / "kenning-memory.md").unlink()
    forgot = CliRunner().invoke(app, base, input="when is the dentist?\n")
    assert forgot.exit_code == 0 and "Friday" not in forgot.output
