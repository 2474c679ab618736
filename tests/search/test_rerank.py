"""One conformance suite for every registered reranker, then the trained ``features`` backend
and ``search(rerank=True)``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kenning import ConfigError, Index, UnknownBackend
from kenning.search.rerankers import (
    DEPTH,
    CrossReranker,
    FeatureReranker,
    RerankCandidate,
    Reranker,
    get_reranker,
    rerankers,
)
from kenning.search.tuned import META_KEY, Tuning

#: how each registered reranker is built here; a new reranker must be added (``cross`` also
#: gets the model the ``cross_model`` fixture trains)
ARGS: dict[str, dict[str, Any]] = {
    "features": {"weights": [1.0, 0.2, 2.0, 1.0, 0.5, -0.1]},
    "late": {"weights": [0.5, 0.1, 1.0]},
    "cross": {"weights": [0.5, 0.1, 1.0]},
}

PASSAGES = [
    RerankCandidate(
        "Feed the starter and let the dough rise overnight.", "Bread", "Sourdough", 0.9
    ),
    RerankCandidate("Rebase rewrites commits onto a new base.", "Git", "Rebase", 0.7),
    RerankCandidate(
        "Squash the last three commits with an interactive rebase.", "Git", "Squash", 0.5
    ),
    RerankCandidate("", "Empty", "", 0.1),
]


def test_every_registered_reranker_is_in_the_suite() -> None:
    assert sorted(rerankers.names()) == sorted(ARGS)


#: (question, candidates, gold mask): what ``kenning tune`` hands a reranker's ``prepare``
LISTS = [
    ("how do I squash commits", PASSAGES, np.array([False, False, True, False])),
    ("sourdough rising overnight", PASSAGES, np.array([True, False, False, False])),
    ("what does a rebase rewrite", PASSAGES, np.array([False, True, False, False])),
]


@pytest.fixture(scope="session")
def cross_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A cross-encoder trained for one step on three lists (the real MiniLM, a few seconds):
    enough to check the plumbing, not to rank well."""
    from kenning.tuning import crossencoder

    cache = tmp_path_factory.mktemp("cross-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KENNING_CACHE", str(cache))
        reranker = crossencoder.prepare(LISTS)
    assert isinstance(reranker, CrossReranker)
    assert Path(reranker.model).parent == cache / "models"
    assert crossencoder.EPOCHS >= 1
    return reranker.model


#: the cross-encoder runs a real model
PARAMS = [
    pytest.param(n, marks=pytest.mark.real_model) if n == "cross" else n for n in sorted(ARGS)
]


@pytest.fixture(params=PARAMS)
def reranker(request: pytest.FixtureRequest) -> Reranker:
    args = dict(ARGS[request.param])
    if request.param == "cross":
        args["model"] = request.getfixturevalue("cross_model")
    return get_reranker(request.param, **args)


def test_one_finite_score_per_passage(reranker: Reranker) -> None:
    scores = reranker.rank("squash commits with rebase", PASSAGES)
    assert scores.shape == (len(PASSAGES),) and np.all(np.isfinite(scores))
    assert reranker.rank("anything", []).shape == (0,)
    assert reranker.rank("", PASSAGES).shape == (len(PASSAGES),)


def test_scores_are_deterministic_and_do_not_depend_on_neighbours_order(reranker: Reranker) -> None:
    a = reranker.rank("squash commits", PASSAGES)
    assert np.array_equal(a, reranker.rank("squash commits", PASSAGES))


def test_plain_strings_are_passages(reranker: Reranker) -> None:
    texts = [p.text for p in PASSAGES]
    assert reranker.rank("rebase", texts).shape == (len(texts),)


def test_the_saved_config_rebuilds_the_same_reranker(reranker: Reranker) -> None:
    name = rerankers.name_of(type(reranker))
    assert name is not None
    again = get_reranker(name, **reranker.config())
    q = "interactive rebase"
    assert np.array_equal(reranker.rank(q, PASSAGES), again.rank(q, PASSAGES))


def test_rerank_orders_by_score_and_times_itself(reranker: Reranker) -> None:
    order, scores, seconds = reranker.rerank("squash commits", PASSAGES)
    assert sorted(order) == list(range(len(PASSAGES)))
    assert all(scores[a] >= scores[b] for a, b in zip(order, order[1:], strict=False))
    assert seconds >= 0


