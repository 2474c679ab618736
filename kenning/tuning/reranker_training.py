"""The rerankers ``kenning tune`` trains, fitted on its training lists and judged on held-out ones.

Each backend re-orders the chosen setting's top candidates. A backend whose features need a
model of its own (``cross``) trains it on every training list and fits its weights on the
held-out lists, measured two-fold (``crossfit``); the others fit on a sample of the training
lists. Every depth in ``kenning.search.rerankers.DEPTHS`` is tried, and the best backend is
kept only if it beats not reranking on the held-out pairs by ``min_gain`` with
p < ``significance``, the rule ``tune`` applies to every setting.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kenning.errors import ConfigError
from kenning.eval.evaluate import paired_bootstrap
from kenning.index import Index
from kenning.search.rerankers import DEPTH as RERANK_DEPTH
from kenning.search.rerankers import DEPTHS as RERANK_DEPTHS
from kenning.search.rerankers import (
    CrossReranker,
    FeatureReranker,
    RerankCandidate,
    Reranker,
    get_reranker,
    remembered,
    rerankers,
)
from kenning.search.tuned import Tuning

from . import crossencoder
from .pairs import Candidate, Pairs

#: held-out lists a reranker's per-query latency is timed on
LATENCY_LISTS = 20


def train_rerankers(
    index: Index,
    pairs: Pairs,
    train: list[int],
    held: list[int],
    chosen: Candidate,
    stored: Tuning | None,
    backends: Sequence[str],
    seed: int,
    log: Callable[[str], None] | None,
    min_gain: float,
    significance: float,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Train each reranker in ``backends`` on the chosen setting's top candidates; returns
    the best one's held-out figures (every backend's under ``tried``) and the reranker to
    keep (None when none beats not reranking)."""
    rows: dict[int, Any] = {}
    deepest = max(RERANK_DEPTHS)

    def lists(which: list[int]) -> list[tuple[list[int], list[RerankCandidate]]]:
        fused = pairs.fused(which, pairs.dense(which, chosen.adapter, chosen.space), chosen.alpha)
        top = [f[:deepest] for f in fused]
        rows.update(index.store.chunks(sorted({c for t in top for c, _ in t} - rows.keys())))
        out = []
        for t in top:
            kept = [(c, s) for c, s in t if c in rows]
            out.append(
                (
                    [c for c, _ in kept],
                    [
                        RerankCandidate(rows[c].text, rows[c].title, rows[c].heading, s)
                        for c, s in kept
                    ],
                )
            )
        return out

    def cut(of: list[Any], depth: int) -> list[Any]:
        return [(ids[:depth], passages[:depth]) for ids, passages in of]

    train_lists, held_lists = lists(train), lists(held)
    held_features: dict[tuple[str, str, int], list[np.ndarray]] = {}

    def features(model: FeatureReranker, which: list[int], of: list[Any]) -> list[np.ndarray]:
        return [
            model.features(pairs.questions[i]["question"], p)
            for i, (_, p) in zip(which, of, strict=True)
        ]

    def held_x(reranker: FeatureReranker, depth: int) -> list[np.ndarray]:
        """Each model's held-out features at each depth, computed once."""
        model = {k: v for k, v in reranker.config().items() if k != "weights"}
        key = (reranker.id, json.dumps(model, sort_keys=True), depth)
        if key not in held_features:
            held_features[key] = features(reranker, held, cut(held_lists, depth))
        return held_features[key]

    def score(reranker: FeatureReranker, depth: int, part: Sequence[int] = ()) -> np.ndarray:
        """Held-out nDCG@10 per pair (of the positions ``part``; default all) with the top
        ``depth`` re-ordered."""
        xs = held_x(reranker, depth)
        at = list(part) or list(range(len(held)))
        rankings = []
        for j in at:
            ids, x = held_lists[j][0], xs[j]
            scores = x @ np.array(reranker.weights)
            order = sorted(range(len(x)), key=lambda o: -scores[o])
            rankings.append([ids[o] for o in order] + ids[len(x) :])
        return pairs.ndcg([held[j] for j in at], rankings)

    def crossfit(proto: FeatureReranker, depth: int) -> tuple[np.ndarray, FeatureReranker]:
        """Weights fitted on the held-out lists, measured two-fold (each half ranked by
        weights fitted on the other, so the figure is still held out); the weights kept are
        fitted on all of them."""
        xs = held_x(proto, depth)
        masks = [
            np.array([c in pairs.gold[i] for c in ids])
            for i, (ids, _) in zip(held, cut(held_lists, depth), strict=True)
        ]
        order = list(range(len(held)))
        random.Random(seed).shuffle(order)
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        out = np.zeros(len(held))
        for fit_half, score_half in (halves, halves[::-1]):
            if not score_half:
                continue
            half = proto.fit([xs[j] for j in fit_half], [masks[j] for j in fit_half])
            out[score_half] = score(half, depth, score_half)
        return out, proto.fit(xs, masks)

    def latency(model: FeatureReranker, depth: int) -> float:
        """Milliseconds a new query's features take at ``depth`` (outside ``remembered``)."""
        sample = cut(held_lists[:LATENCY_LISTS], depth)
        begin = time.perf_counter()
        features(model, held[: len(sample)], sample)
        return (time.perf_counter() - begin) * 1000 / max(1, len(sample))

    plain_scores = pairs.ndcg(held, [ids for ids, _ in held_lists])
    plain = float(plain_scores.mean())
    tried: dict[str, dict[str, Any]] = {}
    best: tuple[np.ndarray, FeatureReranker, int] | None = None
    # the packaged depth first, so that a tie keeps it
    depths = sorted(RERANK_DEPTHS, key=lambda d: d != RERANK_DEPTH)
    for name in backends:
        cls = rerankers.get(name)
        if not issubclass(cls, FeatureReranker):  # a plugin tune cannot fit
            raise ConfigError(
                f"reranker {name!r} cannot be trained by kenning tune, which fits the linear "
                "listwise rerankers ("
                + ", ".join(
                    n for n in rerankers.names() if issubclass(rerankers.get(n), FeatureReranker)
                )
                + ")"
            )
        # a backend with a model of its own trains it on every training list and fits its
        # weights on the held-out ones (``crossfit``); the slow backends (their features
        # embed passages) fit on a sample of the lists, drawn from all of them: generated
        # pairs and real questions in their proportions
        every = list(zip(train, train_lists, strict=True))
        fit_on = (
            [] if cls.OWN_MODEL else random.Random(seed).sample(every, cls.fit_lists(len(every)))
        )
        sampled = {i for i, _ in fit_on}
        started = time.perf_counter()
        prepare = crossencoder.prepare if issubclass(cls, CrossReranker) else cls.prepare
        proto = prepare(
            [
                (pairs.questions[i]["question"], *_with_gold(pairs, i, ids, passages, rows, index))
                for i, (ids, passages) in every
                if i not in sampled
            ],
            seed,
            log,
        )
        by_depth: dict[int, tuple[np.ndarray, FeatureReranker]] = {}
        with remembered():  # the deeper lists hold the shallower: their scores are reused
            for depth in depths:  # a model per depth: the features are listwise
                if cls.OWN_MODEL:
                    by_depth[depth] = crossfit(proto, depth)
                    continue
                lists_at = cut([t for _, t in fit_on], depth)
                xs = features(proto, [i for i, _ in fit_on], lists_at)
                golds = [
                    np.array([c in pairs.gold[i] for c in ids])
                    for (i, _), (ids, _) in zip(fit_on, lists_at, strict=True)
                ]
                model = proto.fit(xs, golds)
                by_depth[depth] = (score(model, depth), model)
        seconds = time.perf_counter() - started
        depth = max(depths, key=lambda d: by_depth[d][0].mean())  # the first best: a tie keeps 20
        new_scores, new = by_depth[depth]
        ms = latency(new, depth)
        tried[new.id] = {
            "reranked_ndcg@10": round(float(new_scores.mean()), 4),
            "depth": depth,
            "by_depth": {str(d): round(float(by_depth[d][0].mean()), 4) for d in sorted(by_depth)},
            "train_seconds": round(seconds, 3),
            "trained_on": len(held) if cls.OWN_MODEL else len(fit_on),
            "ms_per_query": round(ms, 3),
            "weights": dict(zip(new.FEATURES, (round(w, 4) for w in new.weights), strict=True)),
            "args": new.config(),
        }
        if best is None or new_scores.mean() > best[0].mean():
            best = (new_scores, new, depth)
    assert best is not None, "no reranker to train"
    new_scores, new, depth = best
    report: dict[str, Any] = {
        "backend": new.id,
        "ndcg@10": round(plain, 4),
        **tried[new.id],
        "tried": tried,
    }
    best_scores = new_scores
    kept_spec: dict[str, Any] = {"name": new.id, "args": new.config(), "depth": depth}
    if stored is not None and stored.reranker is not None:
        try:
            old: Reranker | None = get_reranker(
                stored.reranker["name"], **stored.reranker.get("args", {})
            )
        except ConfigError:  # e.g. its model's folder was deleted: nothing to keep
            old = None
        if isinstance(old, FeatureReranker):
            old_scores = score(old, stored.reranker.get("depth", RERANK_DEPTH))
            report["current_reranked_ndcg@10"] = round(float(old_scores.mean()), 4)
            if old_scores.mean() + min_gain >= new_scores.mean():  # stays unless beaten
                best_scores, kept_spec = old_scores, stored.reranker
    p_value = paired_bootstrap(plain_scores, best_scores)
    gain = float(best_scores.mean()) - plain
    kept = kept_spec if gain > min_gain and p_value < significance else None
    report["p_value"] = round(p_value, 4)
    report["kept"] = kept is not None
    return report, kept


def _with_gold(
    pairs: Pairs,
    i: int,
    ids: list[int],
    passages: list[RerankCandidate],
    rows: dict[int, Any],
    index: Index,
) -> tuple[list[RerankCandidate], np.ndarray]:
    """A training list as a reranker's own model learns from it: the candidates and which
    answer the question, with the question's positive passage added at the end when the
    first stage missed every gold one (the question still teaches what answers it; without
    it, the questions search already fails on would never be learnt from)."""
    gold = np.array([c in pairs.gold[i] for c in ids], dtype=bool)
    if gold.any() or pairs.positive[i] < 0:
        return passages, gold
    cid = int(pairs.ids[pairs.positive[i]])
    if cid not in rows:
        rows.update(index.store.chunks([cid]))
    if cid not in rows:
        return passages, gold
    r = rows[cid]
    added = RerankCandidate(
        r.text, r.title, r.heading, min((p.score for p in passages), default=0.0)
    )
    return [*passages, added], np.append(gold, True)
