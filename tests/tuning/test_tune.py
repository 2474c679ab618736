"""`kenning tune`: the query adapter, the stored tuning, and tuning on real notes.

Unit tests use the deterministic hash embedder on a slice of the til notes; one test tunes
the real packaged MiniLM on two til folders.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TitleAsker, copy_folders
from serving import make_index
from starlette.testclient import TestClient
from typer.testing import CliRunner

from kenning import ConfigError, EmbedderMismatch, Index
from kenning.answer.llms import llms
from kenning.cli import app
from kenning.embedders import HashEmbedder
from kenning.errors import EmbedderChanged
from kenning.search import ALPHA, DEPTH
from kenning.search.adapter import QueryAdapter
from kenning.search.rerankers import DEPTHS
from kenning.search.tuned import META_KEY, Tuning, TuningCache
from kenning.serve.app import create_app
from kenning.tuning import finetune
from kenning.tuning import reranker_training as reranking
from kenning.tuning import tune as tuning
from kenning.tuning.adapter import fit_adapter

runner = CliRunner()


@pytest.fixture(scope="module")
def til_db(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """git and postgres notes indexed with the hash embedder, built once and copied per test."""
    base = tmp_path_factory.mktemp("tune")
    root = copy_folders(til_notes, base / "notes", ["git", "postgres"])
    with Index.open(base / "index.db", embedder=HashEmbedder()) as index:
        index.add([root])
    return base / "index.db"


@pytest.fixture
def til_index(til_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the hash-embedded index. Tune trains only the ``features`` reranker on it:
    ``late`` embeds every candidate with the real MiniLM (about a second per pair), and
    ``test_tune_on_the_real_model`` trains both."""
    monkeypatch.setattr(tuning, "RERANKERS", ("features",))
    shutil.copy(til_db, tmp_path / "index.db")
    index = Index.open(tmp_path / "index.db")
    yield index
    index.close()


# -- the adapter ---------------------------------------------------------------------------


def _random_adapter(dim: int = 8, rank: int = 2, seed: int = 0) -> QueryAdapter:
    rng = np.random.default_rng(seed)
    return QueryAdapter(
        rng.normal(size=(dim, rank)).astype(np.float32),
        rng.normal(size=(dim, rank)).astype(np.float32),
    )


