"""What an index keeps of a tuning: one JSON value under the ``tuning`` meta key.

It holds the embedder id the tuning was learnt with, the fitted fusion weight, the query
adapter and the trained reranker (each optional), and the held-out figures that chose them.
``kenning.search`` reads it at every query (a cached parse); a tuning learnt with another
embedder is refused (ignored, and ``kenning tune`` says so), never applied to its vectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kenning.errors import ConfigError

from .adapter import QueryAdapter

META_KEY = "tuning"
VERSION = 1
_KEYS = {"version", "embedder", "alpha", "adapter", "reranker", "measured", "created_at"}


@dataclass
class Tuning:
    """A tuning as stored; ``None`` fields leave the packaged behaviour in place."""

    embedder: str
    alpha: float | None = None
    adapter: QueryAdapter | None = None
    #: ``{"name": registry id, "args": constructor arguments}``
    reranker: dict[str, Any] | None = None
    measured: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "embedder": self.embedder,
                "alpha": self.alpha,
                "adapter": self.adapter.to_dict() if self.adapter else None,
                "reranker": self.reranker,
                "measured": self.measured,
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Tuning:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"the stored tuning is not JSON ({e}); `kenning tune --undo`") from e
        unknown = set(data) - _KEYS
        if unknown or data.get("version") != VERSION:
            raise ConfigError(
                f"the stored tuning has version {data.get('version')!r} and keys "
                f"{sorted(unknown)} this kenning does not know; `kenning tune --undo` clears it"
            )
        adapter = data.get("adapter")
        return cls(
            embedder=data["embedder"],
            alpha=data.get("alpha"),
            adapter=QueryAdapter.from_dict(adapter) if adapter else None,
            reranker=data.get("reranker"),
            measured=data.get("measured") or {},
            created_at=data.get("created_at") or 0.0,
        )

    def applies_to(self, embedder_id: str) -> bool:
        """Whether this tuning was learnt with that embedder (otherwise it must not be used)."""
        return self.embedder == embedder_id


class TuningCache:
    """The stored tuning for one embedder, parsed again only when the stored text changes."""

    def __init__(self, embedder_id: str) -> None:
        self.embedder_id = embedder_id
        self._raw: str | None = None
        self._tuning: Tuning | None = None

    def get(self, raw: str | None) -> Tuning | None:
        """The tuning in ``raw`` (the meta value), or None when absent or for another embedder."""
        if raw != self._raw:
            tuning = Tuning.from_json(raw) if raw else None
            if tuning is not None and not tuning.applies_to(self.embedder_id):
                tuning = None
            self._raw, self._tuning = raw, tuning
        return self._tuning
