"""Traces of agent runs: OpenTelemetry spans, kept in the index and sent to a collector if asked.

Each run is one trace: an ``invoke_agent`` span, under it a ``chat`` span per model call and an
``execute_tool`` span per tool call, named and attributed as the OpenTelemetry GenAI semantic
conventions say (``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.tool.name``,
``gen_ai.tool.call.arguments``...), plus kenning's own (``kenning.tool.chunk_ids``, the size of
a result, the repeated and invalid calls). The run's id is its trace id.

``TraceStore`` keeps finished spans in their own table of the index's SQLite file (like the
evaluation history: not the ``Store``'s, so a store backend never knows about agents), through
``IndexExporter``, an ordinary ``SpanExporter``. On a PostgreSQL index the same table is made
in the index's database (in kenning's schema, on a connection of its own), beside the
store's tables but outside its migrations. ``--otlp URL`` adds the OTLP/HTTP exporter
(the ``otlp`` extra), batched on its own thread. With tracing off the agent gets OpenTelemetry's
no-op tracer: no span is built, nothing is written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from kenning.errors import ConfigError, KenningError, MissingExtra, NotFound
from kenning.store.sqlite import own_tables

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS agent_spans_roots ON agent_spans (parent_id, start_ns);
"""
#: the same table in PostgreSQL (nanosecond times need BIGINT)
PG_SCHEMA = SCHEMA.replace("INTEGER", "BIGINT")
log = logging.getLogger(__name__)
#: the instrumentation scope's name on every span
SCOPE = "kenning.agent"


@dataclass
class SpanRow:
    """A stored span, and the spans under it once ``tree`` has put them there."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[SpanRow] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "seconds": round(self.seconds, 6),
            "status": self.status,
            "attributes": self.attributes,
            "events": self.events,
            "children": [c.to_dict() for c in self.children],
        }


_COLUMNS = "trace_id, span_id, parent_id, name, start_ns, end_ns, status, attributes, events"


class TraceStore:
    """Agent runs' spans in the index at ``location``: its SQLite file, or its PostgreSQL
    database (a ``postgresql://`` URL with its password: the store's ``address``)."""

    def __init__(self, location: str | Path, create: bool = False) -> None:
        self.pg = _postgres(str(location))
        self.db: Any = (
            _pg_tables(str(location), create)
            if self.pg
            else own_tables(location, SCHEMA, "agent traces", create)
        )
        self.p = "%s" if self.pg else "?"  # the driver's parameter mark

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, spans: Sequence[ReadableSpan]) -> None:
        rows = [_row(s) for s in spans if s.context is not None]
        marks = ",".join([self.p] * 9)
        if self.pg:
            update = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ")[2:])
            with self.db.transaction(), self.db.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO agent_spans ({_COLUMNS}) VALUES ({marks}) "
                    f"ON CONFLICT (trace_id, span_id) DO UPDATE SET {update}",
                    rows,
                )
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                f"INSERT OR REPLACE INTO agent_spans ({_COLUMNS}) VALUES ({marks})", rows
            )

    def runs(self, limit: int = 20) -> list[SpanRow]:
        """The latest runs' root spans, newest first."""
        cur = self.db.execute(
            f"SELECT {_COLUMNS} FROM agent_spans WHERE parent_id IS NULL "
            f"ORDER BY start_ns DESC LIMIT {self.p}",
            (limit,),
        )
        return [_span(r) for r in cur]

    def run(self, run_id: str | None = None) -> SpanRow:
        """One run as a tree (``run_id``: its trace id or a prefix of it; None: the latest)."""
        if run_id is None:
            latest = self.runs(1)
            if not latest:
                raise NotFound("no agent run is recorded in this index yet")
            trace_id = latest[0].trace_id
        else:
            prefix = run_id.strip().lower()
            if not prefix or any(c not in "0123456789abcdef" for c in prefix):
                raise ConfigError(
                    f"a run id is hexadecimal (as `kenning trace` lists them): {run_id!r}"
                )
            found = [
                r[0]
                for r in self.db.execute(
                    "SELECT DISTINCT trace_id FROM agent_spans "
                    f"WHERE trace_id LIKE {self.p} LIMIT 2",
                    (prefix + "%",),
                )
            ]
            if not found:
                raise NotFound(
                    f"no agent run {run_id!r} in this index (`kenning trace` lists them)"
                )
            if len(found) > 1:
                raise ConfigError(f"the run id {run_id!r} is ambiguous; give more of it")
            trace_id = found[0]
        cur = self.db.execute(
            f"SELECT {_COLUMNS} FROM agent_spans WHERE trace_id = {self.p} "
            "ORDER BY start_ns, span_id",
            (trace_id,),
        )
        return tree([_span(r) for r in cur])


