"""Rerankers re-order the top passages of a search. A backend implements one method, ``score``.

``Reranker.score(query, passages)`` returns one score per passage, higher is better. The
passages come best first from the first-stage search, each with its text, title, heading
and first-stage score; input checks live in the base class (``rank``). Backends register in
``rerankers`` (entry-point group ``kenning.rerankers``), as built-ins and plugins alike.

No reranker with bundled weights exists on PyPI, so the built-in backends are trained here,
by ``kenning tune``, on pairs generated from the user's own notes: linear listwise models
over a few features of each (query, passage). ``features``: the first-stage score and rank,
how much of the query the passage and its heading contain (each query word weighted by how
rare it is among the candidates, so no stopword list is needed), and adjacent query words
found adjacent in the passage. ``late``: the first-stage score and rank, and late
interaction over the packaged MiniLM's token vectors. ``cross`` (trained on request): the
same over a cross-encoder that ``kenning tune`` makes from the packaged MiniLM
(``tuning/crossencoder.py``).
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from kenning.errors import ConfigError
from kenning.registry import Registry
from kenning.text.tokens import folded_tokens, prefix_stem

#: first-stage candidates a reranker sees when asked for k results (at least k)
DEPTH = 20
#: the depths ``kenning tune`` tries, keeping the one that measures best on held-out pairs
DEPTHS = (10, 20, 30)


@dataclass(frozen=True)
class RerankCandidate:
    """One candidate: its text, where it sits, and its first-stage score."""

    text: str
    title: str = ""
    heading: str = ""
    score: float = 0.0


#: what ``kenning tune`` trains a reranker on: (question, its candidates best first, a mask
#: of the candidates that answer it)
TrainingList = tuple[str, Sequence[RerankCandidate], np.ndarray]


class Reranker(ABC):
    """Base for all rerankers. Subclasses set ``id`` and implement ``score``."""

    id: str = ""

    @abstractmethod
    def score(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
        """One score per passage (higher is better), as a float array of ``len(passages)``."""

    def config(self) -> dict[str, Any]:
        """Constructor arguments, saved so the index can rebuild this reranker."""
        return {}

    def rank(self, query: str, passages: Sequence[RerankCandidate | str]) -> np.ndarray:
        """``score`` with its input and output checked; plain strings become passages."""
        items = [RerankCandidate(p) if isinstance(p, str) else p for p in passages]
        if not items:
            return np.zeros(0, dtype=np.float64)
        out = np.asarray(self.score(query, items), dtype=np.float64)
        if out.shape != (len(items),) or not np.all(np.isfinite(out)):
            raise ConfigError(
                f"reranker {self.id!r} returned shape {out.shape} (or non-finite scores) "
                f"for {len(items)} passages"
            )
        return out

    def rerank(
        self, query: str, passages: Sequence[RerankCandidate]
    ) -> tuple[list[int], np.ndarray, float]:
        """The new order (indexes into ``passages``), the scores, and the seconds it took."""
        start = time.perf_counter()
        scores = self.rank(query, passages)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return order, scores, time.perf_counter() - start


rerankers: Registry[Reranker] = Registry("reranker", "kenning.rerankers")


@rerankers.register("features")
class FeatureReranker(Reranker):
    """A linear listwise scorer over per-passage features, trained by ``kenning tune``.

    Untrained (the default weights), it keeps the first-stage order.
    """

    id = "features"
    #: training lists ``kenning tune`` fits on at most (None: all; the slower backends
    #: take a sample)
    TRAIN_LISTS: int | None = None
    #: whether ``prepare`` trains a model of its own; then tune gives it every training list
    #: and fits the weights on the held-out lists instead (a model is sure of the pairs it
    #: learnt, so weights fitted there would trust it more than it deserves)
    OWN_MODEL = False
    FEATURES: tuple[str, ...] = (
        "prior",
        "reciprocal_rank",
        "text_match",
        "heading_match",
        "phrase_match",
        "length",
    )

    def __init__(self, weights: list[float] | None = None) -> None:
        default = [1.0] + [0.0] * (len(self.FEATURES) - 1)
        self.weights = [float(w) for w in (weights if weights is not None else default)]
        if len(self.weights) != len(self.FEATURES):
            raise ConfigError(
                f"reranker {self.id!r} takes {len(self.FEATURES)} weights "
                f"({', '.join(self.FEATURES)}), not {len(self.weights)}"
            )

    def config(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def score(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
        return self.features(query, passages) @ np.array(self.weights)

    @classmethod
    def prepare(
        cls,
        lists: Sequence[TrainingList],
        seed: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> FeatureReranker:
        """An untrained reranker whose ``features`` are ready. A backend whose features need
        a model of their own trains it here on (question, candidates, gold mask) lists, which
        ``kenning tune`` keeps apart from those ``fit`` sees (``cross``'s model is trained by
        ``kenning.tuning.crossencoder.prepare``, which tune calls in its place)."""
        return cls()

    @classmethod
    def fit_lists(cls, available: int) -> int:
        """How many of the training lists ``fit`` sees (the slower backends take a sample;
        the rest go to ``prepare``)."""
        return available if cls.TRAIN_LISTS is None else min(available, cls.TRAIN_LISTS)

    def features(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
        """The (len(passages), len(FEATURES)) feature matrix."""
        n = len(passages)
        x = _first_stage(passages, len(self.FEATURES))
        if n == 0:
            return x
        terms = list(dict.fromkeys(prefix_stem(w) for w in folded_tokens(query)))
        texts = [folded_tokens(p.text) for p in passages]
        stems = [{prefix_stem(w) for w in words} for words in texts]
        heads = [
            {prefix_stem(w) for w in folded_tokens(f"{p.title} {p.heading}")} for p in passages
        ]
        # a query word found in every candidate tells them apart no better than a stopword:
        # BM25's idf over the candidates weighs it near zero
        df = {t: sum(t in s for s in stems) for t in terms}
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms}
        total = sum(idf.values()) or 1.0
        pairs = list(zip(terms, terms[1:], strict=False))
        for i, words in enumerate(texts):
            x[i, 2] = sum(idf[t] for t in terms if t in stems[i]) / total
            x[i, 3] = sum(idf[t] for t in terms if t in heads[i]) / total
            if pairs:
                adjacent = {
                    (prefix_stem(a), prefix_stem(b)) for a, b in zip(words, words[1:], strict=False)
                }
                x[i, 4] = sum(p in adjacent for p in pairs) / len(pairs)
            x[i, 5] = math.log1p(len(words)) / math.log(512)
        return x

    def fit(
        self, lists: list[np.ndarray], golds: list[np.ndarray], l2: float = 1e-3, steps: int = 500
    ) -> FeatureReranker:
        """This reranker with weights that put the gold passages of each list first: a
        listwise softmax loss.

        ``lists`` are feature matrices (one per query), ``golds`` boolean masks of the passages
        that answer it; lists without a gold passage teach nothing and are skipped.
        """
        data = [(x, g) for x, g in zip(lists, golds, strict=True) if g.any() and len(x)]
        w = np.array([1.0] + [0.0] * (len(self.FEATURES) - 1))
        if not data:
            return self.with_weights(w.tolist())
        # padded to one (lists, passages, features) array; padding gets no probability
        width = max(len(x) for x, _ in data)
        xs = np.zeros((len(data), width, len(self.FEATURES)))
        target = np.zeros((len(data), width))
        pad = np.full((len(data), width), -np.inf)
        for i, (x, g) in enumerate(data):
            xs[i, : len(x)], target[i, : len(g)], pad[i, : len(x)] = x, g / g.sum(), 0.0
        m, v = np.zeros_like(w), np.zeros_like(w)
        for step in range(1, steps + 1):  # Adam on the mean cross-entropy
            s = xs @ w + pad
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            grad = l2 * w + np.einsum("lpf,lp->f", xs, p - target) / len(data)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            w -= 0.05 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        return self.with_weights(w.tolist())

    def with_weights(self, weights: list[float]) -> FeatureReranker:
        """The same reranker (its model too) with other weights."""
        return type(self)(**{**self.config(), "weights": weights})


def _first_stage(passages: Sequence[RerankCandidate], width: int) -> np.ndarray:
    """A (passages, width) feature matrix with its first two columns filled: the first-stage
    score min-max scaled over the candidates, and the reciprocal rank."""
    x = np.zeros((len(passages), width))
    if passages:
        x[:, 0] = _scaled(np.array([p.score for p in passages], dtype=np.float64))
        x[:, 1] = 1.0 / np.arange(1, len(passages) + 1)
    return x


def _scaled(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.ones_like(values)


@rerankers.register("late")
class LateReranker(FeatureReranker):
    """Late interaction over the packaged MiniLM's token vectors, trained by ``kenning tune``.

    Each query token finds its most similar token in the passage (title, then text), and the
    mean of those cosines (ColBERT's MaxSim, on a model that was not trained for it) joins
    the first-stage score and rank in the same linear listwise model as ``features``. Dense
    search compares one mean vector per chunk, so a passage that matches the claim in one
    sentence and talks of other things elsewhere scores low; token by token it does not.
    On SciFact, trained by tune, it lifted the default hybrid's nDCG@10 from 0.738 to 0.746
    (p ~ 0.3: not significant; README). The price is embedding the candidates' tokens at
    query time, 0.9 s for 20 passages on 2 cores, as a cross-encoder would cost (17 ms on an
    H200, where batches run on the GPU: ``MiniLMEmbedder.token_vectors``).
    """

    id = "late"
    TRAIN_LISTS = 200
    FEATURES = ("prior", "reciprocal_rank", "late")

    def features(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
        x = _first_stage(passages, len(self.FEATURES))
        if len(passages):
            x[:, 2] = _scaled(maxsim(query, [read_passage(p) for p in passages]))
        return x


def read_passage(p: RerankCandidate) -> str:
    """A passage as the model-based features read it: title, then text."""
    return f"{p.title}\n{p.text}"


@rerankers.register("cross")
class CrossReranker(FeatureReranker):
    """A cross-encoder trained by ``kenning tune`` (``tuning/crossencoder.py``): the packaged
    MiniLM reading question and passage together, its score joining the first-stage score and
    rank in the same linear listwise model as ``features``.

    ``kenning.tuning.crossencoder.prepare`` trains the cross-encoder on every one of tune's
    training lists (each question's gold passage against the candidates above and around it
    that do not answer it, the gold added where the first stage missed it) and ``fit`` weighs
    its score on the held-out lists alone (``OWN_MODEL``): a cross-encoder is sure of the
    pairs it was trained on, so weights fitted there would trust it more than it deserves.
    On SciFact with the train claims it gained the most of any reranker, 0.735 -> 0.763
    (p < 0.001) and, trained again, 0.738 -> 0.756 (p = 0.013; README). It reads every
    candidate with the question at query time: 1.1 to 1.5 s for 30 on 2 cores.
    """

    id = "cross"
    OWN_MODEL = True
    FEATURES = ("prior", "reciprocal_rank", "cross")

    def __init__(self, weights: list[float] | None = None, model: str = "") -> None:
        super().__init__(weights)
        if not model:
            raise ConfigError("the cross reranker needs a model: `kenning tune` trains one")
        self.model = model

    def config(self) -> dict[str, Any]:
        return {"weights": self.weights, "model": self.model}

    def features(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
        x = _first_stage(passages, len(self.FEATURES))
        if len(passages):
            texts = [read_passage(p) for p in passages]
            x[:, 2] = _scaled(_remember(self.model, query, texts, _cross))
        return x


def _cross(model: str, query: str, texts: list[str]) -> list[float]:
    from .crossencoder import score

    return [float(v) for v in score(model, query, texts)]


def maxsim(query: str, texts: list[str]) -> np.ndarray:
    """Per text: the mean over the query's tokens (but [CLS] and [SEP]) of the highest
    cosine between that token and any token of the text.

    Inside ``remembered()`` each (query, text) pair is computed once."""
    return _remember("maxsim", query, texts, lambda _m, q, t: _maxsim(q, t))


def _remember(
    model: str, query: str, texts: list[str], compute: Callable[[str, str, list[str]], list[float]]
) -> np.ndarray:
    """``compute(model, query, texts)``, each (model, query, text) once inside ``remembered``."""
    kept: dict[tuple[str, str, str], float] | None = getattr(_scope, "kept", None)
    if kept is None:
        return np.array(compute(model, query, texts), dtype=np.float64)
    todo = list(dict.fromkeys(t for t in texts if (model, query, t) not in kept))
    if todo:
        kept.update(
            zip(((model, query, t) for t in todo), compute(model, query, todo), strict=True)
        )
    return np.array([kept[model, query, t] for t in texts], dtype=np.float64)


_scope = threading.local()


@contextmanager
def remembered() -> Iterator[None]:
    """Inside (in this thread), the model-based features (``maxsim``, the cross-encoder)
    compute each (query, text) pair once: ``kenning tune`` scores the same candidates at
    several depths. Forgotten on leaving."""
    before = getattr(_scope, "kept", None)
    _scope.kept = {} if before is None else before
    try:
        yield
    finally:
        _scope.kept = before


def _maxsim(query: str, texts: list[str]) -> list[float]:
    model = _token_model()
    q, q_mask = model.token_vectors([query])
    q = q[0, 1 : int(q_mask[0].sum()) - 1]
    if len(q) == 0:  # an empty query: nothing tells the passages apart
        return [0.0] * len(texts)
    t, t_mask = model.token_vectors(texts)
    sims = np.einsum("qd,pld->pql", q, t)
    sims = np.where(t_mask[:, None, :] > 0, sims, -1.0)
    return [float(v) for v in sims.max(axis=2).mean(axis=1)]


@lru_cache(maxsize=1)
def _token_model() -> Any:
    """The packaged MiniLM, loaded once per process for every late reranker."""
    from kenning.embedders import MiniLMEmbedder

    return MiniLMEmbedder()


def get_reranker(name: str, **kwargs: Any) -> Reranker:
    """A registered reranker by id, built from its saved constructor arguments."""
    return rerankers.get(name)(**kwargs)
