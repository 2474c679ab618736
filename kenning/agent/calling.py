"""Tool callers: how each kind of backend picks the next tool, and writes the final answer.

A ``ToolCaller`` wraps an LLM backend with one required method, ``decide``: given the
conversation so far (the question, each call and its result) it returns the next call, or
``None`` to answer. ``answer`` then writes the final answer over the passages the tools showed;
by default it is the backend's ordinary answer (``build_prompt`` and ``LLM.stream``), so it is
checked exactly like ``kenning ask``'s. Backends:

- ``local``: calls generated under a grammar built from the tools' schemas (``grammar.py``);
- ``openai`` and ``anthropic``: the servers' native tool calling (``native.py``);
- any other backend (the extractive quoter, plugins): ``SearchCaller``, one search then the
  answer, so the agent never does worse than ``ask`` without a model that can call tools;
- ``ScriptedCaller``: a fixed list of calls, for tests.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kenning.answer.llms import LLM, Message, Passage, Usage
from kenning.answer.prompt import build_prompt

from .tools import TOOLS, ToolCall

SYSTEM = (
    "You answer a question about the user's notes. You cannot see the notes: call tools to "
    "find what they say, one call at a time. search finds passages; read shows a note (or one "
    "heading); links shows the notes a note links to and the notes linking to it; list lists "
    "a folder or the notes with a tag; ask answers a simpler sub-question. When the question "
    "names a note, read it; when the question asks about a note that one links to or names, "
    "read that note too before answering. Do not repeat a call. As soon as the results "
    "hold the answer, stop calling tools and answer."
)
FINAL = (
    "Now answer the question from the passages above. Use only what they say. After every "
    "sentence cite the passages it comes from by number, like [1] or [2][3]. Keep numbers, "
    "dates and names exactly as given. If the passages do not answer it, say so. Be concise: "
    "one to three sentences.\n\nQuestion: {question}"
)


class BudgetSpent(Exception):
    """Raised by a caller when the run's token budget (``tokens``) or time (``time``) runs
    out in the middle of a call; the loop answers with what it has."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


@dataclass
class Turn:
    """One entry of the agent's conversation: the question (``user``), a call the model
    made (``assistant`` with ``call``), or a tool's result (``tool``, answering ``call``)."""

    role: str
    content: str
    call: ToolCall | None = None


@dataclass
class Decision:
    """What the model chose: a ``call``, or None to answer. ``error`` says why what it wrote
    is not a valid call (it is then told, and may try again)."""

    call: ToolCall | None
    raw: str = ""
    error: str | None = None
    usage: Usage = field(default_factory=Usage)


class ToolCaller(ABC):
    """A backend as the agent drives it. Subclasses implement ``decide``."""

    #: whether the model really chooses tools (False: a fixed policy, like ``SearchCaller``)
    chooses = True
    #: the GenAI provider name for traces (``gen_ai.provider.name``)
    provider = "kenning"
    #: set by the loop for each run: when to stop (``time.perf_counter()``), and the tokens
    #: a run may spend
    deadline: float | None = None
    budget: int | None = None
    #: the question made to stand alone (a follow-up in a conversation), set by the loop
    query: str | None = None

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    @property
    def model(self) -> str:
        return str(getattr(self.llm, "model", "") or self.llm.id)

    @abstractmethod
    def decide(self, turns: list[Turn]) -> Decision:
        """The next call, given the conversation so far."""

    def answer(
        self, question: str, turns: list[Turn], passages: list[Passage], strategy: str
    ) -> tuple[list[Passage], Iterator[str]]:
        """(the passages the answer may cite, its text in pieces): by default the backend's
        own answer over the passages, with the model's window fitted as ``ask`` fits it."""
        earlier = history(turns) if self.llm.generative else None
        prompt = build_prompt(question, passages, self.llm, strategy, earlier)
        return prompt.passages, self.llm.stream(prompt)

    def answer_usage(self) -> Usage:
        """Token counts of the last ``answer``."""
        return self.llm.usage

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the caller holds (a model context)."""


def tool_lines() -> str:
    """The tools and their arguments, one a line, as a prompt lists them."""
    lines = []
    for t in TOOLS:
        props = t.parameters["properties"]
        args = ", ".join(
            f"{name}" + ("" if name in t.parameters["required"] else "?") for name in props
        )
        lines.append(f"- {t.name}({args}): {t.description}")
    return "\n".join(lines)


def history(turns: list[Turn]) -> list[Message]:
    """The conversation before the question (the turns before its last user turn), as chat
    messages: what a continued conversation said so far."""
    last = max((i for i, t in enumerate(turns) if t.role == "user"), default=0)
    return [Message(t.role, t.content) for t in turns[:last] if t.role in ("user", "assistant")]


def result_message(turn: Turn) -> str:
    """A tool's result as a user message, for backends without a tool role."""
    head = f"Result of {turn.call.show()}:" if turn.call else "Result:"
    return f"{head}\n{turn.content}"


