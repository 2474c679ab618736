"""A note's names: its title, its file name without extension and its front-matter aliases.

A query that is exactly one of a note's names (folded as the one tokenizer folds: case,
accents and punctuation aside) puts that note first, whatever the rankings say: in a vault
a name is how people look a note up. ``NoteNames`` builds the folded lookup from what the
index stores per source and keeps it until the index's generation changes.
"""

from __future__ import annotations

import json
from bisect import insort
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


def _folded(path: str, title: str, meta: str) -> list[tuple[str, str]]:
    """A note's (folded name, name) pairs: its first name per folded one, none empty."""
    row = SourceRow(0, path, "", 0, 0, "", "", "ok", None, title, json.loads(meta))
    out: dict[str, str] = {}
    for name in names_of(row):
        out.setdefault(name_key(name), name)
    out.pop("", None)
    return list(out.items())


def note_chunks(store: Store, path: str) -> np.ndarray:
    """The chunk ids of the note at ``path``, ascending."""
    return store.chunk_ids(Filters([Condition("path", "=", path)]))


class NoteNames:
    """Folded name -> [(source path, the name as written)], brought up to date per index
    generation from the sources written since the last look (``Store.source_names``): only
    those notes are folded and moved in the lookup (folding every note took ~5 s at 100k).
    When sources went away (the count says so), every source's names are read again."""

    #: seconds of writes read again each time, against clocks of writers a little apart
    MARGIN = 60.0

    def __init__(self, store: Store) -> None:
        self.store = store
        self._gen: str | None = ""
        self._lookup: dict[str, list[tuple[str, str]]] = {}
        #: path -> (title and metadata as stored, [(folded name, name)] without repeats)
        self._folded: dict[str, tuple[tuple[str, str], list[tuple[str, str]]]] = {}
        self._since: float | None = None  # the latest write seen; None: read all next time

    def lookup(self) -> dict[str, list[tuple[str, str]]]:
        gen = self.store.get_meta("generation")
        if gen != self._gen:
            self._update(self._since)
            if len(self._folded) != self.store.source_count():
                self._update(None)  # some went away (or moved): read them all
            self._gen = gen
        return self._lookup

    def _update(self, since: float | None) -> None:
        old = self._folded
        new = dict(old) if since is not None else {}
        changed: list[str] = []
        top = since or 0.0
        rows = self.store.source_names(None if since is None else since - self.MARGIN)
        for path, title, meta, failed, at in rows:
            top = max(top, at)
            kept = old.get(path)
            if failed:
                new.pop(path, None)
                changed.append(path)
                continue
            if kept is None or kept[0] != (title, meta):
                changed.append(path)
                kept = ((title, meta), _folded(path, title, meta))
            new[path] = kept
        if since is None:
            changed += [p for p in old if p not in new]
        lookup = self._lookup
        for path in changed:  # out with the old names, in with the new, in path order
            for key, _ in old[path][1] if path in old else []:
                if key in lookup:
                    lookup[key] = [e for e in lookup[key] if e[0] != path]
                    if not lookup[key]:
                        del lookup[key]
            for key, name in new[path][1] if path in new else []:
                insort(lookup.setdefault(key, []), (path, name))
        self._folded, self._since = new, top

    def matching(self, query: str) -> list[tuple[str, str]]:
        """(path, name) of every note that ``query`` names, or []."""
        key = name_key(query)
        return self.lookup().get(key, []) if key else []
