"""Catching an in-memory cache up with the store's change log: one protocol for the BM25
postings (``keywords``) and the vector index (``vectors``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from kenning.store.base import Store


class LoggedCache(Protocol):
    """A cache that knows the last change of the log it holds (``seq``)."""

    seq: int
    _lock: threading.RLock


def apply_log(cache: LoggedCache, store: Store, apply: Callable[[list[int]], None]) -> bool:
    """Hand ``apply`` the ids of the chunks changed since ``cache.seq`` (the log and what it
    names read in one snapshot, so a sync is seen whole or not at all) and move ``seq`` on.
    False when those changes were compacted away: the cache must be rebuilt."""
    if store.changes_since(cache.seq) == []:  # the common case, without the lock
        return True
    with cache._lock, store.snapshot():
        changes = store.changes_since(cache.seq)
        if changes is None:
            return False
        if changes:
            apply(sorted({cid for _, cid, _ in changes}))
            cache.seq = changes[-1][0]
    return True
