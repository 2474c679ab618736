"""A note's outgoing links to other notes, read from the spans ``markup.Reading`` found.

Three kinds, as Obsidian writes them:

- ``wikilink``: ``[[note]]``, ``[[note#heading]]``, ``[[note|alias]]``, ``[[note#heading|alias]]``;
- ``embed``: the same with a leading ``!`` (``![[note#heading]]``);
- ``markdown``: ``[text](other.md)``, ``[text](../folder/My%20note.md#heading)``: a relative,
  URL-encoded path, as Obsidian writes it when wikilinks are turned off.

Left out: links inside code (``Reading`` never sees them), web addresses and other schemes
(``https:``, ``mailto:``, ``obsidian:``), links to a heading of the same note (``[[#part]]``),
and links to files that are no notes (images, audio, video, drawings, canvases), which
kenning does not index. The ``target`` is kept as written (decoded, for a Markdown link);
which source it names is decided when the index is asked (``kenning.index.links``), so that
a note added, renamed or deleted later changes what an older link points at.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from .markup import _MEDIA, Reading

#: a link's target names no note when it ends so (``.pdf`` is indexed, so it stays)
_NOT_NOTES = tuple(x for x in (*_MEDIA, ".canvas") if x != ".pdf")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MD_TARGET = re.compile(r"\]\(\s*(?:<(?P<angle>[^<>\n]*)>|(?P<bare>(?:[^()\s]|\([^()\s]*\))*))")


@dataclass(frozen=True)
class Link:
    """One link of a note: its kind, its target as written, the heading it points at
    (``""``: the note itself) and the text it shows instead of the target (``None``: none)."""

    kind: str  # "wikilink", "embed" or "markdown"
    target: str
    heading: str = ""
    alias: str | None = None


def link_name(target: str) -> str:
    """A target's file name as notes are matched by it: lower-cased, without ``.md``
    (``Folder/My Note.md`` and ``my note`` both give ``my note``)."""
    name = target.replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
    return name[:-3] if name.endswith(".md") else name


def outgoing(reading: Reading) -> list[Link]:
    """The links to notes in a read text, in the order they appear."""
    text, out = reading.text, []
    for start, end in reading.links:
        embed = text[start] == "!"
        raw = text[start + embed : end]
        link = _wiki(raw, embed) if raw.startswith("[[") else _markdown(raw, embed)
        if link is not None and not link.target.lower().endswith(_NOT_NOTES):
            out.append(link)
    return out


def _wiki(raw: str, embed: bool) -> Link | None:
    inner = raw[2:-2]
    target, bar, alias = inner.partition("|")
    target, _, heading = target.partition("#")
    if not target.strip():
        return None  # [[#heading]]: this note
    kind = "embed" if embed else "wikilink"
    return Link(kind, target.strip(), heading.strip(), alias.strip() if bar else None)


def _markdown(raw: str, embed: bool) -> Link | None:
    m = _MD_TARGET.search(raw)
    if m is None:
        return None
    written = m.group("angle") if m.group("angle") is not None else m.group("bare")
    if not written or written.startswith("#") or _SCHEME.match(written):
        return None
    path, _, heading = written.partition("#")
    shown = raw[1 : m.start()]
    kind = "embed" if embed else "markdown"
    return Link(
        kind, urllib.parse.unquote(path), urllib.parse.unquote(heading), shown.strip() or None
    )
