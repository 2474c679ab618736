"""Cards written by an LLM backend (``kenning cards --llm``), checked like the extractive ones.

The model reads one note and is told to write atomic cards as a JSON list of ``{"question":
..., "answer": ...}``, each answer a short phrase copied word for word from the note (one
example shows the form). The ``local`` backend writes under a grammar (``grammar.py``), so its
reply always parses and every answer is 1 to 8 words; other backends' replies are read as
JSON, or as ``Q: ... | A: ...`` lines when they write those.

A proposed answer becomes a card only when ``locate`` finds it in one of the note's sentences:
the same words in the same order (case, punctuation and markup aside), or else the shortest
stretch of one sentence that holds every content word of the answer, found with the citation
check's own normalisation (``content_words``: stopwords out, crude stems). The card's answer is
then the note's own text of that stretch, and its span that sentence, so what a model
paraphrased slightly ("echo getpid()" for ``:echo getpid()``) is cited as the note says it. The
writer hands it on only if its question leads back to it: the extractive answerer, asked the
question over the whole note, quotes the answer (round-trip consistency, the filter that
synthetic question sets are made with; ``round_trip=False`` turns it off). The caller
(``make.make_cards``) then keeps the card only if the citation check verifies that answer
against that span and the question does not give it away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kenning.answer.llms import LLM, Message, Passage, Prompt
from kenning.answer.sentences import Span, content_words, split

from .card import Card, card_id, normal
from .make import RULE_ORDER, answerable, supported
from .rules import MAX_ANSWER_WORDS, Note, candidates, heading_at, headings

SYSTEM = (
    "You write flashcards from one note. Write at most {n} atomic cards: each asks one "
    "thing about the note, and its answer is a short phrase copied exactly from the note (a "
    "command, a name, a number or a term), never a whole sentence; when the note's key "
    "phrases are listed, the answer is one of them. The question must be answerable from the "
    "note, must not contain its answer, and names the tool or topic it is about. Reply with "
    "a JSON list and nothing else.\n\n"
    "Example. Note: Running `git add --patch` stages changes one hunk at a time.\n"
    "Key phrases: git add --patch\n"
    'Reply: [{{"answer": "git add --patch", "question": "Which git command stages changes '
    'one hunk at a time?"}}]'
)
_LINE = re.compile(
    r"^\s*(?:\d+[.)]\s*)?Q:\s*(?P<q>.+?)\s*(?:\||(?<=\?))\s*A:\s*(?P<a>.+?)\s*$", re.I
)
_Q = re.compile(r"^\s*(?:\d+[.)]\s*)?\**Q\**\s*[:.]\s*(.+?)\s*$", re.I)
_A = re.compile(r"^\s*\**A\**\s*[:.]\s*(.+?)\s*$", re.I)
_OBJECT = re.compile(r'\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\}')
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
#: characters that end an answer's stretch of text outside a word (markup and quotes)
_LEAD = "([{\"'“‘*_"
_TRAIL = ".,;:!?)]}\"'”’*_"
_PAIRS = {"(": ")", "[": "]", "{": "}", ")": "(", "]": "[", "}": "{"}
#: a stretch found by content words may hold this many words more than the model's answer
SLACK = 2
#: key phrases a note offers the model at most (the rules' order decides which)
MAX_PHRASES = 12
#: cards the local model writes at least for a note (made to write more, a small model
#: repeats its question with other answers)
MIN_CARDS = 1
#: the note text a model is shown at most (characters): a few pages
MAX_NOTE_CHARS = 6000


def pairs(reply: str) -> Iterator[tuple[str, str]]:
    """(question, answer) pairs of a reply: JSON objects with a ``question`` and an
    ``answer``, in either order (a list cut short still gives its whole cards); else ``Q: ...
    | A: ...`` lines, ``Q: ...? A: ...`` on one line, or a ``Q:`` line then an ``A:`` line."""
    found = False
    for obj in _OBJECT.finditer(reply):
        try:
            card = json.loads(obj.group())
        except json.JSONDecodeError:
            continue
        question, answer = card.get("question"), card.get("answer")
        if isinstance(question, str) and isinstance(answer, str):
            found = True
            yield question.strip(), answer
    if found:
        return
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


@dataclass
class Found:
    """Where an answer is in the note: the sentence, and the note's text of the answer."""

    span: Span
    answer: str
    exact: bool


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]


