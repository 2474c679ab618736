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


# -- typed facts: what a claim states, by kind, for comparing two claims ----------------------

_MONTHS = {
    m: i
    for i, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        1,
    )
    for m in names
}
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = re.compile(
    r"\b(?P<iso>\d{4}-\d{1,2}-\d{1,2})\b"
    rf"|\b(?P<dmy>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m1>{_MONTH})(?:,?\s+(?P<y1>\d{{4}}))?\b"
    rf"|\b(?P<m2>{_MONTH})\s+(?P<mdy>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y2>\d{{4}}))?"
    rf"|\b(?P<m3>{_MONTH})\s+(?P<y3>\d{{4}})\b"
    r"|(?<![\w.\-/])(?P<year>1[5-9]\d\d|20\d\d)(?![\w\-/]|[.,]\d)",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000"}
_DIGIT = re.compile(r"\d")
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
#: words that flip a claim's truth: "does not support" against "supports"
NEGATIONS = frozenset({"not", "no", "never", "cannot", "none", "nothing", "neither", "nor"})
_NEGATION = re.compile(r"\b(?:" + "|".join(NEGATIONS) + r")\b|n['’]t\b", re.IGNORECASE)


@dataclass(frozen=True)
class Fact:
    """A number, date or name a sentence states: ``value`` is normalised ("twelve" and "12"
    are both "12", "3 March 2024" and "2024-03-03" both "2024-03-03"); offsets in the text."""

    kind: str  # "number", "date" or "name"
    value: str
    start: int
    end: int

    def text_in(self, text: str) -> str:
        return text[self.start : self.end]


def typed_facts(text: str) -> list[Fact]:
    """The facts of ``text`` by kind, in order. Dates first (so "March" in "3 March 2024" is
    not a name and "2024" is not a number), then numbers (digits or words), then names (the
    capitalised words ``facts`` takes, less month names)."""
    found: list[Fact] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    digits = _DIGIT.search(text) is not None  # every date and number pattern needs one
    for m in _DATE.finditer(text) if digits else ():
        value = _date_value(m)
        if value:
            found.append(Fact("date", value, m.start(), m.end()))
            taken.append((m.start(), m.end()))
    for m in _NUMBER.finditer(text) if digits else ():
        raw = m.group().rstrip(".,")
        if raw and free(m.start(), m.start() + len(raw)):
            found.append(Fact("number", _number_value(raw), m.start(), m.start() + len(raw)))
            taken.append((m.start(), m.start() + len(raw)))
    for m in _NUMBER_WORD.finditer(text):
        if free(m.start(), m.end()):
            found.append(Fact("number", _NUMBER_WORDS[m.group().lower()], m.start(), m.end()))
            taken.append((m.start(), m.end()))
    lead = len(text) - len(strip_markup(text).lstrip()) if text.strip() else 0
    for m in _NAME.finditer(" " + text[lead:]):
        a, b = m.start() - 1 + lead, m.end() - 1 + lead
        words = [w for w in m.group().split() if w.lower().rstrip(".") not in _MONTHS]
        if words and free(a, b):
            found.append(Fact("name", " ".join(words).lower(), a, b))
            taken.append((a, b))
    return sorted(found, key=lambda f: f.start)


def negated(text: str) -> bool:
    """Whether the sentence says no: an odd number of negations ("not", "never", "n't")."""
    return len(_NEGATION.findall(text)) % 2 == 1


def _number_value(raw: str) -> str:
    plain = raw.replace(",", "") if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+", raw) else raw
    try:
        value = float(plain.rstrip("%"))
    except ValueError:
        return raw.lower()
    text = str(int(value)) if value.is_integer() else str(value)
    return text + ("%" if plain.endswith("%") else "")


def _date_value(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g["iso"]:
        y, mo, d = (int(x) for x in g["iso"].split("-"))
        return f"{y:04d}-{mo:02d}-{d:02d}" if 1 <= mo <= 12 and 1 <= d <= 31 else ""
    if g["year"]:
        return g["year"]
    name = next(g[k] for k in ("m1", "m2", "m3") if g[k])
    month = _MONTHS[name.lower().rstrip(".")]
    day = g["dmy"] or g["mdy"]
    year = g["y1"] or g["y2"] or g["y3"]
    if name.lower() == "may" and not (day or year):
        return ""
    if day and not 1 <= int(day) <= 31:
        return ""
    parts = [f"{month:02d}"] + ([f"{int(day):02d}"] if day else [])
    return "-".join([year, *parts]) if year else "--" + "-".join(parts)
