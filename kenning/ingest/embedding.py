"""The second phase of indexing: vectors for chunks that are already keyword-searchable.

Sync commits each file's chunks and keyword rows first, without vectors, so a large folder
answers keyword searches within seconds (hybrid search uses whatever has vectors so far).
This phase then embeds the chunks still waiting, longest runs of similar length together,
and commits each batch in its own transaction: a kill loses at most one batch, and the next
run picks up exactly what is missing. One process at a time embeds an index: a lock file
beside it is held while embedding, so a background worker and a foreground sync never
embed the same chunks twice, and ``kenning status`` can tell whether a worker is alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from kenning.embedders import Embedder
from kenning.errors import EmbedderChanged
from kenning.store.base import Lock, Store
from kenning.text.chunking import embedding_text

from .sync import Progress

#: chunks committed per transaction (about 10 s of work for MiniLM on 2 cores)
BATCH = 256
#: the meta key where the embedding process publishes its progress
PROGRESS_KEY = "embedding"


@dataclass
class EmbedReport:
    """What one embedding run did; ``busy`` when another process holds the index's lock."""

    embedded: int = 0
    left: int = 0
    busy: bool = False
    seconds: float = 0.0


class EmbedLock:
    """The index's ``embed`` lock (``Store.lock``): a lock file beside a SQLite index, an
    advisory lock in a server database. Both vanish with their holder, even after SIGKILL,
    so a stale lock never blocks the next worker."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: Lock | None = None

    def acquire(self) -> bool:
        self._held = self.store.lock("embed", wait=False)
        return self._held is not None

    def release(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None

    def held_elsewhere(self) -> bool:
        """True when another process is embedding this index right now."""
        if self._held is not None:
            return False
        if not self.acquire():
            return True
        self.release()
        return False


def embed_pending(
    store: Store,
    embedder: Embedder,
    progress: Progress | None = None,
    limit: int | None = None,
) -> EmbedReport:
    """Embed every chunk that waits for a vector (or about ``limit`` of them, for callers
    that interleave other work), unless another process is doing it."""
    t0 = time.perf_counter()
    report = EmbedReport()
    lock = EmbedLock(store)
    for _ in range(3):
        if not lock.acquire():
            report.busy = True
            break
        try:
            report.embedded += _embed_all(store, embedder, progress, limit)
        finally:
            store.set_meta(PROGRESS_KEY, "{}")
            lock.release()
        # A sync may have added chunks between our last look and the release, after it
        # found the lock taken: look once more now that it is free.
        if limit is not None or store.pending_count() == 0:
            break
    report.left = store.pending_count()
    report.seconds = time.perf_counter() - t0
    return report


def ensure_embedder(store: Store, embedder: Embedder) -> None:
    """Stop a process whose model is no longer the index's: another process may have
    swapped it (``kenning tune``, ``Index.switch_embedder``) since this one opened the index,
    and its vectors and queries would then be another model's, silently wrong."""
    raw = store.get_meta("embedder")
    stored = json.loads(raw) if raw else None
    if stored and not embedder.matches(stored):
        raise EmbedderChanged(
            store.location, stored.get("id"), stored.get("dim"), embedder.id, embedder.dim
        )


def _embed_all(
    store: Store, embedder: Embedder, progress: Progress | None, limit: int | None
) -> int:
    ensure_embedder(store, embedder)  # under the lock, which a model swap holds too
    total = store.pending_count()
    if total == 0:
        return 0
    # A window several batches wide, sorted by length, pads batches less.
    batch, window = (min(BATCH, limit), min(BATCH, limit)) if limit else (BATCH, 4 * BATCH)
    if progress:
        progress.stage("embedding", total, unit="chunks")
    started, done, after = time.time(), 0, 0
    _publish(store, started, done, embedder)
    seen: set[str] = set()
    while (limit is None or done < limit) and (rows := _pending(store, after, window)):
        after = rows[-1][0]
        texts: dict[str, str] = {}
        for _, digest, text in rows:
            if digest not in seen:
                texts.setdefault(digest, text)
        seen.update(texts)
        for part in _batches(texts, batch):
            matrix = embedder.embed_documents([texts[h] for h in part])
            store.write_vectors(dict(zip(part, matrix, strict=True)))
            done += len(part)
            _publish(store, started, done, embedder)
            if progress:
                progress.advance(len(part), len(part))
    return done


