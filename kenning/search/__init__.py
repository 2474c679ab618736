"""Search: the ``Searcher`` (``searcher``) over the keyword indexes (``keywords``), the vector
indexes (``vectors``), the rerankers (``rerankers``, ``crossencoder``) and the tuning an
index keeps (``tuned``). Callers import what they use from here."""

from .searcher import (
    ALPHA,
    DEPTH,
    FUSIONS,
    MODES,
    Hit,
    Searcher,
    check_mode,
    fuse,
    highlight_spans,
    memory_needed,
    snippet,
)

__all__ = [
    "ALPHA",
    "DEPTH",
    "FUSIONS",
    "MODES",
    "Hit",
    "Searcher",
    "check_mode",
    "fuse",
    "highlight_spans",
    "memory_needed",
    "snippet",
]
