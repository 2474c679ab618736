"""Index commands: add, sync, reembed, remove, migrate, search and status. Each is one
library call."""

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

from kenning.errors import FilesFailed

from .shell import ProgressBars, app, err, open_index, out, short_path, state


def _sync_run(action: Any, as_json: bool, background: bool = False) -> None:
    """Run a sync-like action with progress, then report it: the summary unless --quiet,
    problems (failed files, missing roots, warnings) always; exit 7 when files failed."""
    if state.quiet or as_json:
        report = action(None)
    else:
        with ProgressBars() as progress:
            try:
                report = action(progress)
            except KeyboardInterrupt:
                progress.close()
                err.print(
                    "stopped: everything committed so far is kept; `kenning sync` finishes "
                    "the rest (files) and `kenning embed` the vectors."
                )
                raise typer.Exit(130) from None
    if as_json:
        from dataclasses import asdict

        out.print_json(json.dumps(asdict(report)))
    else:
        _report(report, background)
    if report.failed:
        raise FilesFailed(len(report.failed))


def _report(report: Any, background: bool) -> None:
    """A sync report for people: --quiet leaves out the summary, never the problems."""
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
    if state.quiet:
        return
    err.print(
        f"{report.scanned} files scanned, keyword-searchable in {report.keyword_seconds:.1f}s: "
        f"{report.added} added, {report.changed} changed, {report.moved} moved, "
        f"{report.deleted} deleted, {report.unchanged} unchanged; {report.chunks_indexed} "
        f"chunks indexed ({report.chunks_reused} had vectors), {report.chunks_embedded} "
        f"embedded in {report.seconds:.1f}s in all."
    )
    if report.chunks_pending:
        why = (
            "another kenning process is embedding them (`kenning status` shows its progress)"
            if report.embedding_busy or background
            else "run `kenning embed` (or any sync) to finish"
        )
        err.print(
            f"{report.chunks_pending} chunks still wait for vectors: search finds them by "
            f"keyword meanwhile; {why}.",
            highlight=False,
        )
    if report.skipped:
        exts: dict[str, int] = {}
        for path, _ in report.skipped:
            ext = Path(path).suffix or "(no extension)"
            exts[ext] = exts.get(ext, 0) + 1
        summary = ", ".join(f"{e} ×{n}" for e, n in sorted(exts.items(), key=lambda kv: -kv[1]))
        err.print(f"skipped {len(report.skipped)} files of unsupported types: {summary}")
    if report.excluded:
        reasons: dict[str, int] = {}
        for _, why in report.excluded:
            reasons[why] = reasons.get(why, 0) + 1
        listed = ", ".join(
            f"{why} ×{n}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])
        )
        err.print(
            f"excluded {len(report.excluded)} paths on purpose: {escape(listed)} "
            "(`kenning status` lists them)",
            highlight=False,
        )


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackgroundOpt = Annotated[
    bool,
    typer.Option(
        "--background",
        "-b",
        help="Return once every file is keyword-searchable; a worker process embeds the "
        "rest (see `kenning status`).",
    ),
]


def _indexed(index: Any, action: Any, as_json: bool, background: bool) -> None:
    """Run a sync-like ``action(progress, embed)``; with ``background``, hand embedding to a
    worker that outlives this command."""

    def run(progress: Any) -> Any:
        report = action(progress, not background)
        if background and report.chunks_pending:
            index.embed_in_background()
        return report

    _sync_run(run, as_json, background)


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
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="GLOB",
            help="Leave out paths matching GLOB (gitignore syntax, relative to the root; "
            "repeatable). Kept with the root for every later sync, like a .kenningignore.",
        ),
    ] = None,
    background: BackgroundOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add folders or files as roots and index them.

    Every file is keyword-searchable as soon as the first pass commits (seconds for
    thousands of notes); meaning search fills in while the chunks are embedded. Ctrl-C at
    any point keeps what is done; `kenning sync` or `kenning embed` finishes it.

    Examples:

        kenning add ~/notes

        kenning add ~/vault --background     # return now, embed in a worker

        kenning add paper.pdf ~/wiki --chunk-size 128

        kenning add ~/vault --exclude 'Archive/' --exclude '*.draft.md'
    """
    from kenning.index import check_paths
    from kenning.ingest.exclusions import check_globs

    check_paths(list(paths))  # before the index is created: a typo leaves nothing behind
    check_globs(exclude or [])
    size = int(max_file_size * 1e6)
    with open_index(create=True, chunk_size=chunk_size, overlap=overlap) as index:
        _indexed(
            index,
            lambda p, embed: index.add(
                list(paths), progress=p, exclude=exclude, max_file_bytes=size, embed=embed
            ),
            as_json,
            background,
        )


@app.command()
def sync(
    max_file_size: Annotated[
        float, typer.Option(help="Skip (and report) files larger than this many MB.")
    ] = 20.0,
    background: BackgroundOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Rescan every root: index new and changed files, forget deleted ones.

    Unchanged files cost one stat; only chunks whose text changed are re-embedded.

    Examples:

        kenning sync

        kenning sync --background
    """
    size = int(max_file_size * 1e6)
    with open_index() as index:
        _indexed(
            index,
            lambda p, embed: index.sync(progress=p, max_file_bytes=size, embed=embed),
            as_json,
            background,
        )


