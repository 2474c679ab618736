"""``Filters`` compiled to SQL over the ``sources`` table, for PostgreSQL.

The same rules as ``kenning.store.sqlite.filters`` (and ``Filters.matches``, the reference):
metadata is a ``jsonb`` column, a list matches when any item does and ``!=`` when none does;
numbers compare as numbers and everything else as lower-cased text in code-point order
(``COLLATE "C"``, as Python compares strings). Comparisons run in ``kenning_compare``, a SQL
function the store's first migration creates (``COMPARE``); path globs become PostgreSQL
regular expressions over the path relative to its root.
"""

from __future__ import annotations

from typing import Any

from kenning.store.sql import SQLFilters

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


class PostgresFilters(SQLFilters):
    """Each condition of a filter in PostgreSQL, with psycopg's ``%s`` parameters."""

    glob = f"(({_RELATIVE}) ~ %s OR s.path ~ %s)"
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


#: a WHERE clause over ``sources s`` and its parameters, from ``Filters``
filter_sql = PostgresFilters()
