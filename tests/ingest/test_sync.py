from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_notes

from kenning import ChunkSpec, Index
from kenning.embedders import HashEmbedder
from kenning.text.chunking import chunk_document
from kenning.text.loaders import load


def chunk_rows(index: Index) -> set[tuple[str, int, int, str]]:
    rows = index.store.chunks(index.store.chunk_ids().tolist()).values()
    return {(r.path, r.start, r.end, r.hash) for r in rows}


def counts(index: Index) -> tuple[int, int, int]:
    """Chunks, keyword rows and stored embeddings, through the public Store interface."""
    store = index.store
    return store.chunk_count(), len(list(store.keyword_rows())), store.stats()["embeddings"]


def long_note(n: int) -> str:
    paras = [
        f"Paragraph {i} about topic{i} with words alpha{i} beta{i} gamma{i}." for i in range(n)
    ]
    return "# Long note\n\n" + "\n\n".join(paras) + "\n"


def test_add_then_unchanged_sync_embeds_nothing(index: Index, notes: Path) -> None:
    emb: HashEmbedder = index.embedder  # type: ignore[assignment]
    report = index.add([notes])
    assert report.added == 5 and not report.failed
    chunks, fts, vectors = counts(index)
    assert chunks == fts and vectors == len({r[3] for r in chunk_rows(index)})
    assert emb.embedded == vectors
    before = emb.embedded
    again = index.sync()
    assert again.unchanged == 5 and emb.embedded == before
    # Touching a file (new mtime, same bytes) re-reads it but embeds nothing.
    os.utime(notes / "ml/softmax.md", ns=(1, 1))
    touched = index.sync()
    assert touched.unchanged == 5 and touched.changed == 0 and emb.embedded == before


def test_edit_reembeds_only_changed_chunks(tmp_path: Path) -> None:
    spec = ChunkSpec(size=24, overlap=0)
    emb = HashEmbedder()
    root = write_notes(tmp_path / "n", {"long.md": long_note(30), "other.md": "# Other\n\nstays\n"})
    with Index.open(tmp_path / "i.db", embedder=emb, chunking=spec) as index:
        index.add([root])
        old_hashes = {r[3] for r in chunk_rows(index)}
        text = long_note(30).replace("Paragraph 17 about", "Paragraph 17 (edited) about")
        (root / "long.md").write_text(text)
        new_chunks = chunk_document(load(root / "long.md", text.encode()), spec, emb.count_tokens)
        expected = {c.hash for c in new_chunks} - old_hashes
        assert 1 <= len(expected) < len(new_chunks)
        before = emb.embedded
        report = index.sync()
        assert report.changed == 1 and report.unchanged == 1
        assert emb.embedded - before == len(expected) == report.chunks_embedded
        # Old vectors no longer used are dropped; every chunk has its vector.
        chunks, fts, vectors = counts(index)
        assert chunks == fts and vectors == len({r[3] for r in chunk_rows(index)})


def test_delete_removes_chunks_vectors_and_keywords(index: Index, notes: Path) -> None:
    index.add([notes])
    assert index.search("sourdough starter", k=3, mode="bm25")[0].path.endswith("bread.md")
    (notes / "cooking/bread.md").unlink()
    report = index.sync()
    assert report.deleted == 1
    assert not [r for r in chunk_rows(index) if r[0].endswith("bread.md")]
    chunks, fts, vectors = counts(index)
    assert chunks == fts and vectors == len({r[3] for r in chunk_rows(index)})
    assert not index.search("sourdough starter", k=3, mode="bm25")
    assert all(not h.path.endswith("bread.md") for h in index.search("sourdough", mode="dense"))


def test_move_is_detected_and_not_reembedded(index: Index, notes: Path) -> None:
    emb: HashEmbedder = index.embedder  # type: ignore[assignment]
    index.add([notes])
    before_rows = {(s, e, h) for _, s, e, h in chunk_rows(index)}
    before = emb.embedded
    (notes / "archive").mkdir()
    (notes / "ml/softmax.md").rename(notes / "archive/softmax.md")
    report = index.sync()
    assert report.moved == 1 and report.deleted == 0 and report.added == 0
    assert emb.embedded == before
    assert {(s, e, h) for _, s, e, h in chunk_rows(index)} == before_rows
    assert any(r[0].endswith("archive/softmax.md") for r in chunk_rows(index))


def test_renamed_note_is_reindexed_under_its_new_name(index: Index, notes: Path) -> None:
    """In a vault the file name is the note's title, which every chunk's context carries."""
    index.add([notes])
    (notes / "ml/softmax.md").rename(notes / "ml/softmax-function.md")
    report = index.sync()
    assert report.added == 1 and report.deleted == 1 and report.moved == 0
    paths = {r[0] for r in chunk_rows(index)}
    assert any(p.endswith("softmax-function.md") for p in paths)
    assert not any(p.endswith("ml/softmax.md") for p in paths)


