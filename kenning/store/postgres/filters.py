"""``Filters`` compiled to SQL over the ``sources`` table, for PostgreSQL.

The same rules as ``kenning.store.sqlite.filters`` (and ``Filters.matches``, the reference):
metadata is a ``jsonb`` column, a list matches when any item does and ``!=`` when none does;
numbers compare as numbers and everything else as lower-cased text in code-point order
(``COLLATE "C"``, as Python compares strings). Comparisons run in ``kenning_compare``, a SQL
function the store's first migration creates (``COMPARE``). A path glob is a ``LIKE`` where
that says the same (``?`` as ``_`` and ``*`` as ``%`` with the path's count of ``/``
fixed; a trailing ``**`` after literal text as ``%``), else a ``LIKE`` that lets through a
superset and then the PostgreSQL regular expression of the glob.
"""

from __future__ import annotations

from typing import Any

from kenning.filters import glob_regex, glob_shape, prefix_end
from kenning.store.sqlfilters import SQLFilters

#: created by the PostgreSQL store's migrations; mirrors ``kenning.filters.compare``
COMPARE = """
CREATE FUNCTION kenning_number(t text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    RETURN t::double precision;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $f$;

CREATE FUNCTION kenning_compare(actual jsonb, op text, val text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE
    a text;
    x double precision;
    y double precision;
BEGIN
    IF actual IS NULL OR jsonb_typeof(actual) = 'null' THEN
        RETURN false;
    ELSIF jsonb_typeof(actual) = 'boolean' THEN
        -- Python: float(True) == 1.0 and str(True) == 'True'
        a := CASE WHEN actual = 'true'::jsonb THEN 'True' ELSE 'False' END;
        x := CASE WHEN actual = 'true'::jsonb THEN 1 ELSE 0 END;
    ELSE
        a := actual #>> '{}';
        x := kenning_number(a);
    END IF;
    y := kenning_number(val);
    IF x IS NOT NULL AND y IS NOT NULL THEN
        RETURN CASE op WHEN '=' THEN x = y WHEN '>=' THEN x >= y WHEN '<=' THEN x <= y
                       WHEN '>' THEN x > y ELSE x < y END;
    END IF;
    a := lower(a) COLLATE "C";
    val := lower(val) COLLATE "C";
    RETURN CASE op WHEN '=' THEN a = val WHEN '>=' THEN a >= val WHEN '<=' THEN a <= val
                   WHEN '>' THEN a > val ELSE a < val END;
END $f$;
"""

# The path under its root, as ``kenning.filters.relative`` gives it.
_RELATIVE = (
    "CASE WHEN s.path = s.root THEN regexp_replace(s.path, '^.*/', '') "
    "WHEN left(s.path, length(s.root) + 1) = s.root || '/' "
    "THEN substr(s.path, length(s.root) + 2) ELSE s.path END"
)


def like(pattern: str) -> str:
    """``pattern`` as a ``LIKE`` (escape ``\\``) that matches at least what it matches:
    ``**`` and ``*`` as ``%``, ``?`` as ``_`` (both also match a ``/``)."""
    out = []
    for part in pattern.replace("**/", "**").split("**"):
        text = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(text.replace("*", "%").replace("?", "_"))
    return "%".join(out)


class PostgresFilters(SQLFilters):
    """Each condition of a filter in PostgreSQL, with psycopg's ``%s`` parameters."""

    marker = "%s"
    relative = _RELATIVE
    column = "kenning_compare(to_jsonb(s.{key}), %s, %s)"
    # the value at the key (m), or each of its items when it is a list (v)
    metadata = (
        "EXISTS (SELECT 1 FROM (SELECT s.metadata -> %s AS m) x, jsonb_array_elements("
        "CASE WHEN jsonb_typeof(x.m) = 'array' THEN x.m ELSE jsonb_build_array(x.m) END) j(v) "
        "WHERE kenning_compare(j.v, %s, %s))"
    )
    nested = (
        "EXISTS (SELECT 1 FROM (SELECT s.metadata -> %s AS m) x, jsonb_array_elements("
        "CASE WHEN jsonb_typeof(x.m) = 'array' THEN x.m ELSE jsonb_build_array(x.m) END) j(v) "
        "WHERE jsonb_typeof(j.v) = 'string' AND starts_with(lower(j.v #>> '{}'), %s))"
    )

    def types(self, types: list[str]) -> tuple[str, list[Any]]:
        return "s.type = ANY(%s)", [types]

    def __init__(self, ranges: bool = False) -> None:
        #: whether the database sorts text by code point, so a prefix is a range of the
        #: path index (else a test of each path)
        self.ranges = ranges

    def starts(self, prefix: str) -> tuple[str, list[Any]]:
        if self.ranges:
            return "(s.path >= %s AND s.path < %s)", [prefix, prefix_end(prefix)]
        return "starts_with(s.path, %s)", [prefix]

    def pattern(self, text: str, glob: str) -> tuple[str, list[Any]]:
        single, double = glob_shape(glob)
        test, args = f"{text} LIKE %s", [like(glob)]
        if double and (single or "?" in glob or glob.count("**") > 1 or not glob.endswith("**")):
            return f"({test} AND {text} ~ %s)", [*args, "^" + glob_regex(glob).pattern]
        if single or "?" in glob:  # "%" and "_" also match "/": fix the count of "/"
            count = f"length({text}) - length(replace({text}, '/', ''))"
            return f"({test} AND {count} = %s)", [*args, glob.count("/")]
        return test, args


#: a WHERE clause over ``sources s`` and its parameters, from ``Filters``
filter_sql = PostgresFilters()
#: the same, for a database that sorts text by code point (``code_point_order``)
ranged_filter_sql = PostgresFilters(ranges=True)


def code_point_order(db: Any) -> bool:
    """Whether the database's default collation sorts text by code point, as Python does
    (``C``, ``POSIX``, ``C.UTF-8``): then ``prefix <= path < prefix_end(prefix)`` is
    ``path.startswith(prefix)`` and the path index answers it."""
    (collation,) = db.execute(
        "SELECT datcollate FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    return str(collation).lower().replace("-", "") in ("c", "posix", "c.utf8")
