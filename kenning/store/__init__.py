"""Stores, chosen by the index location: a file path or a URL whose scheme names a backend.

    open_store("notes.db")                  # SQLite, the default
    open_store("sqlite:///notes.db")        # the same file
    open_store("sqlite:////abs/notes.db")   # an absolute path
    open_store("postgresql://me@db:5432/notes")  # PostgreSQL + pgvector (the postgres extra)

Built-in and plugin stores register in ``stores`` by URL scheme (entry-point group
``kenning.stores``); an unknown scheme raises ``UnknownBackend`` listing the known ones.
"""

from __future__ import annotations

import re
from pathlib import Path

from kenning.errors import UnknownBackend

from .base import ChunkRow, Scope, SourceRow, Store, stores
from .postgres import PostgresStore  # registers postgresql:// (psycopg is imported lazily)
from .sqlite import SQLiteStore  # registers the built-in backend

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")


def scheme(location: str | Path) -> str:
    """The backend a location names: its URL scheme, or ``sqlite`` for a plain path."""
    m = _URL.match(str(location))
    return m.group(1).lower() if m else "sqlite"


def open_store(location: str | Path, create: bool = True) -> Store:
    """Open (or, with ``create``, make) the store at a path or URL."""
    name = scheme(location)
    try:
        cls = stores.get(name)
    except UnknownBackend as e:
        known = [f"{n}://" for n in e.valid]
        raise UnknownBackend("index URL scheme", f"{name}://", known) from None
    return cls.open_location(str(location), create)  # type: ignore[attr-defined]


__all__ = [
    "ChunkRow",
    "PostgresStore",
    "SQLiteStore",
    "Scope",
    "SourceRow",
    "Store",
    "open_store",
    "scheme",
    "stores",
]