def test_changed_chunking_rechunks_everything(tmp_path: Path, notes: Path) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder(), chunking=ChunkSpec(200, 0)) as a:
        a.add([notes])
    with Index.open(tmp_path / "i.db", chunking=ChunkSpec(16, 0)) as b:
        report = b.sync()
        assert report.changed == 5
        assert b.status()["chunking"] == {"size": 16, "overlap": 0}
    with Index.open(tmp_path / "i.db") as c:  # remembers the new chunking
        assert c.chunking == ChunkSpec(16, 0)
        assert c.sync().unchanged == 5


def test_bad_files_are_reported_and_the_rest_indexed(index: Index, tmp_path: Path) -> None:
    root = write_notes(tmp_path / "mixed", {"good.md": "# Good\n\nfine note\n"})
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage")
    (root / "binary.md").write_bytes(b"\x00\x01\x02PNG")
    (root / "empty.md").write_bytes(b"")
    (root / "latin1.txt").write_bytes("d\xe9j\xe0 vu".encode("latin-1"))
    (root / "long-line.md").write_bytes(b"word " * (50 * 1024 * 1024 // 5))
    (root / "bad-yaml.md").write_text("---\ntags: [a\n---\nyaml body\n")
    (root / "photo.jpg").write_bytes(b"\xff\xd8")
    report = index.add([root])
    failed = dict(report.failed)
    assert set(failed) == {
        str(root / n) for n in ("corrupt.pdf", "binary.md", "latin1.txt", "long-line.md")
    }
    assert "PDF" in failed[str(root / "corrupt.pdf")]
    assert "too large" in failed[str(root / "long-line.md")]
    assert dict(report.warnings).keys() == {str(root / "bad-yaml.md")}
    assert report.skipped == [(str(root / "photo.jpg"), "unsupported type .jpg")]
    indexed = {r[0] for r in chunk_rows(index)}
    assert indexed == {str(root / "good.md"), str(root / "bad-yaml.md")}
    problems = {p["path"]: p for p in index.status()["problems"]}
    assert problems[str(root / "latin1.txt")]["reason"].startswith("invalid UTF-8")
    assert problems[str(root / "bad-yaml.md")]["status"] == "warning"
    # An empty note is a note with no text yet, not a problem.
    assert str(root / "empty.md") not in problems
    assert index.store.sources()[str(root / "empty.md")].status == "ok"
    # A failed file that is fixed gets indexed on the next sync.
    (root / "latin1.txt").write_text("now it has text")
    assert index.sync().changed == 1
    assert str(root / "latin1.txt") in {r[0] for r in chunk_rows(index)}


@pytest.mark.slow
def test_a_raised_size_limit_indexes_a_50mb_single_line(index: Index, tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "line.txt").write_bytes(b"lorem ipsum " * (50 * 1024 * 1024 // 12))
    report = index.add([root], max_file_bytes=100 * 1024 * 1024)
    assert report.added == 1 and not report.failed
    assert counts(index)[0] > 1000


def test_remove_root_drops_its_files(index: Index, notes: Path, tmp_path: Path) -> None:
    other = write_notes(tmp_path / "other", {"x.md": "# X\n\nxylophone\n"})
    index.add([notes, other])
    assert index.remove(other) == 1
    assert not [r for r in chunk_rows(index) if r[0].startswith(str(other))]
    assert index.status()["roots"] == [str(notes.resolve())]


def test_a_vanished_root_keeps_its_files(index: Index, notes: Path, tmp_path: Path) -> None:
    index.add([notes])
    before = chunk_rows(index)
    moved = tmp_path / "elsewhere"
    notes.rename(moved)  # like an unmounted drive
    report = index.sync()
    assert report.missing_roots == [str(notes)] and report.deleted == 0
    assert chunk_rows(index) == before
    moved.rename(notes)
    assert index.sync().unchanged == 5


def test_a_note_that_breaks_keeps_its_last_good_version(index: Index, notes: Path) -> None:
    index.add([notes])
    bread = notes / "cooking/bread.md"
    good = bread.read_text()
    bread.write_bytes("caf\xe9 ruined by a bad save".encode("latin-1"))
    report = index.sync()
    assert [(Path(p).name, r) for p, r in report.failed] == [
        ("bread.md", "invalid UTF-8 at byte 3")
    ]
    assert index.search("sourdough starter", k=1, mode="bm25")[0].path == str(bread)
    problem = {p["path"]: p for p in index.status()["problems"]}[str(bread)]
    assert problem["status"] == "stale" and "last good version" in problem["reason"]
    assert index.sync().failed == []  # not retried until the file changes again
    bread.write_text(good + "\nFixed.\n")
    assert index.sync().changed == 1
    assert str(bread) not in {p["path"] for p in index.status()["problems"]}
