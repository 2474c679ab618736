"""Ranking metrics with trec_eval semantics, so figures match pytrec_eval / ir-measures.

A run is ``{query_id: {doc_id: score}}`` and qrels are ``{query_id: {doc_id: relevance}}``.
As in trec_eval, documents are ranked by score (descending) with ties broken by doc id
(descending), only relevance > 0 counts as relevant, nDCG uses linear gain, and queries
without any relevant document are not scored. A query with an empty run scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

METRICS = ("ndcg", "recall", "mrr", "map", "precision")


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Doc ids best first, ties broken like trec_eval (doc id descending)."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def to_run(ranking: Iterable[str]) -> dict[str, float]:
    """A best-first list of ids (duplicates dropped, first kept) as a strictly ordered run."""
    seen: dict[str, float] = {}
    for doc in ranking:
        if doc not in seen:
            seen[doc] = float(-len(seen))
    return seen


def query_metrics(ranking: list[str], rels: Mapping[str, int], k: int) -> dict[str, float]:
    """All metrics at cutoff ``k`` for one query."""
    relevant = {d: r for d, r in rels.items() if r > 0}
    top = ranking[:k]
    found = [i for i, d in enumerate(top) if d in relevant]
    dcg = sum(relevant[top[i]] / math.log2(i + 2) for i in found)
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    n_rel = len(relevant)
    return {
        f"ndcg@{k}": dcg / idcg if idcg > 0 else 0.0,
        f"recall@{k}": len(found) / n_rel if n_rel else 0.0,
        f"mrr@{k}": 1.0 / (found[0] + 1) if found else 0.0,
        f"map@{k}": sum((j + 1) / (i + 1) for j, i in enumerate(found)) / n_rel if n_rel else 0.0,
        f"precision@{k}": len(found) / k,
    }


def evaluate(
    run: Run, qrels: Qrels, ks: Iterable[int] = (10, 100)
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean metrics over judged queries, and the per-query figures."""
    per_query: dict[str, dict[str, float]] = {}
    for qid, rels in qrels.items():
        if not any(r > 0 for r in rels.values()):
            continue
        ranking = ranked(run.get(qid, {}))
        scores: dict[str, float] = {}
        for k in ks:
            scores.update(query_metrics(ranking, rels, k))
        per_query[qid] = scores
    if not per_query:
        return {}, {}
    names = next(iter(per_query.values())).keys()
    mean = {m: sum(q[m] for q in per_query.values()) / len(per_query) for m in names}
    return mean, per_query
