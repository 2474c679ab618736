"""Planted conflicts in a notes collection: does an answer say when two notes disagree?

From a collection (a folder of notes, or a ``.tar.gz`` of one), sampled notes become cases,
each a pair of notes put in one index together with other notes of the collection:

- ``conflict``: the note, and a copy in which one fact of one sentence is swapped for a
  plausible alternative of the same kind and shape taken from the collection (another year,
  another number, another name);
- controls, which must not be reported: ``paraphrase`` (the copy states the same fact in
  other words: digits as words, another date format), ``rejected`` (the copy states the
  swapped value as a view it then rejects), ``update`` (the copy gives the swapped value under
  a dated update) and ``near-duplicate`` (the copy, about another subject, has a similar
  sentence with another value).

Each case's question is its sentence with the fact taken out ("The final was won by after
extra time?"), so it asks about that fact without giving it away. ``run`` asks each question
and scores: *detected* (a conflict reported whose two sides are the two notes, holding the two
values, each side a verified sentence cited), *false alarm* (a control for which any conflict
is reported) and *answer accuracy* (the answer states the expected values in supported
sentences: both of a conflict, the copy's update, the original otherwise).
"""

from __future__ import annotations

import functools
import random
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kenning.answer.ask import ask
from kenning.answer.citations import SUPPORTED
from kenning.answer.conflicts import Claim, claims
from kenning.answer.llms import LLM
from kenning.answer.sentences import Fact
from kenning.errors import ConfigError
from kenning.index import Index

KINDS = ("conflict", "paraphrase", "rejected", "update", "near-duplicate")
CONTROLS = KINDS[1:]
_DIGIT_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_SUFFIX = (".md", ".markdown", ".txt")
#: alternative values are drawn from the claims of at most this many notes
POOL_NOTES = 1000


@dataclass
class Case:
    """Two notes and a question about the fact one of them changes (or does not)."""

    kind: str
    question: str
    original: str  # path of the original note, relative to the collection's root
    copy: str  # path of the changed copy
    value: str  # the fact as the original states it (normalised)
    other: str  # the copy's value (normalised); equal to ``value`` for paraphrases
    sentence: str  # the original sentence
    changed: str  # the copy's sentence (or passage) that replaced it


@dataclass
class Outcome:
    case: Case
    reported: bool  # any conflict reported
    detected: bool  # the planted conflict reported, both sides verified and cited
    accurate: bool
    refused: bool
    seconds: float
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def read_collection(source: Path) -> tuple[Path, dict[str, str], tempfile.TemporaryDirectory]:
    """The notes of a folder or ``.tar.gz`` (or of a data folder holding one archive), as
    {relative path: text}; archives are unpacked into a temporary folder."""
    tmp = tempfile.TemporaryDirectory(prefix="kenning-conflicts-")
    archives = [source] if source.is_file() else sorted(source.glob("*.tar.gz"))
    if source.is_file() or archives:
        if len(archives) != 1:
            raise ConfigError(f"{source}: expected a folder of notes or one .tar.gz of them")
        with tarfile.open(archives[0]) as tar:
            tar.extractall(tmp.name, filter="data")
        root = Path(tmp.name)
    elif source.is_dir():
        root = source
    else:
        raise ConfigError(f"{source}: no such folder or archive")
    notes = {
        str(p.relative_to(root)): p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(root.rglob("*"))
        if p.suffix in _SUFFIX and p.is_file()
    }
    if not notes:
        raise ConfigError(f"{source}: no Markdown or text notes in it")
    return root, notes, tmp


def build_cases(
    notes: dict[str, str], per_kind: dict[str, int], seed: int = 0
) -> tuple[dict[str, str], list[Case]]:
    """Cases and the files they need ({relative path: text}: the originals and copies)."""
    rng = random.Random(seed)
    pool = _value_pool(notes)
    order = list(notes)
    rng.shuffle(order)
    files: dict[str, str] = {}
    cases: list[Case] = []
    wanted = [k for k, n in per_kind.items() for _ in range(n)]
    rng.shuffle(wanted)
    for rel in order:
        if not wanted:
            break
        # the scarcest kind first (a paraphrase needs a fact that can be written otherwise)
        for kind in sorted(set(wanted), key=lambda k: (k != "paraphrase", wanted.count(k))):
            made = _make(kind, rel, notes[rel], pool, rng)
            if made is None:
                continue
            case, copy_text = made
            files[rel] = notes[rel]
            files[case.copy] = copy_text
            cases.append(case)
            wanted.remove(kind)
            break
    return files, cases


