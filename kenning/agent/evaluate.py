"""`kenning eval agent`: questions that take a link to answer, and controls, agent against `ask`.

A *multi-step* question names a note A and asks about the note A links to, B: "Which note does
"A" link to, and what does it say?". Its gold answer is a fact of B (a number, a version, a
name: ``kenning.answer.sentences.facts``) that A's own text does not hold, so reading A is not
enough: the answer sits behind the link. A *one-step control* names B itself ("What does the
note "B" say?") with the same gold fact. Both are answered by the agent and by plain ``ask``
with the same LLM; an answer is correct when it contains the gold fact (case-insensitive).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from statistics import median
from typing import Any

from kenning.answer import Thresholds, ask
from kenning.answer.llms import LLM
from kenning.answer.sentences import facts, split
from kenning.filters import Filters
from kenning.index import Index
from kenning.index.links import Resolver

from .loop import Agent

#: notes that link to everything (a table of contents) make no question
SKIPPED = {"readme", "index", "contents", "toc", "changelog", "contributing"}


@dataclass
class Question:
    qid: str
    kind: str  # "multi" or "control"
    question: str
    gold: str
    named: str  # the note the question names
    answer_note: str  # the note that holds the gold fact


def _text(index: Index, path: str) -> str:
    store = index.store
    ids = [int(i) for i in store.chunk_ids(Filters(paths=[path]))]
    rows = sorted((r for r in store.chunks(ids).values() if r.path == path), key=lambda r: r.start)
    return "\n".join(r.text for r in rows)


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


def build_questions(index: Index, limit: int, seed: int = 0) -> list[Question]:
    """Up to ``limit`` multi-step questions and as many one-step controls, from links."""
    sources = index.store.sources()
    names = {p: r.title or PurePosixPath(p).stem for p, r in sources.items()}
    pairs: list[tuple[str, str]] = []
    resolver = Resolver(sources)  # once: Index.links would read every source per note
    for path, row in sorted(sources.items()):
        if row.type != "markdown" or PurePosixPath(path).stem.lower() in SKIPPED:
            continue
        for link in index.store.links_from(path):
            target = resolver.resolve(path, link)
            if target and target != path and (path, target) not in pairs:
                pairs.append((path, target))
    rng = random.Random(seed)
    rng.shuffle(pairs)
    out: list[Question] = []
    used: set[str] = set()
    for a, b in pairs:
        if b in used or len(out) >= 2 * limit:
            continue
        a_text = _text(index, a)
        gold = _fact(_text(index, b), a_text + " " + names[a])
        if gold is None:
            continue
        used.add(b)
        n = len(out) // 2 + 1
        multi = f'Which note does "{names[a]}" link to, and what does it say?'
        control = f'What does the note "{names[b]}" say?'
        out.append(Question(f"m{n}", "multi", multi, gold, a, b))
        out.append(Question(f"c{n}", "control", control, gold, b, b))
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
                    "agent_correct": q.gold.lower() in run.answer.text.lower(),
                    "agent_seconds": t1 - t0,
                    "steps": len(calls),
                    "calls": [(s.tool, s.arguments, s.valid, s.repeated) for s in calls],
                    "valid": sum(s.valid for s in calls),
                    "repeated": sum(s.repeated for s in calls),
                    "stopped": run.stopped,
                    "read_answer_note": any(s.path == q.answer_note for s in run.answer.sources),
                    "ask_answer": plain.text,
                    "ask_correct": q.gold.lower() in plain.text.lower(),
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


def _mean(values: list[Any]) -> float:
    return sum(float(v) for v in values) / len(values) if values else 0.0
