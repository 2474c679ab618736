"""Extractive cards: rules that turn a note's own sentences into questions, no model.

Each rule reads one sentence (``answer.sentences.split``, with its offsets in the note) and
proposes a card whose answer is a verbatim piece of that sentence's span:

- ``description``: a note that opens with a one-line quote under its title (``> Archiving
  utility.``, as command references write) answers "What is TITLE?";
- ``definition``: "X is a/an/the ..." answers "What is X?" (a long definition becomes a cloze
  on X);
- ``list``: a list item that introduces a command (``- Create an archive:`` then
  ```tar cf ...```) answers "How do you create an archive (tar)?"; a ``term: meaning`` item
  answers "What is term?";
- ``fact``: a sentence holding a command, a number or a name becomes a cloze with it hidden.

Only candidates are made here; ``make.py`` checks them against their span, adds distractors,
merges near-duplicates and gives each note at most a few cards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from kenning.answer.sentences import content_words, split, strip_markup

from .card import BLANK, Card, card_id

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_CODE_LINE = re.compile(r"^\s*`([^`]+)`\s*$")
_INLINE_CODE = re.compile(r"`([^`\n]{2,60})`")
_NUMBER = re.compile(r"(?<![\w.$/-])\d+(?:[.,:]\d+)*(?:%|ms|s|px|kb|mb|gb)?(?![\w/-])", re.I)
_NAME = re.compile(
    r"(?<=[a-z,;]\s)([A-Z][a-z]+(?:[A-Z][a-z]+)*(?:\s[A-Z][a-z]+){0,2})\b(?!\s+of\b|-)"
)
#: words that make a definition's subject vague ("One of them is ...")
_VAGUE = {"one", "them", "those", "these", "it", "this", "that", "there", "then", "here", "all"}
#: a cloze keeps at least this many content words besides its blank ("See ___ for more" is no card)
MIN_CONTEXT = 4
#: a sentence that leans on the one before it ("This ...") makes no card on its own
_DEICTIC = re.compile(
    r"^(?:this|that|these|those|it|its|they|here|there|in this|in that|so|which|what)\b", re.I
)
_DEFINITION = re.compile(
    r"^(?P<term>`[^`]{2,40}`|[A-Z][\w.+#-]*(?:\s[A-Za-z][\w.+#-]*){0,2})\s+"
    r"(?:is|are)\s+(?P<definition>(?:a|an|the)\s.+?)\.?$"
)
_TERM_ITEM = re.compile(
    r"^(?:`(?P<code>[^`]{1,40})`|\*\*(?P<bold>[^*]{1,40})\*\*)\s*(?::|-|–|—)\s*(?P<meaning>.+?)\.?$"
)
_EMPHASIS = re.compile(r"(?<![\w*`])(\*\*|\*)(?=\S)([^*`\n]+?)(?<=\S)\1(?![\w*`])")
_BRACKETED = re.compile(r"\[(\w{1,3})\]")  # tldr marks mnemonic letters: "[c]reate"
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|\[\[([^\]|#]*)(?:[^\]]*)\]\]")
_SKIP_TOKEN = re.compile(r"^(?:\d{1,2}|[-+]?\d+[.)]|https?:.*)$")
#: a quoted description that is a pointer, not a description
_POINTER = re.compile(r"^(?:more information|see also|this command is|note:)", re.I)
#: an answer at most this many words (an atomic card); longer ones are not made
MAX_ANSWER_WORDS = 8
#: a question or cloze sentence at most this many words
MAX_QUESTION_WORDS = 40


@dataclass
class Note:
    """A note as the rules read it: its text, where the body starts, its title."""

    path: str
    title: str
    text: str
    body_start: int = 0


def headings(text: str) -> list[tuple[int, str]]:
    """(offset, heading path "A > B") at each heading outside code, in order."""
    out: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    in_fence, pos = False, 0
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (m := _HEADING.match(line.rstrip("\r\n"))):
            level = len(m.group(1))
            stack = [h for h in stack if h[0] < level] + [(level, m.group(2))]
            out.append((pos, " > ".join(h for _, h in stack)))
        pos += len(line)
    return out


def heading_at(marks: list[tuple[int, str]], pos: int) -> str:
    found = ""
    for offset, path in marks:
        if offset > pos:
            break
        found = path
    return found


def words(text: str) -> int:
    return len(text.split())


def plain(text: str) -> str:
    """A sentence as a question shows it: no bullet, no emphasis marks, links read as their
    text, one line."""
    text = _LINK.sub(lambda m: m.group(1) or m.group(2) or "", strip_markup(text))
    text = _EMPHASIS.sub(r"\2", text)
    return " ".join(text.split())


def _lines(text: str, pos: int) -> Iterator[tuple[int, str]]:
    """(offset, line without its newline) from ``pos`` (a line start) on."""
    while pos < len(text):
        nl = text.find("\n", pos)
        stop = nl if nl >= 0 else len(text)
        yield pos, text[pos:stop]
        pos = stop + 1


def _next_code_line(text: str, end: int) -> tuple[str, int] | None:
    """The command right after a list item: a whole-line `code` or a fence's first line,
    with where it ends in ``text``."""
    nl = text.find("\n", end)
    if nl < 0:
        return None
    lines = _lines(text, nl + 1)
    for pos, line in lines:
        if not line.strip():
            continue
        if m := _CODE_LINE.match(line):
            return m.group(1).strip(), pos + len(line.rstrip())
        if _FENCE.match(line):
            for first_pos, first in lines:
                if first.strip() and not _FENCE.match(first):
                    return first.strip().removeprefix("$ "), first_pos + len(first.rstrip())
                return None
        return None
    return None


def candidates(note: Note) -> Iterator[Card]:
    """Every card the rules propose for ``note`` (unchecked, unmerged)."""
    text, marks = note.text, headings(note.text)
    spans = [s for s in split(text, min_words=1) if s.start >= note.body_start]
    described = False
    for span in spans:
        line = span.text.lstrip()
        heading = heading_at(marks, span.start)
        if line.startswith(("#", "|")):
            continue
        if line.startswith(">"):
            before = text[note.body_start : span.start]
            opening = all(
                not ln.strip() or ln.lstrip().startswith("#") for ln in before.split("\n")
            )
            if opening and not described and not _POINTER.match(plain(line.lstrip("> "))):
                described = True
                yield from _description(note, span.start, span.end, heading)
            continue
        if _LIST.match(line):
            yield from _list_item(note, span.start, span.end, heading)
        else:
            yield from _definition(note, span.start, span.end, heading)
        yield from _facts(note, span.start, span.end, heading)


def _card(
    note: Note, rule: str, kind: str, question: str, answer: str, start: int, end: int, heading: str
) -> Card:
    source = note.text[start:end]
    return Card(
        card_id(rule, source, answer), kind, question, answer, note.path, heading,
        start, end, source, rule, note.title,
    )  # fmt: skip


def _description(note: Note, start: int, end: int, heading: str) -> Iterator[Card]:
    answer = plain(note.text[start:end].lstrip("> ")).rstrip(".")
    if 1 <= words(answer) <= MAX_ANSWER_WORDS and note.title:
        yield _card(
            note, "description", "qa", f"What is {note.title}?", answer, start, end, heading
        )


def _definition(note: Note, start: int, end: int, heading: str) -> Iterator[Card]:
    sentence = plain(note.text[start:end])
    m = _DEFINITION.match(sentence)
    if not m or words(sentence) > MAX_QUESTION_WORDS:
        return
    term, meaning = m.group("term").strip("`"), m.group("definition")
    if _DEICTIC.match(term) or meaning.endswith(":") or set(term.lower().split()) & _VAGUE:
        return
    if words(meaning) <= MAX_ANSWER_WORDS:
        yield _card(note, "definition", "qa", f"What is {term}?", meaning, start, end, heading)
    elif words(term) <= MAX_ANSWER_WORDS:
        question = BLANK + sentence[m.end("term") :]
        yield _card(note, "definition", "cloze", question, term, start, end, heading)


def _list_item(note: Note, start: int, end: int, heading: str) -> Iterator[Card]:
    item = plain(note.text[start:end])
    if item.endswith(":"):
        command = _next_code_line(note.text, end)
        if command and 1 <= words(command[0]) <= MAX_ANSWER_WORDS:
            task = _BRACKETED.sub(r"\1", item.rstrip(":")).strip()
            task = task[:1].lower() + task[1:]
            where = note.title or heading
            question = f"How do you {task}" + (f" ({where})?" if where else "?")
            yield _card(note, "list", "qa", question, command[0], start, command[1], heading)
        return
    m = _TERM_ITEM.match(strip_markup(note.text[start:end]).strip())
    if m:
        term = m.group("code") or m.group("bold")
        meaning = plain(m.group("meaning"))
        if 1 <= words(meaning) <= MAX_ANSWER_WORDS and words(term) <= 6:
            where = heading.rsplit(" > ", 1)[-1] or note.title
            asked = f"What is {term}" if m.group("code") else f"{term}, in {where}:"
            question = asked + (f" ({where})?" if m.group("code") and where else "")
            question = question if question.endswith((":", "?")) else question + "?"
            yield _card(note, "list", "qa", question, meaning, start, end, heading)


def _facts(note: Note, start: int, end: int, heading: str) -> Iterator[Card]:
    """A cloze per sentence: its first command (inline code), else number, else name."""
    raw = " ".join(strip_markup(note.text[start:end]).split())
    sentence = plain(note.text[start:end])
    if len(_LINK.sub("", raw).split()) * 2 < len(raw.split()):
        return  # mostly links (a table of contents): it names other notes, claims nothing
    if not 6 <= words(sentence) <= MAX_QUESTION_WORDS or sentence.endswith(":"):
        return
    if _DEICTIC.match(sentence):
        return
    for m in _INLINE_CODE.finditer(raw):
        token = m.group(1).strip()
        if _SKIP_TOKEN.match(token) or not re.search(r"[A-Za-z]{2}", token):
            continue
        if words(token) <= MAX_ANSWER_WORDS and raw.count(f"`{token}`") == 1:
            question = plain(raw.replace(f"`{token}`", BLANK))
            if BLANK in question and len(content_words(question)) >= MIN_CONTEXT:
                yield _card(note, "fact", "cloze", question, token, start, end, heading)
                return
    for pattern in (_NUMBER, _NAME):
        for m in pattern.finditer(sentence):
            token = m.group(0) if pattern is _NUMBER else m.group(1)
            if pattern is _NAME and token.endswith("ing"):
                continue
            if _SKIP_TOKEN.match(token) and pattern is _NUMBER and len(token) < 3:
                continue
            if sentence.count(token) != 1 or token.lower() in note.title.lower():
                continue
            question = sentence[: m.start()] + BLANK + sentence[m.end() :]
            if pattern is _NAME:
                question = sentence.replace(token, BLANK)
            if len(content_words(question)) < MIN_CONTEXT:
                continue
            yield _card(note, "fact", "cloze", question, token, start, end, heading)
            return
