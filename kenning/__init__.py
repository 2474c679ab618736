"""kenning: a local-first knowledge engine for notes and documents."""

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
