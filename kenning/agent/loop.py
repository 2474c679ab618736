"""The agent loop: the model picks a tool, kenning runs it, the result goes back, until it answers.

    >>> from kenning import Index
    >>> from kenning.agent import Agent
    >>> with Index.open() as index:
    ...     run = Agent(index, llm).run("what did I decide in the project my March retro links to?")

At most ``max_steps`` calls (default 4). A call that repeats an earlier one (same tool, same
arguments) is not run again: the model is told so. A call that is not valid (no such tool,
arguments that do not fit its schema) is refused with the reason. When the step cap, the token
budget or the wall-clock timeout is reached, the agent answers with what it has and says so in
the answer's notes. The answer is then written over the passages the tools showed and checked
sentence by sentence (``kenning.answer.citations.check``), as ``kenning ask`` checks its own;
its sources are the passages the agent read. Every run is traced (``trace.py``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kenning.answer import Answer, Source, Thresholds
from kenning.answer.citations import check
from kenning.answer.extractive import ExtractiveLLM
from kenning.answer.llms import LLM, Passage, Usage
from kenning.answer.prompt import REFUSAL, declined, split_reasoning
from kenning.answer.sentences import SentenceVectors
from kenning.errors import ConfigError
from kenning.filters import Filters
from kenning.index import Index

from .calling import BudgetSpent, SearchCaller, ToolCaller, Turn
from .memory import Memory
from .tools import Toolbox, ToolCall, invalid
from .trace import Tracing

STOPPED = {
    "steps": "the agent reached its step cap ({max_steps} steps) and answered with what it had",
    "tokens": "the agent spent its token budget ({max_tokens} tokens) and answered with "
    "what it had",
    "time": "the agent reached its time limit ({timeout:g} s) and answered with what it had",
}


@dataclass
class Step:
    """One step of a run: the call the model made (or tried to) and what came back."""

    n: int
    tool: str | None
    arguments: dict[str, Any]
    result: str
    chunk_ids: list[int] = field(default_factory=list)
    valid: bool = True
    repeated: bool = False
    error: str | None = None
    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    #: run by kenning, not chosen by the model (the search a run without one gets)
    auto: bool = False


@dataclass
class Run:
    """A finished run: its id (the trace's), the checked answer and the steps that led there."""

    run_id: str
    answer: Answer
    steps: list[Step]
    stopped: str | None = None
    seconds: float = 0.0
    remembered: str | None = None  # the note a "remember that ..." wrote to

    @property
    def calls(self) -> list[Step]:
        """The calls the model chose (not kenning's own)."""
        return [s for s in self.steps if not s.auto]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.answer.to_dict(),
            "run_id": self.run_id,
            "steps": [asdict(s) for s in self.steps],
            "stopped": self.stopped,
            "seconds": self.seconds,
            "remembered": self.remembered,
        }


def caller_for(llm: LLM) -> ToolCaller:
    """The way ``llm`` calls tools: a grammar for ``local``, the native API for ``openai`` and
    ``anthropic``, one search for any other backend."""
    kind = llm.id.split(":", 1)[0]
    if kind == "local":
        from .grammar import GrammarCaller

        return GrammarCaller(llm)
    if kind in ("openai", "anthropic"):
        from .native import native_caller

        return native_caller(llm)
    return SearchCaller(llm)


