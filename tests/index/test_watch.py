"""`watch` on real files: creates, edits, renames and deletes show up in search, and a burst
of 1,000 writes is indexed without a miss. The watcher runs in its own thread with its own
index connection; the test reads through another, as a second process would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.index.watch import watch

#: generous, so a loaded CI machine does not flake; the figure in the README is measured
WAIT = 10.0


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Path, list]]:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "seed.md").write_text("# Seed\n\nThe first note.\n")
    db = tmp_path / "idx" / "index.db"
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([root])
    stop, reports, errors = threading.Event(), [], []

    def run() -> None:
        try:
            with Index.open(db) as index:
                watch(index, lambda r, c: reports.append((r, c)), stop, step_ms=50)
        except BaseException as e:  # surfaced by the test, not lost in the thread
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not reports and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the watcher is armed once its first sync has reported
    yield root, db, reports
    stop.set()
    thread.join(timeout=WAIT)
    assert not thread.is_alive() and not errors, errors


def until(db: Path, check: Callable[[Index], bool]) -> float:
    """Seconds until ``check`` holds on a fresh read of the index (fails after WAIT)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < WAIT:
        with Index.open(db) as index:
            if check(index):
                return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError("the change never reached the index")


def names(index: Index, query: str) -> list[str]:
    return [Path(h.path).name for h in index.search(query, mode="bm25")]


def test_creates_edits_renames_and_deletes(watched: tuple[Path, Path, list]) -> None:
    root, db, reports = watched
    (root / "zebra.md").write_text("# Zebra\n\nStripes on a zebra.\n")
    until(db, lambda i: names(i, "zebra") == ["zebra.md"])
    (root / "zebra.md").write_text("# Zebra\n\nA quagga is an extinct zebra.\n")
    until(db, lambda i: names(i, "quagga") == ["zebra.md"])
    (root / "zebra.md").rename(root / "quagga.md")  # a new name: the note's new title
    until(db, lambda i: names(i, "quagga") == ["quagga.md"])
    (root / "old").mkdir()
    (root / "quagga.md").rename(root / "old" / "quagga.md")
    until(
        db,
        lambda i: (
            [h.path for h in i.search("quagga", mode="bm25")] == [str(root / "old" / "quagga.md")]
        ),
    )
    assert any(r.moved == 1 for r, _ in reports)  # same name, found by hash: nothing re-embedded
    (root / "old" / "quagga.md").unlink()
    until(db, lambda i: names(i, "quagga") == [])
    with Index.open(db) as index:
        assert index.status()["files"] == 1


def test_a_burst_of_a_thousand_writes_misses_nothing(watched: tuple[Path, Path, list]) -> None:
    root, db, reports = watched
    burst = root / "burst"
    burst.mkdir()
    for i in range(1000):
        (burst / f"n{i:04d}.md").write_text(f"# Note {i}\n\nword{i} appears here.\n")
    until(db, lambda i: i.status()["files"] == 1001)
    with Index.open(db) as index:
        assert names(index, "word777") == ["n0777.md"]
    passes = [r for r, changed in reports if changed]
    assert len(passes) < 100  # debounced into a few passes, not one per file
