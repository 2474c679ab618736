"""MiniLM with int8 document batches: ``MiniLMEmbedder(precision="int8")``.

Document batches run on a per-channel int8 graph quantised once from the fp32 export;
queries (and batches small enough to take the query path) stay on the fp32 graph. The
document vectors differ from fp32 only by quantisation noise, so the embedder keeps the id
``minilm``: an index may hold both kinds and is searched with the same fp32 queries.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from conftest import shared

from kenning import ChunkSpec, ConfigError, Index
from kenning.config import cache_dir
from kenning.embedders import MiniLMEmbedder, get_embedder, hardware
from kenning.embedders.minilm import INT8_GRAPH, INT8_MIN_COSINE, QUERY_INT8_MIN_COSINE, SMALL_BATCH
from kenning.embedders.onnxgraph import ONNX_GRAPH, export_minilm_onnx, minilm_dir
from kenning.eval.datasets import load_beir


def test_an_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="precision must be one of fp32, int8"):
        MiniLMEmbedder(precision="int4")


def test_int8_needs_onnx() -> None:
    with pytest.raises(ConfigError, match="runs on onnxruntime"):
        MiniLMEmbedder(runtime="torch", precision="int8")


def test_int8_batches_run_on_onnx_without_calibrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path))

    def calibrate(self: MiniLMEmbedder, rounds: int = 3, batch: int = 8) -> dict[str, float]:
        raise AssertionError("int8 has nothing to calibrate against")

    monkeypatch.setattr(MiniLMEmbedder, "calibrate", calibrate)
    emb = MiniLMEmbedder(precision="int8")
    assert (emb.query_runtime, emb.batch_runtime) == ("onnx", "onnx")
    assert emb.id == "minilm" and emb.config() == {"device": "auto", "precision": "int8"}
    assert MiniLMEmbedder().config() == {"device": "auto"}  # fp32 indexes record what they did


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Chunk-sized SciFact passages (title + abstract, cut at ~200 words)."""
    corpus = load_beir(shared("scifact"), "test").corpus
    ids = sorted(corpus)
    random.Random(1).shuffle(ids)
    out = []
    for i in ids[:48]:
        title, text = corpus[i]
        out.append(" ".join(f"{title} {text}".split()[:200]))
    return out


@pytest.mark.real_model
def test_the_int8_graph_is_quantised_offline_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh cache that holds only the fp32 export: the int8 graph is made beside it."""
    fp32 = export_minilm_onnx(minilm_dir(), fused=True)
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / fp32.name).symlink_to(fp32)
    emb = MiniLMEmbedder(precision="int8")
    vecs = emb.embed_documents([f"passage {i} about bone density" for i in range(SMALL_BATCH + 1)])
    assert vecs.shape == (SMALL_BATCH + 1, 384)
    made = sorted(p.name for p in (cache_dir() / "models").iterdir())
    assert made == [fp32.name, fp32.name.replace(ONNX_GRAPH, INT8_GRAPH)]
    assert set(emb._sessions) == {"batch"}


@pytest.mark.real_model
def test_int8_document_vectors_stay_close_to_fp32_and_queries_are_the_same(
    texts: list[str],
) -> None:
    fp32, int8 = MiniLMEmbedder(runtime="onnx"), MiniLMEmbedder(precision="int8")
    a, b = fp32.embed_documents(texts), int8.embed_documents(texts)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= INT8_MIN_COSINE and cos.mean() >= 0.995
    assert cos.max() < 0.99999  # the batch really ran on the int8 graph
    q = "vitamin D supplements and bone density"
    assert np.array_equal(fp32.embed_query(q), int8.embed_query(q))
    # A batch small enough to take the query path is embedded in fp32.
    assert float(int8.embed_documents(texts[:1])[0] @ a[0]) > 0.99999


@pytest.mark.real_model
def test_queries_run_on_an_int8_graph_close_to_fp32(texts: list[str]) -> None:
    """The int8 query path (``QUERY_INT8_GRAPH``): its vectors are compared with stored fp32
    ones, so they must stay close, and nothing stored may come from it."""
    int8 = get_embedder("minilm:runtime=onnx,query_precision=int8")
    fp32 = get_embedder("minilm:runtime=onnx,query_precision=fp32")
    assert isinstance(fp32, MiniLMEmbedder) and isinstance(int8, MiniLMEmbedder)
    assert fp32.config()["query_precision"] == "fp32" and int8.int8_queries
    queries = [t[:120] for t in texts[:20]]
    a = np.stack([fp32.embed_query(q) for q in queries])
    b = np.stack([int8.embed_query(q) for q in queries])
    cos = (a * b).sum(axis=1)
    assert cos.min() >= QUERY_INT8_MIN_COSINE and cos.mean() >= 0.99  # close,
    assert cos.max() < 0.99999  # and really int8
    assert set(int8._sessions) == {"query-int8"}  # a process that only searches
    # documents, even a batch small enough to take the query path, stay fp32
    assert np.allclose(int8.embed_documents(texts[:1]), fp32.embed_documents(texts[:1]), atol=1e-5)
    assert "query" in int8._sessions
    with pytest.raises(ConfigError, match="query_precision"):
        MiniLMEmbedder(query_precision="int4")


def _notes(tmp_path: Path, texts: list[str]) -> Path:
    """A folder of one note per text, ``d0.md`` onwards."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(texts):
        (docs / f"d{i}.md").write_text(text + "\n")
    return docs


