"""Server commands: serve (HTTP API, web page, OpenAI-compatible routes, MCP over HTTP) and mcp
(MCP over stdio). Both are thin shells over ``kenning.serve``."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Annotated

import typer

from kenning.errors import MissingExtra

from .shell import app, err, out, state

#: what `kenning serve` and `kenning mcp` import, and the package that provides each
SERVE_MODULES = {"fastapi": "fastapi", "starlette": "fastapi", "uvicorn": "uvicorn", "mcp": "mcp"}


def _server(module: str) -> ModuleType:
    """A module of ``kenning.serve``; ``MissingExtra`` naming ``kenning[serve]`` (checked
    before anything of the server is imported) when a package it needs is missing."""
    for name, package in SERVE_MODULES.items():
        MissingExtra.require(name, package, "serve")
    try:
        return importlib.import_module(f"kenning.serve.{module}")
    except ImportError as e:  # a package the extra brings along, missing or broken
        missing = (e.name or "").split(".")[0]
        if not missing or missing == "kenning":
            raise
        raise MissingExtra(missing, "serve") from None


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to bind. Anything but loopback needs KENNING_API_KEY."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    watch: Annotated[
        bool, typer.Option("--watch", help="Also keep the index in step as files change.")
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Allow browser pages from this origin (repeatable). Default: none."),
    ] = None,
    max_body: Annotated[
        int, typer.Option(help="Largest request body in bytes; larger ones get 413.")
    ] = 1_000_000,
    llm: Annotated[
        str | None, typer.Option(help="Answerer for ask and chat (as for `kenning ask`).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model for the answerer.")] = None,
    strategy: Annotated[str | None, typer.Option(help="zero-shot, few-shot or cot.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes sharing the port (default: one per core; 1 when answers "
            "come from the local model, which each worker would load again).",
        ),
    ] = None,
) -> None:
    """Serve the index over HTTP: a web page, a JSON API, OpenAI-compatible routes and MCP.

    Binds 127.0.0.1:8000 and prints the URL. Binding any other address needs an API key in
    KENNING_API_KEY; clients then send `Authorization: Bearer KEY` (a browser opens
    `/?key=KEY` once). The routes: the page at `/`, the JSON API under `/api` (schema at
    `/api/openapi.json`), `/v1/chat/completions`, `/v1/embeddings` and `/v1/models` for
    OpenAI clients, and MCP (streamable HTTP) at `/mcp`.

    Examples:

        kenning serve

        kenning serve --port 9000 --watch
        kenning serve --workers 4

        KENNING_API_KEY=$(openssl rand -hex 24) kenning serve --host 0.0.0.0
    """
    from kenning.config import default_index

    security = _server("security").Security.for_bind(
        host, os.environ.get("KENNING_API_KEY"), max_body, tuple(cors_origin or ())
    )
    server = _server("server")
    create_app = _server("app").create_app  # a broken serve package fails here, not in workers
    from kenning.answer.answerer import Answering

    location = state.index or default_index()
    answering = Answering(location, llm, model, strategy)  # bad settings fail here, once
    workers = workers or server.default_workers(answering.llm_name)

    def ready(url: str) -> None:
        out.print(f"kenning serve: {url}/", highlight=False, soft_wrap=True)
        if not state.quiet:
            err.print(
                f"[dim]index {location}; API {url}/api, OpenAI {url}/v1, MCP {url}/mcp; "
                f"{workers} worker{'s' if workers > 1 else ''}; Ctrl-C stops[/]",
                highlight=False,
            )

    log_level = "warning" if state.quiet else "info"
    watch_index = (location, state.embedder) if watch else None
    try:
        if workers == 1:
            application = create_app(
                location, embedder=state.embedder, security=security, answering=answering
            )
            server.serve(application, host, port, log_level, ready, watch_index)
        else:
            spec = server.AppSpec(str(location), state.embedder, security, llm, model, strategy)
            server.serve_workers(spec, workers, host, port, log_level, ready, watch_index)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
        if not state.quiet:
            err.print("stopped")


@app.command()
def mcp() -> None:
    """Serve the index to an AI assistant over MCP on stdin/stdout.

    Tools: `search`, `ask` and `read_document`. Point the assistant at this command, e.g.
    `{"command": "kenning", "args": ["--index", "/path/to/index.db", "mcp"]}`.

    Examples:

        kenning --index ~/notes/.kenning/index.db mcp
    """
    from kenning.config import default_index

    run_stdio = _server("mcp_server").run_stdio
    run_stdio(state.index or default_index(), state.embedder)