def plain_messages(system: str, turns: list[Turn]) -> list[Message]:
    """The conversation as chat messages: calls as the JSON the model wrote, results as user
    messages."""
    messages = [Message("system", system)]
    for t in turns:
        if t.role == "assistant" and t.call is not None and not t.content:
            body = {"tool": t.call.name, "arguments": t.call.arguments}
            messages.append(Message("assistant", json.dumps(body, ensure_ascii=False)))
        elif t.role == "assistant":
            messages.append(Message("assistant", t.content))
        elif t.role == "tool":
            messages.append(Message("user", result_message(t)))
        else:
            messages.append(Message("user", t.content))
    return messages


class SearchCaller(ToolCaller):
    """For a backend that cannot call tools: search the question once, then answer."""

    chooses = False

    def decide(self, turns: list[Turn]) -> Decision:
        if any(t.call is not None for t in turns):
            return Decision(None)
        question = self.query or next(t.content for t in reversed(turns) if t.role == "user")
        return Decision(ToolCall("search", {"query": question}))


class ScriptedCaller(ToolCaller):
    """Plays a fixed script, for tests: each entry is a ``ToolCall``, a string (text that is
    not a valid call) or None (answer now); after the script, it answers. ``final`` is the
    answer's text ("" = the LLM's own answer over the passages)."""

    provider = "scripted"

    def __init__(self, llm: LLM, script: list[ToolCall | str | None], final: str = "") -> None:
        super().__init__(llm)
        self.script = list(script)
        self.final = final
        self.seen: list[list[Turn]] = []

    def decide(self, turns: list[Turn]) -> Decision:
        self.seen.append(list(turns))
        usage = Usage(sum(len(t.content.split()) for t in turns), 8)
        if not self.script:
            return Decision(None, usage=usage)
        step = self.script.pop(0)
        if isinstance(step, str):
            return Decision(None, raw=step, error=f"not a tool call: {step[:80]!r}", usage=usage)
        if step is None:
            return Decision(None, usage=usage)
        return Decision(
            step, raw=json.dumps({"tool": step.name, "arguments": step.arguments}), usage=usage
        )

    def answer(
        self, question: str, turns: list[Turn], passages: list[Passage], strategy: str
    ) -> tuple[list[Passage], Iterator[str]]:
        if not self.final:
            return super().answer(question, turns, passages, strategy)
        return passages, iter([self.final])

    def answer_usage(self) -> Usage:
        return Usage(0, 0) if self.final else self.llm.usage


def parse_call(text: str) -> Decision:
    """A call written as ``{"tool": ..., "arguments": {...}}`` (``"answer"``: answer now)."""
    raw = text.strip()
    try:
        body: Any = json.loads(raw)
    except json.JSONDecodeError as e:
        return Decision(None, raw, f"not JSON ({e.msg})")
    if not isinstance(body, dict) or not isinstance(body.get("tool"), str):
        return Decision(None, raw, 'not a call: write {"tool": ..., "arguments": {...}}')
    if body["tool"] == "answer":
        return Decision(None, raw)
    args = body.get("arguments") or {}
    if not isinstance(args, dict):
        return Decision(None, raw, "the arguments must be a JSON object")
    return Decision(ToolCall(body["tool"], {k: v for k, v in args.items() if v != ""}), raw)
