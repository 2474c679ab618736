"""BM25 in SQL for the PostgreSQL store: the same ranking as the SQLite default, not
PostgreSQL's ``ts_rank``.

Chunks are tokenised in Python by ``kenning.tokens``, as the in-memory BM25 does (letters and
digits, lower-cased, accents folded, Porter stems); their postings go into ``postings`` and
the term statistics are kept in the same transaction as the chunks (``terms`` with document
frequencies, ``totals`` with chunk and token counts), so a query scores with FTS5's formula
(k1 1.2, b 0.75, IDF clamped at 1e-6) from three small reads. Writers change term counts in
sorted order, so two of them queue on the same rows instead of deadlocking.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

# BM25 as FTS5's bm25() and BM25Index compute it, given each query term's IDF weight. The
# ``= ANY`` condition lets PostgreSQL read only the query terms' postings through the primary
# key, whatever its statistics say about the tables.
_BM25 = """
SELECT p.chunk_id,
       sum((%(idf)s::float8[])[array_position(%(terms)s::text[], p.term)] * p.tf * 2.2
           / (p.tf + 0.3 + %(b)s::float8 * p.length)) AS score
FROM postings p
WHERE p.term = ANY(%(terms)s) {filter}
GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(k)s
"""


def drop_chunks(db: Any, where: str, args: Sequence[Any]) -> tuple[Counter[str], int, int]:
    """Delete chunks (and their postings); returns the changes to the term counts and
    totals, for the caller to apply once (``count``) with its own."""
    ids = [r[0] for r in db.execute(f"SELECT id FROM chunks WHERE {where}", args)]
    delta: Counter[str] = Counter()
    if not ids:
        return delta, 0, 0
    for term, n in db.execute(
        "SELECT term, count(*) FROM postings WHERE chunk_id = ANY(%s) GROUP BY term", (ids,)
    ):
        delta[term] -= n
    tokens = db.execute(
        "SELECT coalesce(sum(length), 0) FROM chunks WHERE id = ANY(%s)", (ids,)
    ).fetchone()[0]
    db.execute("DELETE FROM chunks WHERE id = ANY(%s)", (ids,))
    return delta, -len(ids), -int(tokens)


def count(db: Any, delta: Counter[str], chunks: int, tokens: int) -> None:
    """Apply document-frequency and total changes, terms in sorted order (lock order)."""
    changed = sorted((t, n) for t, n in delta.items() if n)
    if changed:
        db.execute(
            "INSERT INTO terms SELECT * FROM unnest(%s::text[], %s::bigint[]) ORDER BY 1 "
            "ON CONFLICT (term) DO UPDATE SET df = terms.df + excluded.df",
            ([t for t, _ in changed], [n for _, n in changed]),
        )
        db.execute(
            "DELETE FROM terms WHERE term = ANY(%s) AND df <= 0",
            ([t for t, n in changed if n < 0],),
        )
    if chunks or tokens:
        db.execute("UPDATE totals SET chunks = chunks + %s, tokens = tokens + %s", (chunks, tokens))


def search(
    db: Any, tokens: Counter[str], k: int, allowed: list[int] | None = None
) -> list[tuple[int, float]]:
    """The ``k`` best chunks for the query's ``tokens`` (each counted as often as the query
    repeats it), best first, among the ``allowed`` chunk ids when given (a filter's,
    worked out once per search: ``Scope``)."""
    if not tokens or k <= 0 or allowed == []:
        return []
    n, total = db.execute("SELECT chunks, tokens FROM totals").fetchone()
    found = dict(db.execute("SELECT term, df FROM terms WHERE term = ANY(%s)", (list(tokens),)))
    if not found:
        return []
    # A word repeated in the query counts once per repeat, as in FTS5's OR query.
    idf = {
        t: tokens[t] * max(math.log((n - df + 0.5) / (df + 0.5)), 1e-6) for t, df in found.items()
    }
    args: dict[str, Any] = {
        "terms": list(idf),
        "idf": list(idf.values()),
        # k1 (b + (1 - b) dl / avgdl) with k1 1.2, b 0.75 is 0.3 + (0.9 / avgdl) dl
        "b": 0.9 / (total / n if n and total else 1.0),
        "k": k,
    }
    clause = ""
    if allowed is not None:
        # never prepared: the ids reach the planner as a constant that it hashes once
        clause, args["allowed"] = "AND p.chunk_id = ANY(%(allowed)s::bigint[])", allowed
    rows = db.execute(_BM25.format(filter=clause), args, prepare=None if allowed is None else False)
    return [(int(i), float(s)) for i, s in rows]
