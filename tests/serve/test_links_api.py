"""A note's links over HTTP (``GET /api/links?note=``) and MCP (tool ``links``): the same
outgoing links, backlinks and unresolved links as ``kenning links --json``, from the one
library call; a note the index does not hold is a 404 (HTTP) or a tool error (MCP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from conftest import write_notes
from mcp import Client
from serving import running
from typer.testing import CliRunner

from kenning import Index
from kenning.cli import app
from kenning.serve.mcp_server import build
from kenning.serve.service import Service

VAULT = {
    "Home.md": "# Home\n\n[[Tmux#Panes|panes]], ![[Vim]], [[Missing]] and [vim](tools/vim.md).\n",
    "Tmux.md": "# Tmux\n\nBack [[home]].\n",
    "tools/Vim.md": "# Vim\n\nModal.\n",
}


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The vault above, indexed with the hash embedder; returns (index file, vault root)."""
    base = tmp_path_factory.mktemp("links")
    root = base / "vault"
    write_notes(root, VAULT)
    db = base / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([root])
    return db, root.resolve()


@pytest.fixture(scope="module")
def client(vault: tuple[Path, Path]) -> Iterator[httpx.Client]:
    with running(vault[0]) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def cli_json(db: Path, note: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--index", str(db), "links", note, "--json"])
    assert result.exit_code == 0, result.output
    got: dict[str, Any] = json.loads(result.output)
    return got


def test_api_lists_outgoing_backlinks_and_unresolved(vault, client) -> None:
    db, root = vault
    r = client.get("/api/links", params={"note": "Home"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["path"] == str(root / "Home.md")
    # tests/cli/test_cli_links.py checks each link of this vault; the API must say the same
    assert got == cli_json(db, "Home")
    assert [x["kind"] for x in got["outgoing"]] == ["wikilink", "embed", "wikilink", "markdown"]
    assert [(x["source"], x["target"], x["path"]) for x in got["unresolved"]] == [
        (str(root / "Home.md"), "Missing", None)
    ]


def test_api_takes_a_stored_path_and_matches_the_cli(vault, client) -> None:
    db, root = vault
    vim = str(root / "tools/Vim.md")
    got = client.get("/api/links", params={"note": vim}).json()
    assert got["path"] == vim and got["outgoing"] == [] and got["unresolved"] == []
    assert {x["source"] for x in got["backlinks"]} == {str(root / "Home.md")}
    assert len(got["backlinks"]) == 2  # the embed and the Markdown link
    assert got == cli_json(db, vim)


def test_api_answers_404_for_a_note_not_in_the_index(client) -> None:
    for note in ("Missing", "nowhere/at/all.md", "a\x00b"):
        r = client.get("/api/links", params={"note": note})
        assert r.status_code == 404, (note, r.text)
        body = r.json()
        assert body["error"] == "NotFound"
        assert "is not a note in this index" in body["detail"]
    assert client.get("/api/links").status_code == 422  # note is required


def test_mcp_links_tool_returns_what_the_api_does(vault, client) -> None:
    db, _ = vault
    service = Service(db)

    async def run() -> tuple[Any, Any, Any]:
        async with Client(build(service)) as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
            found = await mcp.call_tool("links", {"note": "Home"})
            missing = await mcp.call_tool("links", {"note": "Missing"})
            return tools["links"], found, missing

    try:
        tool, found, missing = asyncio.run(run())
    finally:
        service.close()
    assert tool.annotations.read_only_hint is True
    assert tool.input_schema["required"] == ["note"]
    assert not found.is_error
    assert found.structured_content == client.get("/api/links", params={"note": "Home"}).json()
    assert missing.is_error and "Missing is not a note in this index" in missing.content[0].text
