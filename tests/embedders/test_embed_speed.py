"""MiniLM's runtime per workload: queries through ONNX, batches through the measured winner.

The choice is a calibration cached per machine, so these tests write the cache themselves
(or replace the measurement with fixed rates) and check which runtime serves which workload;
no assertion depends on how fast anything ran. Both runtimes must give the same vectors,
which is what lets the embedder id stay ``minilm`` whichever one built an index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kenning import ConfigError, MissingExtra
from kenning.config import cache_dir
from kenning.embedders import HashEmbedder, MiniLMEmbedder, get_embedder, hardware, minilm
from kenning.embedders.hardware import cpu_name, machine_key
from kenning.embedders.minilm import CALIBRATION_FILE, QUERY_INT8_MIN_COSINE, SMALL_BATCH

TEXTS = [
    "Transformers replace recurrence with self-attention over all tokens.",
    "Feed the sourdough starter, then let the dough rise overnight.",
    "git rebase --interactive lets you squash commits. " * 30,  # past the 256-token limit
    "x",
    "Vitamin D supplements did not change bone density in healthy adults.",
    "The softmax function turns scores into probabilities that sum to one.",
]
assert len(TEXTS) > SMALL_BATCH  # a real batch, not the query path


@pytest.fixture(autouse=True)
def _cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about choosing between the CPU's runtimes, so a GPU (which takes
    batches uncalibrated; tests/embedders/test_gpu.py) is hidden from them."""
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private kenning cache that still sees the exported model files (no re-export)."""
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path))
    (tmp_path / "models").symlink_to(models, target_is_directory=True)
    return tmp_path


def _measured(monkeypatch: pytest.MonkeyPatch, rates: dict[str, float]) -> list[int]:
    """Replace the timing with fixed rates; returns a list that counts the calibrations."""
    calls: list[int] = []

    def calibrate(self: MiniLMEmbedder, rounds: int = 3, batch: int = 8) -> dict[str, float]:
        calls.append(1)
        return rates

    monkeypatch.setattr(MiniLMEmbedder, "calibrate", calibrate)
    return calls


def test_an_unknown_runtime_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="runtime must be one of auto, onnx, torch, torch-bf16"):
        MiniLMEmbedder(runtime="tensorflow")


@pytest.mark.parametrize(
    ("rates", "choice"),
    [
        ({"onnx": 10.0, "torch": 20.0}, "torch"),
        ({"onnx": 10.0, "torch": 10.5}, "onnx"),  # within the margin: ONNX is loaded anyway
        ({"onnx": 20.0, "torch": 10.0}, "onnx"),
        ({"onnx": 10.0, "torch": 12.0, "torch-bf16": 17.0}, "torch-bf16"),
        ({"onnx": 10.0, "torch": 20.0, "torch-bf16": 15.0}, "torch"),
        ({"onnx": 10.0, "torch": 8.0, "torch-bf16": 10.5}, "onnx"),
    ],
)
def test_auto_measures_once_and_every_later_embedder_reuses_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch, rates: dict[str, float], choice: str
) -> None:
    calls = _measured(monkeypatch, rates)
    assert MiniLMEmbedder().batch_runtime == choice
    assert MiniLMEmbedder().batch_runtime == choice  # a new process would read the same file
    assert len(calls) == 1
    saved = json.loads((cache / CALIBRATION_FILE).read_text())["calibrations"][machine_key()]
    assert saved["batch_runtime"] == choice and saved["texts_per_s"] == rates


def test_another_machine_or_library_version_measures_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _measured(monkeypatch, {"onnx": 10.0, "torch": 30.0})
    assert MiniLMEmbedder().batch_runtime == "torch"
    monkeypatch.setattr("kenning.embedders.hardware.machine_key", lambda: "another CPU; 64 cores")
    assert MiniLMEmbedder().batch_runtime == "torch"
    assert len(calls) == 2
    saved = json.loads((cache / CALIBRATION_FILE).read_text())["calibrations"]
    assert len(saved) == 2  # both machines kept: a shared home folder serves both


def test_a_cpu_with_avx512_is_another_machine_than_one_without() -> None:
    """Machines here share one model name with and without AVX-512, 2x apart in speed."""
    plain = "model name\t: Xeon @ 2.50GHz\nflags\t\t: fpu sse2 avx avx2 fma\n"
    wide = plain.replace("fma", "fma avx512f avx512bw avx512_vnni")
    assert cpu_name(plain) == "Xeon @ 2.50GHz +avx2"
    assert cpu_name(wide) == "Xeon @ 2.50GHz +avx2 +avx512f +avx512_vnni"
    assert machine_key().startswith(cpu_name(Path("/proc/cpuinfo").read_text()))


class _Recording(HashEmbedder):
    """Records each batch it embeds."""

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.batch_size = 2
        self.batches: list[list[str]] = []

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(texts)
        return super().embed_batch(texts)


def test_batches_group_texts_by_tokens_and_every_vector_returns_to_its_text() -> None:
    """Sorting by characters mixed SciFact's chunks so that a fifth of each batch was
    padding: a long word is one token, a line of short words many."""
    texts = ["a b c d e f g h i j", "internationalisation", "x y", "p q r s t u v w", "ok"]
    emb = _Recording()
    vectors = emb.embed_documents(texts)
    cost = emb.lengths(texts)
    assert [cost[texts.index(t)] for batch in emb.batches for t in batch] == sorted(cost)
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(vector, emb.embed_documents([text])[0])


@pytest.mark.real_model
def test_minilm_sorts_by_its_own_tokens_cut_at_its_limit() -> None:
    emb = MiniLMEmbedder(runtime="onnx")
    tok = emb._tok()
    assert emb.lengths(TEXTS) == [min(len(tok.encode(t).ids), emb.max_tokens) for t in TEXTS]
    assert emb.lengths(["x"]) == [3]  # [CLS] x [SEP]
    assert max(emb.lengths(TEXTS)) == emb.max_tokens == 256  # the long text, cut as embedded


@pytest.mark.real_model
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_each_text_is_tokenized_once_and_embeds_as_sentence_transformers_does(
    runtime: str,
) -> None:
    """Sorting a batch counts its tokens; the batches then embed those very encodings
    instead of tokenizing again (the three passes cost ~3% of a SciFact build)."""
    from sentence_transformers import SentenceTransformer

    emb = MiniLMEmbedder(runtime=runtime)
    texts = [*TEXTS, "x"]
    vectors = emb.embed_documents(texts)
    assert emb._encoded == {}  # every counted encoding was embedded
    emb.lengths(texts)
    assert set(emb._encoded) == set(texts)
    ids, mask = emb._encode(texts[:2])
    assert set(emb._encoded) == set(texts) - set(texts[:2])
    assert ids.shape == mask.shape and mask.sum(axis=1).tolist() == emb.lengths(texts[:2])
    # The same vectors as the library's own encode, which tokenizes for itself.
    reference = SentenceTransformer(emb._model_path(), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert (vectors * reference).sum(axis=1).min() >= 0.9999


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"format": 99, "calibrations": {}}),
        json.dumps({"format": 1, "calibrations": {machine_key(): {"batch_runtime": "gpu"}}}),
    ],
)
def test_a_damaged_calibration_file_is_measured_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    (cache / CALIBRATION_FILE).write_text(content)
    calls = _measured(monkeypatch, {"onnx": 30.0, "torch": 10.0})
    assert MiniLMEmbedder().batch_runtime == "onnx"
    assert len(calls) == 1 and json.loads((cache / CALIBRATION_FILE).read_text())["format"] == 1


def test_forced_runtimes_never_measure(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _measured(monkeypatch, {"onnx": 1.0, "torch": 2.0})
    assert MiniLMEmbedder(runtime="onnx").batch_runtime == "onnx"
    assert MiniLMEmbedder(runtime="torch").batch_runtime == "torch"
    assert MiniLMEmbedder(runtime="torch").query_runtime == "torch"
    bf16 = MiniLMEmbedder(runtime="torch-bf16")
    assert (bf16.batch_runtime, bf16.query_runtime) == ("torch-bf16", "onnx")
    assert calls == [] and not (cache / CALIBRATION_FILE).exists()


def test_without_sentence_transformers_auto_stays_on_onnx(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def calibrate(self: MiniLMEmbedder, rounds: int = 3, batch: int = 8) -> dict[str, float]:
        raise MissingExtra("sentence-transformers", "st")

    monkeypatch.setattr(MiniLMEmbedder, "calibrate", calibrate)
    assert MiniLMEmbedder().batch_runtime == "onnx"


def _calibrated(cache: Path, runtime: str) -> None:
    entry = {"batch_runtime": runtime, "texts_per_s": {}, "measured": "test"}
    data = {"format": 1, "calibrations": {machine_key(): entry}}
    (cache / CALIBRATION_FILE).write_text(json.dumps(data))


def test_a_short_job_stays_on_onnx_and_a_long_one_calibrates_then_switches(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calibration (torch imported, three runtimes measured: ~15 s) waits until this
    process has embedded ``LONG_JOB`` texts, so a first `add` of a few notes never waits for
    it; batches until then take ONNX, which queries load anyway."""
    calls = _measured(monkeypatch, {"onnx": 10.0, "torch": 20.0})
    monkeypatch.setattr(minilm, "LONG_JOB", 2 * len(TEXTS))
    ran: list[tuple[str, str]] = []

    def run(name: str, workload: str, n: int) -> np.ndarray:
        ran.append((name, workload))
        return np.ones((n, 384), dtype=np.float32)

    monkeypatch.setattr(MiniLMEmbedder, "_embed_onnx", lambda s, t, w: run("onnx", w, len(t)))
    monkeypatch.setattr(MiniLMEmbedder, "_embed_torch", lambda s, t: run("torch", "", len(t)))
    emb = MiniLMEmbedder()
    emb.batch_size = len(TEXTS)
    assert emb.runs_on() is None  # nothing embedded yet
    emb.embed_documents(TEXTS)
    emb.embed_documents(TEXTS)
    assert calls == [] and set(ran) == {("onnx", "batch")} and emb.runs_on() == "onnx"
    assert not (cache / CALIBRATION_FILE).exists()
    emb.embed_documents(TEXTS)  # LONG_JOB texts in: measured once, then the winner runs
    assert len(calls) == 1 and ran[-1] == ("torch", "") and emb.runs_on() == "torch"
    emb.embed_now(TEXTS)  # an answer's sentences still take the query session
    assert ran[-1] == ("onnx", "query") and len(calls) == 1


