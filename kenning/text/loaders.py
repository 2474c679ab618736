"""Loaders read one file into a ``Document``: its text plus typed metadata.

Offsets everywhere in kenning refer to ``Document.text``. For Markdown and plain text that
is the file's exact decoded text; for HTML it is the extracted main text; for PDF it is the
pages' text joined by blank lines, with ``pages`` recording where each page starts.
A loader raises ``LoadError`` with a human reason; the sync records it and carries on.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kenning.errors import LoadError

from . import inline
from .links import outgoing
from .markup import Reading, fences, readable

MARKDOWN = {".md", ".markdown", ".mdx"}
TEXT = {".txt", ".text", ".rst", ".org", ".adoc"}
HTML = {".html", ".htm"}
PDF = {".pdf"}

#: default largest file read; bigger files are reported instead of stalling a sync
MAX_FILE_BYTES = 20 * 1024 * 1024

_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass
class Document:
    """A loaded source: text, where the body starts, metadata and page starts (PDF)."""

    path: str
    type: str
    text: str
    title: str
    body_start: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)  # offset where page i+1 starts
    warning: str | None = None

    @functools.cached_property
    def reading(self) -> Reading:
        """The text with its markup located (Markdown only; other types read as written),
        found once and shared by boilerplate counting and chunking."""
        return Reading(self.text, self.body_start, markdown=self.type == "markdown")


def readable_heading(text: str) -> str:
    """A heading as a reader sees it (``markup.readable``: links read as their text, tags
    left out), for titles and heading paths."""
    return readable(text)


def file_type(path: Path) -> str | None:
    """The loader type for a path, or None when kenning does not read such files."""
    ext = path.suffix.lower()
    for kind, exts in (("markdown", MARKDOWN), ("text", TEXT), ("html", HTML), ("pdf", PDF)):
        if ext in exts:
            return kind
    return None


def load(path: Path, data: bytes, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Parse ``data`` (the bytes of ``path``) with the loader for its type."""
    kind = file_type(path)
    if kind is None:
        raise LoadError(str(path), f"unsupported file type {path.suffix or '(none)'}")
    if len(data) > max_bytes:
        raise LoadError(
            str(path),
            f"file too large ({len(data) / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB limit; "
            "raise it with --max-file-size)",
        )
    if not data.strip() and kind in ("markdown", "text"):
        # An empty note is a note (Obsidian makes one for every link clicked before it is
        # written): indexed with its title and no chunks, not reported as a failure.
        return Document(str(path), kind, data.decode("utf-8", "replace"), path.stem)
    return _LOADERS[kind](path, data)


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError(str(path), "binary content (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LoadError(str(path), f"invalid UTF-8 at byte {e.start}") from None
    return text.removeprefix("\ufeff")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _as_list(value: Any, spaces: bool) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # tags "a, b" or "a b"; aliases are phrases: "a b, c"
        parts = value.split(",") if "," in value or not spaces else value.split()
        return [t.strip().lstrip("#") for t in parts if t.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip().lstrip("#") for v in value if v is not None and str(v).strip()]
    return [str(value)]


_FRONT_MATTER = re.compile(r"---[ \t]*\r?\n(.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", re.DOTALL)
#: a ``key: value`` or ``- item`` line of front matter, for reading it leniently
_KEY_LINE = re.compile(
    r"(?P<lead>[ \t]*(?:-[ \t]+)?[^\s:#'\"\[{-][^:]*?:)(?:[ \t]+(?P<value>.*?))?[ \t]*\r?$"
)
_ITEM_LINE = re.compile(r"(?P<lead>[ \t]*-[ \t]+)(?P<value>.*?)[ \t]*\r?$")


def split_front_matter(text: str) -> tuple[dict[str, Any], int, str | None]:
    """Return (metadata, body offset, warning).

    Front matter that strict YAML rejects but Obsidian users write (``- @kepano``: ``@`` is
    reserved in YAML; ``key: a: b``; tabs) is read leniently, with a warning, rather than
    lost: ``lenient_yaml``. Front matter that yields nothing even so keeps the whole text as
    the body.
    """
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, 0, None
    warning = None
    try:
        meta = yaml.safe_load(m.group(1) or "") or {}
    except yaml.YAMLError as e:
        reason = str(e).splitlines()[0]
        meta = lenient_yaml(m.group(1) or "")
        if not meta:
            return {}, 0, f"front matter is not valid YAML ({reason}); indexed as plain text"
        warning = f"front matter is not valid YAML ({reason}); read leniently, line by line"
    if not isinstance(meta, dict):
        return {}, 0, "front matter is not a YAML mapping; indexed as plain text"
    meta = _json_safe(meta)
    for key in ("tags", "aliases"):
        if key in meta:
            meta[key] = _as_list(meta[key], spaces=key == "tags")
    return meta, m.end(), warning


def _scalar_ok(value: str) -> bool:
    """Whether a value YAML would read, on its own line, as the one value it looks like."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return False
    return not isinstance(parsed, dict) or value.lstrip().startswith("{")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lenient_yaml(source: str) -> dict[str, Any]:
    """Front matter read as far as it can be: first retried with tabs made spaces and every
    value that strict YAML rejects quoted as a string (``- @kepano`` -> ``- '@kepano'``),
    then, failing that, as plain ``key: value`` lines and ``- item`` lists. {} if nothing."""
    fixed = []
    for line in source.expandtabs(2).splitlines():
        m = _KEY_LINE.match(line) or _ITEM_LINE.match(line)
        value = m.group("value") if m else None
        if m and value and not value.startswith("#") and not _scalar_ok(value):
            line = m.group("lead") + " " + _quoted(value)
        fixed.append(line)
    try:
        meta = yaml.safe_load("\n".join(fixed))
        if isinstance(meta, dict) and meta:
            return meta
    except yaml.YAMLError:
        pass
    out: dict[str, Any] = {}
    key: str | None = None
    for line in fixed:
        if (m := _ITEM_LINE.match(line)) and key is not None:
            items = out[key] if isinstance(out[key], list) else []
            out[key] = [*items, _plain(m.group("value"))]
        elif (m := _KEY_LINE.match(line)) and not line.lstrip().startswith("-"):
            key = m.group("lead").rstrip(":").strip()  # indented or not: Obsidian is flat
            out[key] = _plain(m.group("value")) if m.group("value") else None
    return out


def _plain(value: str) -> Any:
    """One value of a ``key: value`` line, as YAML reads it where it can, else the string."""
    value = value.strip()
    if value[:1] == value[-1:] and value[:1] in ("'", '"') and len(value) > 1:
        return value[1:-1]
    if value.startswith("[") and value.endswith("]"):
        return [_plain(v) for v in value[1:-1].split(",") if v.strip()]
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return value if isinstance(parsed, dict | list) else parsed


def _first_h1(text: str, start: int) -> str | None:
    """The first ``# heading`` outside code (a shell comment in a fence is no title)."""
    code = fences(text, start)
    for m in _H1.finditer(text, start):
        if not any(s <= m.start() < e for s, e in code):
            return m.group(1)
    return None


def _load_markdown(path: Path, data: bytes) -> Document:
    text = _decode(path, data)
    meta, body, warning = split_front_matter(text)
    h1 = _first_h1(text, body)
    title = readable_heading(str(meta.get("title") or h1 or "")) or path.stem
    doc = Document(str(path), "markdown", text, title, body, meta, warning=warning)
    doc.links = sorted({link.target for link in outgoing(doc.reading) if link.kind != "markdown"})
    doc.metadata = inline.merge(meta, *inline.body_metadata(doc.reading, body))
    return doc


def _load_text(path: Path, data: bytes) -> Document:
    return Document(str(path), "text", _decode(path, data), path.stem)


def _load_html(path: Path, data: bytes) -> Document:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_decode(path, data))
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    for sel in ("script", "style", "noscript", "nav", "header", "footer", "aside", "template"):
        for node in tree.css(sel):
            node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body
    raw = root.text(separator="\n") if root else ""
    text = re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t]+", " ", raw)).strip()
    if not text:
        raise LoadError(str(path), "no text found in HTML")
    meta = {"title": title} if title else {}
    return Document(str(path), "html", text, title or path.stem, 0, meta)


