"""The agent's memory: facts the user asks it to remember, kept as a Markdown note.

"remember that my thesis deadline is 3 March" appends a line to ``kenning-memory.md`` (beside
the index, or in the folder the user names) and indexes it like any note, so memory is
visible, editable and searchable, and the agent finds it with its ordinary tools. Editing the
note changes what is remembered; deleting it forgets everything in it: before each run the
note is brought in line with the disk.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from kenning.errors import ConfigError
from kenning.index import Index

NAME = "kenning-memory.md"
HEADER = "# Memory\n\nWhat I asked kenning to remember. Edit or delete lines freely.\n\n"
_REMEMBER = re.compile(
    r"^\s*(?:please\s+)?(?:remember|note|keep in mind)\s*(?:that\b|:)?\s*(?P<fact>.+?)\s*$",
    re.IGNORECASE | re.DOTALL,
)


class Memory:
    """The memory note: ``folder/kenning-memory.md`` (default: the index's folder)."""

    def __init__(self, index: Index, folder: str | Path | None = None) -> None:
        if folder is None:
            location = index.location
            if "://" in location and not location.startswith("sqlite:///"):
                raise ConfigError(
                    "this index is not a file, so memory has no folder beside it; "
                    "name one with --memory FOLDER"
                )
            folder = Path(location.removeprefix("sqlite:///")).expanduser().resolve().parent
        self.path = Path(folder).expanduser().resolve() / NAME

    @staticmethod
    def fact(question: str) -> str | None:
        """The fact of a "remember (that) ..." request; None for any other question."""
        m = _REMEMBER.match(question)
        if not m:
            return None
        fact = m.group("fact").strip().rstrip(".")
        return fact[:1].upper() + fact[1:] if fact else None

    def remember(self, index: Index, fact: str) -> Path:
        """Append ``fact`` to the note and index it; returns the note's path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self.path.open("a", encoding="utf-8") as f:
            if new:
                f.write(HEADER)
            f.write(f"- {fact}. (noted {time.strftime('%Y-%m-%d')})\n")
        self.refresh(index)
        return self.path

    def _root(self, index: Index) -> str | None:
        """The root the note is indexed under (itself, or a folder that holds it)."""
        mine = str(self.path)
        roots = index.store.roots()
        if mine in roots:
            return mine
        under = [r for r in roots if mine.startswith(r.rstrip("/") + "/")]
        return max(under, key=len) if under else None

    def refresh(self, index: Index) -> None:
        """Bring the index in line with the note: index it when new or changed, forget it
        when deleted. Cheap when nothing changed (one stat and one lookup)."""
        root = self._root(index)
        exists = self.path.exists()
        if root is None:
            if exists:
                index.add([self.path])
            return
        row = index.store.sources().get(str(self.path))
        if not exists:
            if root == str(self.path):
                index.remove(root)
            elif row is not None:
                index.sync(roots=[root])
            return
        stat = self.path.stat()
        if row is None or row.mtime_ns != stat.st_mtime_ns or row.size != stat.st_size:
            index.sync(roots=[root])