@pytest.mark.real_model
def test_queries_and_sentences_take_onnx_and_long_jobs_the_calibrated_runtime(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _calibrated(cache, "torch")
    monkeypatch.setattr(minilm, "LONG_JOB", len(TEXTS))
    emb = get_embedder("minilm:query_precision=int8")
    assert isinstance(emb, MiniLMEmbedder) and emb.runs_on() is None  # not known yet
    short = emb.embed_documents(TEXTS)  # a short job: ONNX, torch not even loaded
    assert emb.runs_on() == "onnx" and emb._model is None
    sentences = emb.embed_now(TEXTS)  # an answer's sentences: the fp32 query session
    assert emb._model is None and set(emb._sessions) == {"batch", "query"}
    docs = emb.embed_documents(TEXTS)  # LONG_JOB texts in: the calibrated runtime
    assert emb.runs_on() == "torch" and emb._model is not None
    query = emb.embed_query("what replaces recurrence?")
    assert (emb.query_runtime, emb.batch_runtime) == ("onnx", "torch")
    assert set(emb._sessions) == {"batch", "query", "query-int8"}  # the query in int8
    assert docs.shape == (len(TEXTS), 384) and query.shape == (384,)
    # Every path gives the documents' vectors: runtimes may take turns under one index.
    assert (short * docs).sum(axis=1).min() > 0.9999
    assert (sentences * docs).sum(axis=1).min() > 0.9999
    # One document alone is latency-bound like a query: it stays on ONNX (in fp32: documents
    # are stored), with the same vector.
    alone = emb.embed_documents(TEXTS[:1])[0]
    assert float(alone @ docs[0]) > 0.9999


@pytest.mark.real_model
def test_an_onnx_calibration_never_loads_torch(cache: Path) -> None:
    _calibrated(cache, "onnx")
    emb = MiniLMEmbedder()
    emb.embed_documents(TEXTS)
    assert emb.batch_runtime == "onnx" and emb._model is None
    assert set(emb._sessions) == {"batch"}


@pytest.mark.real_model
def test_both_runtimes_give_the_same_vectors_for_batches_and_queries() -> None:
    """The reason ``auto`` may switch runtimes under an existing index: same model, same id."""
    onnx = MiniLMEmbedder(runtime="onnx", query_precision="int8")
    torch = MiniLMEmbedder(runtime="torch")
    assert onnx.id == torch.id == MiniLMEmbedder().id == "minilm"
    a, b = onnx.embed_documents(TEXTS), torch.embed_documents(TEXTS)
    assert (a * b).sum(axis=1).min() >= 0.9999
    q = "how do I squash commits?"
    fp32_queries = MiniLMEmbedder(runtime="onnx", query_precision="fp32")
    assert float(fp32_queries.embed_query(q) @ torch.embed_query(q)) >= 0.9999
    # Its queries on the int8 graph: close to fp32, not equal.
    assert float(onnx.embed_query(q) @ torch.embed_query(q)) >= QUERY_INT8_MIN_COSINE
    # The batch session (fused kernels, spinning threads) agrees with the query session.
    singles = np.stack([onnx.embed_documents([t])[0] for t in TEXTS])
    assert (a * singles).sum(axis=1).min() >= 0.9999


@pytest.mark.real_model
def test_bfloat16_batches_keep_the_fp32_vectors() -> None:
    """torch-bf16 may serve an fp32 index only because its vectors are fp32's within the
    same bar as the other runtimes (it runs, slowly emulated, on any CPU)."""
    bf16 = MiniLMEmbedder(runtime="torch-bf16")
    vectors = bf16.embed_documents(TEXTS)
    assert bf16.id == "minilm" and vectors.dtype == np.float32
    fp32 = MiniLMEmbedder(runtime="onnx").embed_documents(TEXTS)
    assert (vectors * fp32).sum(axis=1).min() >= 0.9999


@pytest.mark.real_model
@pytest.mark.parametrize("bf16", [True, False])
def test_calibration_measures_every_runtime_this_cpu_runs_well(
    monkeypatch: pytest.MonkeyPatch, bf16: bool
) -> None:
    monkeypatch.setattr(hardware, "native_bf16", lambda: bf16)
    rates = MiniLMEmbedder().calibrate(rounds=1, batch=SMALL_BATCH + 1)
    expected = {"onnx", "torch", "torch-bf16"} if bf16 else {"onnx", "torch"}
    assert set(rates) == expected and min(rates.values()) > 0


def test_calibrations_made_before_bfloat16_was_measured_are_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    without = machine_key()
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    assert machine_key() != without
