"""Index commands: add, sync, reembed, remove, search and status. Each is one library call."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .shell import Progress, app, err, open_index, out, short_path, state


def _sync_run(action: Any, as_json: bool) -> None:
    if state.quiet or as_json:
        report = action(None)
    else:
        with Progress() as progress:
            report = action(progress)
    if as_json:
        from dataclasses import asdict

        out.print_json(json.dumps(asdict(report)))
        return
    if state.quiet:
        return
    err.print(
        f"{report.scanned} files scanned in {report.seconds:.1f}s: {report.added} added, "
        f"{report.changed} changed, {report.moved} moved, {report.deleted} deleted, "
        f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded, "
        f"{report.chunks_reused} reused."
    )
    for root in report.missing_roots:
        err.print(
            f"[yellow]missing root[/] {escape(root)}: its files stay indexed; "
            f"`kenning remove {escape(root)}` drops them",
            highlight=False,
        )
    for path, reason in report.failed:
        err.print(f"[red]failed[/]  {escape(f'{path}: {reason}')}", highlight=False)
    for path, reason in report.warnings:
        err.print(f"[yellow]warning[/] {escape(f'{path}: {reason}')}", highlight=False)
    if report.skipped:
        exts: dict[str, int] = {}
        for path, _ in report.skipped:
            ext = Path(path).suffix or "(no extension)"
            exts[ext] = exts.get(ext, 0) + 1
        summary = ", ".join(f"{e} ×{n}" for e, n in sorted(exts.items(), key=lambda kv: -kv[1]))
        err.print(f"skipped {len(report.skipped)} files of unsupported types: {summary}")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    chunk_size: Annotated[
        int | None, typer.Option(help="Chunk size in model tokens (default 200).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(help="Tokens shared by neighbouring chunks.")
    ] = None,
    max_file_size: Annotated[
        float, typer.Option(help="Skip (and report) files larger than this many MB.")
    ] = 20.0,
    as_json: JsonOpt = False,
) -> None:
    """Add folders or files as roots and index them.

    Examples:

        kenning add ~/notes

        kenning add paper.pdf ~/wiki --chunk-size 128
    """
    with open_index(create=True, chunk_size=chunk_size, overlap=overlap) as index:
        _sync_run(
            lambda p: index.add(list(paths), progress=p, max_file_bytes=int(max_file_size * 1e6)),
            as_json,
        )


@app.command()
def sync(
    max_file_size: Annotated[
        float, typer.Option(help="Skip (and report) files larger than this many MB.")
    ] = 20.0,
    as_json: JsonOpt = False,
) -> None:
    """Rescan every root: index new and changed files, forget deleted ones.

    Unchanged files cost one stat; only chunks whose text changed are re-embedded.

    Example:

        kenning sync
    """
    with open_index() as index:
        _sync_run(
            lambda p: index.sync(progress=p, max_file_bytes=int(max_file_size * 1e6)), as_json
        )


@app.command()
def reembed(
    embedder: Annotated[str, typer.Option("--embedder", "-e", help="The new embedder id.")],
    as_json: JsonOpt = False,
) -> None:
    """Switch the index to another embedder and rebuild it from its roots.

    Roots are kept; every file is re-read and re-embedded with the new model.

    Example:

        kenning reembed --embedder bge-small
    """
    from kenning.index import Index

    with Index.open(state.index, embedder=embedder, reembed=True, create=False) as index:
        _sync_run(lambda p: index.sync(progress=p), as_json)


@app.command()
def remove(path: Annotated[Path, typer.Argument(help="A root given to `kenning add`.")]) -> None:
    """Drop a root and everything indexed from it.

    Example:

        kenning remove ~/notes/archive
    """
    with open_index() as index:
        n = index.remove(path)
    if not state.quiet:
        err.print(f"removed {path} ({n} files)")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Number of results.")] = 10,
    where: Annotated[
        list[str] | None,
        typer.Option(help="Metadata condition: tag=ml, 'date>=2025-01-01', author!=me."),
    ] = None,
    path: Annotated[
        list[str] | None, typer.Option(help="Glob on the path under its root: 'projects/**'.")
    ] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="markdown, text, html or pdf.")
    ] = None,
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    fusion: Annotated[str, typer.Option(help="weighted or rrf.")] = "weighted",
    explain: Annotated[
        bool, typer.Option(help="Show each hit's BM25 rank, dense rank and fused score.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per hit.")] = False,
) -> None:
    """Find passages by meaning and keyword (hybrid by default).

    Examples:

        kenning search "undo the last commit"

        kenning search "attention" --where tag=ml --where 'date>=2025-01-01' --type markdown

        kenning search "vacuum" --path 'postgres/**' --json --explain
    """
    from kenning.filters import Filters
    from kenning.search import highlight_spans, query_terms

    filters = Filters.parse(where, path, type_)
    with open_index() as index:
        hits = index.search(query, k=k, filters=filters, mode=mode, fusion=fusion)
        roots = index.store.roots()
    if as_json:
        for h in hits:
            sys.stdout.write(json.dumps(h.to_dict(), ensure_ascii=False) + "\n")
        return
    if not hits:
        err.print("no results")
        return
    terms = query_terms(query)
    table = Table(show_lines=True, expand=True)
    table.add_column("#", justify="right", width=3)
    table.add_column("score", justify="right", width=6)
    table.add_column("source", ratio=2, overflow="fold")
    table.add_column("passage", ratio=5)
    if explain:
        table.add_column("bm25", justify="right", width=5)
        table.add_column("dense", justify="right", width=5)
    for n, h in enumerate(hits, 1):
        where_in = h.heading or h.title
        if h.page is not None:
            where_in = f"page {h.page}"
        shown = short_path(h.path, roots)
        snippet = Text(h.snippet)
        for a, b in highlight_spans(h.snippet, terms):
            snippet.stylize("bold yellow", a, b)
        row: list[str | Text] = [
            str(n),
            f"{h.score:.3f}",
            f"{escape(shown)}\n[dim]{escape(where_in)}[/]",
            snippet,
        ]
        if explain:
            row += [str(h.bm25_rank or "–"), str(h.dense_rank or "–")]
        table.add_row(*row)
    out.print(table)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show roots, counts, size on disk, embedder, last sync and files that failed.

    Example:

        kenning status --json
    """
    with open_index() as index:
        info = index.status()
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table(show_header=False, box=None)
    for key in ("index", "embedder", "dimension", "files", "chunks", "last_sync"):
        table.add_row(f"[bold]{key}[/]", str(info[key]))
    table.add_row("[bold]size[/]", f"{info['size_bytes'] / 1e6:.1f} MB")
    table.add_row(
        "[bold]chunking[/]",
        f"{info['chunking']['size']} tokens, overlap {info['chunking']['overlap']}",
    )
    table.add_row("[bold]roots[/]", "\n".join(info["roots"]) or "(none: run kenning add PATH)")
    out.print(table)
    if info["problems"]:
        out.print(f"\n[bold]{len(info['problems'])} files with problems:[/]")
        for p in info["problems"]:
            colour = "red" if p["status"] == "failed" else "yellow"
            out.print(
                f"[{colour}]{p['status']}[/] {escape(p['path'] + ': ' + str(p['reason']))}",
                highlight=False,
            )


