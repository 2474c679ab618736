"""What every ``kenning`` command shares: options, consoles, progress, and the error path.

``KenningGroup`` is the one place where errors become exit codes: a ``KenningError`` prints
its message and exits with its documented code (see ``kenning.errors``); any other exception
prints one line and a pointer to ``--debug``, which shows the traceback. It also lets the
global options (``--index``, ``--embedder``, ``--quiet``, ``--debug``) follow the command,
as with git: ``kenning add notes -q`` reads as ``kenning -q add notes``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from kenning.errors import EXIT_CODES, KenningError


class _Console(Console):
    """rich's console, but a closed pipe ends the command as kenning's own writes do (exit 141)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


out = _Console()
#: messages are never wrapped by kenning: a terminal wraps them, and a log keeps each whole
err = Console(stderr=True, soft_wrap=True)

#: global options and whether each takes a value
GLOBAL_OPTIONS = {
    "--index": True,
    "-i": True,
    "--embedder": True,
    "-e": True,
    "--quiet": False,
    "-q": False,
    "--debug": False,
}
#: exit code of an unexpected exception (EX_SOFTWARE)
INTERNAL_ERROR = 70
#: seconds between progress lines when stderr is not a terminal (a pipe, a log file)
PLAIN_EVERY = 5.0


class State:
    """The global options of this invocation."""

    index: str | None = None
    embedder: str | None = None
    quiet: bool = False
    debug: bool = False


state = State()


def hoist_global_options(group: TyperGroup, ctx: typer.Context, args: list[str]) -> list[str]:
    """Move global options that follow the command to the front, unless the command
    defines an option of the same name itself (``reembed --embedder`` is its own)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):  # global options already in front
        name = args[i].split("=", 1)[0]
        i += 2 if GLOBAL_OPTIONS.get(name) and "=" not in args[i] else 1
    if i >= len(args):
        return args
    own: set[str] = set()
    command: Any = group.get_command(ctx, args[i])
    j = i + 1
    while isinstance(command, TyperGroup) and j < len(args) and not args[j].startswith("-"):
        command = command.get_command(ctx, args[j])
        j += 1
    for param in getattr(command, "params", []):
        own.update(param.opts, param.secondary_opts)
    front, rest = args[:i], args[i:]
    kept: list[str] = []
    k = 0
    while k < len(rest):
        token = rest[k]
        if token == "--":
            kept += rest[k:]
            break
        name = token.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and name not in own:
            takes = GLOBAL_OPTIONS[name] and "=" not in token
            front += rest[k : k + 2] if takes else [token]
            k += 2 if takes else 1
            continue
        kept.append(token)
        k += 1
    return front + kept


class KenningGroup(TyperGroup):
    """The top-level command group: global options anywhere, one error handler."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, list(args)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KenningError as e:
            # The message is plain text: "kenning[eval]" must not be read as a markup tag.
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `kenning ... | head` stopped reading: nothing went wrong here, so say nothing, and
            # point stdout at /dev/null so that flushing it at exit cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except Exception as e:
            if isinstance(e, typer.Exit | typer.Abort) or hasattr(e, "show"):
                raise  # the command line's own exits and usage errors
            if state.debug:
                traceback.print_exc()
            else:
                err.print(
                    f"[bold red]unexpected error:[/] {type(e).__name__}: {escape(str(e))}\n"
                    "Run the command again with --debug to see the traceback, and please "
                    "report it.",
                    highlight=False,
                    soft_wrap=True,
                )
            raise typer.Exit(INTERNAL_ERROR) from None


def exit_codes_help() -> str:
    """The exit code table for ``kenning --help`` (from ``kenning.errors.EXIT_CODES``)."""
    rows = "\n".join(f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items())
    return "**Exit codes**\n\n| code | meaning |\n|---|---|\n" + rows


