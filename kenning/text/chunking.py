"""Structure-aware chunking with exact source offsets.

A document is cut into *sections* (a heading and the blocks under it, up to the next
heading; a PDF page starts a new section) and *blocks* (paragraphs, code blocks; long ones
further into sentences, then words, then characters). Chunks are packed from whole sections:
consecutive sections share a chunk while they fit in ``size`` tokens, so a note of many short
sections makes a few full chunks rather than one sliver per heading (on a real vault that
rule made 49,600 chunks of ~300 bytes out of 15 MB: slow to embed, and short chunks rank
badly). A section that does not fit in the room left starts a new chunk; one too long for
any chunk is cut at its blocks, its chunks carrying ``overlap`` tokens of trailing pieces
into the next. A chunk's heading is the heading path its sections share. A chunk never
crosses a PDF page.

Every chunk is the exact span ``text[start:end]``, so results always point at the source.
What is indexed and embedded (``Chunk.indexed_text``) is the chunk *as it reads*: the
context (title and heading path, and the file name when the title does not say it) over the
text with its markup and boilerplate left out (``markup``, ``boilerplate``). Sizes count
that readable text, so link URLs and template footers take no room. ``size`` bounds the
text; the context on top is held to a quarter of ``size`` (middle headings dropped, then
words, if need be), so the default 200 + 50 tokens fit MiniLM's 256.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from kenning.errors import ConfigError

from . import boilerplate as template
from .loaders import Document, readable_heading
from .markup import Reading

#: the chunker's version: version 2 merges sections and leaves markup and boilerplate out of
#: the indexed text; version 3 reads inline tags and Dataview fields into a note's metadata;
#: version 4 adds a note's aliases and tags to its first chunk's context (``names_part``).
#: An index chunked by an older version must be re-read (unchanged chunks keep their vectors)
VERSION = 4
#: a chunk's source span holds at most this many characters per token of ``size``: a note
#: of nothing but markup reads as little, yet its chunk's stored text must stay bounded
RAW_CHARS_PER_TOKEN = 32
#: the context prepended to a chunk is held to ``size // CONTEXT_SHARE`` tokens
CONTEXT_SHARE = 4
#: a chunk under ``size // SMALL_SHARE`` tokens is balanced with the chunk before it
SMALL_SHARE = 4
#: tokens per character assumed before any is counted (MiniLM reads English at ~0.25-0.35)
PRIOR_RATE = 0.3

_HEADING = re.compile(r"(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"(?<=[.!?。])[\"')\]]*\s+")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+")


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
    """A span of a document. ``text == document.text[start:end]`` always holds.

    ``body`` is the text as it reads, without markup or boilerplate (None: ``text`` as is);
    the ``context`` and the body are what is keyword-indexed and embedded.
    """

    start: int
    end: int
    text: str
    heading: str
    page: int | None
    context: str = ""  # title and heading path, prepended when embedding and keyword-indexing
    body: str | None = None

    @property
    def indexed_text(self) -> str:
        body = self.text if self.body is None else self.body
        return f"{self.context}\n{body}" if self.context and body else self.context or body

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.indexed_text.encode()).hexdigest()


@dataclass
class _Piece:
    """A span packed whole: a section, or a part of a section too long for one chunk."""

    start: int
    end: int
    tokens: int
    path: tuple[str, ...]  # heading path
    headings: tuple[str, ...]  # the headings the piece spells out
    page: int | None
    is_heading: bool = False  # nothing but headings


@dataclass
class _Section:
    path: tuple[str, ...]
    page: int | None
    blocks: list[tuple[int, int, str | None]]  # (start, end, readable heading or None)

    @property
    def start(self) -> int:
        return self.blocks[0][0]

    @property
    def end(self) -> int:
        return self.blocks[-1][1]


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
    text: str, start: int, end: int, size: int, measure: Callable[[int, int], int]
) -> list[tuple[int, int, int]]:
    """Cut a span into (start, end, tokens) units of at most ``size`` tokens.

    Over-long spans are cut at sentence ends, else at whitespace (words grouped into runs of
    about ``size`` characters), else into fixed character windows. Units stay small so the
    packer can fill chunks and carry overlap; spans far above the limit are never counted
    whole, so a 20 MB single line costs linear time. ``measure(start, end)`` counts the
    tokens of a span as it reads.
    """
    end = start + len(text[start:end].rstrip())
    if end <= start:
        return []
    if end - start < size * 16:
        tokens = measure(start, end)
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
        out.extend(_split_long(text, a, b, size, measure))
    return out


def _sections(doc: Document, page_of: Callable[[int], int] | None) -> list[_Section]:
    """Group the blocks into sections. Headings with nothing between them share a section,
    which belongs to the innermost of them."""
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    for b_start, b_end, is_heading, heading_text in _blocks(
        doc.text, doc.body_start, doc.type == "markdown"
    ):
        name = None
        if is_heading and heading_text is not None:
            level = len(heading_text.split(" ", 1)[0])
            name = readable_heading(heading_text[level + 1 :])
            stack = [h for h in stack if h[0] < level] + [(level, name)]
        path = tuple(h[1] for h in stack)
        page = page_of(b_start) if page_of is not None else None
        last = sections[-1] if sections else None
        if last is None or last.page != page:
            sections.append(_Section(path, page, []))
        elif is_heading:
            if all(b[2] is not None for b in last.blocks):
                last.path = path
            else:
                sections.append(_Section(path, page, []))
        sections[-1].blocks.append((b_start, b_end, name))
    return sections


def _common(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The longest heading path that starts every one of ``paths``."""
    first = paths[0]
    n = len(first)
    for p in paths[1:]:
        n = min(n, len(p))
        while n and p[:n] != first[:n]:
            n -= 1
    return first[:n]


