"""``kenning conflicts``: pairs of notes that make different claims about the same thing."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape

from .shell import app, err, open_index, out, short_path


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
        f"{stats.conflicts} conflicts in {stats.notes} notes "
        f"({stats.checked_notes} notes checked, {stats.compared} claim pairs compared"
        + (f"; showing {len(found)}" if len(found) < stats.conflicts else "")
        + ")",
        highlight=False,
    )
