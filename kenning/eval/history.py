"""Evaluation history: question sets and past runs, kept beside the index they measure.

These tables live in the index's SQLite file but belong to this class, not to the ``Store``
interface, so a store backend never has to know about evaluation. Opening the history never
loads an embedder, and reading it never creates a file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kenning.store.sqlite import own_tables

SCHEMA = """
CREATE TABLE IF NOT EXISTS question_sets (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    params TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_name TEXT NOT NULL REFERENCES question_sets(name) ON DELETE CASCADE,
    qid TEXT NOT NULL,
    question TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    dataset TEXT NOT NULL,
    config_name TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    queries INTEGER NOT NULL
);
"""
_QUESTION_KEYS = ("qid", "question", "kind", "path", "start", "end", "text")


class History:
    """Question sets and evaluation runs in the SQLite file at ``location``."""

    def __init__(self, location: str | Path, create: bool = False) -> None:
        self.db = own_tables(location, SCHEMA, "evaluation history", create)

    def save_questions(self, name: str, params: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Store (replacing) a named question set; rows carry qid, question, kind, gold span."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM questions WHERE set_name = ?", (name,))
            self.db.execute(
                "INSERT OR REPLACE INTO question_sets VALUES (?, ?, ?)",
                (name, time.time(), json.dumps(params)),
            )
            self.db.executemany(
                'INSERT INTO questions (set_name, qid, question, kind, path, start, "end", text) '
                "VALUES (?,?,?,?,?,?,?,?)",
                [(name, *(r[k] for k in _QUESTION_KEYS)) for r in rows],
            )

    def questions(self, name: str) -> list[dict[str, Any]]:
        cur = self.db.execute(
            'SELECT qid, question, kind, path, start, "end", text FROM questions '
            "WHERE set_name = ? ORDER BY id",
            (name,),
        )
        return [dict(zip(_QUESTION_KEYS, row, strict=True)) for row in cur]

    def add_run(
        self,
        dataset: str,
        name: str,
        config: dict[str, Any],
        metrics: dict[str, float],
        queries: int,
    ) -> None:
        self.db.execute(
            "INSERT INTO eval_runs (created_at, dataset, config_name, config, metrics, queries) "
            "VALUES (?,?,?,?,?,?)",
            (time.time(), dataset, name, json.dumps(config), json.dumps(metrics), queries),
        )

    def runs(self) -> list[dict[str, Any]]:
        """Every stored run, oldest first."""
        cur = self.db.execute(
            "SELECT created_at, dataset, config_name, config, metrics, queries FROM eval_runs "
            "ORDER BY id"
        )
        return [
            {
                "created_at": t,
                "dataset": d,
                "config_name": n,
                "config": json.loads(c),
                "metrics": json.loads(m),
                "queries": q,
            }
            for t, d, n, c, m, q in cur
        ]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
