"""Near-miss questions from the user's own notes: does the answerer decline what they don't say?

Each question is built from a sentence (or heading) of a sampled passage that names a year, a
number (a version, a count) or a name: "What do my notes say about access secrets in a Rails
5.2 app?". Its *changed* twin swaps that one specific for another of the same kind that the
notes do not cover on that topic: another year (2016 -> 2019), another version (5.2 -> 7.2),
another name from elsewhere in the notes (Rails -> Django). "Not covered" is checked over the
whole index, not over what the answerer retrieves: no passage that shares most of the
question's topic words holds the new value. The original is answerable from its passage; the
changed one is a near miss, as similar to the notes as the original but not answered by them.

``run`` asks both kinds and reports the share declined: a good answerer declines nearly all
changed questions and nearly none of the originals.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kenning.answer.llms import LLM
from kenning.answer.sentences import content_words, split, strip_markup
from kenning.answer.specifics import NAME, NUMBER, YEAR, Specific, holds, specifics
from kenning.index import Index

#: words kept around the specific in a question
WINDOW = 5
#: a passage is on a question's topic when it holds this share of the question's topic words
TOPIC_SHARE = 0.6
_CODE = re.compile(r"`[^`]*`|\{\{[^}]*\}\}|<[^>]*>|\[[^\]]*\]\([^)]*\)")


@dataclass
class Pair:
    """An answerable question and its near-miss twin."""

    original: str
    changed: str
    kind: str  # year, number or name
    value: str  # the specific as the notes have it
    new: str  # what the changed question asks instead
    path: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _phrase(sentence: str, value: str) -> str | None:
    """Up to ``WINDOW`` words either side of ``value`` in ``sentence``, code left out."""
    text = " ".join(_CODE.sub(" ", strip_markup(sentence)).split()).strip(" .:;,!?")
    m = re.search(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)", text, re.IGNORECASE)
    if not m:
        return None
    before = text[: m.start()].split()[-WINDOW:]
    after = text[m.end() :].split()[:WINDOW]
    words = [*before, m.group(), *after]
    phrase = " ".join(words).strip(" .:;,!?()\"'")
    if len(content_words(phrase)) < 3:
        return None
    first = phrase.split()[0]
    if first != m.group() and not first.isupper():
        phrase = first[0].lower() + phrase[len(first[0]) :]  # "Access" -> "access"
    return phrase


def _alternatives(s: Specific, rng: random.Random, names: list[str]) -> list[str]:
    """Values of the same kind as ``s``, nearest first (shuffled within a distance)."""
    if s.kind == YEAR:
        year = int(s.text)
        steps = [d for n in range(1, 12) for d in rng.sample([n, -n], 2)]
        return [str(year + d) for d in steps if 1950 <= year + d <= 2035]
    if s.kind == NUMBER:
        parts = re.split(r"([.,:/-])", s.text, maxsplit=1)
        head, sep, rest = (parts + ["", ""])[:3]
        if not head.lstrip("+-").isdigit():
            return []
        n = int(head)
        steps = [d for k in range(1, 9) for d in rng.sample([k, -k], 2)]
        return [f"{n + d}{sep}{rest}" for d in steps if n + d > 0]
    pool = [x for x in names if x.lower() != s.text]
    rng.shuffle(pool)
    return pool[:40]


class _Topics:
    """Every passage's text and content words, to check what the notes cover."""

    def __init__(self, index: Index) -> None:
        ids = index.store.chunk_ids().tolist()
        self.rows: list[tuple[str, set[str]]] = []
        for start in range(0, len(ids), 500):
            for row in index.store.chunks(ids[start : start + 500]).values():
                self.rows.append((row.text, content_words(row.text)))

    def covered(self, value: Specific, topic: set[str]) -> bool:
        """Whether a passage on ``topic`` holds ``value``."""
        need = max(1, round(TOPIC_SHARE * len(topic)))
        return any(len(words & topic) >= need and holds(text, value) for text, words in self.rows)


def generate(
    index: Index, n: int = 100, seed: int = 0, tick: Callable[[], None] | None = None
) -> list[Pair]:
    """Up to ``n`` pairs from a seeded sample of passages, one per passage."""
    rng = random.Random(seed)
    topics = _Topics(index)
    names = _names(topics.rows, rng)
    ids = index.store.chunk_ids().tolist()
    rng.shuffle(ids)
    pairs: list[Pair] = []
    seen: set[str] = set()
    for start in range(0, len(ids), 200):
        rows = index.store.chunks(ids[start : start + 200])
        for cid in ids[start : start + 200]:
            pair = _pair(rows[cid], topics, names, rng)
            if pair is None or pair.original in seen:
                continue
            seen.add(pair.original)
            pairs.append(pair)
            if tick is not None:
                tick()
            if len(pairs) >= n:
                return pairs
    return pairs


