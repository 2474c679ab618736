"""``kenning eval cards``: how good the cards made from a notes collection are.

- ``round_trip``: share of cards whose answer the extractive answerer finds (in the sentences
  it quotes) when asked the card's question over the card's source note alone; it runs
  without an embedder (keywords and position), so it is the stricter form.
- ``leak``: share of cards whose question gives the answer away: the answer as a phrase in the
  question, or every content word of the answer among the question's.
- ``near_duplicates``: share of cards that repeat an earlier one: the same answer and half
  the question's content words (looser than the merge, which needs 0.7), or nine tenths of
  the question's content words whatever the answer.
- ``short_answers``: share of answers of at most 8 words.
- ``distractors_supported``: distractors the citation check finds supported by the card's
  note (wanted: 0), of ``distractors``.
- ``verified``: share of cards whose answer the citation check verifies against the span.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kenning.answer.citations import Thresholds
from kenning.answer.extractive import ExtractiveLLM
from kenning.answer.sentences import content_words
from kenning.cards.card import BLANK, Card, normal
from kenning.cards.make import answerable, jaccard, leaks, supported

SHORT_WORDS = 8


@dataclass
class CardReport:
    cards: int
    notes: int
    kinds: dict[str, int]
    round_trip: float
    leak: float
    near_duplicates: float
    short_answers: float
    distractors: int
    distractors_supported: int
    verified: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def near_duplicates(cards: list[Card]) -> int:
    seen: list[tuple[str, set[str]]] = []
    by_answer: dict[str, list[set[str]]] = defaultdict(list)
    repeats = 0
    for card in cards:
        words = content_words(card.question.replace(BLANK, " "))
        answer = normal(card.answer)
        if any(jaccard(words, w) >= 0.5 for w in by_answer[answer]) or any(
            jaccard(words, w) >= 0.9 for _, w in seen
        ):
            repeats += 1
        by_answer[answer].append(words)
        seen.append((answer, words))
    return repeats


def evaluate_cards(
    cards: list[Card], notes: dict[str, str], thresholds: Thresholds | None = None
) -> CardReport:
    """Score ``cards`` made from ``notes`` (path -> text)."""
    t0 = time.perf_counter()
    answerer = ExtractiveLLM()
    n = max(1, len(cards))
    kinds: dict[str, int] = defaultdict(int)
    trips = leaked = short = verified = distractors = bad = 0
    for card in cards:
        kinds[card.kind] += 1
        note = notes.get(card.path, card.source)
        trips += answerable(card, note, answerer)
        leaked += leaks(card)
        short += len(card.answer.split()) <= SHORT_WORDS
        verified += supported(card.answer, note[card.start : card.end], thresholds)
        for option in card.choices:
            if option != card.answer:
                distractors += 1
                bad += supported(option, note, thresholds)
    return CardReport(
        cards=len(cards),
        notes=len({c.path for c in cards}),
        kinds=dict(kinds),
        round_trip=trips / n,
        leak=leaked / n,
        near_duplicates=near_duplicates(cards) / n,
        short_answers=short / n,
        distractors=distractors,
        distractors_supported=bad,
        verified=verified / n,
        seconds=time.perf_counter() - t0,
    )
