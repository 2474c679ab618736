"""``Card``: one flashcard, where it comes from, and the identity that survives re-making.

A card's ``id`` is derived from its source span's content (the rule that made it, the span's
words and the answer), not from where the span sits in the file: moving a paragraph keeps the
card, and two notes holding the same sentence give one card. ``CardStore`` hands a card whose
span was edited the id of the card it replaces, so the id is stable from then on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

#: the blank a cloze (and a multiple-choice question) shows in place of its answer
BLANK = "_____"
KINDS = ("qa", "cloze", "choice")
#: what ``--json`` prints of a card, in this order
JSON_KEYS = ("id", "kind", "question", "answer", "choices", "path", "heading", "start", "end")
_SPACE = re.compile(r"\s+")


@dataclass
class Card:
    """A question and its answer, cited to ``source`` = the note's text[start:end]."""

    id: str
    kind: str  # "qa", "cloze" (question holds BLANK) or "choice" (choices hold the answer)
    question: str
    answer: str
    path: str
    heading: str
    start: int
    end: int
    source: str
    rule: str  # what made it: definition, description, list, fact, llm
    title: str = ""
    choices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: data[k] for k in JSON_KEYS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normal(text: str) -> str:
    """Lower case, one space between words, no surrounding punctuation or backticks."""
    return _SPACE.sub(" ", text).strip(" \t\n.,;:!?`*_\"'").lower()


def card_id(rule: str, source: str, answer: str) -> str:
    """The id a new card gets: a hash of the rule, its span's words and its answer."""
    key = "\x00".join((rule, normal(source), normal(answer)))
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
