"""The pairs ``kenning tune`` learns from and measures on, and the search settings it compares.

Every candidate setting is ranked over the same questions: each question's vector, its
BM25 candidates and its gold chunks are computed once here (``Pairs``), so trying twenty
fusion weights or an adapter costs a matrix product, not a search. Pairs are split by note
(``split``), so no held-out question comes from a note trained on: questions about one note
share its words, and a split by question would let the training half teach the held-out
half's answers.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kenning.embedders import Embedder
from kenning.index import Index
from kenning.search import DEPTH, fuse
from kenning.search.adapter import QueryAdapter
from kenning.text.tokens import query_terms

#: a ranking space: question vectors and the vectors of ``Pairs.ids`` (None: the index's own)
Space = tuple[np.ndarray, np.ndarray]


@dataclass
class Candidate:
    """One search setting, measured on the training and the held-out pairs."""

    name: str
    alpha: float
    adapter: QueryAdapter | None = None
    rerank: str | None = None  # "current" or "new" when a reranker re-orders the top
    #: a fine-tuned model's space and its vectors by chunk hash (None: the index's model)
    space: Space | None = None
    embedder: Embedder | None = None
    vectors: dict[str, np.ndarray] | None = field(default=None, repr=False)
    train_ndcg: float = 0.0
    ndcg: float = 0.0
    recall: float = 0.0
    p_value: float | None = None
    per_query: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def row(self) -> dict[str, Any]:
        return {
            "setting": self.name,
            "alpha": self.alpha,
            "adapter": self.adapter is not None,
            "rerank": self.rerank is not None,
            "train_ndcg@10": round(self.train_ndcg, 4),
            "ndcg@10": round(self.ndcg, 4),
            "recall@10": round(self.recall, 4),
            "p_value": self.p_value,
        }


class Pairs:
    """The generated pairs with everything ranking them needs, computed once."""

    def __init__(self, index: Index, questions: list[dict[str, Any]]) -> None:
        store = index.store
        self.ids, self.docs = store.vectors()
        self.row_of = {int(c): r for r, c in enumerate(self.ids.tolist())}
        spans: dict[str, list[tuple[int, int, int]]] = {}
        all_ids = store.chunk_ids().tolist()
        for start in range(0, len(all_ids), 500):
            for cid, row in store.chunks(all_ids[start : start + 500]).items():
                spans.setdefault(row.path, []).append((row.start, row.end, cid))
        self.questions = questions
        self.qvecs = np.stack([index.embedder.embed_query(q["question"]) for q in questions])
        self.gold: list[set[int]] = []
        self.positive: list[int] = []  # row of each question's own chunk in docs (-1: none)
        for i, q in enumerate(questions):
            if "paths" in q:  # a whole-document pair: every chunk of those notes answers it
                gold = {c for p in q["paths"] for _, _, c in spans.get(p, [])}
                own = []
            else:
                same = spans.get(q["path"], [])
                gold = {c for s, e, c in same if s < q["end"] and q["start"] < e}
                own = [c for s, e, c in same if (s, e) == (q["start"], q["end"])]
            self.gold.append(gold)
            rows = [self.row_of[c] for c in (own or sorted(gold)) if c in self.row_of]
            # no chunk of its own: the gold chunk nearest the question is its positive
            best = max(rows, key=lambda r: float(self.docs[r] @ self.qvecs[i]), default=-1)
            self.positive.append(rows[0] if own and rows else best)
        keywords = index.searcher.keywords()
        self.bm25 = [keywords.search(query_terms(q["question"]), DEPTH, None) for q in questions]

    def dense(
        self, which: list[int], adapter: QueryAdapter | None, space: Space | None = None
    ) -> list[list[tuple[int, float]]]:
        """Exact dense top-``DEPTH`` of the questions ``which``, through ``adapter``, in
        the index's vectors or another model's ``space``."""
        qvecs, docs = space or (self.qvecs, self.docs)
        q = qvecs[which]
        if adapter is not None:
            q = adapter.apply(q)
        scores = q @ docs.T
        depth = min(DEPTH, scores.shape[1])
        out = []
        for row in scores:
            top = np.argpartition(-row, depth - 1)[:depth] if depth else np.zeros(0, int)
            top = top[np.argsort(-row[top], kind="stable")]
            out.append([(int(self.ids[t]), float(row[t])) for t in top])
        return out

    def fused(
        self, which: list[int], dense: list[list[tuple[int, float]]], alpha: float
    ) -> list[list[tuple[int, float]]]:
        return [fuse(self.bm25[i], d, "weighted", alpha) for i, d in zip(which, dense, strict=True)]

    def ndcg(self, which: list[int], rankings: list[list[int]]) -> np.ndarray:
        """nDCG@10 per question: one gold document, found where its first chunk ranks."""
        out = np.zeros(len(which))
        for j, (i, ranking) in enumerate(zip(which, rankings, strict=True)):
            rank = next((r for r, cid in enumerate(ranking[:10]) if cid in self.gold[i]), None)
            out[j] = 0.0 if rank is None else 1.0 / math.log2(rank + 2)
        return out


def split(questions: list[dict[str, Any]], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Question indexes split by note: (first part, last ``share`` of the notes)."""
    paths = sorted({q["path"] for q in questions})
    random.Random(seed).shuffle(paths)
    held: set[str] = set()
    count = 0
    for p in paths:
        if count >= share * len(questions):
            break
        held.add(p)
        count += sum(q["path"] == p for q in questions)
    first = [i for i, q in enumerate(questions) if q["path"] not in held]
    return first, [i for i, q in enumerate(questions) if q["path"] in held]
