"""Question sets generated from the user's own indexed notes, and how they are scored.

Without a language model, questions come from the notes' structure: a heading or title
becomes "What do my notes say about <heading>?", and a key sentence becomes a keyword query
of its most distinctive words. Each question remembers the source span it came from (its
gold passage); a retrieved chunk counts as a hit when it overlaps that span, so a set stays
valid when the index is re-chunked with other settings. LLM-written questions come with the
LLM backends (a later issue).
"""

from __future__ import annotations

import random
import re
from typing import Any

from kenning.index import Index
from kenning.search import STOPWORDS, Hit

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


def generate(index: Index, n: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``n`` questions from a seeded sample of chunks, alternating the two kinds."""
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
                    break
            if len(questions) >= n:
                return questions
    return questions


def gold_doc(question: dict[str, Any], hit: Hit) -> str:
    """'gold' for a hit overlapping the question's source span, else an id of the hit."""
    if hit.path == question["path"] and hit.start < question["end"] and question["start"] < hit.end:
        return "gold"
    return f"{hit.path}#{hit.start}"
