"""Copy a whole index from one store to another (``kenning migrate --to URL``).

Roots, sources, chunks (with the text they were indexed by, so every chunk keeps its hash),
vectors and settings go across as they are: nothing is re-read or re-embedded, so a vault
that took an hour to embed moves to PostgreSQL (or back to a file) in the time it takes to
write the rows. The target must be empty; it is written in batches of files, each one
transaction, and the settings (embedder, chunking) last, so a copy cut short is visibly
unfinished (``kenning status`` shows no embedder) and can simply be run again into a fresh
target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kenning.errors import ConfigError
from kenning.ingest.sync import Progress
from kenning.store.base import Store

#: files per transaction
BATCH = 200
#: counters the target keeps for itself (they tell its own readers about its own writes)
_OWN = {"generation", "vectors_generation", "embedding", "store_id"}


@dataclass
class CopyReport:
    """What a copy moved."""

    roots: int = 0
    files: int = 0
    chunks: int = 0
    vectors: int = 0
    seconds: float = 0.0


def copy_index(source: Store, target: Store, progress: Progress | None = None) -> CopyReport:
    """Copy everything ``source`` holds into the empty ``target``."""
    if target.stats()["sources"] or target.roots() or target.get_meta("embedder"):
        raise ConfigError(
            f"{target.location} already holds an index; migrate into an empty one "
            "(a new database or a new file)"
        )
    t0 = time.perf_counter()
    report = CopyReport()
    for root in source.roots():
        target.add_root(root)
        report.roots += 1
    paths = sorted(source.sources())
    if progress:
        progress.stage("copy", len(paths))
    with target.bulk():
        _copy_files(source, target, paths, report, progress)
    for key, value in sorted(source.meta().items()):
        if key not in _OWN:
            target.set_meta(key, value)
    report.seconds = time.perf_counter() - t0
    return report


def _copy_files(
    source: Store, target: Store, paths: list[str], report: CopyReport, progress: Progress | None
) -> None:
    for i in range(0, len(paths), BATCH):
        batch = source.dump(paths[i : i + BATCH])
        hashes = {c.hash for _, chunks in batch for c in chunks}
        vectors = source.vectors_for(hashes)
        target.write_sources(batch, vectors)
        n = sum(len(chunks) for _, chunks in batch)
        report.files += len(batch)
        report.chunks += n
        report.vectors += len(vectors)
        if progress:
            progress.advance(len(batch), n)
