"""Conversations: turns kept in the index file, and follow-ups made to stand alone.

A follow-up ("and what about its license?") cannot be searched as it is. With a generative
LLM it is rewritten by the model from the conversation; with the extractive answerer a
keyword carry-over rule adds the previous question's content words that the follow-up lacks,
when the follow-up leans on it (a pronoun, "and ...", "what about ...", or too few words of
its own). Conversations live in their own tables of the index's SQLite file, like the
evaluation history, so they survive restarts.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from kenning.store.sqlite import own_tables

from .llms import LLM, Message, Prompt
from .sentences import content_words

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    title TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    question TEXT NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
"""
_ANAPHORA = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|his|her|one|ones|same)\b",
    re.IGNORECASE,
)
_LEAD = re.compile(r"^\s*(and|also|but|so|what about|how about|and what about)\b", re.IGNORECASE)
#: question words and generic verbs: never the subject a follow-up leans on
_QUESTION_WORDS = {
    "what",
    "how",
    "why",
    "when",
    "where",
    "which",
    "who",
    "whose",
    "doe",
    "do",
    "use",
    "get",
    "make",
    "work",
    "need",
    "mean",
    "tell",
    "explain",
    "know",
    "show",
    "find",
}
REWRITE = (
    "Rewrite the user's last question as a standalone search query over their notes, using "
    "the conversation to resolve what it refers to. Reply with the query only, on one line."
)


class Conversations:
    """Conversations and their turns in the SQLite file at ``location``."""

    def __init__(self, location: str | Path) -> None:
        self.db = own_tables(location, SCHEMA, "conversations")

    def start(self, title: str) -> int:
        cur = self.db.execute(
            "INSERT INTO conversations (created_at, title) VALUES (?, ?)", (time.time(), title)
        )
        return int(cur.lastrowid or 0)

    def last(self) -> int | None:
        row = (
            self.db.execute("SELECT conversation_id FROM turns ORDER BY id DESC LIMIT 1").fetchone()
            or self.db.execute("SELECT max(id) FROM conversations").fetchone()
        )
        return int(row[0]) if row and row[0] is not None else None

    def add(self, conversation: int, question: str, query: str, answer: str, details: dict) -> None:
        self.db.execute(
            "INSERT INTO turns (conversation_id, created_at, question, query, answer, details) "
            "VALUES (?,?,?,?,?,?)",
            (conversation, time.time(), question, query, answer, json.dumps(details)),
        )

    def turns(self, conversation: int) -> list[dict[str, Any]]:
        """The conversation's turns, oldest first, each with the ``details`` stored with it."""
        cur = self.db.execute(
            "SELECT question, query, answer, created_at, details FROM turns "
            "WHERE conversation_id = ? ORDER BY id",
            (conversation,),
        )
        keys = ("question", "query", "answer", "created_at")
        return [{**dict(zip(keys, r[:4], strict=True)), "details": json.loads(r[4])} for r in cur]

    def list(self) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT c.id, c.created_at, c.title, count(t.id) FROM conversations c "
            "LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id ORDER BY c.id"
        )
        keys = ("id", "created_at", "title", "turns")
        return [dict(zip(keys, r, strict=True)) for r in cur]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Conversations:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def history_messages(turns: list[dict[str, Any]], last: int = 3) -> list[Message]:
    """The last few turns as chat messages, for the model's context."""
    out: list[Message] = []
    for t in turns[-last:]:
        out += [Message("user", t["question"]), Message("assistant", t["answer"])]
    return out


def leans_on_context(question: str) -> bool:
    own = content_words(question) - _QUESTION_WORDS
    return bool(_ANAPHORA.search(question) or _LEAD.match(question) or len(own) < 2)


def standalone_query(question: str, turns: list[dict[str, Any]], llm: LLM | None = None) -> str:
    """The follow-up as a query that stands alone (the question itself when it already does)."""
    if not turns or not leans_on_context(question):
        return question
    if llm is not None and llm.generative:
        convo = "\n".join(f"User: {t['question']}\nAssistant: {t['answer']}" for t in turns[-3:])
        prompt = Prompt(
            question,
            [],
            [
                Message("system", REWRITE),
                Message("user", f"{convo}\n\nLast question: {question}"),
            ],
        )
        rewritten = llm.complete(prompt).strip().splitlines()
        line = rewritten[0].strip().strip("\"'") if rewritten else ""
        if line:
            return line
    previous = turns[-1]["query"]
    mine = content_words(question)
    carried = [
        w
        for w in re.findall(r"[^\W_]+", previous)
        if w.lower() not in _QUESTION_WORDS and content_words(w) and not content_words(w) <= mine
    ]
    carried = list(dict.fromkeys(carried))
    return f"{question} {' '.join(carried)}".strip() if carried else question
