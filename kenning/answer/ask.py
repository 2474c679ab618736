"""``ask``: a question in, an answer out, with its sources and every citation checked.

    >>> from kenning import Index
    >>> from kenning.answer import ask
    >>> with Index.open() as index:
    ...     answer = ask(index, "how do I undo the last commit?")

Retrieval first; when no passage is close enough to the question (``Thresholds.refuse``) the
answer is a refusal with the nearest passages, and no model is called. Otherwise the prompt
is built and fitted to the model, the answer streams (``on_text`` sees each piece), and each
sentence is checked against the passages it cites.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kenning.filters import Filters
from kenning.index import Index

from .citations import CONTRADICTED, SUPPORTED, Sentence, Thresholds, check
from .conflicts import Conflict, date_sides, describe, explained, find_conflicts, version
from .extractive import ExtractiveLLM
from .llms import LLM, Message, Passage, Prompt, Usage
from .prompt import REFUSAL, build_prompt, declined, split_reasoning
from .sentences import SentenceVectors


@dataclass
class Source(Passage):
    """A passage the answer could cite, with where it sits in its file."""

    lines: tuple[int, int] | None = None
    support: float = 0.0  # cosine of the passage with the question
    open_url: str = ""  # opens the passage in its app (``Hit.open_url``)


@dataclass
class Answer:
    question: str
    text: str
    sentences: list[Sentence]
    sources: list[Source]
    refused: bool = False
    reasoning: str | None = None
    notes: list[str] = field(default_factory=list)
    llm: str = ""
    query: str = ""  # what was searched (a follow-up rewritten to stand alone)
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    #: claims of the passages that disagree with what the answer says (``conflicts.py``)
    conflicts: list[Conflict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ask(
    index: Index,
    question: str,
    llm: LLM | None = None,
    k: int = 5,
    filters: Filters | None = None,
    strategy: str = "zero-shot",
    thresholds: Thresholds | None = None,
    on_text: Callable[[str], None] | None = None,
    history: list[Message] | None = None,
    query: str | None = None,
    conflicts: bool = True,
) -> Answer:
    """Answer ``question`` from the index. ``query`` (default: the question) is what is
    searched; ``history`` holds earlier turns of a conversation for the model.

    With ``conflicts`` (the default), the passages are searched for claims that disagree
    with what the answer rests on; each found is added to the answer (the two versions,
    each cited and checked, and which is more recent) and to ``Answer.conflicts``."""
    llm = llm or ExtractiveLLM()
    t = thresholds or Thresholds()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    query = query or question
    hits = index.search(query, k=k, filters=filters)
    times["search"] = time.perf_counter() - t0
    vectors = SentenceVectors(index.embedder)
    support = _support(index, vectors.query(query), [h.chunk_id for h in hits])
    passages = [
        Passage(n, h.chunk_id, h.path, h.title, h.heading, h.page, h.start, h.end, h.text, h.score)
        for n, h in enumerate(hits, 1)
    ]
    sources = [_source(p, support.get(p.chunk_id, 0.0), hits[p.n - 1].open_url) for p in passages]
    answer = Answer(question, "", [], sources, llm=llm.id, query=query)
    if not passages or max(s.support for s in sources) < t.refuse:
        answer.refused, answer.text = True, REFUSAL
        if on_text:
            on_text(REFUSAL)
        answer.timings = {**times, "total": time.perf_counter() - t0}
        return answer
    llm.bind(vectors)
    prompt = build_prompt(question, passages, llm, strategy, history)
    t1 = time.perf_counter()
    text = _generate(llm, prompt, on_text, times, t1, hold=prompt.excerpted)
    excerpts_declined = prompt.excerpted and declined(text)
    if excerpts_declined:
        # the excerpts may have left out what answers it: the model reads the passages
        # whole before the answer declines (a refusal costs a second read, an answer not)
        prompt = build_prompt(question, passages, llm, strategy, history, whole=True)
        text = _generate(llm, prompt, on_text, times, t1)
    times["generate"] = time.perf_counter() - t1
    answer.notes = prompt.notes + ([REREAD] if excerpts_declined else [])
    answer.reasoning, answer.text = split_reasoning(text)
    answer.usage = llm.usage
    # nothing quotable, or the model declined (and maybe said what the notes do cover)
    if not answer.text.strip() or declined(answer.text):
        answer.refused, answer.text = True, answer.text.strip() or REFUSAL
    else:
        t2 = time.perf_counter()
        answer.sentences = check(answer.text, prompt.passages, vectors, t)
        times["check"] = time.perf_counter() - t2
        if conflicts:
            t3 = time.perf_counter()
            _add_conflicts(index, answer, passages, vectors, t, on_text)
            times["conflicts"] = time.perf_counter() - t3
    answer.timings = {**times, "total": time.perf_counter() - t0}
    return answer


#: said when the model declined over excerpts and was shown the passages whole
REREAD = "the model declined over excerpts of the passages, so it read them whole"


def _generate(
    llm: LLM,
    prompt: Prompt,
    on_text: Callable[[str], None] | None,
    times: dict[str, float],
    t0: float,
    hold: bool = False,
) -> str:
    """The model's answer to ``prompt``, streamed to ``on_text``; ``times["first_token"]``
    is when its first words were shown. With ``hold``, words that may yet be the refusal are
    held back, and a refusal is not shown at all (the caller tries the whole passages)."""
    refusal = REFUSAL.rstrip(".").lower()
    pieces: list[str] = []
    shown = 0

    def show(text: str) -> None:
        times.setdefault("first_token", time.perf_counter() - t0)
        if on_text:
            on_text(text[shown:])

    for piece in llm.stream(prompt):
        pieces.append(piece)
        text = "".join(pieces)
        head = text.lstrip().lower()
        if hold and not shown and (refusal.startswith(head) or head.startswith(refusal)):
            continue
        show(text)
        shown = len(text)
    text = "".join(pieces)
    if len(text) > shown and not (hold and declined(text)):
        show(text)
    return text


def _add_conflicts(
    index: Index,
    answer: Answer,
    passages: list[Passage],
    vectors: SentenceVectors,
    t: Thresholds,
    on_text: Callable[[str], None] | None,
) -> None:
    """Look for claims that disagree with the passage sentences the answer rests on; say
    each one found whose two versions both pass the citation check, in the answer's text."""
    anchors = {
        (c.n, c.best_sentence[0])
        for s in answer.sentences
        if s.status in (SUPPORTED, CONTRADICTED)
        for c in s.checks
    }
    found = [c for c in find_conflicts(passages, anchors, answer.question) if not explained(c)]
    if not found:
        return
    notes = {
        src.path: {"metadata": src.metadata, "mtime_ns": src.mtime_ns}
        for src, _ in index.store.dump(sorted({s.path for c in found for s in c.sides}))
    }
    added: list[str] = []
    for conflict in found:
        checked = check("\n\n".join(version(s) for s in conflict.sides), passages, vectors, t)
        conflict.verified = [s.status == SUPPORTED for s in checked]
        if len(checked) != 2 or not all(conflict.verified):
            continue  # both versions quoted and verified, or nothing
        date_sides(conflict, notes)
        for side in conflict.sides:
            side.lines = _side_lines(answer.sources[side.n - 1], side.start)
        answer.conflicts.append(conflict)
        answer.sentences.extend(checked)
        added.append(describe(conflict))
    if added:
        text = "\n\n" + "\n\n".join(added)
        answer.text += text
        if on_text:
            on_text(text)


def _side_lines(src: Source, start: int) -> tuple[int, int] | None:
    if src.lines is None:
        return None
    first = src.lines[0] + src.text.count("\n", 0, max(0, start - src.start))
    return first, first


def _support(index: Index, qvec: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
    """Cosine of each retrieved chunk with the question, from the index's own vectors."""
    if not chunk_ids:
        return {}
    ranked = index.searcher.vectors().search(qvec, len(chunk_ids), np.asarray(chunk_ids))
    return dict(ranked)


def _source(p: Passage, support: float, open_url: str) -> Source:
    return Source(**vars(p), lines=_lines(p), support=support, open_url=open_url)


def _lines(p: Passage) -> tuple[int, int] | None:
    """Line range of a passage in a text file (Markdown, text); None for PDF and HTML."""
    if p.page is not None or not p.path.endswith((".md", ".markdown", ".mdx", ".txt", ".text")):
        return None
    try:
        text = Path(p.path).read_text(encoding="utf-8").removeprefix("\ufeff")
    except (OSError, UnicodeDecodeError):
        return None
    if text[p.start : p.end] != p.text:
        return None  # the file changed since it was indexed
    first = text.count("\n", 0, p.start) + 1
    return first, first + p.text.count("\n")
