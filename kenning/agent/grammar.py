"""Tool calls on the local model, valid by construction: sampling under a grammar.

The tools' JSON schemas become one schema (a call of one of the tools, or ``{"tool":
"answer"}``), which llama.cpp's converter (vendored in cyllama) turns into a GBNF grammar. The
grammar sampler masks every token that would leave the grammar, so what the model writes always
parses, names a real tool and has arguments that fit its schema (required ones present and
non-empty, no unknown ones). Whitespace between JSON tokens is limited to one space, so a small
model cannot wander off into newlines.

The caller keeps its own llama.cpp context on the backend's loaded model, and its KV cache
across the steps of a run: each step appends to the conversation, so only the tokens after the
longest common prefix with what the context already holds are read (the tool's result and the
new turn), not the whole conversation again. The final answer is written in the same context,
after the tools' results, so it too reads only its own instruction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kenning.answer.llms import LLM, Message, Passage, Prompt, Usage

from .calling import (
    FINAL,
    SYSTEM,
    BudgetSpent,
    Decision,
    ToolCaller,
    Turn,
    parse_call,
    plain_messages,
    tool_lines,
)
from .tools import TOOLS

PROMPT = (
    SYSTEM
    + "\n\nReply with one JSON object and nothing else: "
    + '{"tool": NAME, "arguments": {...}} to call a tool, or {"tool": "answer"} to answer.'
    + "\nTools (? marks an optional argument):\n"
    + tool_lines()
)
#: the most tokens a call may take (the grammar caps every string at tools.MAX_ARG chars)
CALL_TOKENS = 120
#: tokens kept free in the context for the final answer
ANSWER_ROOM = 384


def call_schema() -> dict[str, Any]:
    """A call of one of the tools, or ``{"tool": "answer"}``, as one JSON schema."""
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tool": {"const": t.name}, "arguments": _unbounded(t.parameters)},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for t in TOOLS
    ]
    options.append(
        {
            "type": "object",
            "properties": {"tool": {"const": "answer"}},
            "required": ["tool"],
            "additionalProperties": False,
        }
    )
    return {"oneOf": options}


def _unbounded(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's schema without ``maxLength``: a bounded repetition unrolls into a grammar that
    llama.cpp checks slowly for every token of the vocabulary; ``CALL_TOKENS`` bounds a call."""
    props = {
        name: {k: v for k, v in prop.items() if k != "maxLength"}
        for name, prop in schema["properties"].items()
    }
    return {**schema, "properties": props}


def call_grammar() -> str:
    """The GBNF grammar of ``call_schema``, with at most one space between JSON tokens."""
    from cyllama.utils.json_schema_to_grammar import json_schema_to_grammar

    rules = json_schema_to_grammar(call_schema()).splitlines()
    rules = ['space ::= | " "' if r.startswith("space ::=") else r for r in rules]
    return "\n".join(rules) + "\n"


