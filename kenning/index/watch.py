"""``watch``: keep an index in step with its roots as files change.

The roots are watched with ``watchfiles`` (inotify and its kin; polling where the platform has
nothing better). Changes are gathered until the folder has been quiet for ``step_ms`` (at most
``debounce_ms``), so a burst of writes (a ``git checkout``, a sync client) costs one pass. Each
pass is ``Index.sync``'s keyword phase: unchanged files cost one stat, renames are found by
hash, and changed files are keyword-searchable as soon as it commits. Vectors are added in
between, a slice of ``embed_slice`` chunks at a time while the folder is quiet, so a large
backlog never holds back the next change. Every batch is its own transaction, so stopping at
any moment (Ctrl-C) leaves a consistent index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kenning.errors import MissingExtra, NotFound
from kenning.ingest.embedding import EmbedReport
from kenning.ingest.exclusions import IGNORE_FILE
from kenning.ingest.sync import Progress, SyncReport, own_file

from .index import Index

#: hidden files whose change re-syncs: they change what is excluded (``ingest.exclusions``)
RULE_FILES = {IGNORE_FILE, ".obsidian/app.json", ".obsidian/templates.json"}
#: called after each pass with its report and the changed paths that set it off
OnSync = Callable[[SyncReport, set[str]], None]
#: called after each slice of embedding
OnEmbed = Callable[[EmbedReport], None]


def watch(
    index: Index,
    on_sync: OnSync | None = None,
    stop_event: Any = None,
    debounce_ms: int = 1000,
    step_ms: int = 100,
    progress: Progress | None = None,
    on_embed: OnEmbed | None = None,
    embed_slice: int = 64,
    idle_ms: int = 300,
) -> None:
    """Sync once, then again after every burst of changes, until ``stop_event`` is set (or
    Ctrl-C). Blocks; run it in a thread to do other work meanwhile."""
    try:
        import watchfiles
    except ImportError as e:  # pragma: no cover - a core dependency
        raise MissingExtra("watchfiles", None) from e
    roots = [r for r in index.store.roots() if Path(r).exists()]
    if not roots:
        raise NotFound("no roots to watch; add one with `kenning add PATH`")
    side = index.store.side_path
    relevant = change_filter(roots, Path(side).resolve() if side else None)

    report = index.sync(progress=progress, embed=False)
    if on_sync:
        on_sync(report, set())
    for changes in watchfiles.watch(
        *roots,
        watch_filter=relevant,
        debounce=debounce_ms,
        step=step_ms,
        stop_event=stop_event,
        raise_interrupt=False,
        rust_timeout=idle_ms,
        yield_on_timeout=True,
    ):
        if not changes:  # quiet: add vectors to what waits for them, a slice at a time
            if index.pending():
                done = index.embed(limit=embed_slice)
                if on_embed and done.embedded:
                    on_embed(done)
            continue
        t0 = time.perf_counter()
        report = index.sync(embed=False)
        report.seconds = time.perf_counter() - t0
        if on_sync:
            on_sync(report, {path for _, path in changes})


def change_filter(roots: list[str], index_path: Path | None) -> Callable[[Any, str], bool]:
    """Which changed paths start a sync: not the index's own files (they change with every
    sync, wherever the index sits, even in a folder above the notes), and nothing under a
    hidden folder of a root (``.git``, ``.obsidian``; the roots' own path may be hidden),
    except the files that say what to exclude (``.kenningignore``, the vault's settings)."""
    resolved = [Path(r).resolve() for r in roots]

    def relevant(_change: Any, path: str) -> bool:
        p = Path(path)
        if own_file(p, index_path):
            return False
        for root in resolved:
            if p == root or root in p.parents:
                rel = p.relative_to(root)
                if rel.as_posix() in RULE_FILES:
                    return True
                return not any(part.startswith(".") for part in rel.parts)
        return True

    return relevant