def _widen(text: str, a: int, b: int) -> str:
    """``text[a:b]`` widened to whole whitespace-separated words, less surrounding markup,
    quotes and sentence punctuation (a bracket stays when it closes one inside)."""
    while a > 0 and not text[a - 1].isspace() and text[a - 1] != "`":
        a -= 1
    while b < len(text) and not text[b].isspace() and text[b] != "`":
        b += 1
    piece = text[a:b]
    while piece and piece[0] in _LEAD and not _balanced(piece, piece[0]):
        piece = piece[1:]
    while piece and piece[-1] in _TRAIL and not _balanced(piece, piece[-1]):
        piece = piece[:-1]
    return piece


def _balanced(piece: str, bracket: str) -> bool:
    """Whether ``bracket`` (at an end of ``piece``) has its partner inside: ``getpid()``."""
    pair = _PAIRS.get(bracket)
    return pair is not None and piece.count(pair) >= piece.count(bracket)


def _exact(answer: list[str], tokens: list[tuple[int, int, str]]) -> tuple[int, int] | None:
    n = len(answer)
    for i in range(len(tokens) - n + 1):
        if [t[2] for t in tokens[i : i + n]] == answer:
            return tokens[i][0], tokens[i + n - 1][1]
    return None


def _covering(
    wanted: set[str], tokens: list[tuple[int, int, str]], most: int
) -> tuple[int, int] | None:
    """The shortest run of at most ``most`` tokens whose content words hold ``wanted``."""
    stems = [content_words(t[2]) for t in tokens]
    best: tuple[int, int] | None = None
    for i, first in enumerate(stems):
        if not first & wanted:
            continue
        seen: set[str] = set()
        for j in range(i, min(len(tokens), i + most)):
            seen |= stems[j] & wanted
            if seen == wanted:
                if best is None or j - i < best[1] - best[0]:
                    best = (i, j)
                break
    return (tokens[best[0]][0], tokens[best[1]][1]) if best else None


def locate(answer: str, question: str, note: Note, spans: list[Span]) -> Found | None:
    """The sentence of the note that holds ``answer`` (see the module's doc), preferring an
    exact match, then the sentence sharing most words with the question, then the first."""
    words = [t[2] for t in _tokens(answer)]
    wanted = content_words(answer)
    if not words:
        return None
    asked = content_words(question)
    options: list[tuple[tuple[bool, float, int], Found]] = []
    for k, span in enumerate(spans):
        tokens = _tokens(span.text)
        hit, exact = _exact(words, tokens), True
        if hit is None and wanted:
            hit, exact = _covering(wanted, tokens, len(words) + SLACK), False
        if hit is None:
            continue
        text = " ".join(_widen(span.text, *hit).split())  # a wrapped line's break is a space
        if not text or len(text.split()) > MAX_ANSWER_WORDS:
            continue
        words_there = content_words(span.text)
        shared = len(asked & words_there) / len(asked | words_there) if asked else 0.0
        options.append(((exact, shared, -k), Found(span, text, exact)))
    return max(options, key=lambda o: o[0])[1] if options else None


@dataclass
class Proposal:
    """One card the model proposed, and where its answer was found (to see why cards go)."""

    question: str
    answer: str
    found: Found | None = None


@dataclass
class Reply:
    text: str
    proposals: list[Proposal] = field(default_factory=list)


