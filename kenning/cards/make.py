"""Making cards: propose (rules or an LLM), verify against the span, add distractors, merge.

``make_cards(notes)`` is the one call behind `kenning cards`, the server and `kenning eval
cards`. A card is kept only when the citation check (``answer.citations.check``) finds its
answer supported by its span: every content word of the answer in the span (overlap at
least the configured threshold) and every number and name in it verbatim. The meaning
branch of the check is off here (``WordsOnly``): an answer is a fragment of a few words, and
a fragment's cosine with a sentence says little. A multiple-choice card's distractors are
answers of the same kind from the other notes (a command for a command, a number for a
number, a name for a name), each checked to be *not* supported by the card's source note.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kenning.answer.citations import SUPPORTED, Thresholds, check
from kenning.answer.llms import Passage
from kenning.answer.sentences import SentenceVectors, content_words
from kenning.text.loaders import load

from .card import BLANK, Card, normal
from .rules import Note, candidates

#: cards a note gives at most (fewer, better cards): the rules' order decides which
PER_NOTE = 8
#: distractors a multiple-choice card shows (it needs this many that pass the check)
DISTRACTORS = 3
#: distractor candidates drawn (deterministically, per card) from its kind's answers
SAMPLE = 24
#: two cards with the same answer whose questions share this share of content words merge
NEAR_DUPLICATE = 0.7
RULE_ORDER = {"description": 0, "definition": 1, "list": 2, "llm": 2, "fact": 3}
_SHAPE = re.compile(r"[A-Za-z]+|\d+|\S")


class WordsOnly(SentenceVectors):
    """Sentence vectors that are all zero: the citation check then judges by words and
    facts alone (no embedder is loaded, and making cards stays fast)."""

    def __init__(self) -> None:
        super().__init__(None)

    def vectors(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 1), dtype=np.float32)


@dataclass
class Made:
    """What one making run produced, and what it left out and why."""

    cards: list[Card] = field(default_factory=list)
    proposed: int = 0
    unverified: int = 0
    merged: int = 0
    capped: int = 0
    notes: int = 0


def read_note(path: str) -> Note | None:
    """A Markdown or text note as the rules read it; None for other types or unreadable."""
    p = Path(path)
    if p.suffix.lower() not in (".md", ".markdown", ".txt", ".text"):
        return None
    try:
        doc = load(p, p.read_bytes())
    except OSError:
        return None
    return Note(str(p), doc.title, doc.text, doc.body_start)


def supported(answer: str, source: str, thresholds: Thresholds | None = None) -> bool:
    """Whether the citation check finds ``answer`` supported by ``source``."""
    passage = Passage(1, 0, "", "", "", None, 0, len(source), source, 1.0)
    checked = check(f"{answer} [1]", [passage], WordsOnly(), thresholds)
    return bool(checked) and all(s.status == SUPPORTED for s in checked)


def make_cards(
    notes: Iterable[Note],
    propose: Callable[[Note], Iterable[Card]] = candidates,
    thresholds: Thresholds | None = None,
    per_note: int = PER_NOTE,
    choices: bool = True,
) -> Made:
    """Cards for ``notes``: proposed by ``propose`` (the extractive rules by default),
    verified, capped per note, given distractors, near-duplicates merged."""
    made = Made()
    texts: dict[str, str] = {}
    for note in notes:
        made.notes += 1
        texts[note.path] = note.text
        kept: list[Card] = []
        for card in propose(note):
            made.proposed += 1
            if leaks(card) or not supported(card.answer, card.source, thresholds):
                made.unverified += 1
                continue
            kept.append(card)
        kept.sort(key=lambda c: (RULE_ORDER.get(c.rule, 9), c.start))
        made.capped += max(0, len(kept) - per_note)
        made.cards.extend(sorted(kept[:per_note], key=lambda c: c.start))
    before = len(made.cards)
    made.cards = merge(made.cards)
    made.merged = before - len(made.cards)
    if choices:
        add_choices(made.cards, texts, thresholds)
    return made


def answerable(card: Card, note: str, answerer: Any = None) -> bool:
    """Whether the extractive answerer (no embedder), asked the card's question over its
    whole note, quotes the card's answer: the round trip of `kenning eval cards`."""
    from kenning.answer.extractive import ExtractiveLLM

    answerer = answerer or ExtractiveLLM()
    passage = Passage(1, 0, card.path, card.title, "", None, 0, len(note), note, 1.0)
    question = " ".join(card.question.replace(BLANK, " ").split())
    quoted = " ".join(c.quote for c in answerer.pick(question, [passage]))
    return normal(card.answer) in normal(quoted)