class Agent:
    """Runs questions over ``index`` with ``llm`` (default: the extractive quoter)."""

    def __init__(
        self,
        index: Index,
        llm: LLM | None = None,
        caller: ToolCaller | None = None,
        max_steps: int = 4,
        max_tokens: int = 12_000,
        timeout: float = 300.0,
        k: int = 4,
        strategy: str = "zero-shot",
        thresholds: Thresholds | None = None,
        filters: Filters | None = None,
        tracing: Tracing | None = None,
        memory: Memory | None = None,
    ) -> None:
        if max_steps < 1:
            raise ConfigError(f"the agent needs at least 1 step, not {max_steps}")
        if max_tokens < 1 or timeout <= 0:
            raise ConfigError("the token budget and the timeout must be positive")
        self.index = index
        self.llm = llm or (caller.llm if caller else ExtractiveLLM())
        self.caller = caller or caller_for(self.llm)
        self.max_steps, self.max_tokens, self.timeout = max_steps, max_tokens, timeout
        self.k, self.strategy = k, strategy
        self.thresholds = thresholds or Thresholds()
        self.filters = filters
        self.tracing = tracing or Tracing.off()
        self.memory = memory

    def run(
        self,
        question: str,
        on_step: Callable[[Step], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        history: list[tuple[str, str]] | None = None,
        query: str | None = None,
    ) -> Run:
        """Answer ``question`` in at most ``max_steps`` tool calls (``on_step`` sees each).

        ``history`` holds a conversation's earlier (question, answer) pairs, which the model
        reads before the question; ``query`` is the question made to stand alone
        (``kenning.answer.memory.standalone_query``), searched when the model does not choose
        its own calls."""
        t0 = time.perf_counter()
        tracer = self.tracing.tracer
        with tracer.start_as_current_span("invoke_agent kenning") as span:
            ctx = span.get_span_context()
            run_id = f"{ctx.trace_id:032x}" if ctx.is_valid else uuid.uuid4().hex
            span.set_attributes(
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "kenning",
                    "gen_ai.provider.name": self.caller.provider,
                    "gen_ai.request.model": self.caller.model,
                    "kenning.question": question,
                    "kenning.max_steps": self.max_steps,
                }
            )
            if self.memory is not None:
                self.memory.refresh(self.index)
                fact = self.memory.fact(question)
                if fact is not None:
                    run = self._remember(run_id, question, fact, on_text)
                    span.set_attribute("kenning.remembered", run.remembered or "")
                    run.seconds = time.perf_counter() - t0
                    return run
            turns: list[Turn] = []
            for asked, answered in history or []:
                turns += [Turn("user", asked), Turn("assistant", answered)]
            run = self._loop(run_id, question, query or question, turns, t0, on_step, on_text)
            usage = run.answer.usage
            span.set_attributes(
                {
                    "kenning.steps": len(run.steps),
                    "kenning.stopped": run.stopped or "",
                    "kenning.answer.refused": run.answer.refused,
                    "kenning.answer.chunk_ids": [s.chunk_id for s in run.answer.sources],
                    "gen_ai.usage.input_tokens": usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": usage.completion_tokens,
                }
            )
        self.tracing.flush()
        return run

    # -- the loop ------------------------------------------------------------------------

    def _loop(
        self,
        run_id: str,
        question: str,
        query: str,
        history: list[Turn],
        t0: float,
        on_step: Callable[[Step], None] | None,
        on_text: Callable[[str], None] | None,
    ) -> Run:
        tracer = self.tracing.tracer
        toolbox = Toolbox(self.index, self.llm, self.k, self.filters)
        turns = [*history, Turn("user", question)]
        steps: list[Step] = []
        seen: set[str] = set()
        total = Usage()
        stopped: str | None = None
        deadline = t0 + self.timeout
        self.caller.deadline, self.caller.budget = deadline, self.max_tokens
        self.caller.query = query
        # Each step is one model call; the final answer is not one of them.
        for n in range(1, self.max_steps + 2):
            if time.perf_counter() >= deadline:
                stopped = "time"
                break
            if total.prompt_tokens + total.completion_tokens >= self.max_tokens:
                stopped = "tokens"
                break
            with tracer.start_as_current_span(f"chat {self.caller.model}") as chat:
                t1 = time.perf_counter()
                try:
                    decision = self.caller.decide(turns)
                except BudgetSpent as e:
                    stopped = e.limit
                    chat.set_attribute("error.type", f"budget:{e.limit}")
                    break
                chat.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": self.caller.provider,
                        "gen_ai.request.model": self.caller.model,
                        "gen_ai.usage.input_tokens": decision.usage.prompt_tokens,
                        "gen_ai.usage.output_tokens": decision.usage.completion_tokens,
                        "gen_ai.response.finish_reasons": [
                            "tool_call"
                            if decision.call
                            else ("error" if decision.error else "stop")
                        ],
                        "kenning.step": n,
                    }
                )
                if decision.error:
                    chat.set_attribute("error.type", "invalid_tool_call")
            total.prompt_tokens += decision.usage.prompt_tokens
            total.completion_tokens += decision.usage.completion_tokens
            took = time.perf_counter() - t1
            if decision.call is None and decision.error is None:
                break  # the model answers
            if n > self.max_steps:
                stopped = "steps"
                break
            step = self._step(n, decision, toolbox, seen, turns)
            step.seconds = took + step.seconds
            step.input_tokens = decision.usage.prompt_tokens
            step.output_tokens = decision.usage.completion_tokens
            steps.append(step)
            if on_step:
                on_step(step)
            if step.repeated and len(steps) > 1 and steps[-2].repeated:
                break  # told once, repeated again: the model has nothing new to look for
        if not toolbox.passages:  # nothing read yet: one search, so there is something to cite
            with tracer.start_as_current_span("execute_tool search") as span:
                call = ToolCall("search", {"query": query})
                result = toolbox.run(call)
                _tool_attributes(span, call, result.text, result.chunk_ids, False)
            step = Step(
                len(steps) + 1, "search", call.arguments, result.text, result.chunk_ids, auto=True
            )
            turns += [Turn("assistant", "", call), Turn("tool", result.text, call)]
            steps.append(step)
            if on_step:
                on_step(step)
        answer = self._answer(question, turns, toolbox, total, on_text)
        if stopped:
            answer.notes.append(
                STOPPED[stopped].format(
                    max_steps=self.max_steps, max_tokens=self.max_tokens, timeout=self.timeout
                )
            )
        answer.timings["total"] = time.perf_counter() - t0
        return Run(run_id, answer, steps, stopped, time.perf_counter() - t0)

    def _step(
        self, n: int, decision: Any, toolbox: Toolbox, seen: set[str], turns: list[Turn]
    ) -> Step:
        tracer = self.tracing.tracer
        call: ToolCall | None = decision.call
        why = decision.error or (invalid(call) if call else None)
        if why is not None or call is None:
            message = f"That is not a valid call: {why}. Call one of the tools, or answer."
            turns += [Turn("assistant", decision.raw), Turn("tool", message)]
            return Step(
                n,
                call.name if call else None,
                call.arguments if call else {},
                message,
                valid=False,
                error=why,
            )
        with tracer.start_as_current_span(f"execute_tool {call.name}") as span:
            t = time.perf_counter()
            if call.key() in seen:
                text = (
                    f"You already called {call.show()}; its result is above. Do not repeat a "
                    "call: call another tool, or answer."
                )
                step = Step(n, call.name, call.arguments, text, repeated=True)
            else:
                seen.add(call.key())
                result = toolbox.run(call)
                text = result.text
                step = Step(
                    n,
                    call.name,
                    call.arguments,
                    text,
                    result.chunk_ids,
                    error=text if result.error else None,
                )
            _tool_attributes(span, call, text, step.chunk_ids, step.repeated)
            step.seconds = time.perf_counter() - t
        turns += [Turn("assistant", decision.raw, call), Turn("tool", text, call)]
        return step

    # -- the answer ----------------------------------------------------------------------

    def _answer(
        self,
        question: str,
        turns: list[Turn],
        toolbox: Toolbox,
        total: Usage,
        on_text: Callable[[str], None] | None,
    ) -> Answer:
        passages = toolbox.latest_first()
        vectors = SentenceVectors(self.index.embedder)
        support = _support(self.index, vectors.query(question), [p.chunk_id for p in passages])
        answer = Answer(question, "", [], [], llm=self.llm.id, query=question)
        answer.sources = sorted(
            (_source(p, support.get(p.chunk_id, 0.0)) for p in passages), key=lambda s: s.n
        )
        if not passages:
            answer.refused, answer.text = True, REFUSAL
            if on_text:
                on_text(REFUSAL)
            answer.usage = total
            return answer
        self.llm.bind(vectors)
        tracer = self.tracing.tracer
        t = time.perf_counter()
        with tracer.start_as_current_span(f"chat {self.caller.model}") as span:
            given, pieces_in = self.caller.answer(question, turns, passages, self.strategy)
            pieces: list[str] = []
            for piece in pieces_in:
                if not pieces:
                    answer.timings["first_token"] = time.perf_counter() - t
                pieces.append(piece)
                if on_text:
                    on_text(piece)
            used = self.caller.answer_usage()
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": self.caller.provider,
                    "gen_ai.request.model": self.caller.model,
                    "gen_ai.usage.input_tokens": used.prompt_tokens,
                    "gen_ai.usage.output_tokens": used.completion_tokens,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "kenning.final": True,
                }
            )
        answer.timings["generate"] = time.perf_counter() - t
        answer.usage = Usage(
            total.prompt_tokens + used.prompt_tokens,
            total.completion_tokens + used.completion_tokens,
        )
        answer.reasoning, answer.text = split_reasoning("".join(pieces))
        if not answer.text.strip() or declined(answer.text):
            answer.refused, answer.text = True, answer.text.strip() or REFUSAL
        else:
            answer.sentences = check(answer.text, given, vectors, self.thresholds)
            _conflicts(self.index, answer, given, vectors, self.thresholds, on_text)
        return answer

    def _remember(
        self, run_id: str, question: str, fact: str, on_text: Callable[[str], None] | None
    ) -> Run:
        assert self.memory is not None
        path = self.memory.remember(self.index, fact)
        text = f"Remembered: {fact} (in {path})."
        if on_text:
            on_text(text)
        answer = Answer(question, text, [], [], llm=self.llm.id, query=question)
        return Run(run_id, answer, [], remembered=str(path))