def key_phrases(note: Note, most: int = MAX_PHRASES) -> list[str]:
    """The answers the extractive rules find in ``note`` (commands, names, numbers, terms,
    descriptions), each verified against its sentence, in the rules' order, once each."""
    found: dict[str, tuple[int, int, str]] = {}
    for c in candidates(note):
        key = normal(c.answer)
        if key and key not in found and supported(c.answer, c.source):
            found[key] = (RULE_ORDER.get(c.rule, 9), c.start, c.answer)
    return [answer for *_, answer in sorted(found.values())[:most]]


class LLMWriter:
    """Proposes cards for a note with ``llm`` (any backend of ``answer.llms``); the ``local``
    backend writes under the cards grammar, its answers held to the note's key phrases."""

    def __init__(self, llm: LLM, per_note: int = 5, round_trip: bool = True) -> None:
        from kenning.answer.extractive import ExtractiveLLM

        self.llm, self.per_note, self.round_trip = llm, per_note, round_trip
        self._answerer = ExtractiveLLM()
        self._sampler: Any = None
        if llm.id.startswith("local") and hasattr(llm, "prompt_tokens"):
            from .grammar import GrammarSampler

            self._sampler = GrammarSampler(llm)
        #: the last note's reply and what became of each proposal
        self.last: Reply | None = None
        #: what became of the proposals so far: read from the reply, a question asked twice,
        #: not found in the note, not answerable from its question, handed on as a card
        self.counts = dict.fromkeys(("read", "repeated", "not_found", "unanswerable", "cards"), 0)

    def prompt(self, note: Note, phrases: list[str] | None = None) -> Prompt:
        body = note.text[note.body_start :][:MAX_NOTE_CHARS]
        passage = Passage(1, 0, note.path, note.title, "", None, note.body_start,
                          note.body_start + len(body), body, 1.0)  # fmt: skip
        system = SYSTEM.format(n=self.per_note, words=MAX_ANSWER_WORDS)
        user = f"Note: {note.title}\n\n{body.strip()}"
        if phrases:
            user += "\n\nKey phrases: " + "; ".join(phrases)
        messages = [Message("system", system), Message("user", user)]
        return Prompt(f"Flashcards for {note.title}", [passage], messages)

    def reply(self, note: Note) -> str:
        phrases = key_phrases(note)
        prompt = self.prompt(note, phrases)
        if self._sampler is None:
            return self.llm.complete(prompt)
        from .grammar import cards_grammar

        most = min(self.per_note, len(phrases)) if phrases else self.per_note
        least = min(MIN_CARDS, most)
        grammar = cards_grammar(phrases, most, least, MAX_ANSWER_WORDS)
        return str(self._sampler.complete(prompt, grammar))

    def __call__(self, note: Note) -> Iterator[Card]:
        reply = Reply(self.reply(note))
        self.last = reply
        spans = [s for s in split(note.text, min_words=2) if s.start >= note.body_start]
        marks = headings(note.text)
        made = 0
        asked: set[str] = set()
        for question, answer in pairs(reply.text):
            proposal = Proposal(question, answer)
            reply.proposals.append(proposal)
            self.counts["read"] += 1
            if made == self.per_note or normal(question) in asked:
                self.counts["repeated"] += made < self.per_note
                continue  # one answer per question: a repeated question is not a card
            asked.add(normal(question))
            proposal.found = found = locate(answer, question, note, spans)
            if found is None:
                self.counts["not_found"] += 1
                continue  # an answer that is not in the note: nothing to cite
            span = found.span
            source = note.text[span.start : span.end]
            card = Card(
                card_id("llm", source, found.answer), "qa", question, found.answer, note.path,
                heading_at(marks, span.start), span.start, span.end, source, "llm", note.title,
            )  # fmt: skip
            if self.round_trip and not answerable(card, note.text, self._answerer):
                self.counts["unanswerable"] += 1
                continue  # the question does not lead to its answer's sentence
            made += 1
            self.counts["cards"] += 1
            yield card

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
