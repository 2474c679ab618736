"""Boilerplate: lines that a note template repeats across many notes.

Real vaults are noisy: on a 6,500-note Obsidian vault every note ended with the template
footer "This note in GitHub [Edit In GitHub](https://github.dev/...)", and those footers,
not the notes, were the top hits for "plugin to sync vault with git". Boilerplate stays in
the source (offsets and citations are untouched) but is left out of the text that is
keyword-indexed and embedded, so it can neither match a query nor dilute a chunk's vector.

The unit is a *line* as it reads (``markup.Reading``: tags, comments and link targets left
out), normalised to its lower-cased words: a footer whose link differs per note
(``github.dev/.../this-note.md``) reads the same in every note, and a footer glued to the
last paragraph without a blank line is still its own line. Headings (structure, and already
in each chunk's context) and code (kept as written) are never boilerplate.

The rule (``repeated``): a line is boilerplate when it has at least ``MIN_WORDS`` words and
occurs in at least ``MIN_FILES`` files *and* at least ``MIN_SHARE`` of the files counted.

- ``MIN_WORDS = 3``: short lines repeat naturally ("Display help" heads 10% of tldr-pages;
  "Source", a link label, 28% of jbranchaud/til) and weigh little in a chunk; the template
  text that outranks content is longer.
- ``MIN_SHARE = 5%``: on tldr-pages (7,425 pages) and jbranchaud/til (1,873 notes) every line
  of 3+ words at or above 5% is template text ("More information: manned.org", 20% of tldr;
  "View documentation for the original command", 8%), while the most repeated natural lines
  stay far below it ("for more details", 1.5% of til; "start the daemon", 0.9% of tldr).
  A template used by only a kind of note (book notes, daily notes) is still caught.
- ``MIN_FILES = 10``: in a small folder a few notes may share a sentence on purpose; only
  text repeated in many files is a template.

Measured on real notes (317 jbranchaud/til notes on git, vim, docker and bash, with the
issue's footer appended to each, MiniLM, 60 title queries and 5 git/GitHub questions):
hits in the top five that were mostly footer fell from 54 and 11 of 25 (chunker version 1)
to 8 and 4 (sections merged: the footer no longer makes slivers) to 1 and 0 with this rule;
top-1 on the title queries stayed at 59-60 of 60. ``tests/text/test_boilerplate.py`` checks the
same on a generated vault.

The syncer counts ``block_keys`` over the files it indexes (plus what it saved from earlier
syncs), asks ``repeated`` for the set, and passes that set to ``chunk_document``.
"""

from __future__ import annotations

import hashlib
import math
import re
import weakref
from collections import Counter
from collections.abc import Iterator

from .loaders import Document
from .markup import Reading

MIN_WORDS = 3
MIN_FILES = 10
MIN_SHARE = 0.05

_WORD = re.compile(r"[^\W_]+")
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}(?:[ \t\r]|\Z)")
#: each document's lines and keys, kept while its reading lives (see ``lines``)
_LINES: weakref.WeakKeyDictionary[Reading, list[tuple[int, int, str]]] = weakref.WeakKeyDictionary()


def key(line: str) -> str | None:
    """The key of a line as it reads, or None when it is too short to be boilerplate."""
    words = _WORD.findall(line.casefold())
    if len(words) < MIN_WORDS:
        return None
    return hashlib.blake2b(" ".join(words).encode(), digest_size=8).hexdigest()


def lines(doc: Document) -> list[tuple[int, int, str]]:
    """(start, end, key) of each line of the body that could be boilerplate; found once per
    document (the syncer counts them, then the chunker looks them up)."""
    read = doc.reading
    found = _LINES.get(read)
    if found is None:
        found = _LINES[read] = list(_lines(doc, read))
    return found


def _lines(doc: Document, read: Reading) -> Iterator[tuple[int, int, str]]:
    text, markdown = doc.text, doc.type == "markdown"
    code = iter(read.fences)
    fence = next(code, None)
    pos = doc.body_start
    for line in text[pos:].split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if len(line) < MIN_WORDS * 2 - 1 or line.isspace():
            continue
        while fence is not None and fence[1] <= start:
            fence = next(code, None)
        if fence is not None and fence[0] <= start:
            continue  # code is kept as written
        if markdown and line.lstrip(" \t").startswith("#") and _HEADING.match(line):
            continue  # structure, and already in each chunk's context
        k = key(read.raw(start, end))
        if k is not None:
            yield start, end, k


def block_keys(doc: Document) -> set[str]:
    """The keys of a document's countable lines, each once: a file counts once per line."""
    return {k for _, _, k in lines(doc)}


def repeated(counts: Counter[str], files: int) -> frozenset[str]:
    """The boilerplate among ``counts`` (files per key, over ``files`` files): see the rule."""
    need = max(MIN_FILES, math.ceil(MIN_SHARE * files))
    return frozenset(k for k, c in counts.items() if c >= need)


def spans(doc: Document, boilerplate: frozenset[str]) -> list[tuple[int, int]]:
    """Source spans of the document's boilerplate lines, to leave out of its indexed text."""
    if not boilerplate:
        return []
    return [(s, e) for s, e, k in lines(doc) if k in boilerplate]
