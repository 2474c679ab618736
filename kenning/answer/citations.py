"""Every cited sentence is checked against the text it cites.

A sentence of the answer is *supported* when one of its cited passages holds a sentence close
in meaning (cosine under the index's embedder) or shares most of its content words, and every
number, date and capitalised name it states appears in the passages it cites. It is
*contradicted* when the cited passages are about the same thing but do not hold one of its
numbers or names, and *unsupported* otherwise. A citation to a passage that was never given
is removed. A sentence that cites nothing is cited by kenning only when a passage passes the
whole check, and is marked ``attributed``; otherwise it is unsupported. ``Thresholds`` are
configurable (kenning.toml); the defaults were measured on real data (README,
`benchmarks/thresholds.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kenning.errors import ConfigError

from .llms import Passage
from .sentences import SentenceVectors, citations, content_words, facts, split

SUPPORTED, UNSUPPORTED, CONTRADICTED = "supported", "unsupported", "contradicted"


@dataclass(frozen=True)
class Thresholds:
    """Where support starts. Defaults measured for MiniLM by `benchmarks/thresholds.py`:
    each is the value that best separates supported from unsupported pairs (PubMedQA
    conclusions against their own and the nearest other abstract; balanced accuracy 0.85),
    and answerable from unanswerable questions (til notes; 0.98)."""

    #: a cited passage sentence at least this close in meaning supports the sentence
    similarity: float = 0.59
    #: ... or at least this share of the sentence's content words appears in the passage
    overlap: float = 0.39
    #: no retrieved passage this close to the question (cosine): refuse, without a model call
    refuse: float = 0.31

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not -1.0 <= value <= 1.0:
                raise ConfigError(f"threshold {name} must be between -1 and 1, not {value}")


@dataclass
class CitationCheck:
    n: int
    similarity: float  # best cosine with one of the passage's sentences
    overlap: float  # share of the sentence's content words found in the passage
    best_sentence: tuple[int, int]  # offsets of that passage sentence in the source file


@dataclass
class Sentence:
    """One sentence of the answer, what it cites, and whether the citations hold."""

    text: str
    citations: list[int]
    status: str
    support: float
    checks: list[CitationCheck] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # facts the cited passages do not hold
    removed: list[int] = field(default_factory=list)  # citations to passages never given
    #: the model cited nothing usable and kenning cited the passage that passes the whole
    #: check (meaning or words, and every number and name); shown as kenning's citation
    attributed: bool = False


def answer_sentences(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences with their citations; "[1]" after a full stop stays with the
    sentence before it."""
    out: list[tuple[str, list[int]]] = []
    for span in split(answer, min_words=1):
        text, cited = citations(span.text)
        if not text and out:  # a sentence that is only markers belongs to the one before
            out[-1][1].extend(n for n in cited if n not in out[-1][1])
            continue
        lead = span.text.lstrip()
        if lead.startswith("[") and out and text != span.text.strip():
            marker_end = lead.index("]") + 1
            _, lead_cited = citations(lead[:marker_end])
            out[-1][1].extend(n for n in lead_cited if n not in out[-1][1])
            cited = [n for n in cited if n not in lead_cited]
        if text:
            out.append((text, cited))
    return out


def check(
    answer: str,
    passages: list[Passage],
    vectors: SentenceVectors,
    thresholds: Thresholds | None = None,
) -> list[Sentence]:
    """Check every sentence of ``answer`` against the passages it cites."""
    t = thresholds or Thresholds()
    by_n = {p.n: p for p in passages}
    spans = {p.n: split(p.text, min_words=2) or [] for p in passages}
    checked = []
    for text, cited in answer_sentences(answer):
        valid = [n for n in cited if n in by_n]
        sentence = _judge(text, valid, by_n, spans, vectors, t)
        sentence.removed = [n for n in cited if n not in by_n]
        if not valid:
            # Small models often write no markers. kenning cites a passage itself only when
            # it passes the whole check, and says so (``attributed``); a sentence no passage
            # supports stays unsupported, so nothing is attached on similarity alone.
            tries = [_judge(text, [n], by_n, spans, vectors, t) for n in by_n]
            best = max(tries, key=lambda s: (s.status == SUPPORTED, s.support), default=None)
            if best is not None and best.status == SUPPORTED:
                best.attributed, best.removed = True, sentence.removed
                sentence = best
        checked.append(sentence)
    return checked


def _judge(
    text: str,
    cited: list[int],
    by_n: dict[int, Passage],
    spans: dict[int, list[Any]],
    vectors: SentenceVectors,
    t: Thresholds,
) -> Sentence:
    sentence = Sentence(text, cited, UNSUPPORTED, 0.0)
    if not cited:
        return sentence
    words = content_words(text)
    vec = vectors.vectors([text])[0]
    for n in cited:
        p = by_n[n]
        pieces = spans[n]
        if pieces:
            sims = vectors.vectors([s.text for s in pieces]) @ vec
            best = int(np.argmax(sims))
            sim = float(sims[best])
            where = (p.start + pieces[best].start, p.start + pieces[best].end)
        else:
            sim, where = 0.0, (p.start, p.end)
        overlap = len(words & content_words(p.text)) / len(words) if words else 0.0
        sentence.checks.append(CitationCheck(n, sim, overlap, where))
    cited_text = " ".join(" ".join(by_n[n].text.split()) for n in cited).lower()
    sentence.missing = sorted(f for f in facts(text) if f not in cited_text)
    top = max(sentence.checks, key=lambda c: (c.similarity, c.overlap))
    sentence.support = top.similarity
    about = top.similarity >= t.similarity or top.overlap >= t.overlap
    if about and not sentence.missing:
        sentence.status = SUPPORTED
    elif about or (sentence.missing and top.overlap >= t.overlap / 2):
        sentence.status = CONTRADICTED
    return sentence


def to_dict(sentence: Sentence) -> dict[str, Any]:
    return asdict(sentence)
