"""Fitting the query-side adapter (``kenning.search.adapter.QueryAdapter``).

``U`` starts at zero, so an untrained adapter changes nothing, and documents are never
re-embedded: the adapter moves each query towards the stored vectors of the passages that
answer it. It is trained with a softmax over the corpus (in-batch, mined hard and sampled
negatives), in numpy on the CPU, in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from kenning.search.adapter import QueryAdapter

#: rank of the low-rank update, and the step size: both small, because a few hundred pairs
#: are memorised in fifty steps by a rank-16 map (training MRR 0.99, held-out falling)
RANK = 4
LEARNING_RATE = 5e-4
#: softmax temperature on cosine similarities
TEMPERATURE = 0.1
#: largest number of corpus vectors in one softmax; beyond it negatives are sampled
MAX_CANDIDATES = 8192


def fit_adapter(
    queries: np.ndarray,
    positives: np.ndarray,
    docs: np.ndarray,
    hard: np.ndarray,
    golds: list[set[int]],
    dev: tuple[np.ndarray, list[set[int]]] | None = None,
    rank: int = RANK,
    steps: int = 300,
    seed: int = 0,
) -> tuple[QueryAdapter, int]:
    """Fit an adapter that ranks each query's positive first among the corpus vectors.

    ``queries`` (n, dim) unit query vectors; ``positives`` (n,) the row of each query's
    passage in ``docs`` (N, dim); ``hard`` (n, h) rows of mined hard negatives (-1 pads);
    ``golds`` the rows that also answer each query (never used as its negatives). With
    ``dev`` (query vectors, gold rows), the step with the best dev MRR@10 is kept (early
    stopping); returns the adapter and that step.
    """
    with _one_blas_thread():
        return _fit(queries, positives, docs, hard, golds, dev, rank, steps, seed)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Small matrices train several times faster on one BLAS thread than on many."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up
        yield
        return
    with threadpool_limits(1, "blas"):
        yield


def _fit(
    queries: np.ndarray,
    positives: np.ndarray,
    docs: np.ndarray,
    hard: np.ndarray,
    golds: list[set[int]],
    dev: tuple[np.ndarray, list[set[int]]] | None,
    rank: int,
    steps: int,
    seed: int,
) -> tuple[QueryAdapter, int]:
    rng = np.random.default_rng(seed)
    n, dim = queries.shape
    rank = max(1, min(rank, dim // 2))
    if len(docs) <= MAX_CANDIDATES:
        cand = np.arange(len(docs))
    else:
        pool = np.setdiff1d(np.arange(len(docs)), np.concatenate([positives, hard.ravel()]))
        extra = rng.choice(pool, MAX_CANDIDATES - len(docs) + len(pool), replace=False)
        cand = np.unique(np.concatenate([positives, hard[hard >= 0], extra]))
    col = {int(c): j for j, c in enumerate(cand)}
    target = np.array([col[int(p)] for p in positives])
    mask = np.zeros((n, len(cand)), dtype=np.float32)
    for i, rows in enumerate(golds):
        for r in rows:
            if r in col and r != positives[i]:
                mask[i, col[r]] = -1e9
    q = queries.astype(np.float32)
    c = docs[cand].astype(np.float32)
    params: list[np.ndarray] = [
        np.zeros((dim, rank), np.float32),
        rng.normal(0, dim**-0.5, (dim, rank)).astype(np.float32),
    ]
    adam = _Adam(params)
    best = (_mrr(dev[0], docs, dev[1]) if dev else -1.0, 0)
    best_uv = (params[0].copy(), params[1].copy())
    for step in range(1, steps + 1):
        u, v = params
        qv = q @ v
        z = q + qv @ u.T
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        adapted = z / norm
        logits = adapted @ c.T / TEMPERATURE + mask
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n), target] -= 1.0  # d(mean cross-entropy)/d(logits), times n
        g = (p @ c) / (TEMPERATURE * n)
        dz = (g - adapted * np.sum(adapted * g, axis=1, keepdims=True)) / norm
        adam.step([dz.T @ qv, q.T @ (dz @ u)])
        if dev is not None and (step % 10 == 0 or step == steps):
            cur = QueryAdapter(params[0].copy(), params[1].copy())
            score = _mrr(cur.apply(dev[0]), docs, dev[1])
            if score > best[0] + 1e-9:
                best, best_uv = (score, step), (cur.u, cur.v)
    if dev is None:
        return QueryAdapter(params[0].copy(), params[1].copy()), steps
    return QueryAdapter(*best_uv), best[1]


class _Adam:
    """AdamW (decoupled weight decay) over a list of arrays, updated in place."""

    def __init__(
        self, params: list[np.ndarray], lr: float = LEARNING_RATE, decay: float = 0.01
    ) -> None:
        self.params, self.lr, self.decay, self.t = params, lr, decay, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            p *= 1 - self.lr * self.decay
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            mhat, vhat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
            p -= (self.lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(p.dtype)


def _mrr(queries: np.ndarray, docs: np.ndarray, golds: list[set[int]]) -> float:
    """Dense MRR@10 of ``queries`` against ``docs``: where each query's first gold row ranks."""
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1)[:, :10]
    total = 0.0
    for row, gold in zip(top, golds, strict=True):
        hit = next((i for i, r in enumerate(row) if int(r) in gold), None)
        total += 0.0 if hit is None else 1.0 / (hit + 1)
    return total / max(1, len(golds))
