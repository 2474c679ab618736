"""kenning: a local-first knowledge engine for notes and documents."""

from .chunking import Chunk, ChunkSpec
from .embedders import Embedder, get_embedder
from .errors import (
    ConfigError,
    EmbedderMismatch,
    KenningError,
    LoadError,
    MissingExtra,
    NotFound,
    UnknownBackend,
)
from .filters import Filters
from .index import Index
from .search import Hit
from .store import SQLiteStore, Store
from .sync import SyncReport
from .vectors import VectorIndex

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
    "LoadError",
    "MissingExtra",
    "NotFound",
    "SQLiteStore",
    "Store",
    "SyncReport",
    "UnknownBackend",
    "VectorIndex",
    "get_embedder",
]
__version__ = "0.1.0"
