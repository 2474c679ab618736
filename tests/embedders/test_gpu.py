"""MiniLM on a GPU: document batches run there when torch sees one, with the CPU's vectors.

CI has no GPU, so the tests marked ``needs_gpu`` skip there; they ran on a lent H200
(README, "On a GPU"). Which runtime and batch size a machine gets is tested everywhere,
with the GPU's presence faked; that is a decision, not a component.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kenning import Index
from kenning.embedders import MiniLMEmbedder, hardware
from kenning.embedders.hardware import NVIDIA_DRIVER_FILES, torch_device
from kenning.embedders.minilm import CPU_BATCH, GPU_BATCH
from kenning.tuning import finetune

needs_gpu = pytest.mark.skipif(torch_device("auto") == "cpu", reason="torch sees no CUDA GPU")

TEXTS = [
    f"{i}: " + text
    for i in range(60)
    for text in (
        "Vitamin D supplements did not change bone density in healthy adults.",
        "git rebase --interactive lets you squash commits before a merge. " * (1 + i % 9),
        "x",
    )
]


@pytest.mark.slow
def test_auto_asks_torch_only_where_an_nvidia_driver_is_loaded() -> None:
    code = (
        "import sys; from kenning.embedders.hardware import torch_device; "
        "print(torch_device('auto'), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    if not any(Path(p).exists() for p in NVIDIA_DRIVER_FILES):
        assert out == ["cpu", "False"]  # no driver: torch is not even imported
    else:
        assert out[1] == "True"


def test_a_gpu_takes_the_batches_unless_the_cpu_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hardware, "cuda_available", lambda: True)
    auto = MiniLMEmbedder()
    assert (auto.batch_runtime, auto.batch_size, auto.query_runtime) == ("cuda", GPU_BATCH, "onnx")
    assert MiniLMEmbedder(runtime="torch").batch_runtime == "cuda"
    cpu = MiniLMEmbedder(runtime="onnx", device="cpu")
    assert (cpu.batch_runtime, cpu.batch_size) == ("onnx", CPU_BATCH)
    assert MiniLMEmbedder(runtime="torch", device="cpu").batch_runtime == "torch"
    assert MiniLMEmbedder(runtime="onnx").batch_runtime == "onnx"  # onnxruntime runs on the CPU
    assert MiniLMEmbedder(precision="int8").batch_runtime == "onnx"  # an ONNX graph
    sized = MiniLMEmbedder()
    sized.batch_size = 8  # (benchmarks set it)
    assert sized.batch_size == 8


@needs_gpu
def test_minilm_batches_on_the_gpu_give_the_cpu_vectors() -> None:
    gpu = MiniLMEmbedder()
    assert gpu.batch_runtime == "cuda" and gpu.batch_size == GPU_BATCH
    on_gpu = gpu.embed_documents(TEXTS)
    assert str(gpu._load().device).startswith("cuda")
    on_cpu = MiniLMEmbedder(runtime="onnx", device="cpu").embed_documents(TEXTS)
    assert (on_gpu * on_cpu).sum(axis=1).min() > 0.9999
    query = gpu.embed_query("does vitamin D change bone density?")  # ONNX, on the CPU
    assert int(np.argmax(on_gpu @ query)) % 3 == 0


def _per_token_cosines(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]):
    (va, ma), (vb, mb) = a, b
    assert va.shape == vb.shape and (ma == mb).all()  # the same tokens, cut at 256
    return (va * vb).sum(axis=-1)[ma > 0]


@pytest.mark.real_model
def test_token_vectors_through_torch_are_onnxs() -> None:
    """Late interaction embeds its candidates' tokens through torch where batches run on a
    GPU; the torch path, run here on the CPU, gives ONNX's token vectors."""
    emb = MiniLMEmbedder(runtime="onnx", device="cpu")
    texts = TEXTS[:8]
    hidden, mask = emb._hidden_torch(texts)
    norms = np.linalg.norm(hidden, axis=-1, keepdims=True)
    via_torch = (hidden / np.clip(norms, 1e-9, None), mask)
    assert _per_token_cosines(via_torch, emb.token_vectors(texts)).min() > 0.9999


@needs_gpu
def test_token_vectors_on_the_gpu_are_the_cpus() -> None:
    gpu, cpu = MiniLMEmbedder(), MiniLMEmbedder(runtime="onnx", device="cpu")
    got = gpu.token_vectors(TEXTS[:40])
    assert str(gpu._load().device).startswith("cuda")
    assert _per_token_cosines(got, cpu.token_vectors(TEXTS[:40])).min() > 0.999


@needs_gpu
def test_an_index_built_on_the_gpu_searches_like_one_built_on_the_cpu(
    notes: Path, tmp_path: Path
) -> None:
    tops = []
    for device, runtime in (("auto", "auto"), ("cpu", "onnx")):
        emb = MiniLMEmbedder(runtime=runtime, device=device)
        with Index.open(tmp_path / f"{device}.db", embedder=emb) as index:
            index.add([notes])
            assert index.status()["embedding"]["pending"] == 0
            tops.append([h.chunk_id for h in index.search("how do transformers attend?", k=5)])
    assert tops[0] == tops[1]


@needs_gpu
def test_fine_tuning_runs_on_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(finetune, "cache_dir", lambda: tmp_path)
    triplets = [
        (f"what did study {i} find?", f"Study {i} found {topic}.", f"Study {i + 1} was {topic}.")
        for i, topic in enumerate(["sleep lowers pressure", "vitamin D is inert", "tea helps"] * 12)
    ]
    base = MiniLMEmbedder()
    tuned = finetune.finetune(base, triplets)
    assert tuned.steps == 2 and not tuned.reused
    assert tuned.embedder.batch_runtime == "cuda"
    before, after = base.embed_documents(TEXTS), tuned.embedder.embed_documents(TEXTS)
    assert (before * after).sum(axis=1).min() < 0.9999  # the weights moved
