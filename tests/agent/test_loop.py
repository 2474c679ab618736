"""The agent loop on a real index (hash embedder), driven by a scripted caller."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kenning import Index
from kenning.agent import Agent, ScriptedCaller, SearchCaller, ToolCall, Turn
from kenning.agent.calling import BudgetSpent, Decision, ToolCaller, parse_call
from kenning.answer.extractive import ExtractiveLLM
from kenning.answer.llms import Usage
from kenning.errors import ConfigError


@pytest.fixture
def vault(index: Index, notes: Path) -> Index:
    index.add([notes])
    return index


def agent(index: Index, script: list[ToolCall | str | None], **kw: object) -> Agent:
    return Agent(index, caller=ScriptedCaller(ExtractiveLLM(), script), **kw)  # type: ignore[arg-type]


def test_steps_run_tools_and_the_answer_cites_what_was_read(vault: Index) -> None:
    run = agent(
        vault,
        [ToolCall("links", {"note": "attention"}), ToolCall("read", {"note": "softmax"})],
    ).run("what does the note attention links to say?")
    assert [s.tool for s in run.steps] == ["links", "read"]
    assert "ml/softmax.md" in run.steps[0].result  # the link, resolved
    assert run.steps[1].chunk_ids and all(s.valid and not s.repeated for s in run.steps)
    # the answer quotes the note it read, checked; its sources are exactly what was read
    assert "probabilities" in run.answer.text
    assert run.answer.sentences and run.answer.sentences[0].status == "supported"
    assert {s.chunk_id for s in run.answer.sources} == set(run.steps[1].chunk_ids)
    assert all(s.path.endswith("softmax.md") for s in run.answer.sources)
    # each source opens where it was read, as ask's do (a file link with its first line here)
    assert all(
        s.open_url.startswith("file://") and s.open_url.endswith(f"#L{s.lines[0]}")
        for s in run.answer.sources
        if s.lines
    )
    assert run.answer.sources[0].open_url
    assert run.stopped is None and len(run.run_id) == 32


def test_a_repeated_call_is_refused_not_run(vault: Index) -> None:
    caller = ScriptedCaller(
        ExtractiveLLM(),
        [ToolCall("search", {"query": "softmax"}), ToolCall("search", {"query": " Softmax "})],
    )
    run = Agent(vault, caller=caller).run("what is softmax?")
    first, second = run.steps
    assert first.chunk_ids and not first.repeated
    assert second.repeated and not second.chunk_ids
    assert "already called" in second.result
    # the model was told: the refusal is the last thing it read before answering
    assert "already called" in caller.seen[-1][-1].content


def test_repeating_after_being_told_ends_the_run(vault: Index) -> None:
    same = ToolCall("search", {"query": "softmax"})
    run = agent(vault, [same, same, same, ToolCall("read", {"note": "bread"})]).run("softmax?")
    assert [s.repeated for s in run.steps] == [False, True, True]


def test_an_invalid_call_is_refused_with_the_reason(vault: Index) -> None:
    script: list[ToolCall | str | None] = [
        ToolCall("delete", {"note": "x"}),
        ToolCall("read", {"path": "x"}),
        ToolCall("search", {}),
        "I think I will search",
        ToolCall("search", {"query": "bread"}),
    ]
    run = agent(vault, script, max_steps=5).run("how is bread made?")
    assert [s.valid for s in run.steps] == [False, False, False, False, True]
    assert "no tool 'delete'" in (run.steps[0].error or "")
    assert "takes no argument 'path'" in (run.steps[1].error or "")
    assert "needs 'query'" in (run.steps[2].error or "")
    assert "not a tool call" in (run.steps[3].error or "")
    assert "dough" in run.answer.text


def test_step_cap_answers_with_what_it_has_and_says_so(vault: Index) -> None:
    script: list[ToolCall | str | None] = [
        ToolCall("search", {"query": "softmax"}),
        ToolCall("search", {"query": "attention"}),
        ToolCall("search", {"query": "bread"}),
    ]
    run = agent(vault, script, max_steps=2).run("what is softmax?")
    assert len(run.steps) == 2 and run.stopped == "steps"
    assert any("step cap (2 steps)" in n for n in run.answer.notes)
    assert run.answer.text and not run.answer.refused


def test_token_budget(vault: Index) -> None:
    script: list[ToolCall | str | None] = [ToolCall("search", {"query": q}) for q in "abc"]
    run = agent(vault, [ToolCall("search", {"query": "softmax"}), *script], max_tokens=50).run(
        "what is softmax?"
    )
    assert run.stopped == "tokens" and len(run.steps) < 4
    assert any("token budget (50 tokens)" in n for n in run.answer.notes)


class Slow(ToolCaller):
    """Takes its time on every call; runs out of time inside the second."""

    def decide(self, turns: list[Turn]) -> Decision:
        if len(turns) > 1:
            assert self.deadline is not None
            time.sleep(max(0.0, self.deadline - time.perf_counter()))
            raise BudgetSpent("time")
        return Decision(ToolCall("search", {"query": "softmax"}), usage=Usage(1, 1))


def test_timeout_answers_with_what_it_has(vault: Index) -> None:
    run = Agent(vault, caller=Slow(ExtractiveLLM()), timeout=0.5).run("what is softmax?")
    assert run.stopped == "time" and [s.tool for s in run.steps] == ["search"]
    assert any("time limit (0.5 s)" in n for n in run.answer.notes)
    assert "softmax" in run.answer.text.lower()


def test_no_call_gets_one_search_so_the_answer_has_sources(vault: Index) -> None:
    run = agent(vault, [None]).run("how long does the dough rise?")
    (step,) = run.steps
    assert step.auto and step.tool == "search" and step.chunk_ids
    assert run.answer.sources and not run.answer.refused
    assert run.calls == []  # kenning's own search is not the model's call


def test_search_caller_is_ask_for_backends_without_tools(vault: Index) -> None:
    run = Agent(vault).run("how long does the dough rise?")
    assert isinstance(Agent(vault).caller, SearchCaller)
    assert [s.tool for s in run.steps] == ["search"] and not run.steps[0].auto
    assert "overnight" in run.answer.text


def test_nothing_found_is_a_refusal(index: Index, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    index.add([tmp_path / "empty"])
    run = agent(index, [ToolCall("search", {"query": "x"})]).run("anything?")
    assert run.answer.refused and run.answer.sources == []


def test_json_is_the_checked_answer_plus_run_and_steps(vault: Index) -> None:
    run = agent(vault, [ToolCall("read", {"note": "softmax"})]).run("what is softmax?")
    data = json.loads(json.dumps(run.to_dict(), default=str))
    for key in ("question", "text", "sentences", "sources", "refused", "notes", "usage"):
        assert key in data  # what `ask --json` gives
    assert data["run_id"] == run.run_id
    assert data["steps"][0]["tool"] == "read" and data["steps"][0]["chunk_ids"]


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError):
        Agent.__init__(object.__new__(Agent), None, max_steps=0)  # type: ignore[arg-type]


def test_parse_call() -> None:
    d = parse_call('{"tool": "read", "arguments": {"note": "a", "heading": ""}}')
    assert d.call == ToolCall("read", {"note": "a"}) and d.error is None
    assert parse_call('{"tool": "answer"}').call is None
    assert parse_call('{"tool": "answer"}').error is None
    assert parse_call("search bread").error
    assert parse_call('{"name": "x"}').error


def test_conflicts_in_what_was_read_are_reported(index: Index, tmp_path: Path) -> None:
    root = tmp_path / "vault"
    root.mkdir()
    (root / "plan.md").write_text("# Plan\n\nThe thesis deadline is 3 March 2027.\n")
    (root / "email.md").write_text(
        "# Email from the office\n\nThe thesis deadline is 5 March 2027.\n"
    )
    index.add([root])
    caller = ScriptedCaller(
        ExtractiveLLM(),
        [ToolCall("read", {"note": "plan"}), ToolCall("read", {"note": "email"})],
        final="The thesis deadline is 3 March 2027 [1].",
    )
    run = Agent(index, caller=caller).run("when is the thesis deadline?")
    assert run.answer.sentences[0].status == "supported"
    assert run.answer.conflicts, run.answer.text
    assert "5 March 2027" in run.answer.text
