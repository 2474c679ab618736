"""``kenning conflicts``: pairs of notes that make different claims about the same thing;
``kenning eval conflicts``: planted conflicts, and how answers report them."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .answer import Answering, ModelOpt
from .eval import eval_app
from .shell import ProgressBars, app, err, open_history, open_index, out, short_path


@app.command()
def conflicts(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Only conflicts with a side under these indexed files or folders."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most N (0: all).")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Every conflict with both quotes and locations.")
    ] = False,
) -> None:
    """Find notes that disagree: the same claim with another number, date, name or yes/no.

    Pairs of sentences from different notes (or far apart in one) that say the same thing
    but for one value, most confident first, each with both quotes, where they are and which
    is more recent. Only notes changed since the last run are checked again.

    Examples:

        kenning conflicts

        kenning conflicts ~/notes/projects --json
    """
    from kenning.answer.conflict_report import ConflictReport

    with open_index() as index, ConflictReport(index) as report:
        stats = report.update()
        found = report.conflicts(paths, limit or None)
        roots = index.store.roots()
    if as_json:
        data = {
            "conflicts": [asdict(c) for c in found],
            "notes": stats.notes,
            "checked_notes": stats.checked_notes,
            "compared": stats.compared,
            "total": stats.conflicts,
        }
        out.print_json(json.dumps(data))
        return
    for i, c in enumerate(found, 1):
        values = " / ".join(s.value for s in c.sides)
        out.print(
            f"[bold]{i}.[/] {escape(c.kind)}: {escape(values)} "
            f"[dim](confidence {c.confidence:.2f})[/]",
            highlight=False,
        )
        for s in c.sides:
            where = short_path(s.path, roots) + (f":{s.lines[0]}" if s.lines else "")
            out.print(f"   [cyan]{escape(where)}[/]", highlight=False)
            out.print(f"     {escape(s.text)}", highlight=False, soft_wrap=True)
        out.print(f"   [dim]{escape(c.recency)}[/]", highlight=False)
    err.print(
        f"{stats.conflicts} conflict{'' if stats.conflicts == 1 else 's'} in {stats.notes} notes "
        f"({stats.checked_notes} notes checked, {stats.compared} claim pairs compared"
        + (f"; showing {len(found)}" if len(found) < stats.conflicts else "")
        + ")",
        highlight=False,
    )


@eval_app.command("conflicts")
def eval_conflicts(
    collections: Annotated[
        list[Path],
        typer.Argument(help="Notes collections: folders, .tar.gz archives, or data folders."),
    ],
    pairs: Annotated[int, typer.Option(help="Conflict pairs per collection.")] = 100,
    controls: Annotated[
        int, typer.Option(help="Controls of each kind per collection (4 kinds).")
    ] = 25,
    background: Annotated[
        int, typer.Option(help="Other notes of the collection indexed beside the cases.")
    ] = 100,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same cases).")] = 0,
    answerer: Annotated[
        str | None, typer.Option(help="LLM backend to answer with (default: extractive).")
    ] = None,
    model: ModelOpt = None,
    k: Annotated[int, typer.Option("--k", help="Passages retrieved per question.")] = 5,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also run `kenning conflicts` over each whole collection with --pairs "
            "planted swaps: the share found and the share of false alarms.",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for per-question results.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Plant conflicts in a notes collection and score how answers report them.

    Each case is a note and a copy of it: with one fact swapped for another of the same kind
    from the collection (a conflict), or a control that is not one (the same fact in other
    words, a view the copy rejects, a dated update, a similar sentence about another
    subject). Reports the detection rate (the conflict said, with a verified sentence cited
    from each side), the false-alarm rate on controls and the answers' accuracy.

    Example:

        kenning eval conflicts ../shared/data/notes-jbranchaud-til

        kenning eval conflicts notes-a notes-b --answerer local --pairs 20 --controls 5
    """
    from kenning.config import cache_dir
    from kenning.eval import conflicts as planted
    from kenning.index import Index

    llm = Answering(answerer, model, None, None).llm if answerer else None
    per_kind = {"conflict": pairs, **{kind: controls for kind in planted.CONTROLS}}
    results: dict[str, dict[str, Any]] = {}
    everything: list[Any] = []
    folder = output or Path("kenning-eval") / f"conflicts-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    for source in collections:
        name = source.resolve().name.removesuffix(".tar.gz")
        work = cache_dir() / "eval" / "conflicts" / f"{name}-{seed}-{pairs}-{controls}-{background}"
        root, cases = planted.prepare(source, work, per_kind, background, seed)
        with ProgressBars(hidden=as_json) as progress, Index.open(work / "index.db") as index:
            index.add([root], progress=progress)
            tick = progress.ticker(f"asking ({name})", len(cases), "questions")
            mean, rows = planted.run(index, root.resolve(), cases, llm, k, tick)
        if report:
            found = planted.report_run(source, work, pairs, seed)
            mean.update({f"report_{key}": v for key, v in found.items() if key != "false_alarms"})
        results[name] = mean
        everything.extend(rows)
        with (folder / f"{name}.jsonl").open("w") as f:
            for o in rows:
                f.write(
                    json.dumps(
                        {**asdict(o.case), **{k2: v for k2, v in asdict(o).items() if k2 != "case"}}
                    )
                    + "\n"
                )
        with open_history(create=True) as h:
            spec = {"pairs": pairs, "controls": controls, "seed": seed, "k": k}
            h.add_run(f"conflicts:{name}", llm.id if llm else "extractive", spec, mean, len(rows))
    if len(collections) > 1:
        results["all"] = planted.summary(everything)
    if as_json:
        out.print_json(json.dumps({"results": results, "outputs": str(folder)}))
        return
    table = Table(title=f"planted conflicts ({llm.id if llm else 'extractive'} answers)")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for metric in next(iter(results.values())):
        if metric in results[next(iter(results))]:
            cells = [f"{r.get(metric, float('nan')):.3f}" for r in results.values()]
            table.add_row(metric, *cells)
    out.print(table)
    err.print(f"per-question results: {folder}")