def test_a_backend_returning_the_wrong_shape_is_caught() -> None:
    class Broken(Reranker):
        id = "broken"

        def score(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
            return np.zeros(len(passages) + 1)

    with pytest.raises(ConfigError, match="broken"):
        Broken().rank("q", PASSAGES)


def test_an_unknown_reranker_lists_the_valid_ids() -> None:
    with pytest.raises(UnknownBackend, match="features"):
        get_reranker("cross-encoder")


# -- the features backend ------------------------------------------------------------


def test_untrained_features_keep_the_first_stage_order() -> None:
    order, _, _ = FeatureReranker().rerank("squash commits", PASSAGES)
    assert order == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="6 weights"):
        FeatureReranker([1.0])


def test_query_words_found_in_every_candidate_weigh_little() -> None:
    passages = [RerankCandidate("the rebase")] + [
        RerankCandidate(f"the cat {i}") for i in range(19)
    ]
    x = FeatureReranker().features("the rebase", passages)
    text = FeatureReranker.FEATURES.index("text_match")
    assert x[0, text] == pytest.approx(1.0)
    assert 0 < x[1, text] < 0.02  # "the" is in every candidate, so it counts for little


def test_fitting_learns_what_marks_the_gold_passage() -> None:
    """The gold passage is the one whose heading holds the query, wherever the first stage
    ranked it: a trained reranker puts it first on lists it has not seen."""
    words = [f"w{i}" for i in range(200)]

    def make(seed: int) -> tuple[str, list[RerankCandidate], np.ndarray]:
        r = np.random.default_rng(seed)
        topic = " ".join(r.choice(words, 2, replace=False))
        gold = int(r.integers(0, 10))
        passages = [
            RerankCandidate(
                " ".join(r.choice(words, 30)) + (f" {topic}" if r.random() < 0.5 else ""),
                heading=topic if i == gold else " ".join(r.choice(words, 2)),
                score=1.0 - i / 10,
            )
            for i in range(10)
        ]
        return topic, passages, np.arange(10) == gold

    train = [make(s) for s in range(100)]
    untrained = FeatureReranker()
    model = untrained.fit([untrained.features(q, p) for q, p, _ in train], [g for _, _, g in train])
    test = [make(s) for s in range(1000, 1050)]
    first = [int(np.argmax(g)) == model.rerank(q, p)[0][0] for q, p, g in test]
    assert np.mean(first) > 0.9


# -- search --rerank -------------------------------------------------------------------


def test_search_reranks_only_with_a_trained_reranker(index: Index, notes: Path) -> None:
    index.add([notes])
    with pytest.raises(ConfigError, match="kenning tune"):
        index.searcher.search("softmax", rerank=True)
    assert index.searcher.rerank_seconds is None
    # weights that reverse the first-stage order: the last of the top DEPTH comes first
    spec = {"name": "features", "args": {"weights": [0.0, -1.0, 0.0, 0.0, 0.0, 0.0]}}
    index.store.set_meta(META_KEY, Tuning("hash", reranker=spec).to_json())
    query = "scaled dot product"
    full = index.searcher.search(query, k=DEPTH)
    hits = index.searcher.search(query, k=3, rerank=True)
    assert index.searcher.rerank_seconds is not None and index.searcher.rerank_seconds >= 0
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in reversed(full)][:3]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert index.searcher.reranked == len(full)
    index.searcher.search(query)
    assert index.searcher.rerank_seconds is None


def test_search_reranks_as_deep_as_tune_chose(index: Index, tmp_path: Path) -> None:
    notes = tmp_path / "many"
    notes.mkdir()
    for i in range(40):
        (notes / f"n{i}.md").write_text(f"# Note {i}\n\nThe dot product of vectors, take {i}.\n")
    index.add([notes])
    spec = {"name": "features", "args": {"weights": [0.0, -1.0, 0.0, 0.0, 0.0, 0.0]}}
    query = "scaled dot product"
    full = index.searcher.search(query, k=30)
    for depth in (10, 30):
        index.store.set_meta(META_KEY, Tuning("hash", reranker={**spec, "depth": depth}).to_json())
        hits = index.searcher.search(query, k=3, rerank=True)
        assert [h.chunk_id for h in hits] == [h.chunk_id for h in reversed(full[:depth])][:3]
        assert index.searcher.reranked == depth
    # asked for more than the depth, it re-orders them all
    index.store.set_meta(META_KEY, Tuning("hash", reranker={**spec, "depth": 10}).to_json())
    assert len(index.searcher.search(query, k=12, rerank=True)) == 12
    assert index.searcher.reranked == 12


def test_the_search_command_reranks_and_explains_the_time(index: Index, notes: Path) -> None:
    """Needs `--rerank` on `kenning search` (kenning/cli/commands.py)."""
    from typer.testing import CliRunner

    from kenning.cli import app

    index.add([notes])
    db = index.location
    runner = CliRunner()
    args = ["--index", db, "search", "scaled dot product", "--rerank", "--explain"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "kenning tune" in result.output
    spec = {"name": "features", "args": {"weights": ARGS["features"]["weights"]}}
    index.store.set_meta(META_KEY, Tuning("hash", reranker=spec).to_json())
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"reranked the top \d+ candidates in", result.output)


