"""`kenning eval agent`: questions that take a link to answer, and controls, agent against `ask`.

A *multi-step* question names a note A and asks about the note A points to, B, without naming
B, so reading A is not enough: the answer sits behind the pointer. A points to B by

- a link (``[[B]]``, ``[text](B.md)``): "Which note does "A" link to, and what does it say?",
  the gold being a fact of B (a number, a version, a name: ``kenning.answer.sentences.facts``)
  that A's own text does not hold;
- a "See also" line naming one command in backticks, as tldr-pages writes them
  (``> See also: `awk`.``): "The page "A" names one command under "See also". What does that
  command do?";
- an alias line (``> This command is an alias of `gzip --decompress`.``): ""A" is an alias of
  another command. What does that command do?".

For the last two B is the note whose name is the command (in A's folder, else the only one;
``docker container top`` is docker-container-top), and the gold is the rarest word of B's
description (its first ``>`` line) across the collection's descriptions that A and the
question do not hold, and that at most 1% of the descriptions have. A *one-step control* names B
itself ("What does the note "B" say?", "What does the command "B" do?") with the same gold.
Both are answered by the agent and by plain ``ask`` with the same LLM; an answer is correct
when it contains the gold at the start of a word (case-insensitive).
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from statistics import median
from typing import Any

from kenning.answer import Thresholds, ask
from kenning.answer.llms import LLM
from kenning.answer.sentences import facts, split
from kenning.index import Index
from kenning.index.links import Resolver

from .loop import Agent

#: notes that link to everything (a table of contents) make no question
SKIPPED = {"readme", "index", "contents", "toc", "changelog", "contributing"}


#: how A points to B, beyond links: a "See also" line, an alias line (tldr-pages' style)
_SEE_ALSO = re.compile(r"^>?\s*See also:(.*)$", re.MULTILINE | re.IGNORECASE)
_ALIAS = re.compile(r"\balias of[^`\n]*`([^`\n]+)`", re.IGNORECASE)
_CODE = re.compile(r"`([^`\n]+)`")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+]{3,}")
_NOT_DESCRIPTION = ("see also", "more information", "note:", "this command is")
#: words too vague to be a gold answer, however rare
_VAGUE = set(
    "also either mainly primarily usually only other others various some such into from onto "
    "that this these those which their them they more most very like using used uses within "
    "without between based given".split()
)
MULTI = {
    "link": 'Which note does "{a}" link to, and what does it say?',
    "see": 'The page "{a}" names one command under "See also". What does that command do?',
    "alias": '"{a}" is an alias of another command. What does that command do?',
}
CONTROL = {
    "link": 'What does the note "{b}" say?',
    "see": 'What does the command "{b}" do?',
    "alias": 'What does the command "{b}" do?',
}


@dataclass
class Question:
    qid: str
    kind: str  # "multi" or "control"
    question: str
    gold: str
    named: str  # the note the question names
    answer_note: str  # the note that holds the gold fact
    via: str = "link"  # how the named note points to the answer's: link, see or alias


def _texts(index: Index) -> dict[str, str]:
    """Every note's text (its chunks in order), read in one pass."""
    store = index.store
    chunks = store.chunks([int(i) for i in store.chunk_ids()])
    rows = sorted(chunks.values(), key=lambda r: (r.path, r.start))
    texts: dict[str, list[str]] = {}
    for r in rows:
        texts.setdefault(r.path, []).append(r.text)
    return {p: "\n".join(parts) for p, parts in texts.items()}


