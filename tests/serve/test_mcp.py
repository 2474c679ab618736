"""The MCP server, driven by the official SDK's own client: over stdio (`kenning mcp` as a
subprocess) and over streamable HTTP (mounted at /mcp under `kenning serve`)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from serving import make_index, running

from kenning.serve.security import Security

KEY = "mcp-test-key"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_index(tmp_path_factory.mktemp("mcp"))[0]


async def exercise(client: Client) -> dict[str, Any]:
    """List the tools and call each, as an assistant would."""
    listed = (await client.list_tools()).tools
    found = await client.call_tool("search", {"query": "softmax probabilities", "k": 3})
    hit = found.structured_content["hits"][0]
    answered = await client.call_tool("ask", {"question": "what does the softmax function do?"})
    span = {"doc_id": hit["doc_id"], "start": hit["start"], "end": hit["end"]}
    read = await client.call_tool("read_document", span)
    whole = await client.call_tool("read_document", {"doc_id": hit["doc_id"]})
    missing = await client.call_tool("read_document", {"doc_id": 424242})
    return {
        "tools": {t.name: t for t in listed},
        "hit": hit,
        "answer": answered.structured_content,
        "read": read.structured_content,
        "whole": whole.structured_content,
        "missing": missing,
    }


def check(result: dict[str, Any]) -> None:
    tools = result["tools"]
    assert sorted(tools) == ["ask", "conflicts", "links", "read_document", "search"]
    assert tools["search"].annotations.read_only_hint is True
    assert {"query", "k", "where", "path", "type"} <= set(
        tools["search"].input_schema["properties"]
    )
    hit = result["hit"]
    assert hit["path"].endswith("softmax.md") and hit["doc_id"]
    answer = result["answer"]
    assert not answer["refused"] and "[1]" in answer["text"]
    assert answer["sentences"][0]["status"] == "supported"
    assert answer["sources"][0]["doc_id"] == hit["doc_id"]
    assert result["read"]["text"] == hit["text"] and result["read"]["start"] == hit["start"]
    assert result["whole"]["text"][hit["start"] : hit["end"]] == hit["text"]
    assert result["missing"].is_error and "424242" in result["missing"].content[0].text


@pytest.mark.slow
def test_stdio_client_lists_and_calls_its_tools(db: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "kenning", "--index", str(db), "mcp"], env=env
    )

    async def run() -> dict[str, Any]:
        async with Client(server, read_timeout_seconds=60) as client:
            return await exercise(client)

    check(asyncio.run(run()))


def test_http_client_lists_and_calls_its_tools(db: Path) -> None:
    with running(db, Security(api_key=KEY)) as server:

        async def run() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(headers=headers, timeout=60) as http:
                transport = streamable_http_client(server.url + "/mcp", http_client=http)
                async with Client(transport) as client:
                    return await exercise(client)

        check(asyncio.run(run()))