@pytest.mark.real_model
def test_precision_round_trips_through_the_index(tmp_path: Path, texts: list[str]) -> None:
    docs = _notes(tmp_path, texts[:12])
    db = tmp_path / "i.db"
    with Index.open(db, embedder=MiniLMEmbedder(precision="int8"), chunking=ChunkSpec()) as index:
        index.add([docs])
        first = [h.path for h in index.search(texts[3][:120], k=3, mode="dense")]
    with Index.open(db) as index:  # reopened as recorded: int8 document batches
        emb = index.embedder
        assert isinstance(emb, MiniLMEmbedder) and emb.precision == "int8"
        assert index.status()["embedder"] == "minilm"
        assert [h.path for h in index.search(texts[3][:120], k=3, mode="dense")] == first
    # The same id and space: the fp32 default opens it, and its queries find the same hits.
    with Index.open(db, embedder=get_embedder("minilm")) as index:
        assert [h.path for h in index.search(texts[3][:120], k=3, mode="dense")] == first
    assert Path(first[0]).name == "d3.md"


@pytest.mark.real_model
def test_the_command_line_chooses_int8(tmp_path: Path, texts: list[str]) -> None:
    from typer.testing import CliRunner

    from kenning.cli import app

    docs = _notes(tmp_path, texts[:6])
    db = str(tmp_path / "i.db")
    args = ["-i", db, "-e", "minilm:precision=int8", "-q", "add", str(docs)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    with Index.open(db) as index:
        assert isinstance(index.embedder, MiniLMEmbedder) and index.embedder.precision == "int8"


@pytest.mark.parametrize(
    ("flags", "int8"),
    [({"avx2", "avx512_vnni"}, True), ({"avx2", "avx_vnni"}, True), ({"avx2"}, False)],
)
def test_auto_query_precision_takes_int8_only_on_a_cpu_with_vnni(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], int8: bool
) -> None:
    """Without VNNI int8 queries lost 0.003 SciFact nDCG@10 for 3 ms (``INT8_QUERY_FLAGS``);
    ``auto`` is recorded as nothing, so an index follows the CPU that opens it."""
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    auto = MiniLMEmbedder(runtime="onnx")
    assert auto.int8_queries is int8 and "query_precision" not in auto.config()
    assert MiniLMEmbedder(query_precision="int8").int8_queries
    assert not MiniLMEmbedder(query_precision="fp32").int8_queries