def _conflicts(
    index: Index,
    answer: Answer,
    passages: list[Passage],
    vectors: SentenceVectors,
    thresholds: Thresholds,
    on_text: Callable[[str], None] | None,
) -> None:
    """Claims of the passages read that disagree with what the answer rests on, reported as
    ``ask`` reports them (``kenning.answer.ask``'s conflict step, when this kenning has it)."""
    try:
        from kenning.answer.ask import _add_conflicts
    except ImportError:  # pragma: no cover - an answer layer without the conflicts step
        return
    _add_conflicts(index, answer, passages, vectors, thresholds, on_text)


def _tool_attributes(
    span: Any, call: ToolCall, text: str, chunk_ids: list[int], repeated: bool
) -> None:
    span.set_attributes(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": call.id or call.key()[:64],
            "gen_ai.tool.call.arguments": json.dumps(call.arguments, ensure_ascii=False),
            "kenning.tool.result_chars": len(text),
            "kenning.tool.chunk_ids": chunk_ids,
            "kenning.tool.repeated": repeated,
        }
    )


def _support(index: Index, qvec: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
    """Cosine of each passage with the question, from the index's own vectors."""
    if not chunk_ids:
        return {}
    try:
        ranked = index.searcher.vectors().search(qvec, len(chunk_ids), np.asarray(chunk_ids))
    except (ValueError, IndexError):
        return {}
    return dict(ranked)


_KINDS = {".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".txt": "text"}


def _source(p: Passage, support: float) -> Source:
    """A source as ``ask`` gives it, with the link that opens it (the tools' passages carry
    no file type: the suffix tells Markdown and text, whose lines a link can name)."""
    from kenning.answer.ask import _source as source
    from kenning.search.uris import open_url

    kind = _KINDS.get(Path(p.path).suffix.lower(), "")
    return source(p, support, open_url(p.path, kind, p.heading, p.page, p.start, p.text))