def prepare(
    source: Path,
    workdir: Path,
    per_kind: dict[str, int],
    background: int = 200,
    seed: int = 0,
) -> tuple[Path, list[Case]]:
    """Write a collection's cases (and ``background`` other notes of it) under
    ``workdir/notes``; returns that folder and the cases."""
    _, notes, tmp = read_collection(source)
    with tmp:
        files, cases = build_cases(notes, per_kind, seed)
        rest = sorted(set(notes) - set(files))
        random.Random(seed + 1).shuffle(rest)
        files.update({rel: notes[rel] for rel in rest[:background]})
    return _write_tree(workdir / "notes", files), cases


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    """``files`` (relative path -> text) written afresh under ``root``."""
    if root.exists():
        shutil.rmtree(root)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def run(
    index: Index,
    root: Path,
    cases: list[Case],
    llm: LLM | None = None,
    k: int = 5,
    tick: Callable[[], None] | None = None,
) -> tuple[dict[str, float], list[Outcome]]:
    """Ask each case's question; the rates by kind and overall."""
    import time

    outcomes: list[Outcome] = []
    for case in cases:
        t0 = time.perf_counter()
        answer = ask(index, case.question, llm, k=k)
        seconds = time.perf_counter() - t0
        paths = {str(root / case.original), str(root / case.copy)}
        detected = any(
            {s.path for s in c.sides} == paths
            and set(c.values) == {case.value, case.other}
            and all(c.verified)
            and all(s.n for s in c.sides)
            for c in answer.conflicts
        )
        outcomes.append(
            Outcome(
                case,
                reported=bool(answer.conflicts),
                detected=detected,
                accurate=_accurate(case, answer),
                refused=answer.refused,
                seconds=seconds,
                conflicts=[asdict(c) for c in answer.conflicts],
            )
        )
        if tick:
            tick()
    return summary(outcomes), outcomes


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    def rate(rows: list[Outcome], what: str) -> float:
        return sum(getattr(o, what) for o in rows) / len(rows) if rows else float("nan")

    pairs = [o for o in outcomes if o.case.kind == "conflict"]
    controls = [o for o in outcomes if o.case.kind in CONTROLS]
    out = {
        "pairs": float(len(pairs)),
        "controls": float(len(controls)),
        "detection_rate": rate(pairs, "detected"),
        "reported_on_pairs": rate(pairs, "reported"),
        "false_alarm_rate": rate(controls, "reported"),
        "answer_accuracy_pairs": rate(pairs, "accurate"),
        "answer_accuracy_controls": rate(controls, "accurate"),
        "refusal_rate": rate(outcomes, "refused"),
    }
    for kind in CONTROLS:
        rows = [o for o in controls if o.case.kind == kind]
        out[f"false_alarm_{kind}"] = rate(rows, "reported")
    seconds = sorted(o.seconds for o in outcomes)
    out["seconds_p50"] = seconds[len(seconds) // 2] if seconds else float("nan")
    return out


def _accurate(case: Case, answer: Any) -> bool:
    values = [
        fact.value for s in answer.sentences if s.status == SUPPORTED for fact in _facts_of(s.text)
    ]
    if case.kind == "conflict":
        return case.value in values and case.other in values
    if case.kind == "update":
        return case.other in values
    return case.value in values


def _facts_of(text: str) -> list[Fact]:
    from kenning.answer.sentences import typed_facts

    return typed_facts(text)


# -- making cases ---------------------------------------------------------------------------


def _value_pool(notes: dict[str, str], most: int = POOL_NOTES) -> dict[tuple[str, str], list[str]]:
    """The facts of the collection's claims (of ``most`` notes of it, taken evenly), as
    written, by (kind, shape)."""
    pool: dict[tuple[str, str], set[str]] = {}
    every = sorted(notes)
    for rel in every[:: max(1, len(every) // most)]:
        text = notes[rel]
        for c in claims(_body(text), rel):
            for f in c.facts:
                raw = f.text_in(c.text)
                pool.setdefault((f.kind, _shape(f.kind, raw)), set()).add(raw)
    return {key: sorted(values) for key, values in pool.items()}


def _shape(kind: str, raw: str) -> str:
    if kind == "name":
        return "name1" if " " not in raw else "name2"
    return re.sub(r"[a-z]+", "a", re.sub(r"\d", "9", raw.lower()))


def _body(text: str) -> str:
    """The note less its front matter (kept in place as blank lines, so offsets hold)."""
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end > 0:
            return re.sub(r"[^\n]", " ", text[: end + 4]) + text[end + 4 :]
    return text


@functools.lru_cache(maxsize=4)  # one note is tried for several kinds in a row
def _candidates(rel: str, text: str) -> list[tuple[Claim, Fact]]:
    """Sentences worth asking about (a few content words, one line, no hedging) and their
    facts: digits, dates and names, not a word at the sentence's start."""
    out: list[tuple[Claim, Fact]] = []
    for c in claims(_body(text), rel):
        if c.rejects or c.updates or c.negated or len(c.frame) < 4:
            continue
        if len(c.text) > 300 or "\n" in c.text.strip() or len(c.text.split()) < 7:
            continue
        lead = len(c.text) - len(c.text.lstrip(" >*+-#0123456789.)"))
        out.extend(
            (c, f)
            for f in c.facts
            if f.start > lead + 1 and (f.kind != "number" or f.text_in(c.text)[:1].isdigit())
        )
    return out


def _make(
    kind: str,
    rel: str,
    text: str,
    pool: dict[tuple[str, str], list[str]],
    rng: random.Random,
) -> tuple[Case, str] | None:
    candidates = _candidates(rel, text)
    if kind == "paraphrase":
        candidates = [(c, f) for c, f in candidates if _reword(f, f.text_in(c.text), rng)]
    if not candidates:
        return None
    claim, fact = rng.choice(candidates)
    raw = fact.text_in(claim.text)
    others = [
        v
        for v in pool.get((fact.kind, _shape(fact.kind, raw)), [])
        if v.lower() != raw.lower() and v not in claim.text
    ]
    if kind != "paraphrase" and not others:
        return None
    swap = rng.choice(others) if others else raw
    swapped = claim.text[: fact.start] + swap + claim.text[fact.end :]
    marker = claim.text[: len(claim.text) - len(claim.text.lstrip(" >*+-#0123456789.)"))]
    plain, bare = swapped[len(marker) :], claim.text[len(marker) :]
    question = _question(claim, fact, _title(text))
    if question is None:
        return None
    start, end = claim.start, claim.end
    copy_rel = str(Path("copies") / rel)
    other = _value(fact.kind, swap)
    if kind == "conflict":
        changed = swapped
    elif kind == "paraphrase":
        changed = claim.text[: fact.start] + _reword(fact, raw, rng) + claim.text[fact.end :]
        other = fact.value
    elif kind == "rejected":
        changed = marker + rng.choice(
            (
                f"{plain} That is what some people claimed, but it is wrong. {bare}",
                f"Some claim that {_lower(plain)} But that is not true: {bare}",
                f"It is often said that {_lower(plain)} In fact, {_lower(bare)}",
            )
        )
    elif kind == "update":
        when = f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        changed = rng.choice(
            (
                f"Update on {when}: this has changed.\n\n{swapped}",
                f"{swapped} This changed on {when}; it used to be {raw}.",
                f"As of {when}, this is no longer the case.\n\n{swapped}",
            )
        )
    else:  # near-duplicate: another subject's note with a like sentence and another value
        word = _distinct_word(claim)
        if word is None:
            return None
        subject = rng.choice(pool.get(("name", "name1"), ["Other"]))
        changed = re.sub(rf"\b{re.escape(word)}\b", subject, swapped, count=1)
        copy_rel = str(Path("copies") / Path(rel).parent / f"{subject.lower()}-notes.md")
        text_b = f"# {subject}\n\nNotes about {subject}.\n\n{changed}\n"
        case = Case(kind, question, rel, copy_rel, fact.value, other, claim.text, changed)
        return case, text_b
    copy_text = text[:start] + changed + text[end:]
    return Case(kind, question, rel, copy_rel, fact.value, other, claim.text, changed), copy_text


def _title(text: str) -> str:
    m = re.search(r"^#\s+(.+)$", _body(text), re.MULTILINE)
    return m.group(1).strip() if m else ""


def _question(claim: Claim, fact: Fact, title: str) -> str | None:
    """The sentence less its fact, after the note's title (unless the title gives the fact
    away): a question about that fact that does not state it."""
    words = (claim.text[: fact.start] + " " + claim.text[fact.end :]).strip()
    words = re.sub(r"^[\s>*+\-#]+|\d+[.)]\s", "", words)
    words = re.sub(r"`[^`]*`|\[([^\]]*)\]\([^)]*\)", r"\1", words)
    words = " ".join(words.split()).rstrip(" .:;,!?")
    if len(words.split()) < 4:
        return None
    if title and fact.text_in(claim.text).lower() not in title.lower():
        # "Set Statement Timeout For All Connections" reads as typed once title case is
        # undone (acronyms keep their capitals), as questions.py does for headings
        typed = [w if w.isupper() else w[:1].lower() + w[1:] for w in title.strip(" #*`").split()]
        words = f"{' '.join(typed)}: {words}"
    return words + "?"


def _value(kind: str, raw: str) -> str:
    from kenning.answer.sentences import typed_facts

    facts = [f for f in typed_facts(" x " + raw) if f.kind == kind]
    return facts[0].value if facts else raw.lower()


def _reword(fact: Fact, raw: str, rng: random.Random) -> str:
    """The same value written otherwise: a small number in words, a date in another format,
    a large number with a thousands separator; '' when there is no other way to write it."""
    if fact.kind == "number" and raw.isdigit() and int(raw) < len(_DIGIT_WORDS):
        return _DIGIT_WORDS[int(raw)]
    if fact.kind == "number" and raw.isdigit() and len(raw) >= 5:
        return f"{int(raw):,}"
    if fact.kind == "date" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", fact.value):
        y, m, d = (int(x) for x in fact.value.split("-"))
        return rng.choice((f"{d} {_MONTHS[m - 1]} {y}", f"{_MONTHS[m - 1]} {d}, {y}"))
    if fact.kind == "date" and re.fullmatch(r"\d{4}", raw):
        return ""
    return ""


def _distinct_word(claim: Claim) -> str | None:
    prose = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)|<[^>]*>", " ", claim.text)
    words = [w for w in re.findall(r"[A-Za-z]{5,}", prose) if w.islower()]
    return max(words, key=len) if words else None


def _lower(sentence: str) -> str:
    return sentence[:1].lower() + sentence[1:] if sentence[1:2].islower() else sentence


def report_run(source: Path, workdir: Path, planted: int = 100, seed: int = 0) -> dict[str, Any]:
    """``kenning conflicts`` over a whole collection with ``planted`` swapped copies among
    its notes: the share of planted pairs it finds (in its top results, the first
    ``2 * planted``, and anywhere) and the share of its reported pairs that are not planted
    (false alarms: natural look-alikes, or real disagreements of the collection)."""
    import time

    from kenning.answer.conflict_report import ConflictReport
    from kenning.embedders import HashEmbedder

    _, notes, tmp = read_collection(source)
    with tmp:
        files, cases = build_cases(notes, {"conflict": planted}, seed)
        files.update(notes)
    root = _write_tree(workdir / "report-notes", files)
    db = workdir / "report.db"
    for old in workdir.glob("report.db*"):
        old.unlink()
    t0 = time.perf_counter()
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([root], embed=False)  # the report reads text, never vectors
        t1 = time.perf_counter()
        with ConflictReport(index) as report:
            stats = report.update()
            found = report.conflicts()
    t2 = time.perf_counter()
    resolved = root.resolve()
    wanted = {frozenset((str(resolved / c.original), str(resolved / c.copy))): c for c in cases}
    keys = [frozenset(s.path for s in c.sides) for c in found]
    hits = [k in wanted for k in keys]
    top = {k for k in keys[: 2 * len(cases)] if k in wanted}
    return {
        "notes": float(stats.notes),
        "planted": float(len(cases)),
        "reported": float(len(found)),
        "found_top": len(top) / len(cases) if cases else float("nan"),
        "found_all": len({k for k in keys if k in wanted}) / len(cases) if cases else 0.0,
        "false_alarm_share": (len(hits) - sum(hits)) / len(hits) if hits else 0.0,
        "index_seconds": t1 - t0,
        "report_seconds": t2 - t1,
        "false_alarms": [
            [(s.path.removeprefix(str(resolved) + "/"), s.text) for s in c.sides]
            for c, hit in zip(found, hits, strict=True)
            if not hit
        ][:20],
    }
