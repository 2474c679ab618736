"""The MCP server: tools ``search``, ``ask``, ``read_document`` and ``links`` for AI assistants.

Built on the official ``mcp`` SDK (``MCPServer``, formerly FastMCP). `kenning mcp` speaks it
over stdio (an assistant starts kenning as a subprocess); `kenning serve` mounts the same
server as streamable HTTP at ``/mcp``, behind the same API key as every other route. Each
tool is the ``Service`` call the JSON API makes, so an assistant sees the hits and answers a
person sees. Sync tools run in the SDK's worker threads, each borrowing its own index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from kenning.errors import KenningError
from kenning.filters import Filters

from . import answer_handlers as answers
from .errors import message_of
from .service import Service

#: the longest document text ``read_document`` returns whole; past it, ask for a span
MAX_TEXT = 100_000
INSTRUCTIONS = (
    "kenning searches the user's own notes (Markdown, text, HTML, PDF) by keyword and meaning. "
    "Use `search` to find passages, `ask` for an answer whose every citation is checked "
    "against the notes, and `read_document` to read a source (by the doc_id that search and "
    "ask return), whole or a span of it. `links` lists a note's outgoing links, backlinks and "
    "unresolved links. `conflicts` lists notes that disagree with each other."
)


@contextmanager
def reported() -> Iterator[None]:
    """A kenning error reaches the assistant with its message (the SDK hides the text of any
    other exception, which it treats as a crash)."""
    try:
        yield
    except KenningError as e:
        raise ToolError(message_of(e)) from e


def build(service: Service) -> MCPServer:
    """An MCP server whose tools call ``service``."""
    server: MCPServer = MCPServer("kenning", instructions=INSTRUCTIONS, log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    def search(
        query: str,
        k: int = 10,
        where: list[str] | None = None,
        path: list[str] | None = None,
        type: list[str] | None = None,
        mode: str = "hybrid",
    ) -> dict[str, Any]:
        """Search the notes by keyword and meaning (hybrid), best first. Filters: ``where``
        metadata conditions (["tag=ml", "date>=2025-01-01"]), ``path`` globs under the root
        (["git/**"]), ``type`` (markdown, text, html, pdf); ``mode`` hybrid, bm25 or dense.
        Each hit has the passage text, its path, heading, offsets, ``doc_id`` and
        ``open_url`` (opens the note in Obsidian, or as a file)."""
        with reported():
            return service.search(query, max(1, min(k, 100)), where, path, type, mode)

    @server.tool(annotations=read_only)
    def ask(
        question: str,
        k: int = 5,
        where: list[str] | None = None,
        path: list[str] | None = None,
        type: list[str] | None = None,
    ) -> dict[str, Any]:
        """Answer a question from the notes. The answer cites passages as [n]; each sentence
        is checked against what it cites (status supported, unsupported or contradicted).
        When no note is close enough, ``refused`` is true and the nearest passages are
        listed."""
        with reported():
            filters = Filters.parse(where, path, type)
            _, data = answers.answer(service, question, max(1, min(k, 50)), filters)
        keep: tuple[str, ...] = ("n", "doc_id", "path", "title", "heading", "page", "start")
        keep += ("end", "lines", "text", "open_url")
        return {
            "text": data["text"],
            "refused": data["refused"],
            "sentences": [
                {"text": s["text"], "citations": s["citations"], "status": s["status"]}
                for s in data["sentences"]
            ],
            "sources": [{k: s[k] for k in keep} for s in data["sources"]],
        }

    @server.tool(annotations=read_only)
    def read_document(
        doc_id: int, start: int | None = None, end: int | None = None
    ) -> dict[str, Any]:
        """Read an indexed note by ``doc_id``: its title, path, type and text, or only the
        span ``[start, end)`` of the text (the offsets search hits and sources give)."""
        with reported():
            doc = service.document(doc_id)
        text = doc["text"]
        if start is not None or end is not None:
            lo = max(0, start or 0)
            hi = min(len(text), end if end is not None else len(text))
            doc.update(text=text[lo:hi], start=lo, end=hi)
        elif len(text) > MAX_TEXT:
            doc.update(text=text[:MAX_TEXT], truncated=True, length=len(text))
        return doc

    @server.tool(annotations=read_only)
    def links(note: str) -> dict[str, Any]:
        """A note's links, resolved as Obsidian resolves them: ``outgoing`` (wikilinks,
        embeds and Markdown links it writes), ``backlinks`` (the notes that link to it) and
        ``unresolved`` (its links that name no note). ``note``: its path as search gives it,
        or its name. Each link has ``source``, ``kind``, ``target``, ``heading``, ``alias``
        and ``path`` (the note it names; null when unresolved)."""
        with reported():
            return service.links(note)

    @server.tool(annotations=read_only)
    def conflicts(paths: list[str] | None = None, limit: int = 20) -> dict[str, Any]:
        """Notes that disagree: pairs of sentences from different notes that make the same
        claim but for one value (a number, date, name or yes/no), most confident first, each
        side with its quote, path, line and date, and which version is more recent.
        ``paths``: only conflicts with a side under these indexed folders or files."""
        from .conflicts_api import report

        with reported():
            return report(service, paths, limit)

    return server


def run_stdio(location: str, embedder: str | None = None) -> None:
    """`kenning mcp`: the MCP server on stdin/stdout until the client closes it."""
    service = Service(location, embedder)
    try:
        build(service).run("stdio")
    finally:
        service.close()
