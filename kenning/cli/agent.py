"""Agent commands: `kenning agent`, `kenning trace` and `kenning eval agent`.

Each is one call into ``kenning.agent``: ``Agent.run`` for a question, ``TraceStore`` for the
stored runs, ``kenning.agent.evaluate`` for a measured comparison with `ask`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .answer import Answering as Configured
from .answer import (
    LlmOpt,
    ModelOpt,
    PathOpt,
    TypeOpt,
    WhereOpt,
    _filters,
    _stream,
    show,
    step_line,
)
from .eval import eval_app
from .shell import ProgressBars, app, err, open_index, out, state

StepsOpt = Annotated[
    int, typer.Option("--steps", help="At most this many tool calls before answering.")
]
TokensOpt = Annotated[
    int, typer.Option("--max-tokens", help="Token budget of a run (model calls together).")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds a run may take before it answers.")
]
OtlpOpt = Annotated[
    str | None,
    typer.Option(
        "--otlp",
        help="Also send the run's spans to this OpenTelemetry collector (OTLP/HTTP, e.g. "
        "http://localhost:4318; the otlp extra). Default from $KENNING_OTLP.",
        envvar="KENNING_OTLP",
    ),
]


def _index_location() -> str:
    from kenning.config import default_index

    return str(state.index or default_index())


@app.command()
def agent(
    question: Annotated[str, typer.Argument(help="Your question, or 'remember that ...'.")],
    steps: StepsOpt = 4,
    max_tokens: TokensOpt = 12_000,
    timeout: TimeoutOpt = 300.0,
    k: Annotated[int, typer.Option("--k", "-k", help="Passages per search.")] = 4,
    where: WhereOpt = None,
    path: PathOpt = None,
    type_: TypeOpt = None,
    llm: LlmOpt = None,
    model: ModelOpt = None,
    memory: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the memory note kenning-memory.md (default: beside the index)."
        ),
    ] = None,
    otlp: OtlpOpt = None,
    trace: Annotated[
        bool, typer.Option(help="Keep the run's trace in the index (`kenning trace`).")
    ] = True,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="The checked answer (as `ask --json`) with the run id and its steps."
        ),
    ] = False,
) -> None:
    """Answer a question that takes several steps: the model searches, reads notes and follows
    links with read-only tools, then answers; every sentence is checked like `ask`'s.

    "remember that ..." writes the fact to a Markdown note (kenning-memory.md beside the
    index, or in --memory FOLDER) that later runs find like any note; delete it to forget.

    Examples:

        kenning agent "what did I decide in the project my March retro links to?"

        kenning agent "which notes link to the tmux note?" --llm local --steps 6 --json

        kenning agent "remember that my thesis deadline is 3 March"
    """
    from kenning.agent import Agent, Memory, Tracing
    from kenning.index import check_query

    check_query(question)
    answering = Configured(llm, model, None, None)
    filters = _filters(where, path, type_)
    with open_index() as index:
        tracing = Tracing(index.store.address if trace else None, otlp=otlp)
        roots = index.store.roots()
        runner = Agent(
            index,
            answering.llm,
            max_steps=steps,
            max_tokens=max_tokens,
            timeout=timeout,
            k=k,
            strategy=answering.strategy,
            thresholds=answering.thresholds,
            filters=filters,
            tracing=tracing,
            memory=Memory(index, memory),
        )
        try:
            run = runner.run(
                question,
                on_step=None if as_json else lambda s: err.print(step_line(s, roots)),
                on_text=None if as_json else _stream(),
            )
        finally:
            runner.caller.close()
            tracing.close()
    if as_json:
        out.print_json(json.dumps(run.to_dict(), default=str))
        return
    if run.remembered:
        sys.stdout.write("\n")
        return
    show(run.answer, False, roots)
    err.print(
        f"[dim]run {run.run_id[:12]} · {len(run.steps)} steps · {run.seconds:.1f} s "
        "· `kenning trace` shows it[/]"
    )


def _tree_lines(span: Any, depth: int = 0) -> list[str]:
    a = span.attributes
    bits = []
    if "gen_ai.tool.call.arguments" in a:
        bits.append(a["gen_ai.tool.call.arguments"])
    if a.get("kenning.tool.repeated"):
        bits.append("repeated")
    if "kenning.tool.result_chars" in a:
        bits.append(f"{a['kenning.tool.result_chars']} chars")
    if a.get("kenning.tool.chunk_ids"):
        bits.append(f"chunks {','.join(str(c) for c in a['kenning.tool.chunk_ids'])}")
    if "gen_ai.usage.input_tokens" in a:
        bits.append(f"{a['gen_ai.usage.input_tokens']}+{a['gen_ai.usage.output_tokens']} tokens")
    if a.get("error.type"):
        bits.append(f"error {a['error.type']}")
    if a.get("kenning.stopped"):
        bits.append(f"stopped: {a['kenning.stopped']}")
    head = "  " * depth + ("└ " if depth else "")
    line = f"{head}{escape(span.name)} [dim]{span.seconds:.2f} s {escape(' · '.join(bits))}[/]"
    return [line] + [x for c in span.children for x in _tree_lines(c, depth + 1)]


@app.command()
def trace(
    run: Annotated[
        str | None, typer.Argument(help="A run id or its first characters (default: the latest).")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the latest runs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The span tree as JSON.")] = False,
) -> None:
    """Show an agent run's trace: its model calls and tool calls as a tree, with arguments,
    chunk ids, tokens and times (OpenTelemetry GenAI spans kept in the index).

    Examples:

        kenning trace

        kenning trace --list

        kenning trace 3f2a --json
    """
    from kenning.agent import TraceStore
    from kenning.index import check_location

    location = _index_location()
    check_location(location, create=False)
    with TraceStore(location, create=True) as traces:
        if list_:
            runs = traces.runs()
            if as_json:
                out.print_json(json.dumps([r.to_dict() for r in runs]))
                return
            for r in runs:
                q = str(r.attributes.get("kenning.question", ""))
                steps = r.attributes.get("kenning.steps", "?")
                out.print(
                    f"{r.trace_id[:12]}  {steps} steps  {r.seconds:6.1f} s  {escape(q[:70])}",
                    highlight=False,
                )
            return
        tree = traces.run(run)
    if as_json:
        out.print_json(json.dumps(tree.to_dict()))
        return
    out.print(
        f"[bold]run {tree.trace_id}[/] {escape(str(tree.attributes.get('kenning.question', '')))}"
    )
    for line in _tree_lines(tree):
        out.print(line, highlight=False)


@eval_app.command("agent")
def eval_agent(
    limit: Annotated[
        int, typer.Option(help="Questions of each kind (multi-step and one-step controls).")
    ] = 10,
    steps: StepsOpt = 4,
    timeout: TimeoutOpt = 300.0,
    llm: LlmOpt = None,
    model: ModelOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Passages per search, and for ask.")] = 4,
    seed: Annotated[int, typer.Option(help="Which questions are drawn.")] = 0,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write each question's result here (JSONL)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Measure the agent against `ask` on questions built from your notes' links.

    A multi-step question names a note and asks for a fact that sits only in a note it points
    to (a link, or a "See also" or alias line as tldr-pages write them); a one-step control
    asks for the same fact of the note that holds it. Reports how often each
    answer contains the gold fact, steps, valid-call and repeated-call rates, and seconds per
    question, for the agent and for `ask` on the same questions.

    Examples:

        kenning eval agent --limit 5

        kenning eval agent --llm local --limit 10 -o agent-eval.jsonl
    """
    from kenning.agent.evaluate import build_questions, compare

    answering = Configured(llm, model, None, None)
    with open_index() as index:
        questions = build_questions(index, limit, seed)
        if not questions:
            err.print("[yellow]no question could be built: the notes need links between them[/]")
            raise typer.Exit(1)
        sink = output.open("w", encoding="utf-8") if output else None

        def write(row: dict[str, Any]) -> None:
            if sink is not None:
                sink.write(json.dumps(row, default=str) + "\n")
                sink.flush()

        try:
            with ProgressBars(hidden=as_json) as progress:
                tick = progress.ticker("questions", len(questions), "questions")
                report = compare(
                    index,
                    questions,
                    answering.llm,
                    steps=steps,
                    k=k,
                    tick=tick,
                    on_row=write,
                    thresholds=answering.thresholds,
                    timeout=timeout,
                )
        finally:
            if sink is not None:
                sink.close()
    if as_json:
        out.print_json(json.dumps({k: v for k, v in report.items() if k != "rows"}, default=str))
        return
    for kind in ("multi", "control"):
        r = report[kind]
        out.print(f"[bold]{kind}[/] ({r['questions']} questions)")
        out.print(
            f"  agent: contains gold {r['agent_correct']:.0%}, "
            f"{r['agent_seconds']:.1f} s/question, "
            f"{r['steps']:.1f} steps, valid calls {r['valid_rate']:.0%}, "
            f"repeated calls {r['repeat_rate']:.0%}"
        )
        out.print(
            f"  ask:   contains gold {r['ask_correct']:.0%}, {r['ask_seconds']:.1f} s/question"
        )