app = typer.Typer(
    cls=KenningGroup,
    help=(
        "kenning: search your notes by meaning and by keyword, offline.\n\n"
        'Start with `kenning add ~/notes`, then `kenning search "your question"`. '
        "The index lives in ./.kenning/index.db unless you pass --index or set KENNING_INDEX. "
        "Global options (--index, --embedder, --quiet, --debug) go before or after the command."
    ),
    epilog=exit_codes_help(),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def print_version(value: bool) -> None:
    if value:
        from kenning import __version__

        typer.echo(f"kenning {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            "-i",
            envvar="KENNING_INDEX",
            help="Index file or URL (sqlite:///notes.db). Default: ./.kenning/index.db",
        ),
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder",
            "-e",
            help="Embedder id for a new index (minilm, hash, st, bge-small, e5-small), with "
            "options as NAME:KEY=VALUE,... (minilm:precision=int8 embeds documents in int8, "
            "minilm:device=cpu keeps them off a GPU, st:model=DIR any sentence-transformers "
            "model). An existing index remembers its own.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or summaries.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and libraries' own log messages.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    state.index, state.embedder, state.quiet, state.debug = index, embedder, quiet, debug
    quiet_libraries(debug)
    show_notices(quiet, debug)


class _Notices(logging.Handler):
    """kenning's own INFO lines (a model exported once, a runtime measured) on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"kenning: {record.getMessage()}", file=sys.stderr, flush=True)


def show_notices(quiet: bool, debug: bool) -> None:
    """Say on stderr, in one line each, what kenning prepares once and why it takes a while
    (``kenning.embedders.onnxgraph``, ``kenning.embedders.minilm``); -q silences them with the rest,
    and --debug shows them with every other log line."""
    logger = logging.getLogger("kenning")
    handler = next((h for h in logger.handlers if isinstance(h, _Notices)), None)
    if handler is None:
        handler = _Notices()
        logger.addHandler(handler)
    handler.setLevel(logging.CRITICAL + 1 if quiet or debug else logging.INFO)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def quiet_libraries(debug: bool) -> None:
    """Keep third-party log lines and warnings off the terminal unless --debug.

    What matters to the user (a file that failed, and why) reaches them through kenning's
    own report; a library's "EOF marker not found" beside it is noise.
    """
    logging.captureWarnings(True)  # warnings become log records, shown only with --debug
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr) if debug else logging.NullHandler()
    if not any(type(h) is type(handler) for h in root.handlers):
        root.addHandler(handler)
    if debug:
        root.setLevel(logging.DEBUG)


def open_index(
    create: bool = False, chunk_size: int | None = None, overlap: int | None = None
) -> Any:
    """The index named by the global options; ``create`` lets `add` make a new one."""
    from kenning.index import Index
    from kenning.text.chunking import ChunkSpec

    spec = None
    if chunk_size is not None or overlap is not None:
        base = ChunkSpec()
        spec = ChunkSpec(chunk_size or base.size, base.overlap if overlap is None else overlap)
    return Index.open(state.index, embedder=state.embedder, chunking=spec, create=create)


def open_history(create: bool = False) -> Any:
    """The evaluation history kept in the index file named by the global options."""
    from kenning.config import default_index
    from kenning.eval.history import History
    from kenning.index import check_location

    location = state.index or default_index()
    check_location(location, create)
    return History(location, create=create)


class ProgressBars:
    """Progress bars in one live display: sync stages (files/s, chunks/s, ETA) and queries.

    Nothing is drawn with --quiet (or ``hidden``, for --json); ``ticker`` bars appear with
    their first tick, so a run that fails before its first query leaves no empty bar behind.
    When stderr is not a terminal (piped to a file or a log), there are no bars but plain
    lines: one every ``PLAIN_EVERY`` seconds per stage, and one when it ends.
    """

    def __init__(self, hidden: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars

        self.bar = Bars(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
            disable=state.quiet or hidden or not err.is_terminal,
        )
        #: plain lines instead of bars: the tasks are still counted, only not drawn
        self.plain = not (state.quiet or hidden or err.is_terminal)
        self.printed: dict[Any, tuple[float, float]] = {}  # task -> (when, count) last printed
        self.task: Any = None
        self.chunks, self.unit = 0, "files"

    def stage(self, name: str, total: int, unit: str = "files") -> None:
        self.bar.start()
        self.task = self.bar.add_task(name, total=total, info=unit)
        self.printed[self.task] = (time.monotonic(), 0)
        self.chunks, self.unit = 0, unit

    def _line(self, task_id: Any, final: bool = False) -> None:
        """In plain mode, a line for the task if it ended or ``PLAIN_EVERY`` has passed."""
        if not self.plain:
            return
        task = next(t for t in self.bar.tasks if t.id == task_id)
        when, count = self.printed.get(task_id, (time.monotonic(), 0))
        ended = task.total is not None and task.completed >= task.total
        now = time.monotonic()
        if task.completed == count or not (final or ended or now - when >= PLAIN_EVERY):
            return
        self.printed[task_id] = (now, task.completed)
        of = f"/{task.total:.0f}" if task.total is not None else ""
        err.print(
            f"{task.description}: {task.completed:.0f}{of} {task.fields.get('info', '')} "
            f"({task.elapsed or 0:.1f}s)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def advance(self, files: int, chunks: int) -> None:
        self.chunks += chunks
        task = next(t for t in self.bar.tasks if t.id == self.task)
        elapsed = task.elapsed or 0.0
        done = task.completed + files
        if self.unit == "chunks":
            info = f"chunks · {done / elapsed:.1f} chunks/s" if elapsed else "chunks"
        else:
            rate = (
                f" · {done / elapsed:.0f} files/s, {self.chunks / elapsed:.0f} chunks/s"
                if elapsed
                else ""
            )
            info = f"files · {self.chunks} chunks{rate}"
        self.bar.update(self.task, advance=files, info=info)
        self._line(self.task)

    def ticker(self, name: str, total: int | None = None, unit: str = "queries") -> Any:
        """A callable that counts one more item in its own bar, shown from the first tick."""
        task: list[Any] = []

        def tick() -> None:
            if not task:
                self.bar.start()
                task.append(self.bar.add_task(name, total=total, info=unit))
                self.printed[task[0]] = (time.monotonic(), 0)
            self.bar.advance(task[0])
            self._line(task[0])

        return tick

    def close(self) -> None:
        for task in self.bar.tasks:  # where the last line was not the end of its stage
            self._line(task.id, final=True)
        self.plain = False  # closed twice (Ctrl-C, then the with block) prints once
        self.bar.stop()

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def short_path(path: str, roots: list[str]) -> str:
    """A path as people read it in a table: under its root, led by the root's name
    (``til/git/rebase.md``), so long vault paths do not crowd out the passage."""
    p = Path(path)
    for root in sorted(roots, key=len, reverse=True):
        r = Path(root)
        if p == r:
            return p.name
        if r in p.parents:
            return str(Path(r.name) / p.relative_to(r))
    return path
