"""``Service``: what the server does, one library call per route, as plain JSON-able dicts.

The JSON API, the OpenAI-compatible routes, the MCP tools and the web page all call these
methods, so a search gives the same hits wherever it is asked. Each method borrows an index
from the ``IndexPool`` for its duration (see ``pool`` for why), and raises kenning's own
exceptions, which ``errors`` turns into status codes. Answers live in ``answers``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from kenning.answer.answerer import Answering
from kenning.answer.memory import Conversations
from kenning.errors import ConfigError, NotFound
from kenning.eval.history import History
from kenning.filters import Filters
from kenning.index import Index
from kenning.ingest.sync import Progress
from kenning.text.loaders import load
from kenning.text.tokens import query_terms

from .pool import POOL_SIZE, IndexPool

_ID = re.compile(r"[0-9]{1,18}")


class Service:
    """The index behind a server: a pool of indexes and the configured answerer."""

    def __init__(
        self,
        location: str | Path,
        embedder: str | None = None,
        pool_size: int = POOL_SIZE,
        answering: Answering | None = None,
    ) -> None:
        self.location = str(location)
        self.pool = IndexPool(self.location, pool_size, embedder)
        self.answering = answering or Answering(self.location)
        self._cache: dict[str, tuple[str, Any]] = {}
        self._cache_lock = threading.Lock()
        #: a generative backend keeps per-answer state and often one model: one answer at a time
        self.llm_lock = threading.Lock()

    def close(self) -> None:
        self.pool.close()

    # -- reading ---------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        where: list[str] | None = None,
        paths: list[str] | None = None,
        types: list[str] | None = None,
        mode: str = "hybrid",
        fusion: str = "weighted",
    ) -> dict[str, Any]:
        """Hits as ``Hit.to_dict()`` plus ``doc_id``, the query's terms, and how many chunks
        still wait for vectors (they are found by keyword only until then)."""
        filters = Filters.parse(where, paths, types)
        with self.pool.borrow() as index:
            hits = index.search(query, k=k, filters=filters, mode=mode, fusion=fusion)
            docs = doc_ids(index, [h.chunk_id for h in hits])
            pending = self._cached(index, "pending", index.pending)
        return {
            "query": query,
            "terms": query_terms(query),
            "hits": [{**h.to_dict(), "doc_id": docs.get(h.chunk_id)} for h in hits],
            "pending": pending,
            "mode": mode,
        }

    def facets(self) -> dict[str, Any]:
        """Tags, types and top-level folders of the indexed sources, with their counts."""
        with self.pool.borrow() as index:
            return self._cached(index, "facets", lambda: _facets(index))

    def document(self, doc_id: str | int) -> dict[str, Any]:
        """An indexed source's text, as loaded when it was indexed: the text that chunk
        offsets index into. Only indexed sources are served, looked up by id."""
        text_id = str(doc_id)
        if not _ID.fullmatch(text_id):
            raise NotFound(f"no document {text_id!r}: document ids are numbers")
        with self.pool.borrow() as index:
            by_id = self._cached(
                index, "sources", lambda: {s.id: s for s in index.store.sources().values()}
            )
        row = by_id.get(int(text_id))
        if row is None or row.status == "failed":
            raise NotFound(f"no indexed document with id {text_id}")
        path = Path(row.path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise NotFound(f"{row.path} is indexed but cannot be read now ({e.strerror})") from e
        doc = load(path, data)
        return {
            "doc_id": row.id,
            "path": row.path,
            "root": row.root,
            "title": row.title or doc.title,
            "type": row.type,
            "text": doc.text,
            "metadata": row.metadata,
            # the file changed since it was indexed: offsets may be off until the next sync
            "changed": hashlib.sha256(data).hexdigest() != row.hash,
        }

    def links(self, note: str) -> dict[str, Any]:
        """A note's outgoing links, backlinks and unresolved links: ``kenning links --json``
        (``Index.links``); ``NotFound`` for a note the index does not hold."""
        with self.pool.borrow() as index:
            return index.links(note).to_dict()

    def status(self) -> dict[str, Any]:
        with self.pool.borrow() as index:
            return index.status()

    def embed(self, texts: list[str], kind: str = "document") -> tuple[np.ndarray, int]:
        """Vectors of ``texts`` under the index's embedder, as it embeds documents (chunks)
        or queries, and the number of model tokens read."""
        if kind not in ("document", "query"):
            raise ConfigError(f"input_type must be 'document' or 'query', not {kind!r}")
        with self.pool.borrow() as index:
            emb = index.embedder
            if kind == "query":
                vectors = np.stack([emb.embed_query(t) for t in texts])
            else:
                vectors = emb.embed_documents(texts)
            return vectors, sum(emb.count_tokens(t) for t in texts)

    def embedder_id(self) -> str:
        with self.pool.borrow() as index:
            return index.embedder.id

    def conversations(self) -> list[dict[str, Any]]:
        """Stored conversations, oldest first (ids as strings, as the API takes them)."""
        with Conversations(self.location) as convos:
            return [{**c, "id": str(c["id"])} for c in convos.list()]

    def conversation(self, conversation_id: str | int) -> dict[str, Any]:
        """One conversation with its turns; ``NotFound`` for an unknown id."""
        with Conversations(self.location) as convos:
            found = find_conversation(convos, conversation_id)
            turns = [
                {**t, "answer_json": t["details"].get("answer")} for t in convos.turns(found["id"])
            ]
            return {**found, "id": str(found["id"]), "turns": turns}

    def eval_runs(self) -> list[dict[str, Any]]:
        """The evaluation history, oldest first; a run's id is its place in it (from 1)."""
        with History(self.location) as history:
            return [{"id": str(n), **run} for n, run in enumerate(history.runs(), 1)]

    def eval_run(self, run_id: str | int) -> dict[str, Any]:
        runs = self.eval_runs()
        text = str(run_id)
        if not _ID.fullmatch(text) or not 1 <= int(text) <= len(runs):
            raise NotFound(f"no evaluation run {text!r}; there are {len(runs)}")
        return runs[int(text) - 1]

    # -- writing ---------------------------------------------------------------

    def sync(self, progress: Progress | None = None) -> dict[str, Any]:
        """Rescan every root, as `kenning sync` does; one sync at a time (``pool.Busy``)."""
        with self.pool.writer() as index:
            return asdict(index.sync(progress=progress))

    def _cached(self, index: Index, key: str, build: Any) -> Any:
        """``build()``, kept until the index's chunks or vectors change (their generation
        counters move on with every such commit)."""
        store = index.store
        generation = f"{store.get_meta('generation')}/{store.get_meta('vectors_generation')}"
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        value = build()
        with self._cache_lock:
            self._cache[key] = (generation, value)
        return value


