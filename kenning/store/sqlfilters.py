"""Filters in SQL: ``SQLFilters`` compiles a ``Filters`` to a WHERE clause over ``sources s``,
and ``GlobLookup`` lets a store turn a path glob into ranges of its path index first.

The rules are ``kenning.filters.Filters.matches``' (the reference); each backend's
``filters`` module writes the SQL of one condition in its own dialect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kenning.filters import (
    NESTED,
    Filters,
    glob_regex,
    literal_prefix,
    nested_prefix,
    prefix_end,
    relative,
)

#: columns a filter may name that are columns of ``sources``, not metadata keys
COLUMNS = ("title", "type", "path")
#: one way a path glob can match: (the root the source must have, or None for any; a glob
#: of the whole path)
Way = tuple[str | None, str]
#: more distinct roots than this: path globs test every source instead of looking up a
#: range of paths per root
MOST_ROOTS = 64
#: index probes a search may spend turning a glob's wildcards into literal prefixes, and
#: the fewest paths under a prefix worth it
PROBES = 256
EXPAND_ABOVE = 2_000
#: compiled filters a store keeps (``GlobLookup.filter_where``)
WHERE_CACHE = 32


class SQLFilters(ABC):
    """``Filters`` compiled to a WHERE clause over ``sources s`` and its parameters.

    The rules are ``Filters.matches``' (the reference): a failed source never matches, a
    metadata list matches when any item does and ``!=`` when none does, a path glob matches
    the path under its root or the whole path. The walk is shared; each backend gives the SQL
    of each condition, with its driver's parameter markers.

    A path glob is looked up, not scanned for: given the roots of the indexed sources, the
    paths it can match start with its literal prefix, or with a root and that prefix, so
    the clause names those ranges of the path index (``starts``) before the exact test
    (``pattern``), which then runs on the candidates only.
    """

    #: the path under its root, as ``kenning.filters.relative`` gives it, over ``sources s``
    relative: str
    #: the source column ``{key}`` compares: its parameters are the operator and the value
    column: str
    #: some item of the metadata value at a key is a nested child: the key, then the
    #: lower-cased prefix the child starts with (``kenning.filters.nested_prefix``)
    nested: str
    #: some item of the metadata value at a key compares: the key, the operator, the value
    metadata: str

    @abstractmethod
    def types(self, types: list[str]) -> tuple[str, list[Any]]:
        """The source's type is one of ``types``."""

    @abstractmethod
    def pattern(self, text: str, glob: str) -> tuple[str, list[Any]]:
        """The SQL expression ``text`` matches the path glob ``glob`` (``glob_regex``'s
        rules: ``*`` and ``?`` stay inside a folder, ``**`` crosses folders), exactly."""

    @abstractmethod
    def starts(self, prefix: str) -> tuple[str, list[Any]]:
        """``s.path`` starts with ``prefix``, as a condition the path index answers."""

    def __call__(
        self, filters: Filters, ways: Callable[[str], list[Way] | None] | None = None
    ) -> tuple[str, list[Any]]:
        """The clause and its parameters. ``ways``: where the store looks up the paths a
        glob can match (``SQLStore._glob_ways``); without it, or when it gives None, a glob
        is tested on every source."""
        parts: list[tuple[str, list[Any]]] = []
        if filters.types:
            parts.append(self.types(list(filters.types)))
        if filters.paths:
            globs = [self._glob(pattern, ways) for pattern in filters.paths]
            test = "(" + " OR ".join(g for g, _ in globs) + ")"
            parts.append((test, [a for _, x in globs for a in x]))
        for c in filters.where:
            op = "=" if c.op == "!=" else c.op
            if c.key in COLUMNS:
                test, args = self.column.format(key=c.key), [op, c.value]
            else:
                test, args = self.metadata, [c.key, op, c.value]
                if op == "=" and c.key in NESTED:  # tag=area matches area/sub too
                    test = f"({test} OR {self.nested})"
                    args += [c.key, nested_prefix(c.value)]
            parts.append((f"NOT {test}" if c.op == "!=" else test, args))
        # last: the path tests read the path index alone, the status needs the row
        parts.append(("s.status <> 'failed'", []))
        return " AND ".join(p for p, _ in parts), [arg for _, args in parts for arg in args]

    def _glob(
        self, pattern: str, ways: Callable[[str], list[Way] | None] | None
    ) -> tuple[str, list[Any]]:
        """One path glob: the path under its root or the whole path matches it; each way
        the store gives is a range of the path index and a test of the paths in it."""
        found = ways(pattern) if ways is not None else None
        if found is None:
            rel, rel_args = self.pattern(f"({self.relative})", pattern)
            whole, whole_args = self.pattern("s.path", pattern)
            return f"(({rel}) OR ({whole}))", [*rel_args, *whole_args]
        parts: list[tuple[str, list[Any]]] = []
        for root, glob in found:
            test, args = self.pattern("s.path", glob)
            lead = literal_prefix(glob)
            if lead:
                where, at = self.starts(lead)
                test, args = f"{where} AND {test}", [*at, *args]
            if root is not None:
                test, args = f"s.root = {self.marker} AND {test}", [root, *args]
            parts.append((f"({test})", args))
        if not parts:
            return "(1 = 0)", []
        return "(" + " OR ".join(p for p, _ in parts) + ")", [a for _, x in parts for a in x]

    #: the driver's parameter marker
    marker = "?"


