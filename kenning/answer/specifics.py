"""Near misses: passages on the question's topic that do not hold its specifics.

A question that names a year, a version, a number or a name ("the 2021 final", "Rails 7",
"Redis") is answered by a passage only if the passage holds that year, version, number or
name. Notes about the same competition in another year, or the same setting in another tool,
are genuinely similar to the question, so no similarity threshold tells them apart; checking
the specifics does. This is the citation check's fact test (``sentences.facts``) run the other
way: from the question to the passages.

``near_miss(question, passages)`` returns what the question asks that no passage holds, and
what of the same kind the best passage holds instead ("2016", not "2021"); the extractive
answerer then declines and says so.

Matching is lenient where notes and questions write the same thing differently: a name
matches when each of its words appears in the passage (any case, also inside a longer word:
"Postgres" in "PostgreSQL"), and a version matches its own refinements ("Rails 5" is held
by a passage on "Rails 5.2", and the reverse). A year matches only itself (or a date in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kenning.text.tokens import STOPWORDS

from .llms import Passage
from .sentences import content_words, facts

YEAR, NUMBER, NAME = "year", "number", "name"
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,:/-]\d+)*%?")
_YEAR = re.compile(r"(?:1[5-9]|20)\d\d")
_WORD = re.compile(r"[^\W_]+")
#: a capitalised name, not a sentence's first word (as ``sentences.facts`` finds them)
_NAME = re.compile(r"(?<=[^\s.!?]\s)(?:[A-Z][\w\-]*[A-Za-z0-9])(?:\s+[A-Z][\w\-]*[A-Za-z0-9])*")
#: words of a name that say nothing on their own (a title-cased question capitalises them)
_GENERIC = STOPWORDS | {"how", "notes", "note", "say", "use", "using"}


@dataclass(frozen=True)
class Specific:
    """A year, number or name a question asks about, lower-cased as ``facts`` gives it."""

    text: str
    kind: str
    shown: str = ""  # as the question writes it


@dataclass
class NearMiss:
    """What the question asks that no passage holds, and the nearest thing one does hold."""

    missing: list[Specific]
    #: a value of the same kind as ``missing[0]`` in the best passage, as the note writes it
    instead: str | None = None
    #: the number ``[n]`` of the passage that holds ``instead``
    passage: int | None = None

    def explain(self, refusal: str) -> str:
        """The refusal, then what the notes cover instead: "They mention 2016 [1], not 2021"."""
        asked = ", ".join(s.shown or s.text for s in self.missing)
        if self.instead is not None:
            return f"{refusal} They mention {self.instead} [{self.passage}], not {asked}."
        return f"{refusal} The closest passages do not mention {asked}."


def kind_of(value: str) -> str:
    if _NUMBER.fullmatch(value):
        return YEAR if _YEAR.fullmatch(value) else NUMBER
    return NAME


def specifics(question: str) -> list[Specific]:
    """The years, numbers and names ``question`` asks about (not its first word)."""
    found = []
    for f in sorted(facts(question)):
        kind = kind_of(f)
        if kind == NAME and not _name_words(f):
            continue  # "In The" from a title-cased question
        m = re.search(re.escape(f), question, re.IGNORECASE)
        found.append(Specific(f, kind, m.group() if m else f))
    return found


def holds(text: str, specific: Specific) -> bool:
    """Whether ``text`` (a passage) holds ``specific``, leniently (see the module doc)."""
    lower = text.lower()
    if specific.kind == NAME:
        return all(w in lower for w in _name_words(specific.text))
    q = specific.text
    for m in _NUMBER.finditer(lower):
        p = m.group().rstrip(".,")
        if p == q or p.startswith(q + ("-" if specific.kind == YEAR else ".")):
            return True
        if specific.kind == NUMBER and q.startswith(p + "."):
            return True
    return False


def near_miss(question: str, passages: list[Passage]) -> NearMiss | None:
    """None when every specific of ``question`` is held by some passage (or it names none)."""
    asked = specifics(question)
    if not passages or not asked:
        return None
    topic = content_words(question) - {w for s in asked for w in content_words(s.text)}
    on_topic = _on_topic(passages, topic)
    missing = [s for s in asked if not any(holds(p.text, s) for p in on_topic)]
    if not missing:
        return None
    # years and numbers first: "the 2021 final" is a sharper miss than a name
    missing.sort(key=lambda s: (s.kind == NAME, s.text))
    miss = NearMiss(missing)
    topic = content_words(question) - {w for s in missing for w in content_words(s.text)}
    asked_texts = {s.text for s in asked}
    best: tuple[int, int, str] | None = None  # (topic words near it, -n, the value)
    for p in on_topic:
        found = _instead(p.text, missing[0], topic, asked_texts)
        if found is not None and (best is None or (found[0], -p.n) > best[:2]):
            best = (found[0], -p.n, found[1])
    if best is not None:
        miss.instead, miss.passage = best[2], -best[1]
    return miss


def _on_topic(passages: list[Passage], topic: set[str]) -> list[Passage]:
    """The passages about the question's topic: holding at least half as many of its other
    content words as the passage that holds the most (a passage that only shares the name,
    "Rails" in a note on Rails secrets for a question on Vim registers, is not)."""
    if not topic:
        return passages
    shared = [len(topic & content_words(p.text)) for p in passages]
    best = max(shared)
    return [p for p, n in zip(passages, shared, strict=True) if n >= best / 2]


def _instead(text: str, want: Specific, topic: set[str], asked: set[str]) -> tuple[int, str] | None:
    """The value of ``want``'s kind in ``text`` nearest the question's topic words, with
    how many topic words stand around it; a topic word right after it is kept ("the 2016
    final")."""
    flat = " " + " ".join(text.split())
    if want.kind == NAME:
        # not from headings (title case capitalises every word), and at most two words
        prose = " " + " ".join(
            " ".join(ln.split()) for ln in text.splitlines() if not ln.lstrip().startswith("#")
        )
        values = [
            (flat.find(m.group()), flat.find(m.group()) + len(m.group()), m.group())
            for m in _NAME.finditer(prose)
            if m.group().lower() not in asked
            and _name_words(m.group())
            and len(m.group().split()) <= 2
        ]
    else:
        values = [
            (m.start(), m.end(), m.group().rstrip(".,"))
            for m in _NUMBER.finditer(flat)
            if kind_of(m.group().rstrip(".,")) == want.kind
            and m.group().rstrip(".,").lower() not in asked
            and (want.kind == YEAR or _shape(m.group()) == _shape(want.text))
        ]
    best: tuple[int, str] | None = None
    for start, end, value in values:
        near = len(content_words(flat[max(0, start - 80) : end + 80]) & topic)
        if best is None or near > best[0]:
            after = _topic_words_after(flat[end:], topic)
            if want.kind != NAME and after:
                value = f"the {value} {after}"
            best = (near, value)
    return best


def _topic_words_after(text: str, topic: set[str], most: int = 3) -> str:
    """The topic words right after a value, up to ``most``: "World Cup final"."""
    words = []
    for w in text.split()[:most]:
        w = w.rstrip(".,;:!?")
        if not w or not content_words(w) or not content_words(w) <= topic:
            break
        words.append(w)
    return " ".join(words)


def _name_words(name: str) -> list[str]:
    return [w for w in _WORD.findall(name.lower()) if len(w) > 1 and w not in _GENERIC]


def _shape(number: str) -> str:
    """A number's form: "5.2" and "7.1" share one ("9.9"), "1-0" has another."""
    return re.sub(r"\d+", "9", number.rstrip(".,"))