def find_conversation(convos: Conversations, conversation_id: str | int) -> dict[str, Any]:
    """The stored conversation with this id (as listed), or ``NotFound``."""
    text = str(conversation_id)
    for row in convos.list() if _ID.fullmatch(text) else []:
        if row["id"] == int(text):
            return row
    raise NotFound(f"no conversation {text!r}; GET /api/conversations lists them")


def doc_ids(index: Index, chunk_ids: list[int]) -> dict[int, int]:
    """The source (document) id of each chunk."""
    return {cid: row.source_id for cid, row in index.store.chunks(chunk_ids).items()}


def _facets(index: Index) -> dict[str, Any]:
    tags: dict[str, int] = {}
    types: dict[str, int] = {}
    folders: dict[str, int] = {}
    for row in index.store.sources().values():
        if row.status == "failed":
            continue
        types[row.type] = types.get(row.type, 0) + 1
        raw = row.metadata.get("tags") or []
        for tag in [raw] if isinstance(raw, str) else raw:
            tags[str(tag)] = tags.get(str(tag), 0) + 1
        try:
            parts = Path(row.path).relative_to(row.root).parts
        except ValueError:  # a root that is a file, or a path outside its root
            parts = ()
        if len(parts) > 1:
            folders[parts[0]] = folders.get(parts[0], 0) + 1
    return {
        "tags": sorted(tags),
        "types": sorted(types),
        "folders": sorted(folders),
        "counts": {"tags": tags, "types": types, "folders": folders},
    }