class GrammarCaller(ToolCaller):
    """Tool calls from the ``local`` backend (``kenning.answer.local.LocalLLM``)."""

    provider = "llama.cpp"

    def __init__(self, llm: LLM, context_window: int | None = None) -> None:
        super().__init__(llm)
        self.context_window = context_window or max(int(llm.context_window), 8192)
        self._ctx: Any = None
        self._grammar: Any = None
        self._greedy: Any = None
        self._fed: list[int] = []  # the tokens the context holds, in order
        self._answer_usage = Usage()
        #: tokens read from the cache instead of decoded again, over this caller's life
        self.reused_tokens = 0

    @property
    def model(self) -> str:
        return str(getattr(self.llm, "model", "") or self.llm.id)

    def _setup(self) -> Any:
        from kenning.answer.local import _cyllama

        cy = _cyllama()
        if self._ctx is not None:
            return cy
        model = self.llm._load()  # type: ignore[attr-defined]
        vocab = model.get_vocab()
        cparams = cy.LlamaContextParams()
        cparams.n_ctx = self.context_window
        cparams.n_batch = 512
        cparams.n_ubatch = 512
        cparams.n_threads = self.llm.n_threads  # type: ignore[attr-defined]
        cparams.n_threads_batch = self.llm.n_threads  # type: ignore[attr-defined]
        cparams.no_perf = True
        self._ctx = cy.LlamaContext(model, cparams)
        self._vocab = vocab
        for name, grammar in (("_grammar", call_grammar()), ("_greedy", None)):
            sparams = cy.LlamaSamplerChainParams()
            sparams.no_perf = True
            sampler = cy.LlamaSampler(sparams)
            if grammar is not None:
                sampler.add_grammar(vocab, grammar, "root")
            sampler.add_greedy()
            setattr(self, name, sampler)
        return cy

    def _feed(self, tokens: list[int]) -> int:
        """Make the context hold ``tokens``, decoding only what follows the common prefix;
        returns how many were decoded."""
        cy = self._setup()
        if len(tokens) + CALL_TOKENS > self.context_window:
            raise BudgetSpent("tokens")
        common = 0
        for a, b in zip(self._fed, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # decode at least one token, for its logits
        if common < len(self._fed):
            self._ctx.memory_seq_rm(0, common, -1)
        self.reused_tokens += common
        for i in range(common, len(tokens), 512):
            self._check_time()
            self._ctx.decode(cy.llama_batch_get_one(tokens[i : i + 512], i))
        self._fed = list(tokens)
        return len(tokens) - common

    def _check_time(self) -> None:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            raise BudgetSpent("time")

    def _generate(self, sampler: Any, limit: int) -> Iterator[int]:
        cy = self._setup()
        sampler.reset()
        for _ in range(limit):
            self._check_time()
            tok = sampler.sample(self._ctx, -1)
            if self._vocab.is_eog(tok):
                return
            yield tok
            self._ctx.decode(cy.llama_batch_get_one([tok], len(self._fed)))
            self._fed.append(tok)

    def _tokens(self, messages: list[Message]) -> list[int]:
        tokens: list[int] = self.llm.prompt_tokens(  # type: ignore[attr-defined]
            Prompt("", [], messages)
        )
        return tokens

    def decide(self, turns: list[Turn]) -> Decision:
        tokens = self._tokens(plain_messages(PROMPT, turns))
        if len(tokens) + CALL_TOKENS + ANSWER_ROOM > self.context_window:
            raise BudgetSpent("tokens")  # room is left for the answer
        self._feed(tokens)
        out = list(self._generate(self._grammar, CALL_TOKENS))
        text = self._vocab.detokenize(out, remove_special=True, unparse_special=False)
        decision = parse_call(str(text))
        decision.usage = Usage(len(tokens), len(out))
        if decision.error and len(out) >= CALL_TOKENS:
            decision.error = f"the call did not end within {CALL_TOKENS} tokens"
        return decision

    def answer(
        self, question: str, turns: list[Turn], passages: list[Passage], strategy: str
    ) -> tuple[list[Passage], Iterator[str]]:
        """The answer in the same context, after the tools' results (only the instruction is
        read anew). With no call made, the backend's own answer over the passages."""
        self._answer_usage = Usage()
        messages = [
            *plain_messages(PROMPT, turns),
            Message("user", FINAL.format(question=question)),
        ]
        tokens = self._tokens(messages) if any(t.role == "tool" for t in turns) else []
        if not tokens or len(tokens) + ANSWER_ROOM > self.context_window:
            return super().answer(question, turns, passages, strategy)
        return passages, self._answer(tokens)

    def _answer(self, tokens: list[int]) -> Iterator[str]:
        self._answer_usage = Usage(len(tokens), 0)
        deadline, self.deadline = self.deadline, None  # the answer is written whatever the time
        try:
            self._feed(tokens)
        finally:
            self.deadline = deadline
        out: list[int] = []
        shown = ""
        limit = min(int(self.llm.max_new_tokens), self.context_window - len(tokens) - 1)
        try:
            for tok in self._generate(self._greedy, limit):
                out.append(tok)
                self._answer_usage.completion_tokens = len(out)
                try:
                    text = str(
                        self._vocab.detokenize(out, remove_special=True, unparse_special=False)
                    )
                except UnicodeDecodeError:
                    continue
                if len(text) > len(shown) and not text.endswith("\ufffd"):
                    yield text[len(shown) :]
                    shown = text
        except BudgetSpent:
            pass  # out of time: the answer so far
        text = str(self._vocab.detokenize(out, remove_special=True, unparse_special=False))
        if len(text) > len(shown):
            yield text[len(shown) :]

    def answer_usage(self) -> Usage:
        return self._answer_usage if self._answer_usage.prompt_tokens else self.llm.usage

    def close(self) -> None:
        self._ctx = self._grammar = self._greedy = None
        self._fed = []
