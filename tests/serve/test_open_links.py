"""Links back into the app: the HTTP API and the MCP tools give each hit and each source the
``open_url`` that opens it in Obsidian (a vault root), or a ``file://`` URI (any other root)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
from conftest import NOTES, write_notes
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from serving import running

from kenning import Index


@pytest.fixture(scope="module")
def vault_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The test notes as an Obsidian vault named "Test Vault", indexed with the hash embedder
    (the refusal threshold lowered for its low cosines, as ``serving.make_index`` does)."""
    base = tmp_path_factory.mktemp("vault")
    vault = write_notes(base / "Test Vault", NOTES)
    (vault / ".obsidian").mkdir()
    db = base / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([vault])
    (db.parent / "kenning.toml").write_text("[thresholds]\nrefuse = 0.0\n")
    return db, vault


def expected(vault: Path, item: dict[str, Any]) -> dict[str, str]:
    """The query of the obsidian:// link for a hit or source (as a dict)."""
    rel = Path(item["path"]).relative_to(vault).as_posix().removesuffix(".md")
    markdown = item["path"].endswith(".md")
    heading = item["heading"].rsplit(" > ", 1)[-1] if markdown else ""
    return {"vault": "Test Vault", "file": rel + (f"#{heading}" if heading else "")}


def link_query(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("obsidian", "open", ""), url
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_api_hits_and_sources_carry_the_obsidian_link(vault_index) -> None:
    db, vault = vault_index
    with running(db) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        hits = client.get("/api/search", params={"q": "softmax probabilities", "k": 3}).json()
        r = client.post("/api/ask", json={"question": "what does the softmax function do?"})
        schema = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert len(hits["hits"]) == 3
    for hit in hits["hits"]:
        assert link_query(hit["open_url"]) == expected(vault, hit)
    assert hits["hits"][0]["open_url"].startswith(
        "obsidian://open?vault=Test%20Vault&file=ml%2Fsoftmax"
    )
    answer = r.json()
    assert r.status_code == 200 and not answer["refused"] and answer["sources"]
    for source in answer["sources"]:
        assert link_query(source["open_url"]) == expected(vault, source)
    for model in ("HitModel", "SourceModel"):
        assert schema[model]["properties"]["open_url"]["type"] == "string"


def test_mcp_search_and_ask_carry_the_obsidian_link(vault_index) -> None:
    db, vault = vault_index
    with running(db) as server:

        async def run() -> tuple[dict[str, Any], dict[str, Any]]:
            async with httpx.AsyncClient(timeout=60) as http:
                transport = streamable_http_client(server.url + "/mcp", http_client=http)
                async with Client(transport) as client:
                    found = await client.call_tool("search", {"query": "softmax", "k": 2})
                    asked = await client.call_tool("ask", {"question": "what is softmax?"})
                    return found.structured_content, asked.structured_content

        found, asked = asyncio.run(run())
    assert found["hits"] and asked["sources"]
    for item in found["hits"]:
        assert link_query(item["open_url"]) == expected(vault, item)
    for source in asked["sources"]:
        assert source["open_url"].startswith("obsidian://open?vault=Test%20Vault&file=")
        assert link_query(source["open_url"])["file"].startswith(
            Path(source["path"]).relative_to(vault).as_posix().removesuffix(".md")
        )
