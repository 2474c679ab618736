"""Our metrics agree with trec_eval (through pytrec_eval) to 1e-6, edge cases included."""

from __future__ import annotations

import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from kenning.eval.metrics import evaluate, ranked, to_run

MEASURES = {"ndcg_cut_10", "ndcg_cut_100", "recall_10", "recall_100", "P_10", "P_100"}
MEASURES |= {"map_cut_10", "map_cut_100"}
OURS = {
    "ndcg_cut_10": "ndcg@10",
    "ndcg_cut_100": "ndcg@100",
    "recall_10": "recall@10",
    "recall_100": "recall@100",
    "P_10": "precision@10",
    "P_100": "precision@100",
    "map_cut_10": "map@10",
    "map_cut_100": "map@100",
}


def reference(run: dict, qrels: dict) -> dict[str, dict[str, float]]:
    ev = pytrec_eval.RelevanceEvaluator(qrels, MEASURES | {"recip_rank"})
    out = ev.evaluate(run)
    # trec_eval's recip_rank has no cutoff: MRR@10 is recip_rank on the top 10.
    top10 = {q: {d: run[q][d] for d in ranked(docs)[:10]} for q, docs in run.items()}
    rr10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    for q in out:
        out[q]["mrr10"] = rr10.get(q, {}).get("recip_rank", 0.0)
    return out


def agree(run: dict, qrels: dict) -> None:
    _, ours = evaluate(run, qrels, ks=(10, 100))
    ref = reference(run, qrels)
    for qid, scores in ours.items():
        if qid not in ref:  # trec_eval skips queries absent from the run: we score them 0
            assert all(v == 0 for v in scores.values())
            continue
        for theirs, mine in OURS.items():
            assert scores[mine] == pytest.approx(ref[qid][theirs], abs=1e-6), (qid, mine)
        assert scores["mrr@10"] == pytest.approx(ref[qid]["mrr10"], abs=1e-6)


doc = st.sampled_from([f"d{i}" for i in range(40)])


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    runs=st.dictionaries(
        st.sampled_from(["q1", "q2", "q3", "q4"]),
        st.dictionaries(doc, st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.25]), max_size=40),
    ),
    qrels=st.dictionaries(
        st.sampled_from(["q1", "q2", "q3", "q4"]),
        st.dictionaries(doc, st.integers(0, 3), min_size=1, max_size=12),
        min_size=1,
    ),
)
def test_random_runs_with_ties_agree(runs: dict, qrels: dict) -> None:
    agree(runs, qrels)


def test_edge_cases() -> None:
    qrels = {"a": {"d1": 1, "d2": 2}, "b": {"d3": 1}, "c": {"d9": 0}, "e": {"d1": 1}}
    run = {
        "a": to_run(["d2", "d5", "d2", "d1"]),  # a duplicate id: the first occurrence counts
        "b": {},  # empty result list
        "c": to_run(["d9"]),  # no relevant documents: not scored, as in trec_eval
        "e": {"d7": 1.0, "d1": 1.0, "d0": 1.0},  # all tied: doc id descending
    }
    agree(run, qrels)
    mean, per_query = evaluate(run, qrels, ks=(10,))
    assert set(per_query) == {"a", "b", "e"}
    assert per_query["b"]["ndcg@10"] == 0.0
    assert per_query["e"]["mrr@10"] == pytest.approx(1 / 2)  # d7, d1, d0
    assert per_query["a"]["ndcg@10"] <= 1.0  # duplicates never push nDCG above 1
    assert mean["recall@10"] == pytest.approx((1 + 0 + 1) / 3)


def test_perfect_and_worst_runs() -> None:
    qrels = {"q": {"a": 3, "b": 1}}
    assert evaluate({"q": to_run(["a", "b"])}, qrels, ks=(10,))[0]["ndcg@10"] == 1.0
    assert evaluate({"q": to_run(["x", "y"])}, qrels, ks=(10,))[0]["ndcg@10"] == 0.0