def _pair(row: Any, topics: _Topics, names: list[str], rng: random.Random) -> Pair | None:
    heading = (row.heading or row.title or "").rsplit(" > ", 1)[-1]
    texts = ([heading] if heading else []) + [s.text for s in split(row.text)]
    rng.shuffle(texts)
    # years and numbers first: they are what near misses usually differ in
    order = {YEAR: 0, NUMBER: 1, NAME: 2}
    options = []
    for text in texts:
        for s in specifics(strip_markup(text)):  # a sentence's first word is no name
            if s.kind == NAME and (
                text == heading or text.lstrip().startswith("#") or s.shown not in names
            ):
                continue  # a title-cased heading capitalises every word; a name must recur
            options.append((order[s.kind], text, s))
    options.sort(key=lambda o: o[0])
    for _, text, s in options:
        phrase = _phrase(text, s.shown)
        if phrase is None:
            continue
        original = f"What do my notes say about {phrase}?"
        asked = {x.text for x in specifics(original)}
        if s.text not in asked or not all(holds(row.text, x) for x in specifics(original)):
            continue
        topic = content_words(original) - content_words(s.text) - {"note", "say"}
        if len(topic) < 3:
            continue  # "naming React" says too little to be about one thing
        for new in _alternatives(s, rng, names):
            swapped = Specific(new.lower(), s.kind, new)
            if holds(row.text, swapped) or topics.covered(swapped, topic):
                continue
            changed = re.sub(
                rf"(?<![\w.]){re.escape(s.shown)}(?![\w]|\.\d)", new, original, count=1
            )
            if changed == original or swapped.text not in {x.text for x in specifics(changed)}:
                continue
            return Pair(original, changed, s.kind, s.shown, new, row.path, row.start, row.end)
    return None


def _names(rows: list[tuple[str, set[str]]], rng: random.Random, most: int = 400) -> list[str]:
    """Single-word names that recur in the notes (tools, places, people), for swaps: the
    ``most`` held by the most passages (at least two), written with a capital at least four
    times in five (so "Table" at the start of a title, and "table" in text, is no name)."""
    counts: dict[str, int] = {}
    lower: dict[str, int] = {}
    for text, _ in rows:
        flat = " ".join(_CODE.sub(" ", text).split())
        for s in specifics(flat):
            if s.kind == NAME and " " not in s.shown and len(s.shown) > 2 and s.shown[1:].islower():
                counts[s.shown] = counts.get(s.shown, 0) + 1
        for w in set(re.findall(r"\b[a-z][a-z]+\b", flat)):
            lower[w] = lower.get(w, 0) + 1
    names = [c for c in counts if counts[c] >= 2 and lower.get(c.lower(), 0) * 4 <= counts[c]]
    common = sorted(names, key=lambda c: -counts[c])[:most]
    rng.shuffle(common)
    return common


def run(
    index: Index,
    pairs: list[Pair],
    llm: LLM | None = None,
    k: int = 5,
    tick: Callable[[], None] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Ask every original and changed question; the share declined of each, overall and by
    kind of change."""
    from kenning.answer import ask

    rows: list[dict[str, Any]] = []
    for pair in pairs:
        row = pair.to_dict()
        for which in ("original", "changed"):
            answer = ask(index, getattr(pair, which), llm, k=k)
            row[f"{which}_refused"] = answer.refused
            row[f"{which}_answer"] = answer.text
            row[f"{which}_seconds"] = answer.timings.get("total", 0.0)
        rows.append(row)
        if tick is not None:
            tick()
    summary: dict[str, float] = {"pairs": float(len(rows))}
    if rows:
        summary["changed_declined"] = _share(rows, "changed_refused")
        summary["original_declined"] = _share(rows, "original_refused")
        for kind in (YEAR, NUMBER, NAME):
            some = [r for r in rows if r["kind"] == kind]
            if some:
                summary[f"{kind}_pairs"] = float(len(some))
                summary[f"{kind}_changed_declined"] = _share(some, "changed_refused")
                summary[f"{kind}_original_declined"] = _share(some, "original_refused")
    return summary, rows


def _share(rows: list[dict[str, Any]], key: str) -> float:
    return sum(bool(r[key]) for r in rows) / len(rows)