def _postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def _pg_tables(url: str, create: bool) -> Any:
    """A connection of its own to the PostgreSQL index at ``url``, with the spans' table
    made in kenning's schema. Without ``create`` an index that does not exist is
    ``NotFound``."""
    from kenning.store.postgres import _psycopg, redact
    from kenning.store.postgres.hnsw import split_url
    from kenning.store.postgres.schema import SCHEMA as PG

    psycopg = _psycopg()
    conninfo, _ = split_url(url, {})
    try:
        db = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as e:
        raise ConfigError(f"cannot connect to {redact(url)}: {str(e).strip()}") from None
    made = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (PG,)).fetchone()
    if made is None and not create:
        db.close()
        raise NotFound(f"no index at {redact(url)}")
    db.execute(f"CREATE SCHEMA IF NOT EXISTS {PG}")
    db.execute(f"SET search_path TO {PG}, public")
    for statement in filter(str.strip, PG_SCHEMA.split(";")):
        db.execute(statement)
    return db


def tree(spans: list[SpanRow]) -> SpanRow:
    """The spans of one trace as a tree under its root (children in start order)."""
    by_id = {s.span_id: s for s in spans}
    roots: list[SpanRow] = []
    for s in spans:
        parent = by_id.get(s.parent_id or "")
        (parent.children if parent else roots).append(s)
    if not roots:
        raise NotFound("the run has no spans")
    return roots[0]


def _row(s: ReadableSpan) -> tuple[Any, ...]:
    ctx = s.context
    assert ctx is not None
    parent = f"{s.parent.span_id:016x}" if s.parent is not None else None
    events = [
        {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
        for e in s.events
    ]
    return (
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        parent,
        s.name,
        s.start_time or 0,
        s.end_time or 0,
        s.status.status_code.name.lower(),
        json.dumps(dict(s.attributes or {}), default=list),
        json.dumps(events, default=list),
    )


def _span(r: tuple[Any, ...]) -> SpanRow:
    return SpanRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), json.loads(r[8]))


class IndexExporter:
    """A ``SpanExporter`` (the SDK's interface: ``export``, ``shutdown``, ``force_flush``)
    that writes finished spans into the index's SQLite file. The SDK is imported only when
    a run is traced."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            with self._lock, TraceStore(self.location, create=True) as traces:
                traces.write(spans)
        except (sqlite3.Error, OSError, KenningError) as e:
            log.warning("agent spans not stored: %s", e)
            return SpanExportResult.FAILURE
        except Exception as e:  # the PostgreSQL driver's errors (psycopg is optional)
            if type(e).__module__.split(".")[0] != "psycopg":
                raise
            log.warning("agent spans not stored: %s", e)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def otlp_exporter(url: str) -> Any:
    """The OTLP/HTTP exporter for a collector at ``url`` (``/v1/traces`` added to a bare host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--otlp wants a collector's http(s) URL, not {url!r}")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise MissingExtra("opentelemetry-exporter-otlp-proto-http", "otlp") from None
    endpoint = url if parts.path.strip("/") else url.rstrip("/") + "/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint, timeout=10)


class Tracing:
    """Where a run's spans go: the index (``location``), a collector (``otlp``), more
    exporters (tests pass the SDK's ``InMemorySpanExporter``), or nowhere (``Tracing.off()``).

    One provider per ``Tracing``, never the global one: kenning does not change how the
    program embedding it traces."""

    def __init__(
        self,
        location: str | Path | None = None,
        otlp: str | None = None,
        exporters: Sequence[SpanExporter] = (),
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self.location = str(location) if location is not None else None
        self.provider: Any = None
        processors: list[Any] = []
        if self.location is not None and self.stored:
            processors.append(
                SimpleSpanProcessor(cast("SpanExporter", IndexExporter(self.location)))
            )
        processors += [SimpleSpanProcessor(e) for e in exporters]
        if otlp:
            processors.append(BatchSpanProcessor(otlp_exporter(otlp)))
        if processors:
            self.provider = TracerProvider()
            for p in processors:
                self.provider.add_span_processor(p)
            self.tracer: Any = self.provider.get_tracer(SCOPE)
        else:
            self.tracer = trace.NoOpTracer()

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    @property
    def stored(self) -> bool:
        """Whether runs are kept in the index (``kenning trace`` can show them)."""
        location = self.location
        return location is not None and (
            "://" not in location or location.startswith("sqlite:///") or _postgres(location)
        )

    def flush(self) -> None:
        if self.provider is not None:
            self.provider.force_flush()

    def close(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None
