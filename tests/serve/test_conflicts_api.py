"""Notes that disagree over HTTP (``GET /api/conflicts``, and ``conflicts`` in an answer) and
MCP (tool ``conflicts``): the same report as ``kenning conflicts --json``."""

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

FEED = "Feed the starter the night before.\n\n"  # the same sentence in two notes
STONE = "Heat the stone first.\n\n"
NOTES = {
    "bread.md": "# Bread\n\n" + FEED + "The dough rises for 12 hours at room temperature.\n",
    "baking/loaf.md": "# Bread loaf\n\n"
    + FEED
    + "The dough rises for 8 hours at room temperature.\n",
    "garden.md": "# Garden\n\nWater the tomatoes at the base every morning.\n",
}


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("conflicts")
    root = write_notes(base / "notes", NOTES)
    db = base / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([root])
    return db, root.resolve()


@pytest.fixture(scope="module")
def client(notes: tuple[Path, Path]) -> Iterator[httpx.Client]:
    with running(notes[0]) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def cli_json(db: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--index", str(db), "conflicts", *args, "--json"])
    assert result.exit_code == 0, result.output
    got: dict[str, Any] = json.loads(result.output)
    return got


def test_api_reports_what_the_cli_does(notes, client) -> None:
    db, root = notes
    r = client.get("/api/conflicts")
    assert r.status_code == 200, r.text
    got = r.json()
    [c] = got["conflicts"]
    assert c["kind"] == "number" and set(c["values"]) == {"12", "8"}
    assert {s["path"] for s in c["sides"]} == {str(root / "bread.md"), str(root / "baking/loaf.md")}
    assert all(s["lines"] == [5, 5] for s in c["sides"])
    assert got["notes"] == 3 and got["total"] == 1
    assert cli_json(db)["conflicts"] == got["conflicts"]
    again = client.get("/api/conflicts").json()  # nothing changed: nothing checked again
    assert again["checked_notes"] == 0 and again["conflicts"] == got["conflicts"]
    under = client.get("/api/conflicts", params={"path": str(root / "garden.md")}).json()
    assert under["conflicts"] == [] and under["total"] == 1


def test_an_answer_carries_its_conflicts(client) -> None:
    r = client.post("/api/ask", json={"question": "dough rises for hours at room temperature"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert not got["refused"], got["text"]
    [c] = got["conflicts"]
    assert set(c["values"]) == {"12", "8"} and c["verified"] == [True, True]
    assert "Your notes disagree" in got["text"]
    assert {s["n"] for s in c["sides"]} <= {src["n"] for src in got["sources"]}


def test_mcp_conflicts_tool_returns_what_the_api_does(notes, client) -> None:
    db, _ = notes
    service = Service(db)

    async def run() -> tuple[Any, Any]:
        async with Client(build(service)) as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
            return tools["conflicts"], await mcp.call_tool("conflicts", {})

    try:
        tool, found = asyncio.run(run())
    finally:
        service.close()
    assert tool.annotations.read_only_hint is True and not found.is_error
    assert found.structured_content["conflicts"] == client.get("/api/conflicts").json()["conflicts"]
