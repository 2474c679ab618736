"""A note's names: its title, its front-matter aliases and its file name without extension.

A query that is exactly one of a note's names (folded as the one tokenizer folds: case,
accents and punctuation aside) puts that note first: in a vault a name is how people look a
note up. The store keeps each source's folded names in a table of their own, written with
the source (``SQLStore``), so a lookup is one indexed query whatever the vault's size.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from .tokens import folded_tokens


def name_key(text: str) -> str:
    """What a name and a query are compared by: their folded tokens, space-joined."""
    return " ".join(folded_tokens(text))


def names_of(path: str, title: str, metadata: dict[str, Any]) -> list[str]:
    """A source's names, as written: title, aliases, then file name without extension."""
    aliases = metadata.get("aliases") or []
    if isinstance(aliases, str):  # loaders make a list; older indexes may hold the string
        aliases = aliases.split(",")
    found = [title, *(str(a).strip() for a in aliases), PurePosixPath(path).stem]
    return [n for n in found if n]


def folded_names(path: str, title: str, metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """A source's (folded name, name) pairs: the first name per folded one, none empty."""
    out: dict[str, str] = {}
    for name in names_of(path, title, metadata):
        out.setdefault(name_key(name), name)
    out.pop("", None)
    return list(out.items())
