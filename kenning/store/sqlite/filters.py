"""``Filters`` compiled to SQL over the ``sources`` table, for SQLite.

Metadata is a JSON column: a condition on a key is an ``EXISTS`` over ``json_each`` (so a
list matches when any item does, and ``!=`` when none does). Comparisons and path globs run
as small SQL functions that reuse ``kenning.filters``' own rules, so a filtered search in
SQL selects exactly the sources ``Filters.matches`` would, without loading them into Python.
``SQLFilters`` walks the filter; this module writes each condition.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from typing import Any

from kenning.filters import compare, relative
from kenning.store.sql import SQLFilters


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _compare(actual: Any, json_type: str, op: str, value: str) -> bool:
    if actual is None or json_type == "null":
        return False
    if json_type in ("true", "false"):  # json_each gives 1/0; the reference sees a bool
        actual = json_type == "true"
    return compare(actual, op, value)


def register_functions(db: sqlite3.Connection) -> None:
    """The SQL functions ``filter_sql`` uses; call once per connection."""
    db.create_function("kenning_compare", 4, _compare, deterministic=True)
    db.create_function("kenning_relpath", 2, relative, deterministic=True)
    db.create_function(
        "kenning_under",
        2,
        lambda actual, prefix: isinstance(actual, str) and actual.lower().startswith(prefix),
        deterministic=True,
    )
    db.create_function(
        "kenning_glob", 2, lambda rx, text: bool(_regex(rx).match(text)), deterministic=True
    )


class SQLiteFilters(SQLFilters):
    """Each condition of a filter in SQLite, with ``?`` parameters."""

    glob = "(kenning_glob(?, kenning_relpath(s.path, s.root)) OR kenning_glob(?, s.path))"
    column = "kenning_compare(s.{key}, 'text', ?, ?)"
    metadata = (
        "EXISTS (SELECT 1 FROM json_each(s.metadata, '$.\"' || ? || '\"') j "
        "WHERE kenning_compare(j.value, j.type, ?, ?))"
    )
    nested = (
        "EXISTS (SELECT 1 FROM json_each(s.metadata, '$.\"' || ? || '\"') j "
        "WHERE j.type = 'text' AND kenning_under(j.value, ?))"
    )

    def types(self, types: list[str]) -> tuple[str, list[Any]]:
        return f"s.type IN ({','.join('?' * len(types))})", types


#: a WHERE clause over ``sources s`` and its parameters, from ``Filters``
filter_sql = SQLiteFilters()
