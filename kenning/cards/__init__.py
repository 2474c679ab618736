"""Flashcards from notes, each checked against its source span, exported and scheduled.

``cards_for(index)`` makes (and stores) the cards of an index's notes; ``CardStore`` keeps
them and their FSRS reviews in the index file; ``export`` writes Anki, Obsidian, CSV and JSON.
"""

from .card import BLANK, Card
from .cards import Result, Selection, cards_for
from .deck import CardStore, Changes
from .make import Made, make_cards

__all__ = [
    "BLANK",
    "Card",
    "CardStore",
    "Changes",
    "Made",
    "Result",
    "Selection",
    "cards_for",
    "make_cards",
]
