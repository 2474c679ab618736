"""Metadata written in a note's body: inline ``#tags`` and Dataview inline fields.

Obsidian reads a ``#tag`` anywhere in a note's text, and the Dataview plugin reads
``key:: value`` fields there; both are metadata as much as front matter is. ``body_metadata``
finds them the way those tools do, and ``merge`` adds them to the front matter's:

- A tag is ``#`` after a space or at the start of a line, then letters, digits, ``_``, ``-``
  and ``/`` (nested tags: ``#area/sub``), with at least one character that is not a digit
  (``#123`` is no tag). It is recorded without its ``#`` and with a trailing ``/`` dropped.
- Not tags: anything in code (fenced blocks, inline code spans), in a URL
  (``http://x/#anchor``), a link's target (``[x](note.md#heading)``, ``[[note#heading]]``),
  an HTML tag or a comment; a heading's ``#`` markers (they are followed by a space).
- A field is ``key:: value`` on its own line (after list bullets or ``>`` quotes, as Dataview
  allows), or ``[key:: value]`` / ``(key:: value)`` inside a line. Both need a space (or the
  field's end) after ``::``, so that ``std::vector``, ``Foo::bar()`` or a link's text
  ``[Create a CSV::Table](...)`` is no field; Dataview is laxer there.
- Keys are normalised as Dataview's own sanitised keys are: formatting (``**``, ``_``) left
  out, lower-cased, spaces made dashes (``**Time Played**::`` gives ``time-played``). A key
  given more than once becomes a list, as in Dataview. Values are kept as text (filters
  compare numbers as numbers anyway).

Front matter wins a clash; a ``tags`` field adds to the note's tags.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from .markup import _CODE_SPAN, Reading

#: a tag's ``#`` and name; the ``#`` must follow a space or start a line (checked apart, so
#: that ``re`` can scan for the literal ``#``)
_TAG = re.compile(r"#([\w/-]+)")
_DIGITS = re.compile(r"\d+/*")
#: ``key:: value`` as a whole line, after any quote markers and a list bullet
_LINE_FIELD = re.compile(
    r"^[ \t]*(?:>[ \t]*)*(?:(?:[-*+]|\d+[.)])[ \t]+)?(?:\[[ xX]\][ \t]+)?"
    r"(?P<key>[^\s:\[\]()`#][^:\n\[\]()`]{0,60}?)::(?:[ \t]+(?P<value>[^\n]*?))?[ \t]*$",
    re.MULTILINE,
)
#: ``[key:: value]`` or ``(key:: value)`` inside a line
_BRACKET_FIELD = re.compile(
    r"(?P<open>[\[(])(?P<key>[^\s:\[\]()`][^:\n\[\]()`]{0,60}?)::(?:[ \t]+|(?=[\])]))"
    r"(?P<value>(?:[^\n\[\]()]|\[\[[^\[\]\n]*\]\])*?)[ \t]*(?P<close>[\])])(?!\()"
)
_FORMATTING = re.compile(r"[*_~=`]+")


def field_key(key: str) -> str:
    """A field's key as Dataview sanitises it: no formatting, lower case, dashes for spaces."""
    return re.sub(r"\s+", "-", _FORMATTING.sub("", key).strip()).lower()


def _hidden(reading: Reading, start: int) -> list[tuple[int, int]]:
    """Sorted spans where no tag or field is read: code, and what markup hides (link
    targets, URLs, HTML tags, comments)."""
    text = reading.text
    spans = list(reading.fences)
    if "`" in text:
        spans.extend(m.span() for m in _CODE_SPAN.finditer(text, start))
    spans.extend((s, e) for s, e, _ in reading.edits)
    disjoint: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if disjoint and s <= disjoint[-1][1]:
            disjoint[-1] = (disjoint[-1][0], max(disjoint[-1][1], e))
        else:
            disjoint.append((s, e))
    return disjoint


def _inside(spans: list[tuple[int, int]], ends: list[int], pos: int) -> bool:
    """Whether ``pos`` lies in one of the sorted, disjoint ``spans`` (``ends``: their ends)."""
    i = bisect.bisect_right(ends, pos)
    return i < len(spans) and spans[i][0] <= pos


def body_metadata(reading: Reading, start: int) -> tuple[list[str], dict[str, Any]]:
    """The inline tags (in order, first spelling of each) and Dataview fields of
    ``reading.text[start:]``."""
    text = reading.text
    # candidates first: most notes have none, and then what markup hides is never needed
    tags = [
        (m.start(), m.group(1).rstrip("/"))
        for m in _TAG.finditer(text, start)
        if (m.start() == 0 or text[m.start() - 1].isspace()) and not _DIGITS.fullmatch(m[1])
    ]
    found: list[tuple[int, str, str]] = []
    if "::" in text:
        found = [
            (m.start("key"), m.group("key"), m.group("value") or "")
            for m in _LINE_FIELD.finditer(text, start)
        ]
        found += [
            (m.start("key"), m.group("key"), m.group("value"))
            for m in _BRACKET_FIELD.finditer(text, start)
            if (m.group("open") == "[") == (m.group("close") == "]")
        ]
    if not tags and not found:
        return [], {}
    hidden = _hidden(reading, start)
    ends = [e for _, e in hidden]
    spelled: dict[str, str] = {}
    for pos, tag in tags:
        if tag and not _inside(hidden, ends, pos):
            spelled.setdefault(tag.lower(), tag)
    fields: dict[str, Any] = {}
    for pos, raw_key, value in sorted(found):
        key = field_key(raw_key)
        if not key or _inside(hidden, ends, pos):
            continue
        value = value.strip()
        if key in fields:
            old = fields[key]
            fields[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            fields[key] = value
    return list(spelled.values()), fields


def merge(meta: dict[str, Any], tags: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    """Front matter with the body's tags added to its ``tags`` and its fields added where
    the front matter has no such key."""
    out = dict(meta)
    extra = fields.get("tags")
    if extra is not None:
        items = extra if isinstance(extra, list) else [extra]
        tags = [*tags, *(t.lstrip("#") for v in items for t in str(v).replace(",", " ").split())]
    for key, value in fields.items():
        if key != "tags" and key not in out:
            out[key] = value
    if tags:
        have = out.get("tags")
        current = have if isinstance(have, list) else ([] if have is None else [str(have)])
        seen = {str(t).lower() for t in current}
        added = []
        for tag in tags:
            if tag and tag.lower() not in seen:
                seen.add(tag.lower())
                added.append(tag)
        if added:
            out["tags"] = [*current, *added]
    return out
