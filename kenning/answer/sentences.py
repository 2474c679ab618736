"""Sentences and what they claim: the units that answers quote and citations are checked on.

``split`` cuts text into sentences with their offsets (list items and lines of a paragraph
count as sentences; code fences are skipped as claims). ``content_words`` are the words that
carry meaning (stopwords out, crudely stemmed), and ``facts`` are the tokens a supporting
passage must contain verbatim: numbers, dates, versions and capitalised names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from kenning.text.tokens import STOPWORDS

_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_STARTS_UNIT = re.compile(r"^\s*(?:[#|>]|[-*+]\s|\d+[.)]\s)")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf|Dr|Mr|Mrs|Ms|Fig|No|approx)\.$", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,:/-]\d+)*%?")
_NAME = re.compile(r"(?<=[^\s.!?]\s)(?:[A-Z][\w\-]*[A-Za-z0-9])(?:\s+[A-Z][\w\-]*[A-Za-z0-9])*")
_CITATION = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_MARKUP = re.compile(r"^\s*(?:[#>*\-+]+|\d+[.)])\s+")


@dataclass
class Span:
    start: int
    end: int
    text: str


def split(text: str, min_words: int = 3) -> list[Span]:
    """Sentences of ``text`` with offsets; fenced code and fragments under ``min_words``
    words are left out. A sentence may run over several lines of a wrapped paragraph; a
    heading, a list item or a table row starts a new one."""
    spans: list[Span] = []
    for start, end in _units(text):
        unit = text[start:end]
        cuts = [m.start() for m in _BOUNDARY.finditer(unit)] + [len(unit)]
        begin = 0
        for cut in cuts:
            piece = unit[begin:cut]
            if _ABBREV.search(piece) and cut != cuts[-1]:
                continue  # "e.g." does not end a sentence
            lead = len(piece) - len(piece.lstrip(" \t\n\"')]"))
            trail = len(piece.rstrip())
            if trail > lead:
                spans.append(Span(start + begin + lead, start + begin + trail, piece[lead:trail]))
            m = _BOUNDARY.match(unit, cut)
            begin = m.end() if m else cut
    return [s for s in spans if len(_WORD.findall(s.text)) >= min_words]


def _units(text: str) -> list[tuple[int, int]]:
    """Paragraphs, list items, headings and table rows as (start, end), fences left out."""
    units: list[tuple[int, int]] = []
    in_fence = False
    current: list[int] | None = None
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        body_end = pos + len(line.rstrip("\r\n"))
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            current = None
        elif in_fence or not stripped:
            current = None
        elif current is None or _STARTS_UNIT.match(line):
            current = [pos, body_end]
            units.append((pos, body_end))
        else:
            current[1] = body_end
            units[-1] = (current[0], body_end)
        if stripped.startswith(("#", "|")):
            current = None  # a heading or a table row is a unit of its own
        pos += len(line)
    return units


def strip_markup(text: str) -> str:
    """A sentence without its list bullet, heading marks or quote marker."""
    return _MARKUP.sub("", text).strip()


def citations(text: str) -> tuple[str, list[int]]:
    """(the sentence without its [n] markers, the cited numbers in order, deduplicated)."""
    found: list[int] = []
    for m in _CITATION.finditer(text):
        for n in re.split(r"\s*[,;]\s*", m.group(1)):
            if int(n) not in found:
                found.append(int(n))
    return _CITATION.sub("", text).strip(), found


def stem(word: str) -> str:
    """A crude stem, enough to match "increases" with "increased"."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def content_words(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1}


def facts(text: str) -> set[str]:
    """Numbers, dates, versions and capitalised names (not the sentence's first word)."""
    found = {m.group().rstrip(".,").lower() for m in _NUMBER.finditer(text)}
    found |= {m.group().lower() for m in _NAME.finditer(" " + strip_markup(text))}
    return {f for f in found if f}


class SentenceVectors:
    """The index's embedder, with vectors cached by text for one answer.

    The extractive answerer and the citation check look at the same sentences; each is
    embedded once, through ``Embedder.embed_now``: a few dozen sentences are latency-bound
    like a query, so they never wait for a batch runtime to load (torch, for MiniLM).
    """

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self._cache: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}

    def vectors(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for t, v in zip(missing, self.embedder.embed_now(missing), strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def query(self, text: str) -> np.ndarray:
        if text not in self._queries:
            self._queries[text] = self.embedder.embed_query(text)
        return self._queries[text]
