"""The embedder role: the base class every backend derives from, its registry, and the
deterministic ``hash`` embedder the fast tests run on.

Batching, query/document prefixes, normalisation and dtype live in the base class so every
backend behaves the same; a backend implements one method, ``embed_batch``.
"""

from __future__ import annotations

import hashlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from kenning.errors import ConfigError
from kenning.registry import Registry

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

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether an index's embedder record (its ``id`` and ``dim``) names this model, so
        that its queries and new vectors belong beside the stored ones."""
        return (record.get("id"), record.get("dim")) == (self.id, self.dim)

    def runs_on(self) -> str | None:
        """What embeds document batches (``torch-bf16``, ``cuda``, ...), once known: shown
        beside the embedding rate, which it explains. None where there is nothing to say."""
        return None

    def count_tokens(self, text: str) -> int:
        """Estimate of the model's token count. Word pieces run ~1.3 per word in English."""
        return int(len(_WORD.findall(text)) * 1.3) + 1

    def lengths(self, texts: list[str]) -> list[int]:
        """What batches are sorted by: each text's cost to embed, so a batch's texts pad
        little. ``count_tokens`` here; a model with a tokenizer counts its real tokens."""
        return [self.count_tokens(t) for t in texts]

    def batched(self, texts: list[str], size: int) -> Iterator[list[int]]:
        """The positions of ``texts`` in batches of ``size``, fewest tokens (``lengths``)
        first, so each batch pads little."""
        cost = self.lengths(texts)
        order = sorted(range(len(texts)), key=cost.__getitem__)
        for start in range(0, len(order), size):
            yield order[start : start + size]

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Embed passages in batches, fewest tokens first so batches pad little."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        prefixed = [self.document_prefix + t for t in texts]
        for idx in self.batched(prefixed, self.batch_size):
            vecs = self.embed_batch([prefixed[i] for i in idx])
            out[idx] = self._check(vecs, len(idx))
        return normalise(out)

    def embed_now(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of a few passages wanted now, to be compared rather than stored (an
        answer's sentences, which the citation check compares too): latency-bound, like a
        query. ``embed_documents`` here; a backend whose batches run on a runtime that is
        slow to start sends them where its queries go."""
        return self.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vec = self._check(self.embed_batch([self.query_prefix + text]), 1)
        return normalise(vec)[0]

    def _check(self, vecs: Any, n: int) -> np.ndarray:
        arr = np.asarray(vecs, dtype=np.float32)
        if arr.shape != (n, self.dim):
            raise ConfigError(
                f"embedder {self.id!r} returned shape {arr.shape}, expected ({n}, {self.dim})"
            )
        return arr


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


@embedders.register("hash")
class HashEmbedder(Embedder):
    """Deterministic feature-hashing embedder for tests: no model, exact reproducible ranks.

    Texts that share words get similar vectors, so tests can assert meaningful orderings.
    """

    id = "hash"

    def __init__(self, dim: int = 64, delay: float = 0.0) -> None:
        self.dim = dim
        self.delay = delay  # seconds per batch, so tests can stop a process mid-embedding
        self.calls = 0  # embed_batch calls, so tests can count re-embedding
        self.embedded = 0  # texts embedded

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "delay": self.delay} if self.delay else {"dim": self.dim}

    def runs_on(self) -> str | None:
        return "numpy"

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        self.calls += 1
        self.embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in re.findall(r"\w+", text.lower()):
                h = hashlib.blake2b(tok.encode(), digest_size=8).digest()
                bucket = int.from_bytes(h[:4], "little") % self.dim
                out[row, bucket] += 1.0 if h[4] & 1 else -1.0
        return out