def description(text: str) -> str:
    """A page's description: its first ``>`` line that is not a pointer or a source."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(">"):
            body = line.lstrip("> ").strip()
            if body and not body.lower().startswith(_NOT_DESCRIPTION):
                return body
    return ""


def _mentions(text: str) -> list[tuple[str, str]]:
    """(how, command) pointers of a page: one "See also" command, or what it aliases."""
    found = [("alias", m.group(1)) for m in _ALIAS.finditer(text)]
    for m in _SEE_ALSO.finditer(text):
        named = list(dict.fromkeys(c.group(1).strip() for c in _CODE.finditer(m.group(1))))
        if len(named) == 1:  # several: the question could not say which
            found.append(("see", named[0]))
    return found


def _keyword(desc: str, avoid: str, df: Counter[str], common: int) -> str | None:
    """The rarest word of ``desc`` (by ``df``, its count over all descriptions) that
    ``avoid`` does not hold and at most ``common`` descriptions have (a word that many
    pages use, "files", would be in any answer); commands in backticks are not words."""
    avoid = avoid.lower()
    words = [w.lower() for w in _WORD.findall(_CODE.sub(" ", desc))]
    fresh = [
        w for w in dict.fromkeys(words) if w not in avoid and w not in _VAGUE and df[w] <= common
    ]
    return min(fresh, key=lambda w: df[w]) if fresh else None


def _page(command: str, folder: str, by_stem: dict[str, list[str]]) -> str | None:
    """The page of ``command`` (``docker container top``: docker-container-top, else
    docker-container, else docker; options are not part of it): in ``folder``, else the only
    one of that name."""
    words = [w for w in command.lower().split() if not w.startswith("-")]
    for n in range(len(words), 0, -1):
        found = by_stem.get("-".join(words[:n]), [])
        here = [p for p in found if str(PurePosixPath(p).parent) == folder]
        if found:
            return (here or found)[0] if len(here or found) == 1 else None
    return None


def _fact(text: str, avoid: str) -> str | None:
    """The first fact of ``text``'s sentences that ``avoid`` does not hold (a heading's and the
    first line's excepted: they name the note)."""
    avoid = avoid.lower()
    for span in split(text)[1:]:
        if "http" in span.text or "](" in span.text:
            continue  # a source line: its numbers are ids in a URL
        for fact in sorted(facts(span.text), key=lambda f: span.text.lower().find(f)):
            if fact.isdigit() and not 2 <= len(fact) <= 6:
                continue
            if len(fact) >= 3 or fact.isdigit():
                if fact not in avoid:
                    return fact
    return None