@app.command()
def watch(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON sync report per line, for scripts.")
    ] = False,
) -> None:
    """Keep the index in step with its roots: changes are applied as they happen.

    Creates, edits, deletes and renames are picked up within about a second of a burst of
    changes settling, each pass as `kenning sync` would do it. Ctrl-C stops; the index stays
    consistent.

    Example:

        kenning watch
    """
    from dataclasses import asdict

    from kenning.watch import watch as run_watch

    with open_index() as index:
        roots = index.store.roots()

        def shown(report: Any, changed: set[str]) -> None:
            if as_json:
                sys.stdout.write(json.dumps({**asdict(report), "changed": sorted(changed)}) + "\n")
                sys.stdout.flush()
                return
            if state.quiet:
                return
            stamp = time.strftime("%H:%M:%S")
            err.print(
                f"[dim]{stamp}[/] +{report.added} ~{report.changed} -{report.deleted} "
                f"→{report.moved} in {report.seconds:.1f}s; {report.chunks_embedded} chunks "
                "embedded",
                highlight=False,
            )
            for path, reason in report.failed:
                err.print(f"[red]failed[/]  {escape(f'{path}: {reason}')}", highlight=False)

        if not state.quiet and not as_json:
            err.print(
                f"watching {len(roots)} root{'s' if len(roots) != 1 else ''}: "
                f"{escape(', '.join(roots))} (Ctrl-C stops)",
                highlight=False,
            )
        run_watch(index, on_sync=shown)
