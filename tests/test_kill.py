"""SIGKILL during ingestion never corrupts the index; the next sync finishes the job."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kenning import Index
from kenning.embedders import HashEmbedder


def snapshot(db: Path) -> tuple[set, set, int]:
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    chunks = set(
        con.execute(
            'SELECT s.path, c.start, c."end", c.hash, c.text FROM chunks c '
            "JOIN sources s ON s.id = c.source_id"
        )
    )
    vectors = set(con.execute("SELECT hash, vector FROM embeddings"))
    fts = con.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    con.close()
    return chunks, vectors, fts


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kenning.cli import main; main()", *args]


@pytest.fixture(scope="module")
def corpus(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple]:
    root = tmp_path_factory.mktemp("corpus") / "til"
    shutil.copytree(til_notes, root)
    clean = tmp_path_factory.mktemp("clean") / "index.db"
    with Index.open(clean, embedder=HashEmbedder()) as idx:
        idx.add([root])
    return root, snapshot(clean)


@pytest.mark.parametrize("delay", [0.7, 1.0, 1.4, 1.9, 2.6])
def test_kill_during_add_then_sync_completes(
    corpus: tuple[Path, tuple], tmp_path: Path, delay: float
) -> None:
    root, clean = corpus
    db = tmp_path / "index.db"
    proc = subprocess.Popen(cli("--index", str(db), "--embedder", "hash", "-q", "add", str(root)))
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = snapshot(db) if db.exists() else (set(), set(), 0)
    assert partial[2] == len(partial[0])  # keyword rows match chunks even mid-way
    with Index.open(db) as idx:  # opens cleanly, remembers the root and the embedder
        assert idx.store.roots() == [str(root)]
        idx.sync()
    assert snapshot(db) == clean


def test_kill_during_resync_of_edits(corpus: tuple[Path, tuple], tmp_path: Path) -> None:
    root, _ = corpus
    work = tmp_path / "til"
    shutil.copytree(root, work)
    db = tmp_path / "index.db"
    with Index.open(db, embedder=HashEmbedder()) as idx:
        idx.add([work])
    files = sorted(work.rglob("*.md"))
    for f in files[::3]:
        f.write_text(f.read_text() + "\n\nAn extra paragraph added later.\n")
    for f in files[1::50]:
        f.unlink()
    files[2].rename(files[2].with_name("renamed-note.md"))
    proc = subprocess.Popen(cli("--index", str(db), "-q", "sync"))
    time.sleep(1.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Index.open(db) as idx:
        idx.sync()
    clean = tmp_path / "clean.db"
    with Index.open(clean, embedder=HashEmbedder()) as idx:
        idx.add([work])
    assert snapshot(db) == snapshot(clean)
