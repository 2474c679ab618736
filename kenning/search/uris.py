"""A link that opens a hit's source in its app: ``Hit.open_url``, and each cited source's.

A file inside an Obsidian vault (a folder holding ``.obsidian/``: the root itself, a folder
above it, or one below it) gets Obsidian's own URI, ``obsidian://open?vault=NAME&file=PATH``
(help.obsidian.md/uri): ``NAME`` is the vault's folder name, ``PATH`` the file's path inside
the vault, without ``.md``, with the chunk's heading riding on it as ``#Heading`` (a PDF's
page as ``#page=N``), everything percent-encoded (``/`` is ``%2F``, ``#`` is ``%23``). Only
the deepest heading of the chunk's heading path is used, with the characters a link cannot
hold (``# | ^ [ ] : \\``) read as spaces, the way Obsidian compares headings.

Any other file gets a plain ``file://`` URI of its absolute path, with where the chunk
starts as the fragment: ``#L12`` (its first line) for Markdown and text, ``#page=3`` for a
PDF, none for HTML or when the file changed since it was indexed.

A file's vault (or its lack of one) is looked up once and remembered for a minute, so a link
into a vault costs a dictionary look-up and the heading's encoding (about 10 µs); a
``file://`` line reads the file up to the chunk's end.
"""

from __future__ import annotations

import codecs
import re
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from kenning.ingest.exclusions import find_vault

#: seconds a folder's vault (or its lack of one) is remembered
RECHECK_SECONDS = 60
#: characters an Obsidian heading link cannot hold, which Obsidian's matching ignores
_UNLINKABLE = re.compile(r"[#|^\[\]:\\\s]+")
#: types whose chunk offsets count characters of the file itself (their lines can be told)
_TEXT_TYPES = ("markdown", "text")


def open_url(
    path: str,
    type: str,
    heading: str = "",
    page: int | None = None,
    start: int = 0,
    text: str = "",
) -> str:
    """The link that opens the chunk ``text`` (at ``start`` in the file at ``path``, under
    ``heading``, on ``page``) in Obsidian when the file is in a vault, else as a file."""
    base = _base(path, int(time.monotonic() // RECHECK_SECONDS))
    if base.startswith("obsidian:"):
        return base + _fragment(heading if type == "markdown" else "", page)
    if page is not None:
        return f"{base}#page={page}"
    line = first_line(path, start, text) if type in _TEXT_TYPES and text else None
    return f"{base}#L{line}" if line is not None else base


def vault_of(folder: Path) -> Path | None:
    """The Obsidian vault ``folder`` sits in (itself or the nearest folder above it holding
    ``.obsidian/``), looked up at most once a minute per folder."""
    return _vault(str(folder), int(time.monotonic() // RECHECK_SECONDS))


@lru_cache(maxsize=16384)
def _base(path: str, minute: int) -> str:
    """``obsidian_url`` of the file at ``path`` (no heading) when it is in a vault, else its
    ``file://`` URI: worked out once a minute per file, as a search shows the same notes."""
    file = Path(path).absolute()
    vault = _vault(str(file.parent), minute)
    return obsidian_url(vault, file) if vault is not None else file.as_uri()


@lru_cache(maxsize=4096)
def _vault(folder: str, _minute: int) -> Path | None:
    vault = find_vault(Path(folder))
    return vault if vault is not None and vault.name else None  # "/" has no name to open


def obsidian_url(vault: Path, file: Path, heading: str = "", page: int | None = None) -> str:
    """``obsidian://open`` for ``file`` in ``vault``, at ``heading`` (or ``page``) if given."""
    target = file.relative_to(vault).as_posix()
    if target.endswith(".md"):
        target = target[:-3]
    name, target = quote(vault.name, safe=""), quote(target, safe="")
    return f"obsidian://open?vault={name}&file={target}" + _fragment(heading, page)


def _fragment(heading: str, page: int | None) -> str:
    """``#Heading`` (or ``#page=N``) as it rides on Obsidian's ``file`` value, encoded."""
    sub = link_heading(heading)
    if sub:
        return quote("#" + sub, safe="")
    return quote(f"#page={page}", safe="") if page is not None else ""


def link_heading(heading: str) -> str:
    """The heading an Obsidian link names for a chunk's heading path ("A > B"): its deepest
    heading, with what a link cannot hold read as spaces."""
    last = heading.rsplit(" > ", 1)[-1]
    return _UNLINKABLE.sub(" ", last).strip()


def first_line(file: str | Path, start: int, text: str) -> int | None:
    """The line (from 1) of ``file`` at character ``start``, if ``text`` is still there. Reads
    at most the bytes that ``start + len(text)`` characters of UTF-8 can take, and decodes
    nothing when the file is ASCII up to the chunk (offsets in bytes are then characters)."""
    end = start + len(text)
    try:
        with open(file, "rb") as f:
            data = f.read(4 * end + 4)
    except OSError:
        return None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    head = data[:start]
    if len(head) == start and head.isascii():
        body = text.encode("utf-8")
        return head.count(b"\n") + 1 if data[start : start + len(body)] == body else None
    try:  # a character cut at the end of the read is held back: it lies past ``end``
        content = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return None
    if content[start:end] != text:
        return None  # the file changed since it was indexed
    return content.count("\n", 0, start) + 1