@contextmanager
def library_messages(logger_name: str) -> Iterator[list[str]]:
    """Collect a library's log records and warnings instead of letting them reach stderr.

    pypdf, for one, logs "EOF marker not found" on a damaged file; kenning reports that file
    itself (by path and reason), so the library's own line would only be noise.
    """
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler, propagate = Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(str(w.message) for w in caught)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _load_pdf(path: Path, data: bytes) -> Document:
    with library_messages("pypdf") as notes:
        doc = _read_pdf(path, data)
    if notes:
        shown = "; ".join(dict.fromkeys(notes))
        doc.warning = f"the PDF reader noted: {shown[:300]}"
    return doc


def _read_pdf(path: Path, data: bytes) -> Document:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(str(path), "encrypted PDF")
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
        info: Any = reader.metadata or {}
        title = str(info.get("/Title") or "") if info else ""
    except LoadError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as e:
        raise LoadError(str(path), f"corrupt PDF ({type(e).__name__}: {e})") from None
    pages, parts, pos = [], [], 0
    for t in texts:
        pages.append(pos)
        parts.append(t)
        pos += len(t) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise LoadError(str(path), "PDF has no extractable text (scanned images?)")
    meta: dict[str, Any] = {"pages": len(texts)}
    if title:
        meta["title"] = title
    return Document(str(path), "pdf", text, title or path.stem, 0, meta, pages=pages)


_LOADERS: dict[str, Callable[[Path, bytes], Document]] = {
    "markdown": _load_markdown,
    "text": _load_text,
    "html": _load_html,
    "pdf": _load_pdf,
}
