"""Keyword first, vectors after: search works while embedding catches up, in this process or
in a background worker, and only one process embeds an index at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_notes

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.ingest.embedding import EmbedLock


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kenning", *args]


def vectors_by_hash(index: Index) -> dict[str, bytes]:
    ids, matrix = index.store.vectors()
    rows = index.store.chunks(ids.tolist())
    return {rows[int(i)].hash: matrix[n].tobytes() for n, i in enumerate(ids)}


def test_keyword_pass_is_searchable_before_any_vector(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "notes")
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        report = index.add([notes], embed=False)
        assert report.chunks_indexed > 0 and report.chunks_embedded == 0
        assert report.chunks_pending == index.pending() == index.store.chunk_count()
        assert index.store.stats()["embeddings"] == 0
        for mode in ("bm25", "hybrid"):  # hybrid still answers, from keywords alone
            hits = index.search("tomatoes basil", k=3, mode=mode)
            assert hits and "Gardening" in hits[0].text
        assert index.search("tomatoes", mode="dense") == []
        status = index.status()["embedding"]
        assert status["pending"] == report.chunks_pending and not status["running"]

        done = index.embed()
        assert done.embedded == report.chunks_pending and done.left == 0 and not done.busy
        assert index.pending() == 0
        assert index.search("tomatoes", mode="dense")  # the searcher saw the new vectors
        two_phase = vectors_by_hash(index)
    with Index.open(tmp_path / "one.db", embedder=HashEmbedder()) as clean:
        clean.add([notes])
        assert vectors_by_hash(clean) == two_phase


def test_partial_vectors_are_searched_and_the_rest_found_by_keyword(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "notes")
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        index.add([notes], embed=False)
        first = index.store.pending(0, 2)
        index.store.write_vectors(
            dict(
                zip(
                    [h for _, h, _ in first],
                    index.embedder.embed_documents([t for *_, t in first]),
                    strict=True,
                )
            )
        )
        dense = index.search("anything at all", k=10, mode="dense")
        assert {h.chunk_id for h in dense} <= {cid for cid, _, _ in first}
        assert index.pending() == index.store.chunk_count() - 2


def test_only_one_process_embeds_an_index(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "notes")
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        index.add([notes], embed=False)
        other = EmbedLock(index.store)  # another process's lock (flock is per open file)
        assert other.acquire()
        try:
            report = index.embed()
            assert report.busy and report.embedded == 0 and report.left > 0
            assert index.status()["embedding"]["running"]
            synced = index.sync()
            assert synced.embedding_busy and synced.chunks_pending == report.left
        finally:
            other.release()
        assert not index.embed().busy and index.pending() == 0


@pytest.mark.slow
def test_add_background_returns_at_once_and_a_worker_finishes(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "notes")
    for n in range(40):
        (notes / f"extra{n}.md").write_text(f"# Extra {n}\n\nNote number {n} about pears.\n")
    db = tmp_path / "i.db"
    with Index.open(db, embedder=HashEmbedder(delay=15.0)):  # outlasts a search on a busy machine
        pass
    out = subprocess.run(
        cli("--index", str(db), "add", str(notes), "--background", "--json"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(out.stdout)
    assert report["chunks_embedded"] == 0 and report["chunks_pending"] > 0
    # A search from another process works right away and says what is missing.
    found = subprocess.run(
        cli("--index", str(db), "search", "pears"), capture_output=True, text=True, timeout=60
    )
    assert found.returncode == 0 and "Extra" in found.stdout
    assert "still being embedded" in " ".join(found.stderr.split())
    deadline = time.monotonic() + 60
    seen_running = False
    while True:
        status = json.loads(
            subprocess.run(
                cli("--index", str(db), "status", "--json"), capture_output=True, text=True
            ).stdout
        )["embedding"]
        seen_running |= status["running"]
        if status["pending"] == 0 and not status["running"]:
            break
        assert time.monotonic() < deadline, f"the worker never finished: {status}"
        time.sleep(0.2)
    # A second worker started while the first runs would have left at once; here the first
    # has finished, so `kenning embed` finds nothing to do.
    again = subprocess.run(
        cli("--index", str(db), "embed", "--json"), capture_output=True, text=True, check=True
    )
    assert json.loads(again.stdout)["embedded"] == 0
    with Index.open(db) as index, Index.open(tmp_path / "c.db", embedder=HashEmbedder()) as c:
        c.add([notes])
        assert vectors_by_hash(index) == vectors_by_hash(c)
    assert seen_running


@pytest.mark.slow
def test_a_second_worker_leaves_while_the_first_embeds(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "notes")
    db = tmp_path / "i.db"
    with Index.open(db, embedder=HashEmbedder(delay=5.0)) as index:
        index.add([notes], embed=False)
        first = subprocess.Popen(cli("--index", str(db), "-q", "embed"))
        try:
            deadline = time.monotonic() + 30
            while not index.status()["embedding"]["running"]:
                assert first.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            t = time.monotonic()
            second = subprocess.run(
                cli("--index", str(db), "embed", "--json"), capture_output=True, text=True
            )
            assert json.loads(second.stdout)["busy"] is True
            assert time.monotonic() - t < 5.0 and first.poll() is None
            info = index.status()["embedding"]
            assert info["pid"] == first.pid and info["pending"] > 0
            assert info["runs_on"] == "numpy"  # what the worker's embedder runs on
            shown = subprocess.run(
                cli("--index", str(db), "status"), capture_output=True, text=True
            ).stdout
            line = " ".join(shown.split())  # (the table wraps it)
            assert f"worker pid {first.pid}" in line and "chunks/s on numpy" in line
        finally:
            first.kill()
            first.wait()
        # Killed mid-batch: nothing half-written, and the next run completes the work.
        assert not index.status()["embedding"]["running"]
        index.embedder = HashEmbedder()  # no delay: the same vectors, quicker
        index.searcher.embedder = index.embedder
        assert index.embed().left == 0
        ids, matrix = index.store.vectors()
        assert len(ids) == index.store.chunk_count()
        assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
