"""``Filters`` compiled to SQL over the ``sources`` table, for PostgreSQL.

The same rules as ``kenning.store.sqlfilters`` (and ``Filters.matches``, the reference):
metadata is a ``jsonb`` column, a list matches when any item does and ``!=`` when none does;
numbers compare as numbers and everything else as lower-cased text in code-point order
(``COLLATE "C"``, as Python compares strings). Comparisons run in ``kenning_compare``, a SQL
function the store's first migration creates (``COMPARE``); path globs become PostgreSQL
regular expressions over the path relative to its root.
"""

from __future__ import annotations

from typing import Any

from kenning.filters import Filters, glob_regex

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

_COLUMNS = ("title", "type", "path")

# The path under its root, as ``kenning.filters.relative`` gives it.
_RELATIVE = (
    "CASE WHEN s.path = s.root THEN regexp_replace(s.path, '^.*/', '') "
    "WHEN left(s.path, length(s.root) + 1) = s.root || '/' "
    "THEN substr(s.path, length(s.root) + 2) ELSE s.path END"
)


def filter_sql(filters: Filters) -> tuple[str, list[Any]]:
    """A WHERE clause over ``sources s`` and its parameters (psycopg ``%s`` style)."""
    parts: list[str] = ["s.status <> 'failed'"]
    args: list[Any] = []
    if filters.types:
        parts.append("s.type = ANY(%s)")
        args.append(list(filters.types))
    if filters.paths:
        alternatives = []
        for pattern in filters.paths:
            rx = "^" + glob_regex(pattern).pattern
            alternatives.append(f"(({_RELATIVE}) ~ %s OR s.path ~ %s)")
            args += [rx, rx]
        parts.append("(" + " OR ".join(alternatives) + ")")
    for c in filters.where:
        op = "=" if c.op == "!=" else c.op
        if c.key in _COLUMNS:
            test = f"kenning_compare(to_jsonb(s.{c.key}), %s, %s)"
            args += [op, c.value]
        else:
            test = (
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN "
                "jsonb_typeof(s.metadata -> %s) = 'array' THEN s.metadata -> %s "
                "ELSE jsonb_build_array(s.metadata -> %s) END) j(v) "
                "WHERE kenning_compare(j.v, %s, %s))"
            )
            args += [c.key, c.key, c.key, op, c.value]
        parts.append(f"NOT {test}" if c.op == "!=" else test)
    return " AND ".join(parts), args