def _batches(texts: dict[str, str], size: int) -> Iterator[list[str]]:
    """The hashes of ``texts`` in batches of similar length: each pads less when
    ``embed_documents`` cuts it into the model's own batches. Characters are close enough
    here; ``embed_documents`` then orders each batch by the model's tokens, counting each
    text once (the tokens it counts are the ones it embeds)."""
    hashes = sorted(texts, key=lambda h: len(texts[h]))
    for start in range(0, len(hashes), size):
        yield hashes[start : start + size]


def every_chunk(store: Store) -> Iterator[tuple[int, str, str]]:
    """Every chunk's (id, hash, embedded text), read from the store a window at a time."""
    after = 0
    while rows := _pending(store, after, 4 * BATCH, everything=True):
        after = rows[-1][0]
        yield from rows


def _pending(
    store: Store, after: int, limit: int, everything: bool = False
) -> list[tuple[int, str, str]]:
    """``Store.pending``'s (id, hash, text) rows with each text as the model embeds it
    (``chunking.embedding_text``): the one place both embedding paths read chunks."""
    rows = store.pending(after, limit, everything=everything)
    return [(cid, digest, embedding_text(text)) for cid, digest, text in rows]


def embed_everything(
    store: Store, embedder: Embedder, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Every distinct chunk text embedded by ``embedder``, in memory: the vectors for
    ``Store.replace_vectors``, which swaps models in one transaction (``kenning tune``)."""
    texts: dict[str, str] = {}
    for _, digest, text in every_chunk(store):
        texts.setdefault(digest, text)
    if progress:
        progress.stage("re-embedding", len(texts), unit="chunks")
    vectors: dict[str, np.ndarray] = {}
    for part in _batches(texts, BATCH):
        vectors.update(zip(part, embedder.embed_documents([texts[h] for h in part]), strict=True))
        if progress:
            progress.advance(len(part), len(part))
    return vectors


def _publish(store: Store, started: float, done: int, embedder: Embedder) -> None:
    """Progress for ``kenning status`` in other processes (rate since this run started)."""
    elapsed = time.time() - started
    state = {
        "pid": os.getpid(),
        "runs_on": embedder.runs_on(),
        "started": started,
        "done": done,
        "rate": done / elapsed if done and elapsed > 0 else 0.0,
        "updated": time.time(),
    }
    store.set_meta(PROGRESS_KEY, json.dumps(state))


def embedding_status(store: Store) -> dict[str, Any]:
    """Chunks still waiting for vectors, and the embedding process's progress and ETA."""
    left = store.pending_count()
    running = EmbedLock(store).held_elsewhere()
    info: dict[str, Any] = {"pending": left, "running": running}
    if running:
        state = json.loads(store.get_meta(PROGRESS_KEY) or "{}")
        rate = float(state.get("rate") or 0.0)
        info.update(
            pid=state.get("pid"),
            done=state.get("done", 0),
            rate=round(rate, 1),
            runs_on=state.get("runs_on"),
            eta_seconds=round(left / rate) if rate > 0 else None,
        )
    return info


def start_worker(store: Store) -> int:
    """Start ``kenning embed`` as a daemon that outlives the command that started it; its pid.

    A short-lived ``sh`` starts the worker in the background in a session of its own and
    exits, so the worker belongs to init rather than to this process: no zombie and no
    unwaited child here. Its output goes to ``<index>.embed.log`` beside a file index. The
    worker takes the lock itself; when another process already holds it, the worker just exits.
    """
    side = store.side_path
    log = side + ".embed.log" if side else os.devnull
    launcher = subprocess.run(
        ["sh", "-c", 'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!', "sh", log]
        + [sys.executable, "-m", "kenning", "-q", "embed"],
        # The index goes in the environment: a server URL's password stays out of `ps`.
        env={**os.environ, "KENNING_INDEX": store.address},
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    return int(launcher.stdout.strip())