def test_a_stored_late_reranker_orders_search_by_token_matches(index: Index, notes: Path) -> None:
    """With only its late-interaction weight, the ``late`` reranker puts first the candidate
    whose tokens best match the query's, by the real MiniLM's token vectors."""
    from kenning.search.rerankers import maxsim

    index.add([notes])
    spec = {"name": "late", "args": {"weights": [0.0, 0.0, 1.0]}}
    index.store.set_meta(META_KEY, Tuning("hash", reranker=spec).to_json())
    query = "scaled dot product"
    candidates = index.searcher.search(query, k=DEPTH)
    hits = index.searcher.search(query, k=3, rerank=True)
    late = maxsim(query, [f"{h.title}\n{h.text}" for h in candidates])
    best = [candidates[i].chunk_id for i in np.argsort(-late, kind="stable")[:3]]
    assert [h.chunk_id for h in hits] == best
    assert index.searcher.rerank_seconds is not None and index.searcher.rerank_seconds > 0


def test_maxsim_computes_each_pair_once_while_remembered_and_matches_a_fresh_computation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tune scores the same candidates at several depths: ``remembered`` makes that free,
    and outside it (a user's query, tune timing one) every pair is computed."""
    from kenning.search import rerankers as rerank

    texts = [p.text for p in PASSAGES] + ["Interactive rebase squashes commits."]
    model = rerank._token_model()
    batches: list[int] = []
    real = model.token_vectors
    monkeypatch.setattr(model, "token_vectors", lambda t: batches.append(len(t)) or real(t))
    with rerank.remembered():
        first = rerank.maxsim("squash commits", texts)
        assert batches == [1, len(texts)]
        assert np.array_equal(rerank.maxsim("squash commits", texts[1:3]), first[1:3])
        assert batches == [1, len(texts)]  # nothing computed again
        fresh = rerank.maxsim("squash commits rebase", texts[:2])  # a new query: computed
        assert batches == [1, len(texts), 1, 2] and fresh.shape == (2,)
    batches.clear()
    again = rerank.maxsim("squash commits rebase", texts[:2])  # outside: computed afresh
    assert batches == [1, 2] and np.allclose(again, fresh, atol=1e-5)
    assert np.allclose(rerank.maxsim("squash commits", texts), first, atol=1e-5)
    assert batches == [1, 2, 1, len(texts)]
    with rerank.remembered():  # forgotten on leaving the last scope
        rerank.maxsim("squash commits", texts[:1])
    assert batches == [1, 2, 1, len(texts), 1, 1]


# -- the cross backend -------------------------------------------------------------------


@pytest.mark.real_model
def test_the_cross_encoder_learns_its_lists_and_reuses_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained long enough on three lists, the real MiniLM cross-encoder puts each gold
    passage first; the same training again reuses the saved folder instead of training."""
    from kenning.search.crossencoder import score
    from kenning.tuning import crossencoder

    monkeypatch.setenv("KENNING_CACHE", str(tmp_path))
    groups = [
        (
            q,
            [f"{x.title}\n{x.text}" for x, gold in zip(p, g, strict=True) if gold],
            [f"{x.title}\n{x.text}" for x, gold in zip(p, g, strict=True) if not gold],
        )
        for q, p, g in LISTS
    ]
    steps: list[str] = []
    folder = crossencoder.train(groups, epochs=12, max_tokens=64, log=steps.append)
    assert (folder / "head.json").is_file() and (folder / "model.safetensors").is_file()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no half-written copy
    after = [score(str(folder), q, [*g, *n]) for q, g, n in groups]
    assert all(int(np.argmax(s)) == 0 for s in after)  # the gold passage first, each list
    losses = [float(m.split("loss ")[1].split(",")[0]) for m in steps]
    assert losses[-1] < losses[0] - 0.3  # it learnt them (a group of 4 starts near log 4)
    steps.clear()
    assert crossencoder.train(groups, epochs=12, max_tokens=64, log=steps.append) == folder
    assert steps == []  # reused: not trained again


def test_a_cross_reranker_names_what_it_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kenning tune"):
        get_reranker("cross", weights=[1.0, 0.0, 1.0])
    gone = get_reranker("cross", weights=[1.0, 0.0, 1.0], model=str(tmp_path / "deleted"))
    with pytest.raises(ConfigError, match="deleted"):
        gone.rank("squash commits", PASSAGES)
