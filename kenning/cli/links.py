"""``kenning links``: a note's outgoing links, backlinks and unresolved links."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .shell import app, open_index, out, short_path


def _where(target: str, heading: str, alias: str | None) -> str:
    shown = target + (f"#{heading}" if heading else "")
    return shown + (f" ({alias})" if alias else "")


@app.command()
def links(
    note: Annotated[
        str, typer.Argument(help="The note: its path as search shows it, or its name.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print outgoing, backlinks and unresolved as JSON.")
    ] = False,
) -> None:
    """List a note's outgoing links, backlinks and unresolved links.

    Links are [[wikilinks]] (with #heading and |alias), ![[embeds]] and Markdown links to
    notes, resolved as Obsidian resolves them: the exact path in the vault, else the
    shortest path whose file name matches (case-insensitive, with or without .md). A link
    that names no indexed note is listed as unresolved.

    Example:

        kenning links "Zettelkasten" --json
    """
    with open_index() as index:
        found = index.links(note)
        roots = index.store.roots()
    if as_json:
        out.print_json(json.dumps(found.to_dict()))
        return
    out.print(f"[bold]{escape(short_path(found.path, roots))}[/]", highlight=False)
    table = Table(box=None)
    for column in ("direction", "kind", "link", "note"):
        table.add_column(column)
    for x in found.outgoing:
        note_path = short_path(x.path, roots) if x.path else "[yellow]unresolved[/]"
        where = escape(_where(x.target, x.heading, x.alias))
        table.add_row("out", x.kind, where, note_path if x.path is None else escape(note_path))
    for x in found.backlinks:
        where = escape(_where(x.target, x.heading, x.alias))
        table.add_row("in", x.kind, where, escape(short_path(x.source, roots)))
    if table.row_count:
        out.print(table)
    unresolved = len(found.unresolved)
    out.print(
        f"{len(found.outgoing)} outgoing ({unresolved} unresolved), "
        f"{len(found.backlinks)} backlinks",
        highlight=False,
    )