@app.command()
def embed(as_json: JsonOpt = False) -> None:
    """Embed the chunks still waiting for vectors (after --background, or a stopped add).

    Only one process embeds an index at a time; if another already is, this one says so
    and leaves. `kenning add --background` starts this command as a worker.

    Example:

        kenning embed
    """
    with open_index() as index:
        if state.quiet or as_json:
            report = index.embed()
        else:
            with ProgressBars() as progress:
                report = index.embed(progress)
    if as_json:
        from dataclasses import asdict

        out.print_json(json.dumps(asdict(report)))
    elif report.busy:
        err.print("another kenning process is embedding this index; `kenning status` shows it")
    elif not state.quiet:
        err.print(f"{report.embedded} chunks embedded in {report.seconds:.1f}s.")


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
def migrate(
    to: Annotated[
        str,
        typer.Option("--to", help="The new store: a file path or postgresql://user@host:port/db."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Copy this index into another store, without re-reading or re-embedding anything.

    Roots, files, chunks, vectors and settings all go across; the target must be empty.
    The evaluation history and chat memory stay in the SQLite file.

    Examples:

        kenning migrate --to postgresql://me@db.lan:5432/notes
        kenning --index postgresql://me@db.lan/notes migrate --to notes-copy.db
    """
    from dataclasses import asdict

    from kenning.config import default_index
    from kenning.index import check_location
    from kenning.index.copying import copy_index
    from kenning.store import open_store

    check_location(state.index or default_index(), create=False)
    check_location(to, create=True)
    with (
        open_store(state.index or default_index(), create=False) as source,
        open_store(to) as target,
    ):
        if state.quiet or as_json:
            report = copy_index(source, target)
        else:
            with ProgressBars() as progress:
                report = copy_index(source, target, progress)
    if as_json:
        out.print_json(json.dumps(asdict(report)))
    elif not state.quiet:
        err.print(
            f"copied {report.files} files, {report.chunks} chunks and {report.vectors} vectors "
            f"to {escape(to)} in {report.seconds:.1f}s; use it with --index {escape(to)}"
        )


def _tag_line(tags: list[str], most: int = 6) -> str:
    """A hit's tags under its source in the table (the first ``most``, then a count)."""
    if not tags:
        return ""
    shown = " ".join(f"#{t}" for t in tags[:most])
    more = f" +{len(tags) - most}" if len(tags) > most else ""
    return f"\n[cyan]{escape(shown + more)}[/]"


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Number of results.")] = 10,
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="Metadata condition: tag=ml (tag=area also matches area/sub), "
            "'date>=2025-01-01', author!=me, or any front-matter key or Dataview field."
        ),
    ] = None,
    path: Annotated[
        list[str] | None,
        typer.Option(
            help="Glob on the path as the results show it, with or without the root's name: "
            "`vault/projects/**` or `projects/**`."
        ),
    ] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="markdown, text, html or pdf.")
    ] = None,
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    fusion: Annotated[str, typer.Option(help="weighted or rrf.")] = "weighted",
    rerank: Annotated[
        bool,
        typer.Option(help="Re-order the top results with the reranker `kenning tune` trained."),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            help="Show each hit's BM25 rank, dense rank and fused score, and the reranking time."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per hit.")] = False,
) -> None:
    """Find passages by meaning and keyword (hybrid by default).

    Examples:

        kenning search "undo the last commit"

        kenning search "attention" --where tag=ml --where 'date>=2025-01-01' --type markdown

        kenning search "vacuum" --path 'postgres/**' --json --explain

        kenning search "squash commits" --rerank --explain     # after `kenning tune`
    """
    from kenning.filters import Filters
    from kenning.index import check_query
    from kenning.search import highlight_spans
    from kenning.text.tokens import query_terms

    check_query(query)
    filters = Filters.parse(where, path, type_)
    with open_index() as index:
        for warning in index.filter_warnings(filters):
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
        hits = index.search(query, k=k, filters=filters, mode=mode, fusion=fusion, rerank=rerank)
        rerank_seconds, reranked = index.searcher.rerank_seconds, index.searcher.reranked
        roots = index.store.roots()
        waiting = index.pending() if mode != "bm25" else 0
    if waiting and not as_json and not state.quiet:
        err.print(
            f"[yellow]{waiting} chunks are still being embedded[/]: they are found by keyword "
            "only until then (`kenning status` shows progress).",
            highlight=False,
        )
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
            f"{escape(shown)}\n[dim]{escape(where_in)}[/]" + _tag_line(h.tags),
            snippet,
        ]
        if explain:
            row += [str(h.bm25_rank or "–"), str(h.dense_rank or "–")]
        table.add_row(*row)
    out.print(table)
    if explain and rerank_seconds is not None:
        err.print(f"reranked the top {reranked} candidates in {rerank_seconds * 1000:.1f} ms")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show roots, counts, size on disk, memory needed, embedder, last sync, failures, exclusions.

    Exclusions are the paths the last syncs left out on purpose, counted per reason
    (.kenningignore, --exclude, the vault's settings, drawings and canvases).

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
    mem = info["memory"]
    parts = ", ".join(f"{k} {v / 1e6:.0f}" for k, v in mem.items() if k != "total" and v)
    table.add_row(
        "[bold]memory[/]",
        f"{mem['total'] / 1e6:.0f} MB to search ({parts or 'empty'})" if mem else "in the server",
    )
    table.add_row(
        "[bold]chunking[/]",
        f"{info['chunking']['size']} tokens, overlap {info['chunking']['overlap']}",
    )
    table.add_row("[bold]roots[/]", "\n".join(info["roots"]) or "(none: run kenning add PATH)")
    table.add_row("[bold]embedding[/]", _embedding_line(info["embedding"]))
    out.print(table)
    if info["problems"]:
        out.print(f"\n[bold]{len(info['problems'])} files with problems:[/]")
        for p in info["problems"]:
            colour = "red" if p["status"] == "failed" else "yellow"
            out.print(
                f"[{colour}]{p['status']}[/] {escape(p['path'] + ': ' + str(p['reason']))}",
                highlight=False,
            )
    if info["excluded"]:
        total = sum(e["count"] for e in info["excluded"])
        out.print(f"\n[bold]{total} paths excluded on purpose (a folder counts once):[/]")
        for e in info["excluded"]:
            more = e["count"] - len(e["examples"])
            shown = ", ".join(
                short_path(p, info["roots"]) + ("/" if p.endswith("/") else "")
                for p in e["examples"]
            ) + (f", and {more} more" if more > 0 else "")
            out.print(f"{escape(e['reason'])} ×{e['count']}: {escape(shown)}", highlight=False)


def _embedding_line(e: dict[str, Any]) -> str:
    if not e["pending"]:
        return "complete"
    line = f"{e['pending']} chunks waiting for vectors"
    if not e["running"]:
        return line + " (no worker running: `kenning embed` finishes them)"
    eta = e.get("eta_seconds")
    when = f", about {eta // 60} min {eta % 60} s left" if eta is not None else ""
    on = f" on {e['runs_on']}" if e.get("runs_on") else ""
    return f"{line}; worker pid {e['pid']} at {e['rate']} chunks/s{on}{when}"


@app.command()
def watch(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON sync report per line, for scripts.")
    ] = False,
) -> None:
    """Keep the index in step with its roots: changes are applied as they happen.

    Creates, edits, deletes and renames are keyword-searchable within about a second of a
    burst of changes settling, each pass as `kenning sync` would do it; vectors are added
    while the folder is quiet. Ctrl-C stops; the index stays consistent, and `kenning embed`
    finishes any vectors still waiting.

    Example:

        kenning watch
    """
    from dataclasses import asdict

    from kenning.index.watch import watch as run_watch

    with open_index() as index:
        roots = index.store.roots()

        live: list[Any] = []  # the status line, once it is drawn

        def waiting_line() -> str:
            left = index.pending()
            line = f"watching {len(roots)} root{'s' if len(roots) != 1 else ''} (Ctrl-C stops)"
            return line + (f" · {left} chunks waiting for vectors" if left else "")

        def shown(report: Any, changed: set[str]) -> None:
            if as_json:
                sys.stdout.write(json.dumps({**asdict(report), "changed": sorted(changed)}) + "\n")
                sys.stdout.flush()
                return
            if not state.quiet:  # the pass's line; its failures are shown even so
                stamp = time.strftime("%H:%M:%S")
                err.print(
                    f"[dim]{stamp}[/] +{report.added} ~{report.changed} -{report.deleted} "
                    f"→{report.moved} searchable in {report.seconds:.1f}s",
                    highlight=False,
                )
            for path, reason in report.failed:
                err.print(f"[red]failed[/]  {escape(f'{path}: {reason}')}", highlight=False)
            if live:
                live[0].update(waiting_line())

        def embedded(_report: Any) -> None:
            if live:
                live[0].update(waiting_line())

        if state.quiet or as_json:
            run_watch(index, on_sync=shown)
            return
        err.print(f"watching {escape(', '.join(roots))}", highlight=False)
        with err.status(waiting_line()) as line:
            live.append(line)
            run_watch(index, on_sync=shown, on_embed=embedded)