def embedding_text(indexed: str) -> str:
    """What the model embeds of a chunk's ``indexed_text``: the same, less two context parts
    that only the keyword index can use.

    - A part that the body's opening heading repeats. A note's first chunk opens with its
      title, which the context names too: the keyword index keeps the repeat (a note's own
      chunks must say its title more often than a note that links to it); to the model it
      is only cost.
    - A leading file name with no letters in it (an ID, a date: "4423327", "2024-05-01"):
      the keyword index finds a note by it, the model reads it as noise.

    On SciFact they are 5.1% and 2.8% of the tokens embedded, and hybrid nDCG@10 is no
    lower without them; dense search on notes loses a little on questions about a whole
    note, whose first chunk no longer reads its title twice (README, "What the model
    reads").
    """
    context, sep, body = indexed.partition("\n")
    if not sep:
        return indexed
    parts = context.split(" > ")
    if len(parts) > 1 and not any(ch.isalpha() for ch in parts[0]):
        del parts[0]
    if opening := _HEADING.match(body.split("\n", 1)[0]):
        parts = [p for p in parts if p != opening[2]]
    rest = " > ".join(parts)
    return f"{rest}\n{body}" if rest else body


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


class _Context:
    """Each chunk's context: the file name when the title does not say it (in Obsidian the
    file name *is* the title, so a note titled by its first heading or its front matter must
    still be found by its name), the title, and the heading path; held to a share of the
    chunk size so that context and text together fit the model."""

    def __init__(self, doc: Document, spec: ChunkSpec, count: Callable[[str], int]) -> None:
        self.title = doc.title
        stem = os.path.splitext(os.path.basename(doc.path))[0]
        self.name = stem if _words(stem) - _words(doc.title) else ""
        self.limit = max(8, spec.size // CONTEXT_SHARE)
        self.count = count
        self._fitted: dict[tuple[str, ...], str] = {}

    def __call__(self, path: tuple[str, ...], spelled: set[str]) -> str:
        # Headings the chunk spells out itself are left out, but never the title: a note's
        # title is its name, and its own chunks must say it more often than a note that
        # merely links to it ("Related: [[Zettelkasten]]").
        parts = [self.name, self.title, *(h for h in path if h not in spelled)]
        parts = [x for i, x in enumerate(parts) if x and x not in parts[:i]]
        key = tuple(parts)
        if key not in self._fitted:
            self._fitted[key] = self._fit(parts)
        return self._fitted[key]

    def _fit(self, parts: list[str]) -> str:
        context = " > ".join(parts)
        if self._short(context) or self.count(context) <= self.limit:
            return context
        while len(parts) > 2:  # keep the outermost and the innermost
            del parts[1]
            context = " > ".join(parts)
            if self._short(context) or self.count(context) <= self.limit:
                return context
        while True:  # still too long (a title of a hundred words): halve the longest part
            i = max(range(len(parts)), key=lambda j: len(parts[j]))
            words = parts[i].split()
            if len(words) < 2:
                break
            parts[i] = " ".join(words[: len(words) // 2]) + "…"
            context = " > ".join(parts)
            if self._short(context) or self.count(context) <= self.limit:
                return context
        keep = int((self.limit - 2) / 1.3) - 1  # a length that surely fits
        return context[:keep] + "…" if len(context) > keep else context

    def _short(self, context: str) -> bool:
        """Whether the context surely fits, uncounted: a token takes at least a character
        (MiniLM counts at most characters + 2, the word estimate 1.3 a character + 1)."""
        return len(context) * 1.3 + 2 <= self.limit


class _Packer:
    """Packs sections and pieces into chunks, in order."""

    def __init__(
        self, doc: Document, spec: ChunkSpec, count: Callable[[str], int], read: Reading
    ) -> None:
        self.text, self.spec, self.count, self.read = doc.text, spec, count, read
        self.raw_limit = spec.size * RAW_CHARS_PER_TOKEN
        self.context = _Context(doc, spec, count)
        self.chunks: list[Chunk] = []
        self.blank: list[Chunk] = []  # chunks that read as nothing
        self.current: list[_Piece] = []
        self.tokens = 0
        self.seen = [0, 0]  # tokens and characters counted so far
        self.previous: list[_Piece] | None = None  # the pieces of the last chunk made

    def measure(self, start: int, end: int) -> int:
        """Tokens of a span as it reads (spacing changes no count: no need to tidy it)."""
        body = self.read.raw(start, end)
        if not body or body.isspace():
            return 0
        n = self.count(body)
        self.seen[0] += n
        self.seen[1] += len(body)
        return n

    def predict(self, start: int, end: int) -> float:
        """A span's tokens guessed from its length at the rate counted so far."""
        tokens, chars = self.seen
        return len(self.read.raw(start, end)) * (tokens / chars if chars else PRIOR_RATE)

    def emit(self) -> None:
        """Make a chunk of the pieces packed so far.

        A chunk much smaller than the chunk before it (a short last section, a "Related"
        list after a full chunk) first takes trailing pieces of that chunk, as far as
        keeps it no bigger than what is left: a sliver of a few words would otherwise
        outrank whole notes on any of its words.
        """
        if not self.current:
            return
        before = self.previous
        if (
            before is not None
            and self.tokens < self.spec.size // SMALL_SHARE
            and self.current[0].start >= before[-1].end
            and self.current[0].page == before[-1].page
        ):
            left = sum(p.tokens for p in before)
            while len(before) > 1:
                p = before[-1]
                taken = self.tokens + p.tokens
                if taken > left - p.tokens or self.current[-1].end - p.start > self.raw_limit:
                    break
                self.current.insert(0, before.pop())
                self.tokens, left = taken, left - p.tokens
            self.chunks[-1] = self._chunk(before)
        chunk = self._chunk(self.current)
        if chunk.body:
            self.chunks.append(chunk)
            self.previous = self.current
        else:
            self.blank.append(chunk)
            self.previous = None
        self.current, self.tokens = [], 0

    def _chunk(self, pieces: list[_Piece]) -> Chunk:
        start, end = pieces[0].start, pieces[-1].end
        path = _common([p.path for p in pieces])
        spelled = {h for p in pieces for h in p.headings}
        return Chunk(
            start,
            end,
            self.text[start:end],
            " > ".join(path),
            pieces[0].page,
            self.context(path, spelled),
            self.read.read(start, end),
        )

    def fits(self, piece: _Piece) -> bool:
        if not self.current:
            return True
        if piece.page != self.current[-1].page:
            return False
        return (
            self.tokens + piece.tokens <= self.spec.size
            and piece.end - self.current[0].start <= self.raw_limit
        )

    def add(self, piece: _Piece) -> None:
        self.current.append(piece)
        self.tokens += piece.tokens

    def section(self, section: _Section) -> None:
        """Add a section whole if it fits in one chunk; else cut it at its blocks.

        Tokenizing costs about the same per character however the text is cut (MiniLM:
        ~1.5 us a character, ~25 us a call), so a section is counted whole only when it is
        likely to fit, and one likely too long goes straight to its blocks: each character
        is counted about once.
        """
        s, e = section.start, section.end
        headings = tuple(h for _, _, h in section.blocks if h is not None)
        size = self.spec.size
        short = e - s <= min(self.raw_limit, size * 16)
        if short and (len(section.blocks) == 1 or self.predict(s, e) <= size):
            n = self.measure(s, e)
            if n <= size:
                only_headings = len(headings) == len(section.blocks)
                whole = _Piece(s, e, n, section.path, headings, section.page, only_headings)
                if not self.fits(whole):
                    self.emit()
                self.add(whole)
                return
        if self.tokens:  # too long for one chunk: it starts its own (after any blank lead-in)
            self.emit()
        self.cut(section)

    def cut(self, section: _Section) -> None:
        """Pack a section's blocks, cut to size, carrying overlap from chunk to chunk."""
        size = self.spec.size
        for b_start, b_end, heading in section.blocks:
            # A heading is not left alone at the end of a chunk: the block after it is cut
            # to fit beside it (unless the heading fills half the chunk on its own).
            after_heading = bool(self.current) and all(p.is_heading for p in self.current)
            room = max(size - self.tokens, size // 2) if after_heading else size
            for p_start, p_end, p_tokens in _split_long(
                self.text, b_start, b_end, room, self.measure
            ):
                named = (heading,) if heading is not None else ()
                piece = _Piece(
                    p_start, p_end, p_tokens, section.path, named, section.page, bool(named)
                )
                if self.fits(piece):
                    self.add(piece)
                    continue
                carry: list[_Piece] = []
                kept = 0
                for p in reversed(self.current[1:] if self.spec.overlap else []):
                    if kept + p.tokens > self.spec.overlap:
                        break
                    carry.insert(0, p)
                    kept += p.tokens
                if kept + piece.tokens > size:
                    carry = []
                self.emit()
                for p in carry:
                    self.add(p)
                self.add(piece)


def chunk_document(
    doc: Document,
    spec: ChunkSpec,
    count_tokens: Callable[[str], int],
    boilerplate: frozenset[str] = frozenset(),
) -> list[Chunk]:
    """Cut ``doc`` into chunks of at most ``spec.size`` tokens with exact offsets.

    ``boilerplate`` holds the keys of lines to leave out of the indexed text (see
    ``boilerplate.repeated``); a chunk with nothing else in it is not made, unless the
    document has nothing else: then its one chunk is indexed by its context alone, so the
    note can still be found by its title.
    """
    read = doc.reading
    if boilerplate:
        read = read.hiding(template.spans(doc, boilerplate))
    page_of = (lambda off: bisect.bisect_right(doc.pages, off)) if doc.pages else None
    packer = _Packer(doc, spec, count_tokens, read)
    for section in _sections(doc, page_of):
        packer.section(section)
    packer.emit()
    chunks = packer.chunks or packer.blank[:1]
    names = names_part(doc, spec, count_tokens)
    if chunks and names:
        first = chunks[0]
        first.context = f"{first.context} > {names}" if first.context else names
    return chunks


def names_part(doc: Document, spec: ChunkSpec, count: Callable[[str], int]) -> str:
    """The names a note has beyond its title and file name (which every chunk's context
    says already): its aliases, then its tags as ``#tag`` (front matter and inline), as
    one context part of its first chunk, so that a word of any name finds the note by
    keyword and by meaning. "" for a document with none (a plain document is indexed and
    embedded exactly as before). Held to ``size // CONTEXT_SHARE`` tokens, later names
    dropped first."""
    meta = doc.metadata
    aliases = meta.get("aliases") or []
    tags = meta.get("tags") or []
    if not aliases and not tags:
        return ""
    if isinstance(aliases, str):
        aliases = [aliases]
    if isinstance(tags, str):
        tags = tags.split()
    said = {doc.title.casefold(), os.path.splitext(os.path.basename(doc.path))[0].casefold()}
    names = [str(a).strip() for a in aliases if str(a).strip().casefold() not in said]
    names = [n for i, n in enumerate(names) if n and n not in names[:i]]
    labels = [f"#{str(t).strip().lstrip('#')}" for t in tags if str(t).strip().lstrip("#")]
    labels = [t for i, t in enumerate(labels) if t not in labels[:i]]
    limit = max(8, spec.size // CONTEXT_SHARE)
    while names or labels:
        part = " ".join(x for x in (", ".join(names), " ".join(labels)) if x)
        if len(part) * 1.3 + 2 <= limit or count(part) <= limit:
            return part
        if labels:
            labels.pop()
        else:
            names.pop()
    return ""