def test_an_untrained_adapter_changes_nothing() -> None:
    rng = np.random.default_rng(1)
    q = rng.normal(size=(5, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    adapter = QueryAdapter(np.zeros((8, 2), np.float32), rng.normal(size=(8, 2)).astype(np.float32))
    np.testing.assert_allclose(adapter.apply(q), q, atol=1e-6)
    np.testing.assert_allclose(adapter.apply(q[0]), q[0], atol=1e-6)


def test_an_adapter_survives_its_stored_form_and_checks_the_dimension() -> None:
    adapter = _random_adapter()
    again = QueryAdapter.from_dict(json.loads(json.dumps(adapter.to_dict())))
    q = np.ones(8, np.float32) / np.sqrt(8)
    np.testing.assert_array_equal(adapter.apply(q), again.apply(q))
    assert np.isclose(np.linalg.norm(adapter.apply(q)), 1.0)
    with pytest.raises(ConfigError, match="dimension 8"):
        adapter.apply(np.ones(4, np.float32))
    with pytest.raises(ConfigError, match="unknown keys"):
        QueryAdapter.from_dict({**adapter.to_dict(), "scale": 2})


def test_fitting_moves_queries_towards_their_passages() -> None:
    """Queries are their passage under a fixed rotation plus noise: a dense search misses
    most of them until the adapter learns the rotation back, scored on held-out queries."""
    rng = np.random.default_rng(0)
    dim, n = 16, 300
    docs = rng.normal(size=(n, dim)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    mix = np.eye(dim) + 1.5 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
    queries = docs @ mix.T.astype(np.float32) + 0.1 * rng.normal(size=(n, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    golds = [{i} for i in range(n)]
    train, test = np.arange(200), np.arange(200, 300)
    hard = np.full((200, 1), -1)
    adapter, steps = fit_adapter(
        queries[train], train, docs, hard, golds[:200], rank=8, steps=400, seed=0
    )
    assert steps == 400

    def hit1(q: np.ndarray) -> float:
        return float(np.mean(np.argmax(q @ docs.T, axis=1) == test))

    assert hit1(adapter.apply(queries[test])) > hit1(queries[test]) + 0.3


# -- the stored tuning -------------------------------------------------------------------


def test_a_tuning_round_trips_and_is_refused_for_another_embedder() -> None:
    t = Tuning("hash", alpha=0.3, adapter=_random_adapter(), reranker={"name": "features"})
    again = Tuning.from_json(t.to_json())
    assert (again.embedder, again.alpha, again.reranker) == ("hash", 0.3, {"name": "features"})
    assert again.adapter is not None
    cache = TuningCache("hash")
    assert cache.get(t.to_json()) is not None
    assert cache.get("") is None and cache.get(None) is None
    assert TuningCache("minilm").get(t.to_json()) is None
    with pytest.raises(ConfigError, match="--undo"):
        Tuning.from_json(json.dumps({"version": 1, "embedder": "hash", "sharpness": 2}))


def test_search_applies_a_stored_tuning_and_undo_removes_it(index: Index, notes: Path) -> None:
    index.add([notes])
    query = "dot product of queries and keys"
    plain = [(h.chunk_id, round(h.score, 6)) for h in index.search(query)]
    # a tuning for another embedder is ignored: the same results
    index.store.set_meta(META_KEY, Tuning("minilm", alpha=1.0).to_json())
    assert index.searcher.tuning() is None
    assert [(h.chunk_id, round(h.score, 6)) for h in index.search(query)] == plain
    # the tuned alpha becomes the default weight; an explicit alpha still wins
    index.store.set_meta(META_KEY, Tuning("hash", alpha=1.0).to_json())
    dense = [h.chunk_id for h in index.searcher.search(query, mode="dense")]
    assert [h.chunk_id for h in index.searcher.search(query)] == dense
    assert index.searcher.search(query, alpha=ALPHA)[0].score == pytest.approx(plain[0][1])
    # the adapter changes the query vector, so the dense scores
    adapter = _random_adapter(dim=64, rank=4)
    index.store.set_meta(META_KEY, Tuning("hash", adapter=adapter).to_json())
    qvec = adapter.apply(index.embedder.embed_query(query))
    top = index.searcher.search(query, mode="dense", k=1)[0]
    _, matrix = index.store.vectors()
    assert top.dense_score == pytest.approx(float(np.max(matrix @ qvec)), abs=1e-5)
    assert tuning.undo(index) == {"undone": True, "reembed_seconds": None}
    assert tuning.undo(index)["undone"] is False
    assert [(h.chunk_id, round(h.score, 6)) for h in index.search(query)] == plain


def test_reembedding_with_another_model_forgets_the_tuning(tmp_path: Path, notes: Path) -> None:
    db = tmp_path / "index.db"
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([notes])
        index.store.set_meta(META_KEY, Tuning("hash", alpha=1.0).to_json())
    with Index.open(db, embedder=HashEmbedder(), reembed=True) as index:
        assert index.searcher.tuning() is not None  # the same model: nothing is rebuilt
    with Index.open(db, embedder=HashEmbedder(dim=32), reembed=True) as index:
        assert not index.store.get_meta(META_KEY) and index.searcher.tuning() is None


def test_the_api_explains_the_tuned_fusion_weight(tmp_path: Path) -> None:
    db, _ = make_index(tmp_path)
    app = create_app(db)
    with TestClient(app) as client:

        def explain() -> dict[str, object]:
            r = client.get("/api/search", params={"q": "softmax", "explain": "true"})
            assert r.status_code == 200, r.text
            return dict(r.json()["explain"])

        assert explain() == {"fusion": "weighted", "alpha": ALPHA, "adapter": False, "depth": DEPTH}
        with Index.open(db) as index:
            tuned = Tuning("hash", alpha=0.8, adapter=_random_adapter(dim=64, rank=2))
            index.store.set_meta(META_KEY, tuned.to_json())
        assert explain()["alpha"] == 0.8 and explain()["adapter"] is True


# -- tuning -------------------------------------------------------------------------------


@pytest.mark.slow
def test_tune_measures_on_held_out_pairs_and_search_uses_what_it_keeps(til_index: Index) -> None:
    query = "squash the last few commits"
    before = [h.chunk_id for h in til_index.searcher.search(query)]
    report = tuning.tune(til_index, n=120, seed=0)
    assert report.pairs == 120 and report.train + report.held_out == 120
    assert sum(report.kinds.values()) == 120 and set(report.kinds) == {"heading", "sentence"}
    assert report.held_out >= 30
    names = [s["setting"] for s in report.settings]
    # generated pairs alone never move the fusion weight (they favour keywords)
    assert names[0] == "packaged" and "adapter" in names and not report.fitted_fusion
    assert not {"fusion", "adapter + fusion"} & set(names)
    assert report.before == report.settings[0]["ndcg@10"]
    kept = next(s for s in report.settings if s["setting"] == report.kept)
    assert report.after == kept["ndcg@10"]
    stored = til_index.searcher.tuning()
    if report.changed:
        assert report.after >= report.before + tuning.MIN_GAIN - 1e-4
        assert kept["p_value"] is not None and kept["p_value"] < tuning.SIGNIFICANCE
        assert stored is not None and stored.alpha == kept["alpha"]
        assert (stored.adapter is not None) == kept["adapter"]
    else:
        assert "kept the current setting" in report.message
    r = report.reranker
    assert r is not None and r["backend"] == "features"
    assert (stored is not None and stored.reranker is not None) == r["kept"]
    # a model per depth, measured on the same held-out pairs; the best depth is the one used
    assert [int(d) for d in r["by_depth"]] == sorted(DEPTHS)
    assert r["reranked_ndcg@10"] == max(r["by_depth"].values()) == r["by_depth"][str(r["depth"])]
    if r["kept"]:
        assert stored is not None and stored.reranker["depth"] == r["depth"]
        til_index.searcher.search(query, k=3, rerank=True)
        assert til_index.searcher.reranked == r["depth"]
    assert tuning.undo(til_index)["undone"] == (stored is not None)
    assert til_index.searcher.tuning() is None
    assert [h.chunk_id for h in til_index.searcher.search(query)] == before


@pytest.mark.slow
@pytest.mark.parametrize(
    "rule",
    [("MIN_GAIN", 1.0), ("SIGNIFICANCE", 0.0)],  # no setting gains a whole point; no p < 0
)
def test_tune_keeps_the_current_setting_when_nothing_beats_it(
    til_index: Index, monkeypatch: pytest.MonkeyPatch, rule: tuple[str, float]
) -> None:
    monkeypatch.setattr(tuning, *rule)
    report = tuning.tune(til_index, n=60, seed=1)
    assert not report.changed and report.kept == "packaged"
    assert report.after == report.before
    assert "kept the current setting (packaged)" in report.message
    assert not report.reranker or not report.reranker["kept"]
    assert til_index.searcher.tuning() is None


@pytest.mark.slow
def test_tune_retunes_against_the_stored_tuning(
    til_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    til_index.store.set_meta(META_KEY, Tuning("hash", alpha=0.0).to_json())  # BM25 only
    monkeypatch.setattr(tuning, "MIN_GAIN", 1.0)
    report = tuning.tune(til_index, n=60, seed=1)
    assert [s["setting"] for s in report.settings][:2] == ["current tuning", "packaged"]
    assert report.settings[0]["alpha"] == 0.0 and report.kept == "current tuning"
    stored = til_index.searcher.tuning()
    assert stored is not None and stored.alpha == 0.0


def test_tune_replaces_a_tuning_made_with_another_embedder(til_index: Index) -> None:
    til_index.store.set_meta(META_KEY, Tuning("minilm", alpha=0.9).to_json())
    report = tuning.tune(til_index, n=60, seed=0)
    assert report.ignored == "minilm" and report.settings[0]["setting"] == "packaged"


def test_switching_the_model_is_one_step_and_stops_processes_left_on_the_old_one(
    index: Index, notes: Path
) -> None:
    """``switch_embedder`` (what a kept fine-tuned model and ``undo`` do) swaps every vector
    and the recorded model at once; another process that opened the index before stops
    with ``EmbedderChanged`` instead of mixing the two models' vectors or queries."""
    index.add([notes])
    other = Index.open(index.location)
    query = "dot product of queries and keys"
    assert other.search(query)
    new = HashEmbedder(dim=32)
    seconds = index.switch_embedder(new)
    assert seconds >= 0 and index.embedder is new and index.searcher.embedder is new
    ids, matrix = index.store.vectors()
    assert matrix.shape == (index.store.chunk_count(), 32) and index.pending() == 0
    assert index.search(query)  # the switching process searches with the new model
    with pytest.raises(EmbedderChanged, match="Open the index again"):
        other.search(query)
    assert other.search(query, mode="bm25")  # keywords need no model
    with pytest.raises(EmbedderChanged):
        other.embed()
    other.close()
    with Index.open(index.location) as again:  # a fresh open takes the recorded model
        assert again.embedder.dim == 32 and again.search(query)


def test_fine_tuning_needs_the_packaged_model(til_index: Index) -> None:
    with pytest.raises(ConfigError, match="starts from the packaged MiniLM"):
        tuning.tune(til_index, n=60, seed=0, finetune_model=True)
    db = til_index.location
    til_index.close()
    result = runner.invoke(app, ["--index", db, "tune", "-n", "60", "--lora"])  # fine-tunes
    assert result.exit_code == 2 and "starts from the packaged MiniLM" in result.output


def test_tune_needs_enough_notes(index: Index, notes: Path) -> None:
    index.add([notes])
    with pytest.raises(ConfigError, match="at least"):
        tuning.tune(index)


@pytest.mark.slow
def test_the_tune_command_reports_and_undoes(til_index: Index) -> None:
    db = til_index.location
    til_index.close()
    result = runner.invoke(app, ["--index", db, "tune", "-n", "60", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"before", "after", "kept", "settings", "message"} <= report.keys()
    result = runner.invoke(app, ["--index", db, "tune", "-n", "60"])
    assert result.exit_code == 0, result.output
    assert "held-out nDCG@10" in result.output and "kept" in result.output
    result = runner.invoke(app, ["--index", db, "tune", "--undo", "--json"])
    assert result.exit_code == 0 and "undone" in result.output
    result = runner.invoke(app, ["--index", db, "tune", "--undo"])
    assert result.exit_code == 0 and "nothing to undo" in result.output


@pytest.mark.slow
def test_tune_trains_on_questions_an_llm_writes(
    til_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kenning tune --llm NAME``: the backend writes the pairs' questions (here a plugin
    that asks about each passage's title; the real model writes them in test_local_llm)."""
    monkeypatch.setitem(llms._classes, "title-asker", TitleAsker)
    asked: list[TitleAsker] = []
    monkeypatch.setattr(TitleAsker, "__init__", _recording(TitleAsker.__init__, asked))
    db = til_index.location
    til_index.close()
    result = runner.invoke(app, ["--index", db, "tune", "-n", "60", "--llm", "title-asker"])
    assert result.exit_code == 0, result.output
    assert "title-asker write up to 60 questions" in result.output
    assert "written 40/60 questions" in result.output and "held-out nDCG@10" in result.output
    assert len(asked) == 1 and len(asked[0].prompts) >= 40
    assert "written by the LLM" in " ".join(result.output.split())


def _recording(init: Any, into: list[Any]) -> Any:
    def record(self: Any) -> None:
        init(self)
        into.append(self)

    return record


def _title_questions(index: Index, limit: int) -> list[dict[str, str]]:
    """Questions a person might ask of the git and postgres notes: each note's title."""
    out = []
    for path in sorted(index.store.sources())[:limit]:
        title = Path(path).read_text().splitlines()[0].lstrip("# ").strip()
        out.append({"question": f"how do I {title.lower()}", "paths": [path]})
    return out


@pytest.mark.slow
def test_real_questions_let_tune_fit_the_fusion_weight(til_index: Index, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in _title_questions(til_index, 60)))
    db = til_index.location
    til_index.close()
    args = ["--index", db, "tune", "-n", "60", "--json", "--questions", str(questions)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["fitted_fusion"] and report["pairs"] == 120
    assert {"fusion", "adapter + fusion"} <= {s["setting"] for s in report["settings"]}


def test_a_bad_questions_file_names_its_line(til_index: Index, tmp_path: Path) -> None:
    good = json.dumps(_title_questions(til_index, 1)[0])
    db = til_index.location
    til_index.close()
    for bad, says in [
        ('{"question": "x", "paths": ["/nowhere.md"]}', "not an indexed note: /nowhere.md"),
        ("{not json", "not JSON"),
        ('{"paths": ["a.md"]}', '"question"'),
    ]:
        questions = tmp_path / "q.jsonl"
        questions.write_text(good + "\n" + bad + "\n")
        result = runner.invoke(app, ["--index", db, "tune", "--questions", str(questions)])
        assert result.exit_code == 2, result.output
        assert f"{questions}:2" in result.output and says in result.output


@pytest.mark.real_model
def test_tune_on_the_real_model(til_notes: Path, tmp_path: Path) -> None:
    """MiniLM on two til folders, offline: tune reports before/after, search uses the
    result, and undo restores the packaged search."""
    root = copy_folders(til_notes, tmp_path / "notes", ["tmux", "go", "workflow"])
    with Index.open(tmp_path / "index.db", embedder="minilm") as index:
        index.add([root])
        query = "split the window into panes"
        before = [(h.chunk_id, round(h.score, 5)) for h in index.search(query)]
        report = tuning.tune(index, n=100, seed=0)
        assert report.held_out >= 10 and 0.0 <= report.before <= 1.0
        assert report.settings[0]["setting"] == "packaged"
        stored = index.searcher.tuning()
        assert (stored is not None and stored.adapter is not None) == (
            report.changed and "adapter" in report.kept
        )
        # both rerankers trained and measured on the same held-out pairs; the better one
        # is reported, and kept only if it beats plain search
        rerank = report.reranker
        assert rerank is not None and set(rerank["tried"]) == {"features", "late"}
        best = max(rerank["tried"], key=lambda b: rerank["tried"][b]["reranked_ndcg@10"])
        assert rerank["backend"] == best and rerank["tried"]["late"]["ms_per_query"] > 0
        assert (stored is not None and stored.reranker is not None) == rerank["kept"]
        if rerank["kept"]:
            assert stored is not None and stored.reranker["name"] == best
            assert len(index.search(query, rerank=True)) > 0
        tuning.undo(index)
        assert [(h.chunk_id, round(h.score, 5)) for h in index.search(query)] == before


@pytest.mark.real_model
@pytest.mark.parametrize("lora", [0, 8], ids=["all-weights", "lora"])
def test_tune_fine_tunes_the_real_model_and_undo_re_embeds(
    til_notes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lora: int
) -> None:
    """``--finetune`` on real notes: a fine-tuned MiniLM is trained, measured on the held-out
    pairs beside the other settings, and kept only by the same rule. Then the swap itself:
    the index moves to the tuned model's vectors in one step, reopens with it, refuses the
    packaged model's queries, and ``undo`` re-embeds back to the packaged search."""
    monkeypatch.setattr(finetune, "cache_dir", lambda: tmp_path)  # trained afresh, here
    root = copy_folders(til_notes, tmp_path / "notes", ["tmux", "workflow"])
    db = tmp_path / "index.db"
    with Index.open(db, embedder="minilm") as index:
        index.add([root])
        query = "split the window into panes"
        before = [(h.chunk_id, round(h.score, 5)) for h in index.search(query)]
        report = tuning.tune(
            index, n=80, seed=0, finetune_model=True, lora=lora, reranker_backends=("features",)
        )
        tuned = report.finetuned
        assert tuned is not None and tuned["model"].startswith("minilm-tuned-")
        assert tuned["lora"] == lora
        assert tuned["steps"] >= 1 and tuned["chunks"] == len(index.store.vectors()[0])
        row = next(s for s in report.settings if s["setting"] == "fine-tuned")
        assert row["p_value"] is not None and 0.0 <= row["ndcg@10"] <= 1.0
        kept_model = report.kept.startswith("fine-tuned")
        assert (index.embedder.id == tuned["model"]) == kept_model
        if not kept_model:  # not better: the index and its vectors are the packaged ones
            assert index.embedder.id == "minilm"
            assert [(h.chunk_id, round(h.score, 5)) for h in index.search(query)] == before
            # swap by hand to a model trained on one triplet
            model = finetune.finetune(index.embedder, [("q", "a passage", "another")])
            index.switch_embedder(model.embedder)
        tuned_id = index.embedder.id
        assert tuned_id.startswith("minilm-tuned-")
        after = [(h.chunk_id, round(h.score, 5)) for h in index.search(query)]
        assert after and after != before
    with Index.open(db) as index:  # the index records the tuned model and reloads it
        assert index.embedder.id == tuned_id
        assert [(h.chunk_id, round(h.score, 5)) for h in index.search(query)] == after
    with pytest.raises(EmbedderMismatch):
        Index.open(db, embedder="minilm")
    result = runner.invoke(app, ["--index", str(db), "tune", "--undo"])
    assert result.exit_code == 0, result.output
    assert "re-embedded with the packaged model" in result.output
    with Index.open(db) as index:
        assert index.embedder.id == "minilm" and index.searcher.tuning() is None
        assert [(h.chunk_id, round(h.score, 5)) for h in index.search(query)] == before


def test_tune_names_a_reranker_it_cannot_train(
    til_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin reranker that is not a linear listwise model is refused by name (a
    ConfigError the CLI turns into a message), not an assertion."""
    from kenning.search.rerankers import RerankCandidate, Reranker, rerankers

    class Fixed(Reranker):
        id = "fixed"

        def score(self, query: str, passages: Sequence[RerankCandidate]) -> np.ndarray:
            return np.zeros(len(passages))

    monkeypatch.setitem(rerankers._classes, "fixed", Fixed)
    with pytest.raises(ConfigError, match="'fixed' cannot be trained by kenning tune"):
        tuning.tune(til_index, n=60, seed=0, reranker_backends=("fixed",))


def test_a_reranker_with_its_own_model_learns_from_every_training_list(
    til_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that trains a model of its own (``OWN_MODEL``) gets every training list,
    each with a passage that answers it (the question's positive added at the end when the
    first stage missed every gold one), and its weights are fitted on the held-out lists."""
    from kenning.search.rerankers import FeatureReranker, RerankCandidate, rerankers

    seen: list[tuple[str, Sequence[RerankCandidate], np.ndarray]] = []

    class Owned(FeatureReranker):
        id = "owned"
        OWN_MODEL = True

        @classmethod
        def prepare(cls, lists, seed=0, log=None):  # type: ignore[no-untyped-def]
            seen.extend(lists)
            return cls()

    monkeypatch.setitem(rerankers._classes, "owned", Owned)
    # the top two alone: the first stage misses the golds of many
    monkeypatch.setattr(reranking, "RERANK_DEPTHS", (2,))
    monkeypatch.setattr(reranking, "RERANK_DEPTH", 2)
    report = tuning.tune(til_index, n=60, seed=0, reranker_backends=("owned",))
    r = report.reranker
    assert r is not None and r["trained_on"] == report.held_out > 0
    assert len(seen) == report.train
    assert all(len(p) == len(g) and g.any() for _, p, g in seen)
    added = [(p, g) for _, p, g in seen if len(p) == 3]
    assert added, "no list had its gold passage added"
    assert all(list(g) == [False, False, True] for _, g in added)
    assert all(p[-1].score == min(x.score for x in p[:-1]) for p, _ in added)


@pytest.mark.real_model
def test_tune_trains_a_cross_encoder_apart_from_the_lists_its_weights_fit(
    til_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cross`` trains the real MiniLM cross-encoder on every training list and fits its
    weights on the held-out lists (a model is sure of the pairs it learnt, so weights fitted
    there would trust it too much); search re-orders with it once stored."""
    from kenning.tuning import crossencoder

    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(crossencoder, "MAX_TOKENS", 64)  # a quick run: the plumbing, not
    monkeypatch.setattr(crossencoder, "EPOCHS", 1)  # the quality (benchmarks/tune.py)
    said: list[str] = []
    report = tuning.tune(til_index, n=40, seed=0, reranker_backends=("cross",), log=said.append)
    r = report.reranker
    assert r is not None and r["backend"] == "cross" and set(r["tried"]) == {"cross"}
    folder = Path(r["args"]["model"])
    assert folder.parent == tmp_path / "cache" / "models" and (folder / "head.json").is_file()
    assert r["trained_on"] == report.held_out > 0
    assert any(m.startswith("cross-encoder step") for m in said)
    assert [int(d) for d in r["by_depth"]] == sorted(DEPTHS) and r["ms_per_query"] > 0
    spec = {"name": "cross", "args": r["args"], "depth": r["depth"]}
    til_index.store.set_meta(META_KEY, Tuning(til_index.embedder.id, reranker=spec).to_json())
    hits = til_index.searcher.search("squash the last few commits", k=5, rerank=True)
    assert len(hits) == 5 and til_index.searcher.reranked == r["depth"]
    assert til_index.searcher.rerank_seconds is not None and til_index.searcher.rerank_seconds > 0


@pytest.mark.real_model
def test_a_mixed_fine_tune_lands_between_the_packaged_and_the_trained_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mix`` (WiSE-FT): the saved weights are the packaged ones moved ``mix`` of the way to
    the trained ones, under a name of their own."""
    from safetensors.numpy import load_file

    from kenning.embedders import MiniLMEmbedder

    monkeypatch.setattr(finetune, "cache_dir", lambda: tmp_path)
    base = MiniLMEmbedder()
    triplets = [("how do I squash commits", "git rebase -i squashes commits", "tmux panes")] * 4
    full = finetune.finetune(base, triplets, mix=1.0)
    half = finetune.finetune(base, triplets, mix=0.5)
    assert full.embedder.id != half.embedder.id and not half.reused

    def weights(folder: Path) -> dict[str, np.ndarray]:
        return load_file(str(folder / "model.safetensors"))

    packaged, trained = weights(base.model_dir()), weights(full.embedder.model_dir())
    mixed = weights(half.embedder.model_dir())
    name = "encoder.layer.0.attention.self.query.weight"
    assert not np.allclose(packaged[name], trained[name])
    np.testing.assert_allclose(mixed[name], (packaged[name] + trained[name]) / 2, atol=1e-6)
    with pytest.raises(ConfigError, match="mix"):
        finetune.finetune(base, triplets, mix=0.0)


@pytest.mark.real_model
def test_a_lora_fine_tune_changes_only_attention_by_a_low_rank_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lora``: only the attention's query, key and value weights move, each by an update of
    at most the LoRA rank, merged into a model that loads and embeds like any other."""
    from safetensors.numpy import load_file

    from kenning.embedders import MiniLMEmbedder

    monkeypatch.setattr(finetune, "cache_dir", lambda: tmp_path)
    base = MiniLMEmbedder()
    triplets = [("how do I squash commits", "git rebase -i squashes commits", "tmux panes")] * 4
    tuned = finetune.finetune(base, triplets, lora=4)
    assert tuned.steps == 1 and not tuned.reused
    assert tuned.embedder.id != finetune.finetune(base, triplets).embedder.id
    packaged = load_file(str(base.model_dir() / "model.safetensors"))
    merged = load_file(str(tuned.embedder.model_dir() / "model.safetensors"))
    assert merged.keys() <= packaged.keys()  # the packaged file also has a position buffer
    moved = {k for k in merged if not np.array_equal(packaged[k], merged[k])}
    targets = {
        f"encoder.layer.{i}.attention.self.{t}.weight"
        for i in range(6)
        for t in finetune.LORA_TARGETS
    }
    assert moved == targets
    for name in moved:
        delta = (merged[name] - packaged[name]).astype(np.float64)
        sv = np.linalg.svd(delta, compute_uv=False)  # past rank 4, float32 rounding only
        assert sv[0] > 0 and sv[4] < 1e-2 * sv[0], (name, sv[:6])
    vectors = tuned.embedder.embed_documents(["git rebase -i squashes commits"])
    assert vectors.shape == (1, base.dim) and np.isfinite(vectors).all()
    with pytest.raises(ConfigError, match="LoRA rank"):
        finetune.finetune(base, triplets, lora=-1)
