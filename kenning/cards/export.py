"""Cards out: an Anki package, an Obsidian Spaced Repetition note, CSV and JSON lines.

The Anki package (through ``genanki``) uses two note types with fixed ids, one for
questions (and multiple choice) and one for clozes; each note's GUID is the card's id, so
importing a newer package updates the notes it already holds instead of adding copies.
The back of every card quotes its source sentence and links to the note: ``obsidian://``
for a note in a vault, ``file://`` otherwise (``search.uris.open_url``).
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from kenning.errors import MissingExtra
from kenning.search.uris import link_heading, open_url

from .card import BLANK, JSON_KEYS, Card

_CSS = """.card { font-family: sans-serif; font-size: 20px; text-align: left; }
.source { color: #555; font-size: 15px; border-left: 3px solid #aaa; padding-left: 8px; }
ol.choices { margin-top: 8px; } .cloze { font-weight: bold; color: #1a5fb4; }"""
_BACK = '<div class="source">{{Source}}</div><div><a href="{{Link}}">{{Note}}</a></div>'


def link(card: Card) -> str:
    """Where the card's back side sends the user: the note, at its heading or line."""
    return open_url(card.path, "markdown", card.heading, None, card.start, card.source)


def _stable_id(name: str) -> int:
    """A fixed 31-bit id for a model or a deck, from its name (Anki keys them by id)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:7], 16) + (1 << 30)


def _models() -> tuple[Any, Any]:
    import genanki

    fields = [{"name": n} for n in ("Question", "Answer", "Choices", "Source", "Note", "Link")]
    qa = genanki.Model(
        _stable_id("kenning question"),
        "kenning question",
        fields=fields,
        templates=[
            {
                "name": "Card",
                "qfmt": "{{Question}}{{#Choices}}<ol class=choices>{{Choices}}</ol>{{/Choices}}",
                "afmt": "{{FrontSide}}<hr id=answer><b>{{Answer}}</b>" + _BACK,
            }
        ],
        css=_CSS,
    )
    cloze = genanki.Model(
        _stable_id("kenning cloze"),
        "kenning cloze",
        fields=[{"name": n} for n in ("Text", "Source", "Note", "Link")],
        templates=[{"name": "Cloze", "qfmt": "{{cloze:Text}}", "afmt": "{{cloze:Text}}" + _BACK}],
        css=_CSS,
        model_type=genanki.Model.CLOZE,
    )
    return qa, cloze


def anki_fields(card: Card) -> list[str]:
    """The note's fields as the package holds them (HTML)."""
    e = html.escape
    source, note, url = (
        e(" ".join(card.source.split())),
        e(card.title or Path(card.path).stem),
        link(card),
    )
    if card.kind == "cloze":
        left, _, right = card.question.partition(BLANK)
        return [f"{e(left)}{{{{c1::{e(card.answer)}}}}}{e(right)}", source, note, url]
    choices = "".join(f"<li>{e(c)}</li>" for c in card.choices)
    return [e(card.question), e(card.answer), choices, source, note, url]


def write_apkg(
    cards: Iterable[Card], file: str | Path, deck: str, timestamp: float | None = None
) -> int:
    """Write the cards as one Anki deck named ``deck``; returns the number of notes.
    ``timestamp`` (default: now) is the notes' modification time: Anki updates a note it
    holds from a package whose copy is newer."""
    MissingExtra.require("genanki", "genanki", "cards")
    import genanki

    qa, cloze = _models()
    anki_deck = genanki.Deck(_stable_id("deck:" + deck), deck)
    n = 0
    for card in cards:
        model = cloze if card.kind == "cloze" else qa
        tags = ["kenning", card.rule]
        anki_deck.add_note(genanki.Note(model, anki_fields(card), tags=tags, guid=card.id))
        n += 1
    package = genanki.Package(anki_deck)
    package.write_to_file(str(file), timestamp=timestamp)
    return n


def obsidian_note(cards: Iterable[Card], deck: str) -> str:
    """The cards in the Spaced Repetition plugin's formats: ``Q::A`` for a question, the
    hidden part ``==highlighted==`` for a cloze, and question, choices, ``?``, answer on
    their own lines for multiple choice; each with a link to its note and heading."""
    tag = "#flashcards/" + "-".join(deck.split()).lower() if deck else "#flashcards"
    lines = [tag, ""]
    for card in cards:
        where = Path(card.path).stem + (f"#{link_heading(card.heading)}" if card.heading else "")
        source = f"[[{where}]]"
        question = " ".join(card.question.split())
        if card.kind == "cloze":
            lines.append(question.replace(BLANK, f"=={card.answer}==") + f" {source}")
        elif card.kind == "choice":
            lines += [question, *[f"{i}. {c}" for i, c in enumerate(card.choices, 1)], "?"]
            lines.append(f"{card.answer} {source}")
        else:
            lines.append(f"{question}::{card.answer} {source}")
        lines.append("")
    return "\n".join(lines)


def write_obsidian(cards: Iterable[Card], file: str | Path, deck: str) -> None:
    Path(file).write_text(obsidian_note(cards, deck), encoding="utf-8")


CSV_COLUMNS = (*JSON_KEYS, "link")


def write_csv(cards: Iterable[Card], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for card in cards:
        row = card.to_json()
        row["choices"] = " | ".join(card.choices)
        writer.writerow([*(row[k] for k in JSON_KEYS), link(card)])


def json_lines(cards: Iterable[Card]) -> Iterable[str]:
    for card in cards:
        yield json.dumps(card.to_json(), ensure_ascii=False)
