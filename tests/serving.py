"""Helpers for the server tests: a real index, a real uvicorn server on 127.0.0.1, SSE parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import write_notes

from kenning import Index
from kenning.serve.app import create_app
from kenning.serve.security import Security
from kenning.serve.server import BackgroundServer


def make_index(
    folder: Path, notes: dict[str, str] | None = None, embedder: str = "hash", refuse: float = 0.0
) -> tuple[Path, Path]:
    """An index of the test notes in ``folder``; returns (index file, notes root).

    The hash embedder's cosines are low, so kenning.toml beside the index lowers the refusal
    threshold (the real model keeps its measured default: pass ``refuse=None``)."""
    root = write_notes(folder / "notes", notes) if notes else write_notes(folder / "notes")
    db = folder / "idx" / "index.db"
    with Index.open(db, embedder=embedder) as index:
        index.add([root])
    if refuse is not None:
        (db.parent / "kenning.toml").write_text(f"[thresholds]\nrefuse = {refuse}\n")
    return db, root


@contextmanager
def running(db: Path, security: Security | None = None, **kw: Any) -> Iterator[BackgroundServer]:
    """``create_app`` on the index, served by uvicorn on a free loopback port."""
    with BackgroundServer(create_app(db, security=security, **kw)) as server:
        yield server


def events(text: str) -> list[tuple[str, Any]]:
    """Server-Sent Events as (event, data) pairs; data is parsed as JSON when it is JSON."""
    out = []
    for block in text.split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            payload = "\n".join(data)
            try:
                out.append((name, json.loads(payload)))
            except json.JSONDecodeError:
                out.append((name, payload))
    return out
