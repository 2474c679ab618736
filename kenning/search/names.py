"""A note's names: its title, its file name without extension and its front-matter aliases.

A query that is exactly one of a note's names (folded as the one tokenizer folds: case,
accents and punctuation aside) puts that note first, whatever the rankings say: in a vault
a name is how people look a note up. ``NoteNames`` builds the folded lookup from what the
index stores per source and keeps it until the index's generation changes.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from kenning.filters import Condition, Filters
from kenning.store.base import SourceRow, Store
from kenning.text.tokens import folded_tokens


def name_key(text: str) -> str:
    """What a name and a query are compared by: their folded tokens, space-joined."""
    return " ".join(folded_tokens(text))


def names_of(row: SourceRow) -> list[str]:
    """A source's names, as written: title, aliases, then file name without extension."""
    aliases = row.metadata.get("aliases") or []
    if isinstance(aliases, str):  # loaders make a list; older indexes may hold the string
        aliases = aliases.split(",")
    found = [row.title, *(str(a).strip() for a in aliases), PurePosixPath(row.path).stem]
    return [n for n in found if n]


def note_chunks(store: Store, path: str, allowed: np.ndarray | None) -> np.ndarray:
    """The chunk ids of the note at ``path`` (ascending), only those in ``allowed`` if given."""
    ids = store.chunk_ids(Filters([Condition("path", "=", path)]))
    return ids if allowed is None else ids[np.isin(ids, allowed)]


class NoteNames:
    """Folded name -> [(source path, the name as written)], rebuilt per index generation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._gen: str | None = ""
        self._lookup: dict[str, list[tuple[str, str]]] = {}

    def lookup(self) -> dict[str, list[tuple[str, str]]]:
        gen = self.store.get_meta("generation")
        if gen != self._gen:
            lookup: dict[str, list[tuple[str, str]]] = {}
            for path, row in sorted(self.store.sources().items()):
                if row.status == "failed":
                    continue
                for name in names_of(row):
                    notes = lookup.setdefault(name_key(name), [])
                    if not any(p == path for p, _ in notes):  # a note's first name wins
                        notes.append((path, name))
            lookup.pop("", None)
            self._lookup, self._gen = lookup, gen
        return self._lookup

    def matching(self, query: str) -> list[tuple[str, str]]:
        """(path, name) of every note that ``query`` names, or []."""
        key = name_key(query)
        return self.lookup().get(key, []) if key else []
