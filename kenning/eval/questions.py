"""Question sets generated from the user's own indexed notes, and how they are scored.

Without a language model, questions come from the notes' structure: a heading or title
becomes "What do my notes say about <heading>?", and a key sentence becomes a keyword query
of its most distinctive words. Both copy their passage's words, so keyword search finds them
more easily than a person's questions. Given an LLM backend (``writer``), the model reads
each sampled passage and writes the question instead, told not to copy its phrases; a reply
that is not one usable question (empty, a fragment, "what does the passage say...") falls
back to the structural kinds for that passage, so a set keeps its size.

Each question remembers the source span it came from (its gold passage); a retrieved chunk
counts as a hit when it overlaps that span, so a set stays valid when the index is re-chunked
with other settings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from kenning.answer.llms import LLM, Message, Prompt
from kenning.errors import ConfigError
from kenning.index import Index
from kenning.search import Hit
from kenning.store.base import ChunkRow
from kenning.text.tokens import STOPWORDS

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")


def _heading_question(heading: str) -> str | None:
    leaf = heading.rsplit(" > ", 1)[-1].strip(" #*`")
    words = leaf.split()
    if len(words) < 2:
        return None
    # "Disable Interpolation For A Heredoc" reads as a phrase once title case is undone;
    # acronyms (SQL, API) keep their capitals.
    words = [w if w.isupper() and len(w) > 1 else w[0].lower() + w[1:] for w in words]
    return f"What do my notes say about {' '.join(words)}?"


def _sentence_question(text: str) -> str | None:
    prose = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    sentences = [s.strip() for s in _SENTENCE.findall(prose) if 6 <= len(s.split()) <= 50]
    if not sentences:
        return None
    best = max(sentences, key=lambda s: len({w.lower() for w in _WORD.findall(s)} - STOPWORDS))
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(best)))
    keys = sorted((w for w in words if w not in STOPWORDS), key=len, reverse=True)[:5]
    if len(keys) < 3:
        return None
    keys.sort(key=words.index)  # back in sentence order, so it reads like a query
    return " ".join(keys)


#: what the writing model is told; the question must read as typed before reading the note
WRITER_PROMPT = (
    "You write search questions. Given a passage from someone's notes, write one question "
    "that the passage answers, in the words a person would type before they had read it. "
    "Do not copy a phrase from the passage and do not mention 'the passage', 'the text' or "
    "'this study'. Reply with the question alone, on one line."
)
#: the passage is cut to this many words: enough for its gist, and a short prompt is fast
WRITER_WORDS = 180
#: replies that point at the passage instead of asking about its subject
_DEICTIC = re.compile(
    r"\b(the|this) (passage|text|excerpt|paragraph|note|article|paper|document)\b|"
    r"\bthis (study|section)\b|\bthe authors?\b",
    re.IGNORECASE,
)


def clean_question(reply: str) -> str | None:
    """The question in a model's reply, or None when the reply is not one usable question."""
    lines = [ln.strip() for ln in reply.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    line = re.sub(r"^(\*\*)?(question|q)\s*\d*\s*[:.)-]\s*(\*\*)?\s*", "", lines[0], flags=re.I)
    line = re.sub(r"^\d+[.)]\s*", "", line).strip(" \"'`*")
    if "?" in line:
        line = line[: line.index("?") + 1]
    words = line.split()
    if not 3 <= len(words) <= 40 or _DEICTIC.search(line) or not _WORD.search(line):
        return None
    return line


def write_question(llm: LLM, row: ChunkRow) -> str | None:
    """One question the model writes about ``row``, or None when its reply is unusable.

    Generation stops at the first question mark or line break: the question is all that is
    kept, and on a small local model each token saved is a few tens of milliseconds."""
    text = " ".join(row.text.split()[:WRITER_WORDS])
    title = f"Title: {row.title}\n\n" if row.title else ""
    user = f"{title}Passage:\n{text}\n\nQuestion:"
    prompt = Prompt("", [], [Message("system", WRITER_PROMPT), Message("user", user)])
    reply = ""
    stream = llm.stream(prompt)
    try:
        for piece in stream:
            reply += piece
            if "?" in reply or "\n" in reply.strip():
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a generator left open would hold a local model's lock
    return clean_question(reply)


def generate(
    index: Index,
    n: int = 100,
    seed: int = 0,
    writer: LLM | None = None,
    tick: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Up to ``n`` questions from a seeded sample of chunks, alternating the two structural
    kinds, or written by ``writer`` (kind ``llm``) where its reply is usable.

    ``tick`` is called once per question kept: with a writer, each takes seconds."""
    if writer is not None and not writer.generative:
        raise ConfigError(
            f"the {writer.id!r} backend does not write text, so it cannot write questions; "
            "use local, openai or anthropic (or no LLM, for structural questions)"
        )
    rng = random.Random(seed)
    ids = index.store.chunk_ids().tolist()
    rng.shuffle(ids)
    questions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for start in range(0, len(ids), 200):
        rows = index.store.chunks(ids[start : start + 200])
        for cid in ids[start : start + 200]:
            row = rows[cid]
            if len(row.text.split()) < 12:
                continue
            makers = [
                ("heading", lambda r=row: _heading_question(r.heading or r.title)),
                ("sentence", lambda r=row: _sentence_question(r.text)),
            ]
            if len(questions) % 2:
                makers.reverse()
            if writer is not None:
                makers.insert(0, ("llm", lambda r=row: write_question(writer, r)))
            for kind, make in makers:
                q = make()
                if q and q not in seen:
                    seen.add(q)
                    questions.append(
                        {
                            "qid": f"g{len(questions) + 1}",
                            "question": q,
                            "kind": kind,
                            "path": row.path,
                            "start": row.start,
                            "end": row.end,
                            "text": row.text,
                        }
                    )
                    if tick is not None:
                        tick()
                    break
            if len(questions) >= n:
                return questions
    return questions


def gold_doc(question: dict[str, Any], hit: Hit) -> str:
    """'gold' for a hit overlapping the question's source span, else an id of the hit."""
    if hit.path == question["path"] and hit.start < question["end"] and question["start"] < hit.end:
        return "gold"
    return f"{hit.path}#{hit.start}"
