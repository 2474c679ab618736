"""Search filters on source metadata, path and type.

``--where tag=ml`` matches a tag (a list field matches when any item equals the value); tags
nest as Obsidian's do, so ``tag=area`` also matches ``area/sub`` (``tag=area/sub`` does not
match ``area``, nor ``area/subway``; ``tag=area/`` matches the children only), and
``tag!=area`` excludes the children too;
``--where 'date>=2025-01-01'`` compares numbers as numbers and everything else as text
(ISO dates sort correctly as text); a doubled operator (``tag==ml``, ``date>>2024``) is an
error, not a value that starts with ``=``. ``--path 'projects/**'`` globs the path relative to
its root, led by the root's name or not (``vault/projects/**``, as search results show it), or
the absolute path; ``--type pdf`` picks loaders. All given filters must hold.

Stores apply filters themselves (``kenning.store.sqlfilters`` compiles them to SQL); the
``matches`` methods here are the reference semantics that every store is tested against.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ConfigError


class Filterable(Protocol):
    """What a filter reads of a source (``kenning.store.SourceRow`` has it); declared here so
    filters sit below the stores that compile them, with no import back up."""

    path: str
    root: str
    type: str
    status: str
    title: str
    metadata: dict[str, Any]


_CONDITION = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")
_ALIASES = {"tag": "tags", "alias": "aliases"}
#: metadata keys whose values nest with "/": ``key=parent`` matches ``parent/child`` too
NESTED = ("tags",)
#: characters of an operator: a value starting with one means a mistyped operator
_OPERATOR_CHARS = "=<>!"
#: mistyped operators and the one they most likely meant
_MEANT = {"==": "=", ">>": ">", "<<": "<", "=>": ">=", "=<": "<=", "=!": "!=", "!==": "!="}
TYPES = {"markdown", "text", "html", "pdf"}


@dataclass
class Condition:
    key: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Condition:
        m = _CONDITION.match(text)
        if not m:
            raise ConfigError(
                f"cannot read filter {text!r}: write KEY=VALUE, KEY!=VALUE or KEY>=VALUE "
                "(also >, <, <=), e.g. tag=ml or 'date>=2025-01-01'"
            )
        key, op, value = m.groups()
        if value[:1] in _OPERATOR_CHARS:
            typed = op + value[: len(value) - len(value.lstrip(_OPERATOR_CHARS))]
            meant = _MEANT.get(typed)
            rest = value.lstrip(_OPERATOR_CHARS)
            fix = f"write {key}{meant}{rest}" if meant else "use =, !=, >=, <=, > or <"
            raise ConfigError(
                f"cannot read filter {text!r}: {typed!r} is not an operator; {fix} (a value "
                f"that starts with {value[0]!r} goes in quotes: {key}{op}'{value}')"
            )
        return cls(_ALIASES.get(key, key), op, value.strip("'\""))

    def holds(self, row: Filterable) -> bool:
        if self.key in ("title", "type", "path"):
            actual: Any = getattr(row, self.key)
        else:
            actual = row.metadata.get(self.key)
        items = actual if isinstance(actual, list) else [actual]
        items = [i for i in items if i is not None]  # an empty value matches nothing
        if not items:
            return self.op == "!="
        if self.op in ("=", "!=") and self.key in NESTED:
            found = any(compare(i, "=", self.value) or under(i, self.value) for i in items)
            return found == (self.op == "=")
        if self.op == "!=":
            return all(not compare(i, "=", self.value) for i in items)
        return any(compare(i, self.op, self.value) for i in items)


def nested_prefix(value: str) -> str:
    """What a nested value's children start with: ``area`` -> ``area/`` (lower-cased)."""
    return value.lower().rstrip("/") + "/"


def under(actual: Any, value: str) -> bool:
    """Whether ``actual`` is a nested child of ``value`` (``area/sub`` under ``area``); only
    text nests."""
    return isinstance(actual, str) and actual.lower().startswith(nested_prefix(value))


def compare(actual: Any, op: str, value: str) -> bool:
    """Numbers compare as numbers, everything else as lower-cased text."""
    a: Any
    b: Any
    try:
        a, b = float(actual), float(value)
    except (TypeError, ValueError):
        a, b = str(actual).lower(), value.lower()
    if op == "=":
        return bool(a == b)
    if op == ">=":
        return bool(a >= b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a < b)


def glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def literal_prefix(pattern: str) -> str:
    """What every text a glob matches starts with: the glob before its first wildcard.
    Stores look paths up by it in their index of paths, instead of testing every path."""
    cut = [i for i in (pattern.find("*"), pattern.find("?")) if i >= 0]
    return pattern[: min(cut)] if cut else pattern


def prefix_end(prefix: str) -> str:
    """The least text above every text that starts with ``prefix`` (code-point order):
    ``prefix <= text < prefix_end(prefix)`` is ``text.startswith(prefix)``, as a range a
    B-tree index answers."""
    following = ord(prefix[-1]) + 1
    if following > 0x10FFFF:
        return prefix_end(prefix[:-1]) if len(prefix) > 1 else chr(0x10FFFF) * 2
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not text
        following = 0xE000
    return prefix[:-1] + chr(following)


def glob_shape(pattern: str) -> tuple[bool, bool]:
    """(single, double): whether a glob has a ``*`` that stays inside one folder, and one
    ``**`` (that crosses folders). Stores use it to test a glob without a regular
    expression where wildcards of their own (SQL's LIKE and GLOB) say the same."""
    return "*" in pattern.replace("**", ""), "**" in pattern


@dataclass
class Filters:
    """A conjunction of metadata conditions, path globs and types."""

    where: list[Condition] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    @classmethod
    def parse(
        cls,
        where: list[str] | None = None,
        paths: list[str] | None = None,
        types: list[str] | None = None,
    ) -> Filters:
        types = [t.lower() for t in types or []]
        aliases = {"md": "markdown", "txt": "text", "htm": "html"}
        types = [aliases.get(t, t) for t in types]
        for t in types:
            if t not in TYPES:
                raise ConfigError(f"unknown --type {t!r}; choose from {', '.join(sorted(TYPES))}")
        return cls([Condition.parse(w) for w in where or []], list(paths or []), types)

    def __bool__(self) -> bool:
        return bool(self.where or self.paths or self.types)

    def for_roots(self, roots: list[str]) -> Filters:
        """These filters with each path glob led by a root's name (``vault/projects/**``)
        also given as the absolute glob it means (``/home/me/vault/projects/**``), which is
        what stores match besides the path under its root. ``matches`` needs no such help."""
        extra = []
        for pattern in self.paths:
            first, sep, rest = pattern.partition("/")
            if not sep or not rest:
                continue
            for root in roots:
                name = root.rstrip("/").rsplit("/", 1)[-1]
                if name == first and not any(c in root for c in "*?"):
                    extra.append(f"{root.rstrip('/')}/{rest}")
        if not extra:
            return self
        return Filters(self.where, [*self.paths, *dict.fromkeys(extra)], self.types)

    def unknown_fields(self, fields: set[str]) -> list[str]:
        """A warning for each ``--where`` field that is not among ``fields`` (the metadata
        keys of the indexed sources) nor a column, with the close names that are."""
        known = fields | {"title", "type", "path"}
        warnings, seen = [], set()
        for c in self.where:
            if c.key in known or c.key in seen:
                continue
            seen.add(c.key)
            close = difflib.get_close_matches(c.key, sorted(known), n=3, cutoff=0.6)
            if close:
                hint = f"did you mean {' or '.join(close)}?"
            else:
                hint = "fields in this index: " + (", ".join(sorted(fields)[:20]) or "none")
            warnings.append(
                f"--where {c.key}{c.op}{c.value}: no indexed note has the field {c.key!r}; {hint}"
            )
        return warnings

    def matches(self, row: Filterable) -> bool:
        if row.status == "failed":
            return False
        if self.types and row.type not in self.types:
            return False
        if self.paths:
            rel = relative(row.path, row.root)
            shown = [rel, row.path]
            if row.path != row.root:  # as the results show it: led by the root's name
                shown.append(row.root.rstrip("/").rsplit("/", 1)[-1] + "/" + rel)
            if not any(glob_regex(p).match(text) for p in self.paths for text in shown):
                return False
        return all(c.holds(row) for c in self.where)


def relative(path: str, root: str) -> str:
    """The path under its root, as ``--path`` globs see it (a file root: its name).

    String operations on the stored (resolved, POSIX) paths, not ``pathlib``: SQLite calls
    this for every source a path filter looks at, 100k times at 100k files."""
    if path == root:
        return path.rsplit("/", 1)[-1]
    prefix = root if root.endswith("/") else root + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path
