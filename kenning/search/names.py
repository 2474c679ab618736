"""Notes named by a query: ``NoteNames`` looks the query's folded form up among the names the
store keeps per source (``kenning.text.names``), so a query that is a note's title, alias or
file name can put that note first."""

from __future__ import annotations

import numpy as np

from kenning.filters import Condition, Filters
from kenning.store.base import Store
from kenning.text.names import name_key


def note_chunks(store: Store, path: str) -> np.ndarray:
    """The chunk ids of the note at ``path``, ascending."""
    return store.chunk_ids(Filters([Condition("path", "=", path)]))


class NoteNames:
    """The notes a query names, read from the store at each query: one indexed lookup, so
    nothing is held in memory or brought up to date after a change."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def matching(self, query: str) -> list[tuple[str, str]]:
        """(path, name) of every note that ``query`` names, in path order, or []."""
        key = name_key(query)
        return self.store.named(key) if key else []
