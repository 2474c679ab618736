"""Answer commands: ask and chat. Each turn is one call to ``kenning.answer.ask``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape

from kenning.errors import ConfigError

from .shell import app, err, open_index, out, short_path, state

LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Answerer: extractive (default, no model), local (llama.cpp, kenning[llm]), "
        "openai, anthropic. Default from kenning.toml or $KENNING_LLM.",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model for the LLM: a GGUF path or known name for local "
        "(qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), a model id for openai/anthropic.",
    ),
]
WriterOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Have this LLM backend write the questions (local, openai, anthropic; its "
        "settings from kenning.toml): closer to a person's questions than headings and "
        "sentences, but seconds each on a local model.",
    ),
]
StrategyOpt = Annotated[
    str | None, typer.Option(help="Prompting: zero-shot (default), few-shot or cot.")
]
KOpt = Annotated[int | None, typer.Option("--k", "-k", help="Passages retrieved (default 5).")]
WhereOpt = Annotated[
    list[str] | None, typer.Option(help="Metadata condition, as for search: tag=ml.")
]
PathOpt = Annotated[
    list[str] | None,
    typer.Option(help="Glob on the path as search shows it, with or without the root's name."),
]
TypeOpt = Annotated[list[str] | None, typer.Option("--type", help="markdown, text, html or pdf.")]
MARKS = {
    "supported": "[green]✓[/]",
    "unsupported": "[red]✗ unsupported[/]",
    "contradicted": "[red]! contradicted[/]",
}
#: the longest obsidian:// link printed under its source (longer ones: --json)
MAX_LINK = 200


def Answering(llm: str | None, model: str | None, strategy: str | None, k: int | None) -> Any:
    """The answerer as configured for the index named by the global options
    (``kenning.answer.answerer.Answering``, shared with ``kenning serve``)."""
    from kenning.answer.answerer import Answering as Configured

    return Configured(state.index, llm, model, strategy, k)


def writer(llm: str | None, model: str | None) -> Any:
    """The LLM that writes generated questions (``--llm``), or None: structural questions.

    Unlike ``ask``, no backend is taken from kenning.toml unless named: writing questions
    takes seconds each, so it is asked for, never a surprise."""
    if llm is None:
        if model is not None:
            raise ConfigError("--model chooses the model for --llm; name the backend too")
        return None
    return Answering(llm, model, None, None).llm


def _filters(where: list[str] | None, path: list[str] | None, type_: list[str] | None) -> Any:
    from kenning.filters import Filters

    return Filters.parse(where, path, type_)


def _stream() -> Any:
    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    return write


def show(answer: Any, show_reasoning: bool, roots: list[str]) -> None:
    """The answer's sources and each sentence's check, after the streamed text."""
    sys.stdout.write("\n")
    if answer.reasoning and show_reasoning:
        out.print(f"\n[dim]reasoning:[/] {escape(answer.reasoning)}", highlight=False)
    for note in answer.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if answer.refused:
        out.print("\n[bold]Nearest passages[/] (none close enough to answer from):")
    elif answer.sentences:
        out.print("")
        for s in answer.sentences:
            cites = "".join(f"[{n}]" for n in s.citations) or "no citation"
            extra = f" (not in the cited passage: {', '.join(s.missing)})" if s.missing else ""
            removed = f" (removed: {', '.join(f'[{n}]' for n in s.removed)})" if s.removed else ""
            if s.attributed:
                removed += " (cited by kenning: the model wrote no citation)"
            out.print(
                f"{MARKS[s.status]} {escape(cites)} {escape(s.text[:90])}"
                f"[dim]{escape(extra + removed)}[/]",
                highlight=False,
            )
    for c in answer.conflicts:  # said in the text too; here each side's value and date
        sides = " vs ".join(
            f"[{s.n}] {s.value}" + (f" ({s.date}, {s.date_source})" if s.date else "")
            for s in c.sides
        )
        out.print(f"[yellow]! notes disagree[/] on the {c.kind}: {escape(sides)}", highlight=False)
    out.print("\n[bold]Sources[/]")
    for src in answer.sources:
        shown = short_path(src.path, roots)
        where = f"page {src.page}" if src.page is not None else (src.heading or src.title)
        lines = f", lines {src.lines[0]}-{src.lines[1]}" if src.lines else ""
        # the path opens the note (a terminal hyperlink); an Obsidian link is spelt out too
        link = f"[link={src.open_url}]{escape(shown)}[/link]" if src.open_url else escape(shown)
        out.print(f"  [{src.n}] {link} [dim]({escape(where)}{lines})[/]", highlight=False)
        if src.open_url.startswith("obsidian:") and len(src.open_url) <= MAX_LINK:
            out.print(f"      [dim]{escape(src.open_url)}[/]", highlight=False, soft_wrap=True)


def step_line(step: Any, roots: list[str]) -> str:
    """A step of an agent run, as `kenning agent` and `chat --agent` print it."""
    args = ", ".join(f"{k}={v!r}" for k, v in step.arguments.items())
    call = f"{step.tool}({args})" if step.tool else "(no valid call)"
    if not step.valid:
        what = f"refused: {step.error}"
    elif step.repeated:
        what = "refused: a repeated call"
    elif step.error:
        what = step.error
    elif step.chunk_ids:
        what = f"{len(step.chunk_ids)} passages"
    else:
        what = f"{len(step.result.splitlines())} lines"
    auto = " (kenning's own search)" if step.auto else ""
    return f"[dim]step {step.n}:[/] {escape(call)}{auto} [dim]→ {escape(what)}[/]"


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in words.")],
    k: KOpt = None,
    where: WhereOpt = None,
    path: PathOpt = None,
    type_: TypeOpt = None,
    llm: LlmOpt = None,
    model: ModelOpt = None,
    strategy: StrategyOpt = None,
    show_reasoning: Annotated[
        bool, typer.Option(help="With --strategy cot, print the model's reasoning too.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="The answer, its sentences with citations and support "
            "scores, sources with offsets, timings and token counts, as JSON.",
        ),
    ] = False,
) -> None:
    """Answer a question from your notes, citing them; every citation is checked.

    With nothing configured the answer quotes your notes' best sentences (no model, offline).
    When no passage is close enough to the question, it says your notes don't answer it.

    Examples:

        kenning ask "how do I undo the last commit?"

        kenning ask "what is a CTE?" --path 'postgres/**' --json

        kenning ask "why use tmux?" --llm local --strategy few-shot
    """
    from kenning.answer import ask as answer_question
    from kenning.index import check_query

    check_query(question)
    answering = Answering(llm, model, strategy, k)
    filters = _filters(where, path, type_)
    with open_index() as index:
        for warning in index.filter_warnings(filters):
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
        t0 = time.perf_counter()
        answer = answer_question(
            index,
            question,
            answering.llm,
            k=answering.k,
            filters=filters,
            strategy=answering.strategy,
            thresholds=answering.thresholds,
            on_text=None if as_json else _stream(),
        )
        answer.timings["command"] = time.perf_counter() - t0
        roots = index.store.roots()
    if as_json:
        out.print_json(json.dumps(answer.to_dict(), default=str))
        return
    show(answer, show_reasoning, roots)


@app.command()
def chat(
    resume: Annotated[
        bool, typer.Option("--continue", help="Resume the last conversation.")
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="List stored conversations.")] = False,
    k: KOpt = None,
    llm: LlmOpt = None,
    model: ModelOpt = None,
    strategy: StrategyOpt = None,
    agent: Annotated[
        bool,
        typer.Option(
            "--agent",
            help="Answer each turn with `kenning agent` (several tool calls, memory, traces), "
            "the conversation so far given to it.",
        ),
    ] = False,
) -> None:
    """Talk with your notes: follow-up questions understand the conversation so far.

    Each answer cites your notes and is checked, as with `kenning ask`. Conversations are
    stored in the index; an empty line, "exit" or Ctrl-D ends the session. With --agent each
    turn is an agent run (its steps are printed; "remember that ..." writes to memory).

    Examples:

        kenning chat

        kenning chat --continue

        kenning chat --agent

        kenning chat --list
    """
    from kenning.answer.memory import Conversations, standalone_query
    from kenning.config import default_index
    from kenning.index import check_location

    location = state.index or default_index()
    check_location(location, create=False)
    if list_:
        with Conversations(location) as convos:
            rows = convos.list()
        if not rows:
            err.print("no conversations yet: start one with `kenning chat`")
        for r in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
            out.print(f"{r['id']:>4}  {when}  {r['turns']:>3} turns  {escape(r['title'])}")
        return
    answering = Answering(llm, model, strategy, k)
    with (
        open_index() as index,
        Conversations(location) as convos,
        _turns(index, answering, agent) as answer_turn,
    ):
        conversation = convos.last() if resume else None
        if resume and conversation is None:
            err.print("no conversation to continue; starting a new one")
        turns = convos.turns(conversation) if conversation is not None else []
        if turns and not state.quiet:
            err.print(f"[dim]continuing conversation {conversation} ({len(turns)} turns)[/]")
        while True:
            try:
                question = input("you> " if sys.stdin.isatty() else "").strip()
            except EOFError:
                break
            if not question or question.lower() in ("exit", "quit"):
                break
            query = standalone_query(question, turns, answering.llm)
            if query != question and not state.quiet and not agent:
                err.print(f"[dim]searching: {escape(query)}[/]", highlight=False)
            answer, details = answer_turn(question, query, turns)
            if details.get("remembered"):
                sys.stdout.write("\n")
            else:
                show(answer, False, index.store.roots())
            if conversation is None:
                conversation = convos.start(question[:80])
            details |= {"sources": [s.path for s in answer.sources], "refused": answer.refused}
            convos.add(conversation, question, query, answer.text, details)
            turns = convos.turns(conversation)


@contextmanager
def _turns(index: Any, answering: Any, agent: bool) -> Iterator[Any]:
    """What answers a chat turn ``(question, query, turns) -> (Answer, details)``: `ask`
    given the conversation, or with ``agent`` an agent run given it (steps printed, traced,
    with memory), as `kenning agent` runs."""
    from kenning.answer import ask as answer_question
    from kenning.answer.memory import history_messages

    if not agent:

        def ask_turn(question: str, query: str, turns: list[dict[str, Any]]) -> Any:
            answer = answer_question(
                index,
                question,
                answering.llm,
                k=answering.k,
                strategy=answering.strategy,
                thresholds=answering.thresholds,
                on_text=_stream(),
                history=history_messages(turns) if answering.llm.generative else None,
                query=query,
            )
            return answer, {}

        yield ask_turn
        return
    from kenning.agent import Agent, Memory, Tracing

    roots = index.store.roots()
    tracing = Tracing(index.store.address)
    runner = Agent(
        index,
        answering.llm,
        k=answering.k,
        strategy=answering.strategy,
        thresholds=answering.thresholds,
        tracing=tracing,
        memory=Memory(index),
    )

    def agent_turn(question: str, query: str, turns: list[dict[str, Any]]) -> Any:
        run = runner.run(
            question,
            on_step=lambda s: err.print(step_line(s, roots)),
            on_text=_stream(),
            history=[(t["question"], t["answer"]) for t in turns[-3:]],
            query=query,
        )
        details = {"run_id": run.run_id, "steps": len(run.steps)}
        return run.answer, details | ({"remembered": run.remembered} if run.remembered else {})

    try:
        yield agent_turn
    finally:
        runner.caller.close()
        tracing.close()
