"""kenning: a local-first knowledge engine for notes and documents."""

import os as _os

from .embedders import Embedder, get_embedder
from .errors import (
    ConfigError,
    EmbedderMismatch,
    KenningError,
    LoadError,
    MissingExtra,
    ModelUnavailable,
    NotFound,
    UnknownBackend,
)
from .filters import Filters
from .index import Index
from .ingest.sync import SyncReport
from .search import Hit
from .search.keywords import KeywordIndex
from .search.vectors import VectorIndex
from .store import SQLiteStore, Store, open_store
from .text.chunking import Chunk, ChunkSpec

__all__ = [
    "Chunk",
    "ChunkSpec",
    "ConfigError",
    "Embedder",
    "EmbedderMismatch",
    "Filters",
    "Hit",
    "Index",
    "KenningError",
    "KeywordIndex",
    "LoadError",
    "MissingExtra",
    "ModelUnavailable",
    "NotFound",
    "SQLiteStore",
    "Store",
    "SyncReport",
    "UnknownBackend",
    "VectorIndex",
    "get_embedder",
    "open_store",
]
__version__ = "0.1.0"

# kenning is local and private: the libraries it runs send nothing and leave no files behind.
# onnxruntime (1.2x and later, Linux too) writes a device id and a queue of telemetry events
# under ~/.cache/Microsoft/ as soon as it is imported, unless ORT_DISABLE_TELEMETRY is set
# first; Hugging Face libraries honour HF_HUB_DISABLE_TELEMETRY; DO_NOT_TRACK is the common
# switch that others read. Set here, on import, because those libraries read them on theirs,
# and every heavy import in kenning is lazy. A value the user set is kept.
for _name in ("ORT_DISABLE_TELEMETRY", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    _os.environ.setdefault(_name, "1")
del _name
