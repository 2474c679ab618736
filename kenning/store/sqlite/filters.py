"""``Filters`` compiled to SQL over the ``sources`` table, for SQLite.

Metadata is a JSON column: a condition on a key is an ``EXISTS`` over ``json_each`` (so a
list matches when any item does, and ``!=`` when none does). Comparisons run as small SQL
functions that reuse ``kenning.filters``' own rules, so a filtered search in SQL selects
exactly the sources ``Filters.matches`` would, without loading them into Python.

A path glob is SQLite's own ``GLOB`` where that says the same (``?`` as ``[^/]``; a ``*``
that must stay in one folder as ``*`` with the path's count of ``/`` fixed; a trailing
``**`` as ``*``), which runs in C; only a glob that mixes ``**`` with other wildcards also
runs ``kenning.filters.glob_regex`` in Python, on the paths the ``GLOB`` let through.
``SQLFilters`` walks the filter and looks the paths up by prefix; this module writes each
condition.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from typing import Any

from kenning.filters import compare, glob_regex, glob_shape, prefix_end
from kenning.store.sqlfilters import SQLFilters


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
    db.create_function(
        "kenning_under",
        2,
        lambda actual, prefix: isinstance(actual, str) and actual.lower().startswith(prefix),
        deterministic=True,
    )
    db.create_function(
        "kenning_glob", 2, lambda rx, text: bool(_regex(rx).match(text)), deterministic=True
    )


def sqlite_glob(pattern: str) -> str:
    """``pattern`` as a SQLite ``GLOB`` that matches at least what it matches: ``**`` and
    ``*`` as ``*`` (which crosses folders), ``?`` as ``[^/]``, a literal ``[`` as ``[[]``."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("*")
            i += 3
        elif pattern.startswith("**", i):
            out.append("*")
            i += 2
        else:
            out.append({"?": "[^/]", "[": "[[]"}.get(pattern[i], pattern[i]))
            i += 1
    return "".join(out)


def slashes(text: str) -> str:
    """How many ``/`` the SQL expression ``text`` holds."""
    return f"length({text}) - length(replace({text}, '/', ''))"


# The path under its root, as ``kenning.filters.relative`` gives it (a file root: its
# name, the path after its last "/").
_RELATIVE = (
    "CASE WHEN s.path = s.root THEN substr(s.path, length(rtrim(s.path, "
    "replace(s.path, '/', ''))) + 1) "
    "WHEN substr(s.root, -1) = '/' AND substr(s.path, 1, length(s.root)) = s.root "
    "THEN substr(s.path, length(s.root) + 1) "
    "WHEN substr(s.path, 1, length(s.root) + 1) = s.root || '/' "
    "THEN substr(s.path, length(s.root) + 2) ELSE s.path END"
)


class SQLiteFilters(SQLFilters):
    """Each condition of a filter in SQLite, with ``?`` parameters."""

    relative = _RELATIVE
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

    def starts(self, prefix: str) -> tuple[str, list[Any]]:
        # BINARY collation compares UTF-8 bytes, which sort as code points
        return "(s.path >= ? AND s.path < ?)", [prefix, prefix_end(prefix)]

    def pattern(self, text: str, glob: str) -> tuple[str, list[Any]]:
        single, double = glob_shape(glob)
        test, args = f"{text} GLOB ?", [sqlite_glob(glob)]
        if double and (single or glob.count("**") > 1 or not glob.endswith("**")):
            # "**" between other wildcards: GLOB lets through a superset; the regex decides
            return f"({test} AND kenning_glob(?, {text}))", [*args, glob_regex(glob).pattern]
        if single:  # each "*" stays in its folder: the path has the glob's count of "/"
            return f"({test} AND {slashes(text)} = ?)", [*args, glob.count("/")]
        return test, args  # no "*", or one trailing "**" after a literal: GLOB is exact


#: a WHERE clause over ``sources s`` and its parameters, from ``Filters``
filter_sql = SQLiteFilters()