def leaks(card: Card) -> bool:
    """The question gives the answer away: the answer as a phrase in it, or every content
    word of the answer among the question's. Such a card is not made."""
    question = card.question.replace(BLANK, " ")
    answer, words = normal(card.answer), content_words(card.answer)
    if f" {answer} " in f" {normal(question)} ":
        return True
    return bool(words) and words <= content_words(question)


def merge(cards: list[Card]) -> list[Card]:
    """Drop cards that repeat an earlier one: same id, or the same answer with a question
    sharing ``NEAR_DUPLICATE`` of its content words."""
    out: list[Card] = []
    seen: set[str] = set()
    by_answer: dict[str, list[set[str]]] = defaultdict(list)
    for card in cards:
        if card.id in seen:
            continue
        words = content_words(card.question.replace(BLANK, " "))
        same = by_answer[normal(card.answer)]
        if any(jaccard(words, other) >= NEAR_DUPLICATE for other in same):
            continue
        seen.add(card.id)
        same.append(words)
        out.append(card)
    return out


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def answer_kind(card: Card) -> str | None:
    """What a distractor must also be: a command, a number, a name or a description."""
    if card.rule == "description":
        return "description"
    if card.rule == "list" and card.source.rstrip().endswith(("`", card.answer)):
        return "command:" + card.answer.split()[0]
    if card.rule != "fact":
        return None
    if re.fullmatch(r"[\d.,:%]+\w{0,2}", card.answer):
        return "number:" + "".join("9" if ch.isdigit() else ch for ch in card.answer)[:3]
    if card.answer[:1].isupper() and " " not in card.answer.strip() or card.answer.istitle():
        return "name"
    return "command:" + card.answer.split()[0]


def _rank(card_id: str, option: str) -> str:
    return hashlib.sha1(f"{card_id}\x00{option}".encode()).hexdigest()


def add_choices(
    cards: list[Card], texts: dict[str, str], thresholds: Thresholds | None = None
) -> None:
    """Turn every other card that has an answer kind into multiple choice, with distractors
    of its kind from other notes that the card's own note does not support."""
    pool: dict[str, dict[str, str]] = defaultdict(dict)  # kind -> answer -> a note
    for card in cards:
        kind = answer_kind(card)
        if kind:
            pool[kind].setdefault(card.answer, card.path)
    listed = {kind: sorted(answers) for kind, answers in pool.items()}
    for card in cards:
        kind = answer_kind(card)
        if not kind or int(card.id[:8], 16) % 2:
            continue
        note = texts.get(card.path, card.source)
        drawn = random.Random(card.id).sample(listed[kind], min(SAMPLE, len(listed[kind])))
        options = [
            a for a in drawn if pool[kind][a] != card.path and normal(a) != normal(card.answer)
        ]
        chosen: list[str] = []
        for option in options:
            if normal(option) in normal(note) or supported(option, note, thresholds):
                continue
            if any(normal(option) == normal(c) for c in chosen):
                continue
            chosen.append(option)
            if len(chosen) == DISTRACTORS:
                break
        if len(chosen) < DISTRACTORS:
            continue
        card.choices = sorted([card.answer, *chosen], key=lambda a: _rank(card.id, a))
        card.kind = "choice"
        if BLANK not in card.question and card.rule == "fact":
            card.question = f"{card.question} {BLANK}"


def notes_at(paths: Iterable[str]) -> Iterator[Note]:
    for path in paths:
        note = read_note(path)
        if note is not None:
            yield note


def describe(made: Made) -> dict[str, Any]:
    kinds: dict[str, int] = defaultdict(int)
    for c in made.cards:
        kinds[c.kind] += 1
    return {
        "notes": made.notes,
        "cards": len(made.cards),
        "kinds": dict(kinds),
        "proposed": made.proposed,
        "unverified": made.unverified,
        "merged": made.merged,
        "capped": made.capped,
    }
