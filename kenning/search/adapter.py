"""A query-side adapter: a small learnt transform of query embeddings only.

``q' = normalise(q + U (Vᵀ q))``, a residual low-rank map, applied to every query of an
index tuned with one (``kenning.tuning.adapter`` fits it).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from kenning.errors import ConfigError


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def _decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(text), dtype="<f4")
    if a.size != shape[0] * shape[1]:
        raise ConfigError(f"query adapter: expected {shape[0]}x{shape[1]} values, got {a.size}")
    return a.reshape(shape).astype(np.float32)


@dataclass
class QueryAdapter:
    """The residual map ``q + U (Vᵀ q)``; ``u`` and ``v`` are (dim, rank) matrices."""

    u: np.ndarray
    v: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.u.shape[0])

    def apply(self, queries: np.ndarray) -> np.ndarray:
        """Adapted unit vectors for one query (dim,) or many (n, dim)."""
        q = np.asarray(queries, dtype=np.float32)
        if q.shape[-1] != self.dim:
            raise ConfigError(
                f"query adapter is for dimension {self.dim}, the query has {q.shape[-1]}"
            )
        out = q + (q @ self.v) @ self.u.T
        norms = np.linalg.norm(out, axis=-1, keepdims=True)
        return (out / np.where(norms == 0, 1.0, norms)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        dim, rank = self.u.shape
        return {"dim": dim, "rank": rank, "u": _encode(self.u), "v": _encode(self.v)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryAdapter:
        unknown = set(data) - {"dim", "rank", "u", "v"}
        if unknown:
            raise ConfigError(f"query adapter: unknown keys {sorted(unknown)}")
        shape = (int(data["dim"]), int(data["rank"]))
        return cls(_decode(data["u"], shape), _decode(data["v"], shape))