class GlobLookup:
    """What ``SQLStore`` adds to ``SQLFilters``: the roots and paths of the indexed sources,
    so a path glob reads the ranges of the path index it can match, not every source."""

    #: compiles ``Filters`` for this database
    filter_sql: SQLFilters
    #: (generation, distinct roots of the sources), for path globs (``_source_roots``)
    _roots_cache: tuple[str | None, list[str]] | None = None
    #: whether the path index is in code-point order, so ``_expand`` can walk it
    expands_globs = False

    if TYPE_CHECKING:  # the store's own, which SQLStore gives

        def _run(self, sql: str, args: Sequence[Any] = ()) -> Any: ...

        def get_meta(self, key: str) -> str | None: ...

    #: (generation, {filters as written: clause}) of the clauses compiled last
    _where_cache: tuple[str | None, dict[str, tuple[str, list[Any]]]] | None = None

    def filter_where(self, filters: Filters) -> tuple[str, list[Any]]:
        """``filters`` as a WHERE clause over ``sources s`` in the driver's style, with the
        path globs looked up by prefix under the roots of the indexed sources. Kept until
        the sources change: looking a broad glob's folders up takes a probe of the path
        index per folder (hundreds at a million notes), and the searches after this one
        often bring the same filter."""
        generation = self.get_meta("generation")
        cached = self._where_cache
        if cached is None or cached[0] != generation:
            cached = self._where_cache = (generation, {})
        key = repr(filters)
        if key not in cached[1]:
            budget = [PROBES]
            if len(cached[1]) >= WHERE_CACHE:
                cached[1].clear()
            cached[1][key] = self.filter_sql(filters, lambda g: self._glob_ways(g, budget))
        where, args = cached[1][key]
        return where, list(args)

    def _glob_ways(self, glob: str, budget: list[int]) -> list[Way] | None:
        """The ways a path glob can match, each a glob of the whole path that starts with
        as long a literal prefix as can be had: the glob itself (the whole path), and per
        root the root's folder and the glob (the path under it), or the root itself when
        it is a file the glob names. None when the roots are too many or hold wildcards."""
        roots = self._source_roots()
        if len(roots) > MOST_ROOTS or any(c in r for r in roots for c in "*?"):
            return None
        ways: list[Way] = [(None, glob)]
        for root in roots:
            ways.append((root, (root if root.endswith("/") else root + "/") + glob))
            if glob_regex(glob).match(relative(root, root)):
                ways.append((root, root))
        if not self.expands_globs:
            return ways
        return [(root, g) for root, whole in ways for g in self._expand(whole, budget)]

    def _expand(self, glob: str, budget: list[int]) -> list[str]:
        """``glob`` as globs with longer literal prefixes that match the same indexed paths:
        a ``?``, or a ``*`` that ends its folder, right after the prefix becomes each
        character or folder name found there, by skipping through the path index (one
        probe each, while ``budget`` lasts), so a glob like ``notes/?/**`` reads the
        paths of those folders only, not all of ``notes/``."""
        lead = literal_prefix(glob)
        i = len(lead)
        if not lead or i == len(glob) or glob.startswith("**", i):
            return [glob]
        if glob[i] == "*" and not glob.startswith("/", i + 1):
            return [glob]
        low, above, end = lead, False, prefix_end(lead)
        crowded = self._run(  # few paths under the prefix: reading them all is as quick
            "SELECT 1 FROM sources WHERE path >= ? AND path < ? LIMIT 1 OFFSET ?",
            (lead, end, EXPAND_ABOVE),
        ).fetchone()
        if crowded is None:
            return [glob]
        out: list[str] = []
        while True:
            if budget[0] <= 0:
                return [glob]
            budget[0] -= 1
            row = self._run(
                f"SELECT path FROM sources WHERE path {'>' if above else '>='} ? AND path < ? "
                "ORDER BY path LIMIT 1",
                (low, end),
            ).fetchone()
            if row is None:
                return out
            path: str = row[0]
            slash = path.find("/", i)
            if glob[i] == "?":
                piece = path[i]
                low, above = prefix_end(lead + piece), False
                if piece == "/":
                    continue
            elif slash < 0:  # a file right under the prefix: no folder for "*/..."
                low, above = path, True
                continue
            else:
                piece = path[i:slash]
                low, above = prefix_end(lead + piece + "/"), False
            if "*" in piece or "?" in piece:  # not a literal in a glob
                return [glob]
            out += self._expand(lead + piece + glob[i + 1 :], budget)

    def _source_roots(self) -> list[str]:
        """The distinct roots of the sources, read again only when the sources change."""
        generation = self.get_meta("generation")
        cached = self._roots_cache
        if cached is None or cached[0] != generation:
            roots = [r[0] for r in self._run("SELECT DISTINCT root FROM sources ORDER BY root")]
            cached = self._roots_cache = (generation, roots)
        return list(cached[1])
