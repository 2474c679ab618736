"""Structure-aware chunking with exact source offsets.

A document is cut into *pieces* (headings, paragraphs, code blocks; long ones further into
sentences, then words, then characters), each a span of the text. Pieces are packed into
chunks of at most ``size`` tokens; a chunk never crosses a heading or a PDF page, and a
chunk that fills up carries ``overlap`` tokens of trailing pieces into the next one.
Every chunk is the exact span ``text[start:end]``, so results always point at the source.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from kenning.errors import ConfigError

from .loaders import Document, readable_heading

_HEADING = re.compile(r"(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"(?<=[.!?。])[\"')\]]*\s+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ChunkSpec:
    """Chunking settings; saved in the index so a change re-chunks everything."""

    size: int = 200
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ConfigError(f"chunk_size must be at least 16 tokens, not {self.size}")
        if not 0 <= self.overlap < self.size // 2:
            raise ConfigError(
                f"overlap must be >= 0 and below half the chunk size ({self.size // 2}), "
                f"not {self.overlap}"
            )


@dataclass
class Chunk:
    """A span of a document. ``text == document.text[start:end]`` always holds."""

    start: int
    end: int
    text: str
    heading: str
    page: int | None
    context: str = ""  # title and heading path, prepended when embedding and keyword-indexing

    @property
    def indexed_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.indexed_text.encode()).hexdigest()


@dataclass
class _Piece:
    start: int
    end: int
    tokens: int
    section: int  # pieces of different sections never share a chunk
    heading: str
    is_heading: bool = False


def _blocks(text: str, start: int, markdown: bool) -> list[tuple[int, int, bool, str | None]]:
    """Split text[start:] into (start, end, is_heading, heading_text) blocks."""
    blocks: list[tuple[int, int, bool, str | None]] = []
    pos, n = start, len(text)
    para_start: int | None = None
    para_end = start
    fence: str | None = None
    while pos < n:
        nl = text.find("\n", pos)
        line_end = n if nl == -1 else nl
        nxt = n if nl == -1 else nl + 1
        line = text[pos:line_end]
        stripped = line.strip()
        if fence is not None:
            para_end = line_end
            if stripped.startswith(fence):
                fence = None
        elif markdown and (m := _FENCE.match(stripped)):
            if para_start is None:
                para_start = pos + (len(line) - len(line.lstrip()))
            para_end = line_end
            fence = m.group(1)
        elif markdown and (m := _HEADING.match(stripped)) and len(line) - len(line.lstrip()) < 4:
            if para_start is not None:
                blocks.append((para_start, para_end, False, None))
                para_start = None
            left = pos + (len(line) - len(line.lstrip()))
            blocks.append((left, pos + len(line.rstrip()), True, m.group(1) + " " + m.group(2)))
        elif not stripped:
            if para_start is not None:
                blocks.append((para_start, para_end, False, None))
                para_start = None
        else:
            if para_start is None:
                para_start = pos + (len(line) - len(line.lstrip()))
            para_end = pos + len(line.rstrip())
        pos = nxt
    if para_start is not None:
        blocks.append((para_start, para_end, False, None))
    return blocks


def _split_long(
    text: str, start: int, end: int, size: int, count: Callable[[str], int]
) -> list[tuple[int, int, int]]:
    """Cut a span into (start, end, tokens) units of at most ``size`` tokens.

    Over-long spans are cut at sentence ends, else at whitespace (words grouped into runs of
    about ``size`` characters), else into fixed character windows. Units stay small so the
    packer can fill chunks and carry overlap; spans far above the limit are never counted
    whole, so a 20 MB single line costs linear time.
    """
    end = start + len(text[start:end].rstrip())
    if end <= start:
        return []
    if end - start < size * 16:
        tokens = count(text[start:end])
        if tokens <= size:
            return [(start, end, tokens)]
    cuts = [m.end() for m in _SENTENCE_END.finditer(text, start, end) if start < m.end() < end]
    if not cuts:
        words = [m.end() for m in _SPACE.finditer(text, start, end) if start < m.end() < end]
        last = start
        for w in words:  # runs of roughly `size` characters, about a quarter of the limit
            if w - last >= size:
                cuts.append(w)
                last = w
    if not cuts:  # one enormous "word": hard character windows
        step = min(size * 2, max(1, (end - start) // 2))
        cuts = list(range(start + step, end, step))
    out: list[tuple[int, int, int]] = []
    bounds = [start, *cuts, end]
    for a, b in zip(bounds, bounds[1:], strict=False):
        out.extend(_split_long(text, a, b, size, count))
    return out


def chunk_document(
    doc: Document, spec: ChunkSpec, count_tokens: Callable[[str], int]
) -> list[Chunk]:
    """Cut ``doc`` into chunks of at most ``spec.size`` tokens with exact offsets."""
    text = doc.text
    pieces: list[_Piece] = []
    stack: list[tuple[int, str]] = []
    section = 0
    page_of = (lambda off: bisect.bisect_right(doc.pages, off)) if doc.pages else None
    for b_start, b_end, is_heading, heading_text in _blocks(
        text, doc.body_start, doc.type == "markdown"
    ):
        if is_heading and heading_text is not None:
            level = len(heading_text.split(" ", 1)[0])
            title = readable_heading(heading_text[level + 1 :])
            stack = [h for h in stack if h[0] < level] + [(level, title)]
            section += 1
        heading = " > ".join(h[1] for h in stack)
        for s, e, tokens in _split_long(text, b_start, b_end, spec.size, count_tokens):
            sec = section
            if page_of is not None:
                sec = section * 100_000 + page_of(s)
            pieces.append(_Piece(s, e, tokens, sec, heading, is_heading))

    chunks: list[Chunk] = []
    current: list[_Piece] = []

    def emit() -> None:
        first, last = current[0], current[-1]
        page = page_of(first.start) if page_of is not None else None
        # A chunk that opens with headings belongs to the innermost one.
        heading = next((p.heading for p in current if not p.is_heading), last.heading)
        # Context = title and heading path, minus headings the chunk already spells out.
        leading = {p.heading.rsplit(" > ", 1)[-1] for p in current if p.is_heading}
        parts = [doc.title, *(heading.split(" > ") if heading else [])]
        parts = [x for i, x in enumerate(parts) if x and x not in leading and x not in parts[:i]]
        chunks.append(
            Chunk(
                first.start,
                last.end,
                text[first.start : last.end],
                heading,
                page,
                " > ".join(parts),
            )
        )

    for piece in pieces:
        total = sum(p.tokens for p in current)  # chunks hold few pieces: cheap
        only_headings = all(p.is_heading for p in current)
        new_section = current and piece.section != current[-1].section and not only_headings
        too_big = total + piece.tokens > spec.size and not only_headings
        if current and (new_section or too_big):
            emit()
            carry: list[_Piece] = []
            if not new_section and spec.overlap:
                kept = 0
                for p in reversed(current[1:]):
                    if kept + p.tokens > spec.overlap:
                        break
                    carry.insert(0, p)
                    kept += p.tokens
                if kept + piece.tokens > spec.size:
                    carry = []
            current = carry
        current.append(piece)
    if current:
        emit()
    return chunks
