"""The default answerer: no model, no network. It quotes the passages' best sentences.

Each sentence of the retrieved passages is scored by how well it matches the question: by
keyword (the question's content words, weighted by how rare they are among the candidates),
by meaning (cosine with the question under the index's embedder), and by position (earlier
passages and earlier sentences first, as notes tend to lead with the point). The best few are
quoted verbatim, each cited, in the order they appear in the notes. Deterministic.

Before quoting, the question's specifics are checked (``specifics.near_miss``): when it names
a year, version, number or name that no passage holds, the passages are a near miss (the same
final in another year) and the answerer declines, saying what the notes mention instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .llms import LLM, Passage, Prompt, llms
from .prompt import REFUSAL
from .sentences import SentenceVectors, content_words, split, strip_markup
from .specifics import near_miss

#: weights of the three signals (keyword, meaning, position), summing to one; set by hand
#: on a few dozen til questions, not fitted (a tuning target for `kenning tune`)
WEIGHTS = (0.4, 0.45, 0.15)
_LINK = re.compile(r"!?\[[^\]]*\]\([^)]*\)?|\[[^\]]*$|^[^\[]*\]\([^)]*\)")
#: sentences scored by meaning, at most (the rest are too weak by keyword and position)
CANDIDATES = 48


@dataclass
class Candidate:
    passage: Passage
    index: int  # sentence position within its passage
    text: str  # the sentence as the notes have it (verbatim)
    quote: str  # what is quoted: without list bullets, plus the line a colon introduces
    words: set[str]
    score: float = 0.0


@llms.register("extractive")
class ExtractiveLLM(LLM):
    """Quotes the best supporting sentences from the passages, each with its citation."""

    id = "extractive"
    generative = False
    context_window = 1_000_000  # it reads every passage it is given

    def __init__(
        self, max_sentences: int = 3, relative_floor: float = 0.75, specifics: bool = True
    ) -> None:
        super().__init__()
        self.max_sentences = max_sentences
        self.relative_floor = relative_floor  # keep sentences scoring this share of the best
        self.specifics = specifics  # decline near misses (see ``specifics.near_miss``)
        self.embedder: Any = None

    def config(self) -> dict[str, Any]:
        return {
            "max_sentences": self.max_sentences,
            "relative_floor": self.relative_floor,
            "specifics": self.specifics,
        }

    def bind(self, vectors: SentenceVectors) -> None:
        self.embedder = vectors

    def stream(self, prompt: Prompt) -> Iterator[str]:
        miss = near_miss(prompt.question, prompt.passages) if self.specifics else None
        if miss is not None:
            yield miss.explain(REFUSAL)
            return
        chosen = self.pick(prompt.question, prompt.passages)
        for n, c in enumerate(chosen):
            yield ("" if n == 0 else " ") + f"{c.quote} [{c.passage.n}]"

    def pick(self, question: str, passages: list[Passage]) -> list[Candidate]:
        cands = _candidates(passages)
        if not cands:
            return []
        query = content_words(question)
        df: dict[str, int] = {}
        for c in cands:
            for w in c.words:
                df[w] = df.get(w, 0) + 1
        idf = {w: math.log(1 + len(cands) / df.get(w, 0.5)) for w in query}
        total = sum(idf.values()) or 1.0
        ranks = {p.n: r for r, p in enumerate(passages)}
        w_kw, w_dense, w_pos = WEIGHTS
        for c in cands:
            keyword = sum(idf[w] for w in query & c.words) / total
            position = 0.6 / (1 + ranks[c.passage.n]) + 0.4 / (1 + c.index)
            c.score = w_kw * keyword + w_pos * position
        cands.sort(key=lambda c: -c.score)
        cands = cands[:CANDIDATES]
        if self.embedder is not None:
            vecs = self.embedder.vectors([c.text for c in cands])
            sims = vecs @ self.embedder.query(question)
            for c, sim in zip(cands, sims, strict=True):
                c.score += w_dense * max(0.0, float(sim))
        else:  # no embedder: keyword and position carry all the weight
            for c in cands:
                c.score /= w_kw + w_pos
        cands.sort(key=lambda c: -c.score)
        best = cands[0].score
        chosen: list[Candidate] = []
        for c in cands:
            if len(chosen) == self.max_sentences or c.score < self.relative_floor * best:
                break
            if any(_similar(c.words, o.words) for o in chosen):
                continue
            chosen.append(c)
        return sorted(chosen, key=lambda c: (ranks[c.passage.n], c.index))


def _candidates(passages: list[Passage]) -> list[Candidate]:
    out = []
    for p in passages:
        for i, span in enumerate(split(p.text)):
            line = span.text.lstrip()
            if line.startswith("#") or line.startswith("|"):
                continue  # headings and table rows are labels, not claims
            if len(_LINK.sub("", line).split()) < 3 or "](" in _LINK.sub("", line):
                continue  # a list of links (a table of contents) claims nothing
            quote = " ".join(strip_markup(span.text).split())
            if not quote.endswith((".", "!", "?")):  # "Undo it:" introduces the command below
                after = _next_line(p.text, span.end)
                if after:
                    quote = f"{quote} {after}"
            words = content_words(quote)
            if words:
                out.append(Candidate(p, i, span.text, quote, words))
    return out


def _next_line(text: str, end: int) -> str:
    """The first line of code after a sentence (inside a fence, or a `quoted` line)."""
    lines = [ln.strip() for ln in text[end:].split("\n")[1:] if ln.strip()]
    if not lines:
        return ""
    if lines[0].startswith(("```", "~~~")):
        return f"`{lines[1]}`" if len(lines) > 1 and not lines[1].startswith("```") else ""
    return lines[0] if lines[0].startswith("`") else ""


def _similar(a: set[str], b: set[str]) -> bool:
    return len(a & b) / max(1, len(a | b)) > 0.8
