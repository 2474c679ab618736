"""Cards written by an LLM backend (``kenning cards --llm``), checked like the extractive ones.

The model reads one note and is told to write atomic cards, one ``Q: ... | A: ...`` per line,
each answer a few words copied from the note. A reply line becomes a card only when its
answer is found in one of the note's sentences (that sentence is the card's span); the
caller then keeps it only if the citation check verifies the answer against that span.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kenning.answer.llms import LLM, Message, Passage, Prompt
from kenning.answer.sentences import split

from .card import Card, card_id, normal
from .rules import MAX_ANSWER_WORDS, Note, heading_at, headings

SYSTEM = (
    "You write flashcards from one note. Write at most {n} atomic cards: each asks one "
    "thing, and its answer is at most {words} words copied exactly from the note. The "
    "question must not contain the answer. Write one card per line as\n"
    "Q: the question | A: the answer\n"
    "and nothing else."
)
_LINE = re.compile(r"^\s*(?:\d+[.)]\s*)?Q:\s*(?P<q>.+?)\s*\|\s*A:\s*(?P<a>.+?)\s*$", re.I)
_Q = re.compile(r"^\s*(?:\d+[.)]\s*)?\**Q\**\s*[:.]\s*(.+?)\s*$", re.I)
_A = re.compile(r"^\s*\**A\**\s*[:.]\s*(.+?)\s*$", re.I)
#: the note text a model is shown at most (characters): a few pages
MAX_NOTE_CHARS = 6000


def pairs(reply: str) -> Iterator[tuple[str, str]]:
    """(question, answer) pairs of a reply: ``Q: ... | A: ...`` lines, or a ``Q:`` line
    followed by an ``A:`` line, as small models write them despite the instructions."""
    question = None
    for line in reply.splitlines():
        if m := _LINE.match(line):
            yield m.group("q").strip(), m.group("a")
            question = None
        elif m := _Q.match(line):
            question = m.group(1).strip()
        elif (m := _A.match(line)) and question:
            yield question, m.group(1)
            question = None


class LLMWriter:
    """Proposes cards for a note with ``llm`` (any backend of ``answer.llms``)."""

    def __init__(self, llm: LLM, per_note: int = 5) -> None:
        self.llm, self.per_note = llm, per_note

    def prompt(self, note: Note) -> Prompt:
        body = note.text[note.body_start :][:MAX_NOTE_CHARS]
        passage = Passage(1, 0, note.path, note.title, "", None, note.body_start,
                          note.body_start + len(body), body, 1.0)  # fmt: skip
        system = SYSTEM.format(n=self.per_note, words=MAX_ANSWER_WORDS)
        messages = [Message("system", system), Message("user", f"Title: {note.title}\n\n{body}")]
        return Prompt(f"Flashcards for {note.title}", [passage], messages)

    def __call__(self, note: Note) -> Iterator[Card]:
        reply = self.llm.complete(self.prompt(note))
        spans = [s for s in split(note.text, min_words=2) if s.start >= note.body_start]
        marks = headings(note.text)
        made = 0
        for question, answer in pairs(reply):
            if made == self.per_note:
                break
            answer = answer.strip().strip("`").rstrip(".")
            wanted = normal(answer)
            span = next((s for s in spans if wanted and wanted in normal(s.text)), None)
            if span is None:
                continue  # an answer that is not in the note: nothing to cite
            source = note.text[span.start : span.end]
            made += 1
            yield Card(
                card_id("llm", source, answer), "qa", question, answer, note.path,
                heading_at(marks, span.start), span.start, span.end, source, "llm", note.title,
            )  # fmt: skip
