"""Agent traces: GenAI-convention spans (SDK in-memory exporter), kept in the index, sent by
OTLP/HTTP to a collector on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kenning import Index
from kenning.agent import Agent, ScriptedCaller, ToolCall, TraceStore, Tracing
from kenning.answer.extractive import ExtractiveLLM
from kenning.errors import ConfigError, NotFound

SCRIPT = [
    ToolCall("search", {"query": "softmax"}),
    ToolCall("search", {"query": "softmax"}),
    ToolCall("links", {"note": "attention"}),
]


@pytest.fixture
def vault(index: Index, notes: Path) -> Index:
    index.add([notes])
    return index


def run_traced(index: Index, tracing: Tracing) -> Any:
    caller = ScriptedCaller(ExtractiveLLM(), list(SCRIPT))
    return Agent(index, caller=caller, tracing=tracing).run("what is softmax?")


def test_spans_follow_the_genai_conventions(vault: Index) -> None:
    memory = InMemorySpanExporter()
    run = run_traced(vault, Tracing(exporters=[memory]))
    spans = memory.get_finished_spans()
    root = next(s for s in spans if s.parent is None)
    assert root.name == "invoke_agent kenning"
    assert f"{root.context.trace_id:032x}" == run.run_id
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "kenning"
    assert attrs["kenning.steps"] == 3
    assert attrs["gen_ai.usage.input_tokens"] > 0
    chats = [s for s in spans if s.attributes and s.attributes["gen_ai.operation.name"] == "chat"]
    tools = [
        s for s in spans if s.attributes and s.attributes["gen_ai.operation.name"] == "execute_tool"
    ]
    assert len(chats) == 5  # three calls, the model's "answer", and the answer itself
    for s in chats:
        a = dict(s.attributes or {})
        assert s.name == f"chat {a['gen_ai.request.model']}"
        assert {"gen_ai.provider.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}
        assert "gen_ai.usage.output_tokens" in a and "gen_ai.provider.name" in a
    assert [s.name for s in tools] == [
        "execute_tool search",
        "execute_tool search",
        "execute_tool links",
    ]
    first, repeat, links = (dict(s.attributes or {}) for s in tools)
    assert first["gen_ai.tool.name"] == "search" and first["gen_ai.tool.type"] == "function"
    assert json.loads(first["gen_ai.tool.call.arguments"]) == {"query": "softmax"}
    assert list(first["kenning.tool.chunk_ids"]) == run.steps[0].chunk_ids
    assert first["kenning.tool.result_chars"] == len(run.steps[0].result)
    assert repeat["kenning.tool.repeated"] is True and not repeat["kenning.tool.chunk_ids"]
    assert links["kenning.tool.chunk_ids"] == ()
    for s in [*chats, *tools]:
        assert s.parent is not None and s.parent.span_id == root.context.span_id


def test_every_run_is_stored_and_read_back_as_a_tree(vault: Index) -> None:
    first = run_traced(vault, Tracing(vault.location))
    second = run_traced(vault, Tracing(vault.location))
    with TraceStore(vault.location) as traces:
        assert [r.trace_id for r in traces.runs()] == [second.run_id, first.run_id]
        tree = traces.run(first.run_id[:8])  # a prefix is enough
        latest = traces.run()
        with pytest.raises(NotFound):
            traces.run("ffff0000")
        with pytest.raises(ConfigError):
            traces.run("not hex")
    assert latest.trace_id == second.run_id
    assert tree.name == "invoke_agent kenning" and tree.parent_id is None
    names = [c.name for c in tree.children]
    assert names.count("execute_tool search") == 2 and "execute_tool links" in names
    assert all(c.end_ns >= c.start_ns >= tree.start_ns for c in tree.children)
    data = tree.to_dict()
    assert data["children"][1]["attributes"]["gen_ai.tool.name"] == "search"


def test_tracing_off_builds_no_span_and_writes_nothing(vault: Index, tmp_path: Path) -> None:
    off = Tracing.off()
    assert off.provider is None and not off.stored
    run = run_traced(vault, off)
    assert len(run.run_id) == 32
    with TraceStore(vault.location, create=True) as traces:
        assert traces.runs() == []


class Collector(ThreadingHTTPServer):
    """Just enough of an OpenTelemetry collector: it keeps each OTLP/HTTP export's body."""

    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CollectorHandler)
        self.exports: list[tuple[str, str, bytes]] = []
        self.got = threading.Event()


class CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.exports.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.got.set()


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = Collector()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_otlp_sends_the_spans_to_a_collector(vault: Index, collector: Collector) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    url = f"http://127.0.0.1:{collector.server_port}"
    tracing = Tracing(vault.location, otlp=url)
    run = run_traced(vault, tracing)
    tracing.close()  # flushes the batch
    assert collector.got.wait(10)
    path, kind, body = collector.exports[0]
    assert path == "/v1/traces" and kind == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert {s.trace_id.hex() for s in spans} == {run.run_id}
    names = [s.name for s in spans]
    assert "invoke_agent kenning" in names and names.count("execute_tool search") == 2
    with TraceStore(vault.location) as traces:  # still kept in the index too
        assert traces.run(run.run_id).name == "invoke_agent kenning"


def test_otlp_url_is_checked() -> None:
    with pytest.raises(ConfigError):
        Tracing(otlp="localhost:4318")


@pytest.mark.postgres
def test_traces_on_a_postgresql_index(notes: Path) -> None:
    """On a PostgreSQL index the runs go into a table of its database (the agent's own,
    outside the store's migrations), and `kenning trace` reads them back."""
    from conftest import postgres_url
    from typer.testing import CliRunner

    from kenning.cli import app

    url = postgres_url()
    with Index.open(url, embedder="hash") as pg:
        pg.add([notes])
        tracing = Tracing(pg.store.address)
        assert tracing.stored
        first = run_traced(pg, tracing)
        second = run_traced(pg, Tracing(pg.store.address))
        version = pg.store.get_meta("schema_version")
    with TraceStore(url) as traces:
        assert [r.trace_id for r in traces.runs()] == [second.run_id, first.run_id]
        tree = traces.run(first.run_id[:8])
        assert traces.run().trace_id == second.run_id
        with pytest.raises(NotFound):
            traces.run("ffff0000")
    names = [c.name for c in tree.children]
    assert names.count("execute_tool search") == 2 and "execute_tool links" in names
    assert tree.children[1].attributes["gen_ai.tool.name"] == "search"
    with TraceStore(url) as traces:  # written twice, kept once
        traces.write([])
        assert len(traces.runs()) == 2
    with Index.open(url, embedder="hash") as pg:  # the store still opens, same version
        assert pg.store.get_meta("schema_version") == version
    out = CliRunner().invoke(app, ["--index", url, "--embedder", "hash", "trace", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["trace_id"] == second.run_id
