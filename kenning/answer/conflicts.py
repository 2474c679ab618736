"""Conflicts: two notes that make different claims about the same thing.

A *claim* is a prose sentence of a passage with what it states: its numbers, dates and names
(``sentences.typed_facts``) and whether it says no. Two claims disagree when they are about
the same subject (the same content words once their facts are set aside) and differ in
exactly one value of one kind: a number, a date, a name, or yes against no. They must come
from different notes, or from one note far apart (``FAR`` characters).

What is *not* a conflict, by design:

- the same fact in other words: facts are normalised ("twelve" is 12, "3 March 2024" is
  2024-03-03) and a claim whose facts all agree never conflicts, however it is worded;
- a note that reports a view it rejects ("some claim X, but ..."), or a value the notes say
  has changed ("as of 2025", "update:", "no longer"): when one side holds such words and the
  other does not, the notes explain the difference themselves;
- different subjects with similar sentences: any other content word that differs, a second
  value that differs (another year *and* another winner is another edition), or values that
  name each note's own subject (its title or file name) keep two claims apart; so do two
  names each note states elsewhere as well and the other never does (``own_subjects``:
  sibling pages, "Manage GitHub issues." in gh-issue.md against GitLab in glab-issue.md);
- values in code and links: numbers inside backticks are arguments of an example, and a
  link's text names a page; neither is a claim.

``find_conflicts`` is what ``ask`` runs over the retrieved passages; ``compare`` is the one
test, shared with the report over the whole index (``kenning conflicts``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .llms import Passage
from .sentences import Fact, content_words, negated, split, strip_markup, typed_facts

#: two claims of one note are compared only when this many characters apart
FAR = 600
#: words and values two claims must share besides what differs (the subject's wording)
MIN_SHARED = 2
#: a claim holding this share of the question's content words answers it
ON_QUESTION = 0.7
#: characters of a file read around a side to see its neighbouring sentences
CONTEXT = 1500
#: at most this many conflicts are reported for one answer
MAX_CONFLICTS = 3
_CODE = re.compile(r"`[^`]*`")
#: links (their text names a page, it claims nothing) and bare addresses
_LINK_URL = re.compile(r"!?\[[^\]]*\]\([^)]*\)|<https?://[^>]*>|https?://\S+")
#: a bracketed label that opens a line ("[Interactive] Download files"): the word after it
#: starts the sentence, it is not a name
_TAG = re.compile(r"^[\s>*+-]*(\[[^\]\n]*\])(?![(\[:])")
#: words by which a note reports a view without holding it
_REJECTS = re.compile(
    r"\b(?:some|many|most|people|others|folks|someone|critics|they)\s+(?:\w+\s+)?"
    r"(?:claim|claims|claimed|say|says|said|believe|believed|believes|think|thought|argue|"
    r"argued|assume|assumed|suggest|suggested|insist|insisted)\b"
    r"|\b(?:it\s+is|it's|was)\s+(?:often\s+|commonly\s+|widely\s+|sometimes\s+)?"
    r"(?:said|claimed|believed|thought|assumed|reported|rumou?red)\b"
    r"|\b(?:myth|misconception|contrary\s+to|wrongly|incorrectly|mistakenly|falsely|"
    r"supposedly|allegedly|not\s+true|isn't\s+true|is\s+wrong|was\s+wrong|debunked|"
    r"rumou?rs?|claimed|reportedly)\b",
    re.IGNORECASE,
)
#: words by which a note says a value changed over time
_UPDATES = re.compile(
    r"\b(?:update[ds]?|as\s+of|since|now|nowadays|currently|no\s+longer|used\s+to|"
    r"previously|formerly|changed|revised|anymore|these\s+days|starting\s+(?:in|from|with)|"
    r"moved|postponed|rescheduled|deprecated|replaced|superseded|until|was\s+raised|"
    r"was\s+lowered|increased|decreased|later)\b",
    re.IGNORECASE,
)
_DATE_KEYS = ("updated", "modified", "last_modified", "lastmod", "date", "created")


@dataclass
class Claim:
    """A sentence of a note and what it states."""

    path: str
    n: int  # the passage's number in the answer (0 outside an answer)
    start: int  # offsets of the sentence in its file
    end: int
    text: str  # the sentence as the note has it
    facts: list[Fact]  # offsets relative to ``text``
    frame: frozenset[str]  # its content words, less its facts
    negated: bool
    before: str  # the sentences before and after it in its passage (for cues, dates)
    after: str
    title: str = ""  # the note's title and file name, lower case: its subject

    @property
    def rejects(self) -> bool:
        """The sentence, or the next, reports a view it rejects."""
        return _rejects(self.text, self.after)

    @property
    def updates(self) -> bool:
        """The sentence, or one beside it, says a value changed."""
        return bool(_UPDATES.search(" ".join((self.before, self.text, self.after))))

    @property
    def context_dates(self) -> list[str]:
        """Dates stated around the sentence (an update's date)."""
        around = " ".join((self.before, self.text, self.after))
        return [f.value for f in typed_facts(around) if f.kind == "date"]

    @property
    def quote(self) -> str:
        return " ".join(strip_markup(self.text).split())


@dataclass
class Side:
    """One version of a disputed claim: the sentence, its value and where it is."""

    n: int  # citation number in the answer; 0 in a report
    path: str
    text: str  # the sentence, as quoted
    value: str  # the differing value, as the note writes it
    start: int
    end: int
    lines: tuple[int, int] | None = None
    date: str | None = None  # when this version was written, as far as the notes tell
    date_source: str = ""  # "text", "front matter" or "file"


@dataclass
class Conflict:
    """Two claims about the same subject that differ in one value."""

    kind: str  # "number", "date", "name" or "yes/no"
    values: list[str]  # the two values, normalised, in the order of ``sides``
    sides: list[Side]
    confidence: float
    recent: int | None = None  # index in ``sides`` of the more recent version, if known
    recency: str = ""  # says which is more recent, and by which date, or that none tells
    verified: list[bool] = field(default_factory=list)  # each side's sentence checked

    def key(self) -> tuple[str, ...]:
        a, b = self.sides
        return tuple(sorted((f"{a.path}:{a.start}", f"{b.path}:{b.start}")))


def claims(
    text: str,
    path: str,
    n: int = 0,
    offset: int = 0,
    title: str = "",
) -> list[Claim]:
    """The prose sentences of ``text`` (a passage starting at ``offset`` in its file)."""
    spans = split(text, min_words=2)
    subject = _subject(path, title)
    out: list[Claim] = []
    for i, span in enumerate(spans):
        line = span.text.lstrip()
        if line.startswith(("#", "|")) or _CODE.sub("", line).strip(" :.-*+>") == "":
            continue  # headings, table rows and code lines state no claim
        prose = _prose(span.text)
        facts = [f for f in typed_facts(prose) if prose[f.start : f.end].strip()]
        words = content_words(_blank(prose, facts))
        words -= {w for w in words if w.isdigit()}
        if not words:
            continue
        out.append(
            Claim(
                path=path,
                n=n,
                start=offset + span.start,
                end=offset + span.end,
                text=span.text,
                facts=facts,
                frame=frozenset(words),
                negated=negated(prose),
                before=spans[i - 1].text if i else "",
                after=spans[i + 1].text if i + 1 < len(spans) else "",
                title=subject,
            )
        )
    return out


def compare(a: Claim, b: Claim) -> Conflict | None:
    """The conflict between two claims, or None when they agree, are about different
    subjects, or the notes explain the difference (a rejected view, a dated update)."""
    if a.path == b.path and abs(a.start - b.start) < FAR:
        return None
    if a.frame != b.frame:
        return None  # another content word: another subject, or too loose to tell
    if a.rejects != b.rejects or a.updates != b.updates:
        return None  # one note says the other's value is rejected or out of date
    diffs = _differences(a.facts, b.facts)
    if len(a.frame) + len(a.facts) - len(diffs) < MIN_SHARED:
        return None  # too little in common to say the two are about one thing
    if a.negated != b.negated:
        if diffs:
            return None
        return Conflict(
            "yes/no",
            ["no" if a.negated else "yes", "no" if b.negated else "yes"],
            [_side(a, "no" if a.negated else "yes"), _side(b, "no" if b.negated else "yes")],
            confidence=_confidence(a, b),
        )
    paired = [d for d in diffs if d[1] is not d[2]]
    if len(paired) != 1 or len(diffs) != 1:
        # nothing differs, several things do (another edition, not a dispute), or one
        # sentence states a value the other leaves out (it says more, not otherwise)
        return None
    kind, fa, fb = paired[0]
    va, vb = fa.text_in(a.text), fb.text_in(b.text)
    if _names(a.title, fa.value) and _names(b.title, fb.value):
        if not (_names(b.title, fa.value) or _names(a.title, fb.value)):
            return None  # each value names its own note's subject: two subjects
    values = {fa.value, fb.value}
    return Conflict(
        kind,
        [fa.value, fb.value],
        [_side(a, va, values), _side(b, vb, values)],
        confidence=_confidence(a, b),
    )


def find_conflicts(
    passages: list[Passage],
    anchors: Iterable[tuple[int, int]],
    question: str = "",
    titles: dict[str, str] | None = None,
) -> list[Conflict]:
    """Conflicts between what answers the question and the rest of the passages.

    ``anchors`` are (passage number, file offset) of the passage sentences the answer's
    sentences rest on; the claims that hold most of the question's words (``ON_QUESTION``)
    join them. Each is compared with every claim of the passages."""
    titles = titles or {}
    asked = content_words(question)
    every = [
        c
        for p in passages
        for c in claims(p.text, p.path, p.n, p.start, titles.get(p.path, p.title))
    ]
    wanted = set(anchors)
    found: dict[tuple[str, ...], Conflict] = {}
    for a in every:
        on_question = len(asked) >= 2 and len(a.frame & asked) >= ON_QUESTION * len(asked)
        if (a.n, a.start) not in wanted and not on_question:
            continue
        for b in every:
            if b is a:
                continue
            conflict = compare(a, b)
            if conflict is not None and conflict.key() not in found:
                found[conflict.key()] = conflict
    ranked = sorted(found.values(), key=lambda c: -c.confidence)
    return ranked[:MAX_CONFLICTS]


def explained(conflict: Conflict) -> bool:
    """Whether the notes explain the difference just outside the passages: a passage may
    start right after "Update on 2025-02-01:" or end before "But that is wrong.", so each
    side's neighbours are read again from its file. True when one side has words of a
    rejected view or a dated change around it and the other does not."""
    cues = []
    for side in conflict.sides:
        try:
            text = Path(side.path).read_text(encoding="utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError):
            return False
        lo = max(0, side.start - CONTEXT)
        spans = split(text[lo : side.end + CONTEXT], min_words=2)
        at = [i for i, sp in enumerate(spans) if lo + sp.start == side.start]
        if not at:
            return False  # the file changed since it was indexed
        i = at[0]
        before = spans[i - 1].text if i else ""
        after = spans[i + 1].text if i + 1 < len(spans) else ""
        around = " ".join((before, spans[i].text, after))
        cues.append((_rejects(spans[i].text, after), bool(_UPDATES.search(around))))
    return cues[0] != cues[1]


def own_subjects(conflict: Conflict) -> bool:
    """Whether two names that differ are each note's own subject: sibling pages ("Manage
    GitHub issues." in gh-issue.md, "Manage GitLab issues." in glab-issue.md) share their
    sentences but each names its own tool, and names it elsewhere too (its commands, its
    links), while never naming the other's. True when each value is stated (in any form:
    prose, code, an address) elsewhere in its own note and nowhere in the other one. A copy
    of a note with one value changed never passes: outside the changed sentence both notes
    hold the same words. Files are read as ``explained`` reads them; False if one cannot be."""
    if conflict.kind != "name":
        return False
    a, b = conflict.sides
    texts = []
    for side in (a, b):
        try:
            text = Path(side.path).read_text(encoding="utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError):
            return False
        texts.append(text.lower())
    ta, tb = texts
    own_a = ta[: a.start] + " " + ta[a.end :]
    own_b = tb[: b.start] + " " + tb[b.end :]
    va, vb = conflict.values
    return (
        _mentions(own_a, va, vb)
        and _mentions(own_b, vb, va)
        and not _mentions(tb, va, vb)
        and not _mentions(ta, vb, va)
    )


def _mentions(text: str, value: str, other: str) -> bool:
    """``value`` (a name, lower case) in ``text``: as a word of its own, its words joined
    by a space, a hyphen, an underscore or nothing ("home manager", ``home-manager``); or,
    for a name of several words, each word that ``other`` lacks ("GitHub CLI" against
    "GitLab CLI": github, as in an address cli.github.com)."""
    words = value.split()
    mine = [w for w in words if w not in other.split()]
    joined = r"[\s_-]?".join(re.escape(w) for w in words)
    if _word(text, joined):
        return True
    return 0 < len(mine) < len(words) and all(_word(text, re.escape(w)) for w in mine)


def _word(text: str, pattern: str) -> bool:
    return bool(re.search(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", text))


def date_sides(conflict: Conflict, notes: dict[str, dict[str, Any]]) -> None:
    """Fill each side's date and say which version is more recent. ``notes`` maps a path to
    ``{"metadata": front matter, "mtime_ns": file time}``. Dates are tried from the text
    around each sentence, then the front matter, then the file's time; the first kind both
    sides have decides, and the answer says which one it used."""
    a, b = conflict.sides
    texts = [s.date if s.date_source == "text" else None for s in (a, b)]
    by_source: list[tuple[str, str | None, str | None]] = [
        ("text", texts[0], texts[1]),
        ("front matter", _meta_date(notes.get(a.path)), _meta_date(notes.get(b.path))),
        ("file", _file_date(notes.get(a.path)), _file_date(notes.get(b.path))),
    ]
    for source, da, db in by_source:
        if da and db and da != db:
            a.date, b.date, a.date_source, b.date_source = da, db, source, source
            newer = 0 if _sortable(da) > _sortable(db) else 1
            conflict.recent = newer
            older = 1 - newer
            what = {
                "text": "the date in its text",
                "front matter": "its note's date",
                "file": "its file's modification time",
            }[source]
            conflict.recency = (
                f"[{conflict.sides[newer].n}] is the more recent by {what} "
                f"({conflict.sides[newer].date}, against {conflict.sides[older].date})."
                if a.n and b.n
                else f"{Path(conflict.sides[newer].path).name} is the more recent by {what} "
                f"({conflict.sides[newer].date}, against {conflict.sides[older].date})."
            )
            return
    for s in (a, b):
        s.date, s.date_source = None, ""
    conflict.recency = "Nothing in the notes says which version is more recent."


def describe(conflict: Conflict) -> str:
    """The lines an answer adds for a conflict: the framing, then each version in one
    sentence with its citation (checked like every sentence), then which is more recent."""
    a, b = conflict.sides
    what = "yes or no" if conflict.kind == "yes/no" else f"the {conflict.kind}"
    head = f"Your notes disagree on {what} ({_shown(a.value)} or {_shown(b.value)}):"
    return "\n\n".join([head, version(a), version(b), conflict.recency])


def version(side: Side) -> str:
    """One version as a paragraph of its own: the note's sentence, then its citation."""
    text = side.text.rstrip()
    return f"{text}{'' if text.endswith(('.', '!', '?', ':')) else '.'} [{side.n}]"


def _shown(value: str) -> str:
    return value if len(value) < 40 else value[:37] + "..."


def _prose(text: str) -> str:
    """The sentence with code and link targets blanked out (same length, same offsets)."""
    for pattern in (_CODE, _LINK_URL):
        text = pattern.sub(lambda m: " " * len(m.group()), text)
    tag = _TAG.match(text)
    if tag:
        a, b = tag.span(1)
        text = text[:a] + " " * (b - a) + text[b:]
    return text


def _blank(text: str, facts: list[Fact]) -> str:
    for f in facts:
        text = text[: f.start] + " " * (f.end - f.start) + text[f.end :]
    return text


def _differences(fa: list[Fact], fb: list[Fact]) -> list[tuple[str, Fact, Fact]]:
    """Values each side states that the other does not, paired by kind; a side left with an
    unpaired value (one sentence says more) counts as a difference too, as ``(kind, f, f)``."""
    out: list[tuple[str, Fact, Fact]] = []
    for kind in ("date", "number", "name"):
        xs = [f for f in fa if f.kind == kind]
        ys = [f for f in fb if f.kind == kind]
        only_a = [x for x in xs if not any(_same(kind, x.value, y.value) for y in ys)]
        only_b = [y for y in ys if not any(_same(kind, x.value, y.value) for x in xs)]
        only_a = list({f.value: f for f in only_a}.values())
        only_b = list({f.value: f for f in only_b}.values())
        for x, y in zip(only_a, only_b, strict=False):
            out.append((kind, x, y))
        for extra in only_a[len(only_b) :] + only_b[len(only_a) :]:
            out.append((kind, extra, extra))
    return out


def _same(kind: str, x: str, y: str) -> bool:
    """Equal values; a date stated less precisely ("March 2024") agrees with a fuller one."""
    if x == y:
        return True
    if kind == "date":
        return (
            x.startswith(y)
            or y.startswith(x)
            or x.endswith(y.lstrip("-"))
            or (y.endswith(x.lstrip("-")))
        )
    return False


def _confidence(a: Claim, b: Claim) -> float:
    """Higher for longer shared wording (more that pins down the subject) and for claims in
    different notes; the same sentence in two notes but for one value scores highest."""
    shared = len(a.frame)
    score = min(1.0, 0.5 + 0.08 * shared)
    return round(score * (1.0 if a.path != b.path else 0.85), 3)


def _side(c: Claim, value: str, disputed: set[str] | None = None) -> Side:
    """A side, dated by the latest date stated around its sentence (an update's date) that
    is not itself the disputed value."""
    side = Side(c.n, c.path, c.quote, value, c.start, c.end)
    dates = sorted(
        (d for d in c.context_dates if not any(_same("date", d, v) for v in disputed or ())),
        key=_sortable,
    )
    if dates:
        side.date, side.date_source = dates[-1], "text"
    return side


def _rejects(sentence: str, after: str) -> bool:
    """The sentence reports a view ("some claim ..."), or the next one rejects it ("that is
    what some claimed, but it is wrong")."""
    if _REJECTS.search(sentence):
        return True
    return bool(
        _REJECTS.search(after)
        or re.search(r"\b(?:wrong|false|untrue|incorrect)\b", after, re.IGNORECASE)
    )


def _names(title: str, value: str) -> bool:
    return bool(re.search(rf"(?<!\w){re.escape(value)}(?!\w)", title))


def _subject(path: str, title: str) -> str:
    stem = Path(path).stem.replace("-", " ").replace("_", " ")
    return f"{title} {stem}".lower()


def _meta_date(note: dict[str, Any] | None) -> str | None:
    meta = (note or {}).get("metadata") or {}
    for key in _DATE_KEYS:
        value = meta.get(key)
        if value:
            facts = [f for f in typed_facts(str(value)) if f.kind == "date"]
            return facts[0].value if facts else str(value)[:10]
    return None


def _file_date(note: dict[str, Any] | None) -> str | None:
    import datetime as dt

    if not note or not note.get("mtime_ns"):
        return None
    when = dt.datetime.fromtimestamp(note["mtime_ns"] / 1e9, tz=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M")


def _sortable(date: str) -> str:
    return date.lstrip("-")
