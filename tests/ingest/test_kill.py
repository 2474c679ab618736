"""SIGKILL during ingestion never corrupts the index; the next sync finishes the job.

The kill is placed by watching the index from this process, not by sleeping: the test waits
until a given share of the files is committed, kills, and then checks that the kill really
landed mid-ingest (the writer was alive, and the index held some but not all files).
Everything is read through the public ``Store`` interface, so the suite carries over to
other stores.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.store import Store, open_store

pytestmark = pytest.mark.slow  # kill -9 of real subprocesses, on the til notes


def snapshot(store: Store) -> tuple[set, set, int, int]:
    """Chunks (with source path and text), vectors by chunk hash, keyword rows, embeddings."""
    ids = store.chunk_ids().tolist()
    rows = store.chunks(ids)
    chunks = {(r.path, r.start, r.end, r.hash, r.text) for r in rows.values()}
    vids, matrix = store.vectors()
    vectors = {(rows[int(i)].hash, matrix[n].tobytes()) for n, i in enumerate(vids)}
    return chunks, vectors, len(list(store.keyword_rows())), store.stats()["embeddings"]


def snapshot_of(db: Path) -> tuple[set, set, int, int]:
    with open_store(db, create=False) as store:
        return snapshot(store)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kenning.cli import main; main()", *args]


def kill_when(proc: subprocess.Popen, db: Path, ready, timeout: float = 60) -> None:
    """SIGKILL ``proc`` as soon as ``ready(store)`` holds; fail if it finished first."""
    deadline = time.monotonic() + timeout
    while not db.exists():
        assert proc.poll() is None, "the command ended before the index file appeared"
        time.sleep(0.005)
    with open_store(db, create=False) as store:
        while not ready(store):
            assert proc.poll() is None, "the command finished before the kill point"
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.005)
    assert proc.poll() is None, "the command finished before the kill landed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def corpus(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple, int]:
    root = tmp_path_factory.mktemp("corpus") / "til"
    shutil.copytree(til_notes, root)
    clean = tmp_path_factory.mktemp("clean") / "index.db"
    with Index.open(clean, embedder=HashEmbedder()) as idx:
        idx.add([root])
        files = idx.status()["files"]
        return root, snapshot(idx.store), files


@pytest.mark.parametrize("share", [0.0, 0.2, 0.45, 0.7, 0.9])
def test_kill_during_add_then_sync_completes(
    corpus: tuple[Path, tuple, int], tmp_path: Path, share: float
) -> None:
    root, clean, total = corpus
    db = tmp_path / "index.db"
    proc = subprocess.Popen(cli("--index", str(db), "--embedder", "hash", "-q", "add", str(root)))

    def ready(store: Store) -> bool:
        return store.stats()["sources"] > share * total

    kill_when(proc, db, ready)
    with open_store(db, create=False) as store:
        partial = snapshot(store)
        done = store.stats()["sources"]
    assert 0 < done < total, f"the kill landed after {done} of {total} files"
    assert partial[2] == len(partial[0])  # keyword rows match chunks even mid-way
    with Index.open(db) as idx:  # opens cleanly, remembers the root and the embedder
        assert idx.store.roots() == [str(root)]
        idx.sync()
    assert snapshot_of(db) == clean


@pytest.mark.parametrize("share", [0.0, 0.3, 0.8])
def test_kill_during_embedding_then_sync_completes(
    corpus: tuple[Path, tuple, int], tmp_path: Path, share: float
) -> None:
    """The second phase: every file is keyword-indexed, vectors are being added."""
    root, clean, total = corpus
    chunks = len(clean[0])
    db = tmp_path / "index.db"
    with Index.open(db, embedder=HashEmbedder(delay=0.01)):  # paces embedding, same vectors
        pass
    proc = subprocess.Popen(cli("--index", str(db), "-q", "add", str(root)))

    def ready(store: Store) -> bool:
        stats = store.stats()
        return stats["sources"] == total and stats["embeddings"] >= share * chunks

    kill_when(proc, db, ready)
    with open_store(db, create=False) as store:
        partial = snapshot(store)
        pending = store.pending_count()
    assert partial[0] == clean[0], "every chunk was keyword-indexed before embedding began"
    assert partial[2] == len(partial[0])
    assert partial[1] < clean[1] and 0 < pending, "the kill landed after embedding finished"
    assert partial[1] <= clean[1]  # the vectors written so far are the clean build's
    with Index.open(db) as idx:
        assert idx.sync().chunks_embedded == pending
    assert snapshot_of(db) == clean


def test_kill_during_resync_of_edits(corpus: tuple[Path, tuple, int], tmp_path: Path) -> None:
    root, _, _ = corpus
    work = tmp_path / "til"
    shutil.copytree(root, work)
    db = tmp_path / "index.db"
    with Index.open(db, embedder=HashEmbedder()) as idx:
        idx.add([work])
        start_gen = idx.store.get_meta("generation")
        last_sync = idx.store.get_meta("last_sync")
    files = sorted(work.rglob("*.md"))
    for f in files[::3]:
        # Each edit says something of its own: one line added to a third of the notes would
        # be template text, which a sync that re-reads few files does not learn anew.
        f.write_text(f.read_text() + f"\n\nA later thought about {f.stem.replace('-', ' ')}.\n")
    for f in files[1::50]:
        f.unlink()
    files[2].rename(files[2].with_name("renamed-note.md"))
    proc = subprocess.Popen(cli("--index", str(db), "-q", "sync"))
    # The first committed batch moves the generation on; the sync is still running then.
    kill_when(proc, db, lambda store: store.get_meta("generation") != start_gen)
    with open_store(db, create=False) as store:
        assert store.get_meta("last_sync") == last_sync, "the sync had already finished"
    with Index.open(db) as idx:
        idx.sync()
    clean = tmp_path / "clean.db"
    with Index.open(clean, embedder=HashEmbedder()) as idx:
        idx.add([work])
        expected = snapshot(idx.store)
    assert snapshot_of(db) == expected
