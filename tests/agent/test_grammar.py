"""Tool calls under a grammar: the GBNF built from the tools' schemas, and (real model) the
0.5B writing calls that always parse, with its KV cache reused across steps."""

from __future__ import annotations

import json

import pytest

from kenning.agent import TOOLS, ToolCall, Turn
from kenning.agent.grammar import PROMPT, call_grammar, call_schema
from kenning.agent.tools import invalid


def test_the_schema_is_one_call_of_a_tool_or_answer() -> None:
    options = call_schema()["oneOf"]
    names = [o["properties"]["tool"]["const"] for o in options]
    assert names == [t.name for t in TOOLS] + ["answer"]
    for option, tool in zip(options, TOOLS, strict=False):
        args = option["properties"]["arguments"]
        assert args["required"] == tool.parameters["required"]
        assert all("maxLength" not in p for p in args["properties"].values())


def test_the_grammar_names_every_tool_and_keeps_whitespace_short() -> None:
    pytest.importorskip("cyllama")
    grammar = call_grammar()
    for t in TOOLS:
        assert f'\\"{t.name}\\"' in grammar
    assert 'space ::= | " "' in grammar.splitlines()
    assert "root ::=" in grammar
    assert "every call parses" not in PROMPT and '{"tool": "answer"}' in PROMPT


@pytest.mark.real_model
def test_the_local_model_writes_valid_calls_and_reuses_its_cache() -> None:
    from kenning.agent.grammar import GrammarCaller
    from kenning.answer import get_llm

    caller = GrammarCaller(get_llm("local", model="qwen2.5-coder-0.5b", max_new_tokens=48))
    try:
        turns = [Turn("user", "What does the note that my March retro links to say?")]
        first = caller.decide(turns)
        assert first.error is None, first.raw
        json.loads(first.raw)  # what the model wrote is JSON
        if first.call is None:  # it chose to answer: still a valid decision
            return
        assert invalid(first.call) is None
        call = first.call
        turns += [
            Turn("assistant", first.raw, call),
            Turn("tool", "retro.md links to:\n- projects/billing.md", call),
        ]
        before = caller.reused_tokens
        second = caller.decide(turns)
        assert second.error is None and (second.call is None or invalid(second.call) is None)
        # the second step read only what was new: the whole first prompt came from the cache
        assert caller.reused_tokens - before >= first.usage.prompt_tokens
        assert isinstance(second.call, ToolCall | None)
    finally:
        caller.close()