def _pairs(index: Index, texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(A, B, how) for every note A that points to one note B."""
    sources = index.store.sources()
    by_stem: dict[str, list[str]] = {}
    for p in sources:
        by_stem.setdefault(PurePosixPath(p).stem.lower(), []).append(p)
    pairs: list[tuple[str, str, str]] = []
    resolver = Resolver(sources)  # once: Index.links would read every source per note
    for path, row in sorted(sources.items()):
        if row.type != "markdown" or PurePosixPath(path).stem.lower() in SKIPPED:
            continue
        linked: set[str] = set()
        for link in index.store.links_from(path):
            target = resolver.resolve(path, link)
            if target and target != path and target not in linked:
                linked.add(target)
                pairs.append((path, target, "link"))
        folder = str(PurePosixPath(path).parent)
        for how, command in _mentions(texts.get(path, "")):
            target = _page(command, folder, by_stem)
            if target and target != path:
                pairs.append((path, target, how))
    return pairs


def build_questions(index: Index, limit: int, seed: int = 0) -> list[Question]:
    """Up to ``limit`` multi-step questions and as many one-step controls, from the notes'
    links, "See also" lines and aliases."""
    sources = index.store.sources()
    names = {p: r.title or PurePosixPath(p).stem for p, r in sources.items()}
    unique = Counter(n.lower() for n in names.values())
    texts = _texts(index)
    descriptions = [d for d in map(description, texts.values()) if d]
    df = Counter(w for d in descriptions for w in {x.lower() for x in _WORD.findall(d)})
    common = max(2, len(descriptions) // 100)
    pairs = _pairs(index, texts)
    rng = random.Random(seed)
    rng.shuffle(pairs)
    out: list[Question] = []
    used: set[str] = set()
    for a, b, how in pairs:
        if b in used or len(out) >= 2 * limit:
            continue
        multi = MULTI[how].format(a=names[a])
        control = CONTROL[how].format(b=names[b])
        a_text = texts.get(a, "")
        if how == "link":
            gold = _fact(texts.get(b, ""), a_text + " " + names[a])
        elif unique[names[a].lower()] > 1 or unique[names[b].lower()] > 1:
            continue  # a name that several pages share: the question would not say which
        else:
            avoid = f"{a_text} {multi} {control}"
            gold = _keyword(description(texts.get(b, "")), avoid, df, common)
        if gold is None:
            continue
        used.add(b)
        n = len(out) // 2 + 1
        out.append(Question(f"m{n}", "multi", multi, gold, a, b, how))
        out.append(Question(f"c{n}", "control", control, gold, b, b, how))
    return out


def compare(
    index: Index,
    questions: list[Question],
    llm: LLM,
    steps: int = 4,
    k: int = 4,
    thresholds: Thresholds | None = None,
    timeout: float = 300.0,
    tick: Callable[[], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Answer every question with the agent and with ``ask``; per-kind figures and rows
    (``on_row`` sees each row as soon as it is done)."""
    agent = Agent(index, llm, max_steps=steps, k=k, thresholds=thresholds, timeout=timeout)
    rows = []
    try:
        for q in questions:
            t0 = time.perf_counter()
            run = agent.run(q.question)
            t1 = time.perf_counter()
            plain = ask(index, q.question, llm, k=k, thresholds=thresholds)
            t2 = time.perf_counter()
            calls = run.calls
            rows.append(
                {
                    **asdict(q),
                    "agent_answer": run.answer.text,
                    "agent_correct": contains(run.answer.text, q.gold),
                    "agent_seconds": t1 - t0,
                    "steps": len(calls),
                    "calls": [(s.tool, s.arguments, s.valid, s.repeated) for s in calls],
                    "valid": sum(s.valid for s in calls),
                    "repeated": sum(s.repeated for s in calls),
                    "stopped": run.stopped,
                    "read_answer_note": any(s.path == q.answer_note for s in run.answer.sources),
                    "ask_answer": plain.text,
                    "ask_correct": contains(plain.text, q.gold),
                    "ask_seconds": t2 - t1,
                    "run_id": run.run_id,
                }
            )
            if on_row:
                on_row(rows[-1])
            if tick:
                tick()
    finally:
        agent.caller.close()
    report: dict[str, Any] = {"llm": llm.id, "steps": steps, "k": k, "rows": rows}
    for kind in ("multi", "control"):
        mine = [r for r in rows if r["kind"] == kind]
        calls = sum(r["steps"] for r in mine)
        report[kind] = {
            "questions": len(mine),
            "agent_correct": _mean([r["agent_correct"] for r in mine]),
            "ask_correct": _mean([r["ask_correct"] for r in mine]),
            "agent_seconds": median([r["agent_seconds"] for r in mine]) if mine else 0.0,
            "ask_seconds": median([r["ask_seconds"] for r in mine]) if mine else 0.0,
            "steps": _mean([r["steps"] for r in mine]),
            "calls": calls,
            "valid_rate": sum(r["valid"] for r in mine) / calls if calls else 1.0,
            "repeat_rate": sum(r["repeated"] for r in mine) / calls if calls else 0.0,
            "read_answer_note": _mean([r["read_answer_note"] for r in mine]),
        }
    return report


def contains(answer: str, gold: str) -> bool:
    """Whether ``answer`` holds ``gold`` at the start of a word, case aside ("arch" is not
    in "search"; "compress" is in "compression"; "1.2" is in "v1.2", not in "11.2")."""
    before = r"(?<!\d)" if gold[:1].isdigit() else r"(?<![^\W\d_])"
    return re.search(before + re.escape(gold), answer, re.IGNORECASE) is not None


def _mean(values: list[Any]) -> float:
    return sum(float(v) for v in values) / len(values) if values else 0.0
