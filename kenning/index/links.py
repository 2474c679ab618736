"""Which indexed note a link names, decided when asked, the way Obsidian decides it.

The index stores each note's links as written (``kenning.text.links``); resolving them at
query time keeps them right through every change without rewriting other notes' rows: a note
added with the name an unresolved link wanted resolves it, and a renamed or deleted note
leaves its backlinks unresolved. A link resolves within its note's root (the vault):

1. a Markdown link's path relative to the linking note's folder (``../b/c.md``);
2. the exact vault-relative path (``folder/Note`` or ``folder/Note.md``);
3. else the notes whose path ends with the target (a bare name: whose file name is it),
   case-insensitive, with or without ``.md``: the shortest such path wins (Obsidian's
   "shortest path"), ties going to the first in sort order.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kenning.errors import NotFound
from kenning.store import Store
from kenning.store.base import SourceRow
from kenning.text.links import Link, link_name

#: a code span, and a word that can be part of a note's name (not an option, a path or a
#: placeholder)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_NAME_WORD = re.compile(r"[A-Za-z0-9][\w.+]*")


@dataclass(frozen=True)
class LinkRow:
    """A link between two sources: ``source`` links to ``target`` as written, which names
    the indexed source ``path`` (``None``: unresolved)."""

    source: str
    kind: str
    target: str
    heading: str
    alias: str | None
    path: str | None


@dataclass
class NoteLinks:
    """A note's links: where it points (``outgoing``, resolved or not), who points at it
    (``backlinks``), and the outgoing links that name no indexed note (``unresolved``)."""

    path: str
    outgoing: list[LinkRow] = field(default_factory=list)
    backlinks: list[LinkRow] = field(default_factory=list)

    @property
    def unresolved(self) -> list[LinkRow]:
        return [x for x in self.outgoing if x.path is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "outgoing": [asdict(x) for x in self.outgoing],
            "backlinks": [asdict(x) for x in self.backlinks],
            "unresolved": [asdict(x) for x in self.unresolved],
        }


def _relative(path: str, root: str) -> str:
    """``path`` under ``root``, with ``/`` (the whole path where it lies elsewhere)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix().lstrip("/")


class Resolver:
    """Resolves links against the sources an index holds."""

    def __init__(self, sources: dict[str, SourceRow]) -> None:
        self.sources = sources
        #: per root: lower-cased vault-relative path -> source path
        self._exact: dict[str, dict[str, str]] = {}
        #: per root: ``link_name`` of a file -> (relative path, source path), shortest first
        self._named: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for path, row in sorted(sources.items()):
            rel = _relative(path, row.root).lower()
            self._exact.setdefault(row.root, {})[rel] = path
            self._named.setdefault(row.root, {}).setdefault(link_name(rel), []).append((rel, path))
        for named in self._named.values():
            for candidates in named.values():
                candidates.sort(key=lambda c: (len(c[0]), c[0]))

    def resolve(self, source: str, link: Link) -> str | None:
        """The source path ``link``, written in ``source``, names (None: none)."""
        row = self.sources.get(source)
        if row is None:
            return None
        exact = self._exact.get(row.root, {})
        target = link.target.replace("\\", "/").strip().lower()
        tries = [target.lstrip("/")]
        if link.kind == "markdown" or link.target.startswith(("./", "../")):
            here = posixpath.dirname(_relative(source, row.root).lower())
            tries.insert(0, posixpath.normpath(posixpath.join(here, target)))
        for t in tries:
            for key in (t, t + ".md"):
                if key in exact:
                    return exact[key]
        tail = "/".join(p for p in tries[-1].split("/") if p not in ("", ".", ".."))
        for rel, path in self._named.get(row.root, {}).get(link_name(tail), []):
            if "/" not in tail or any(
                (rel == k or rel.endswith("/" + k)) for k in (tail, tail + ".md")
            ):
                return path
        return None

    def find(self, note: str | Path) -> str:
        """The indexed source ``note`` names: its path as stored or on disk, or a note's
        name or vault path as a link would write it; ``NotFound`` otherwise."""
        text = str(note)
        if text in self.sources:
            return text
        try:
            on_disk = str(Path(text).expanduser().resolve())
        except (OSError, ValueError):  # a NUL byte, a path too long: no file of ours
            on_disk = ""
        if on_disk in self.sources:
            return on_disk
        wanted = Link("wikilink", text)
        for root in sorted({row.root for row in self.sources.values()}):
            found = self._resolve_in(root, wanted)
            if found is not None:
                return found
        raise NotFound(f"{note} is not a note in this index (give its path as search shows it)")

    def named_in_code(self, source: str, text: str) -> list[str]:
        """Other notes that ``text`` (of ``source``) names in code spans, in order: a span's
        leading words joined by ``-`` name a note as a link would (`` `docker container
        top` `` is docker-container-top, else docker-container, else docker; options and
        placeholders end the name). How command references ("See also: `awk`") point at
        pages that are not linked."""
        found: list[str] = []
        for span in _CODE_SPAN.finditer(text):
            words: list[str] = []
            for w in span.group(1).split():
                if not _NAME_WORD.fullmatch(w):
                    break
                words.append(w)
            for n in range(len(words), 0, -1):
                path = self.resolve(source, Link("wikilink", "-".join(words[:n])))
                if path is not None:
                    if path != source and path not in found:
                        found.append(path)
                    break
        return found

    def _resolve_in(self, root: str, link: Link) -> str | None:
        anywhere = next((p for p, r in self.sources.items() if r.root == root), None)
        return None if anywhere is None else self.resolve(anywhere, link)


def note_links(store: Store, note: str | Path) -> NoteLinks:
    """A note's outgoing links, backlinks and unresolved links (``Index.links``)."""
    sources = store.sources()
    resolver = Resolver(sources)
    path = resolver.find(note)
    out = NoteLinks(path)
    for link in store.links_from(path):
        out.outgoing.append(_row(path, link, resolver.resolve(path, link)))
    row = sources[path]
    rel = _relative(path, row.root)
    for source, link in store.links_to({link_name(rel)}):
        if resolver.resolve(source, link) == path:
            out.backlinks.append(_row(source, link, path))
    return out


def _row(source: str, link: Link, path: str | None) -> LinkRow:
    return LinkRow(source, link.kind, link.target, link.heading, link.alias, path)
