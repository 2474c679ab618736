"""SIGKILL during a sync leaves the link table consistent with the sources: a note's links
are written in the transaction that writes its chunks, so at every kill point each indexed
note holds exactly the links of one version of its file (the one its chunks were read
from), no link row outlives its note, and the next sync ends where a clean build does.

The kill is placed as in ``test_kill.py``: by watching the index, not by sleeping.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from test_kill import cli, kill_when

from kenning import Index
from kenning.embedders import HashEmbedder
from kenning.store import Store, open_store
from kenning.text.links import Link

pytestmark = pytest.mark.slow  # kill -9 of real subprocesses on 2,000 notes

N = 2000
#: a note's links as (source path, links in order), for every indexed note
Links = dict[str, list[Link]]


def note(i: int, salt: str = "") -> str:
    return (
        f"# Note {i}{salt}\n\nSee [[note-{(i * 7 + 1) % N}]], "
        f"![[note-{(i * 13 + 2) % N}#Part|the part]], [[missing-{i % 50}]] and "
        f"[md](../f{(i + 1) % 10}/note-{(i + 1) % N}.md).{salt}\n\n## Part\n\nwords of note {i}\n"
    )


def write_vault(root: Path) -> Path:
    for i in range(N):
        p = root / f"f{i % 10}" / f"note-{i}.md"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(note(i))
    return root.resolve()


def links_of(store: Store) -> Links:
    return {p: store.links_from(p) for p in store.sources()}


def orphans(db: Path) -> int:
    """Link rows whose note is no longer indexed (the foreign key cascades; this checks it)."""
    with sqlite3.connect(db) as con:
        sql = "SELECT count(*) FROM links WHERE source_id NOT IN (SELECT id FROM sources)"
        return int(con.execute(sql).fetchone()[0])


def backlinks(db: Path, notes: list[str]) -> dict[str, list[tuple[str, str]]]:
    with Index.open(db) as idx:
        return {n: [(x.source, x.target) for x in idx.links(n).backlinks] for n in notes}


def clean_build(root: Path, db: Path) -> Links:
    with Index.open(db, embedder=HashEmbedder()) as idx:
        idx.add([root])
        return links_of(idx.store)


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Links, Path]:
    tmp = tmp_path_factory.mktemp("links-kill")
    root = write_vault(tmp / "vault")
    clean_db = tmp / "clean.db"
    clean = clean_build(root, clean_db)
    assert len(clean) == N and all(len(x) == 4 for x in clean.values())
    return root, clean, clean_db


@pytest.mark.parametrize("share", [0.25, 0.6])
def test_kill_during_add_leaves_links_consistent(
    vault: tuple[Path, Links, Path], tmp_path: Path, share: float
) -> None:
    root, clean, clean_db = vault
    db = tmp_path / "index.db"
    proc = subprocess.Popen(cli("--index", str(db), "--embedder", "hash", "-q", "add", str(root)))
    kill_when(proc, db, lambda store: store.stats()["sources"] > share * N)
    with open_store(db, create=False) as store:
        partial = links_of(store)
    assert 0 < len(partial) < N, f"the kill landed after {len(partial)} of {N} notes"
    assert orphans(db) == 0
    assert all(partial[p] == clean[p] for p in partial)  # each indexed note, all its links
    with Index.open(db) as idx:
        idx.sync()
    with open_store(db, create=False) as store:
        assert links_of(store) == clean
    sample = [f"note-{i}" for i in range(0, N, 397)]
    assert backlinks(db, sample) == backlinks(clean_db, sample)


def test_kill_during_a_resync_of_link_edits_renames_and_deletes(
    vault: tuple[Path, Links, Path], tmp_path: Path
) -> None:
    source, _, _ = vault
    db = tmp_path / "index.db"
    root = write_vault(tmp_path / "vault")
    assert root != source
    with Index.open(db, embedder=HashEmbedder()) as idx:
        idx.add([root])
        before = links_of(idx.store)
        start_gen = idx.store.get_meta("generation")
        last_sync = idx.store.get_meta("last_sync")
    files = sorted(root.rglob("*.md"))
    for n, f in enumerate(files[::3]):  # links re-pointed: each edit says its own thing
        f.write_text(note((n * 31 + 5) % N, salt=f" edit {n}"))
    for f in files[1::40]:
        f.unlink()
    for f in (f for f in files[2::97] if f.exists()):
        f.rename(f.with_name("renamed-" + f.name))
    proc = subprocess.Popen(cli("--index", str(db), "-q", "sync"))
    kill_when(proc, db, lambda store: store.get_meta("generation") != start_gen)
    with open_store(db, create=False) as store:
        assert store.get_meta("last_sync") == last_sync, "the sync had already finished"
        partial = links_of(store)
    after = clean_build(root, tmp_path / "clean.db")
    assert orphans(db) == 0
    # every indexed note holds the links of its old file or of its new one, never a mix
    assert all(partial[p] in (before.get(p), after.get(p)) for p in partial)
    assert any(partial[p] != before.get(p) for p in partial), "the kill landed before any change"
    assert any(partial[p] != after.get(p) for p in partial), "the kill landed after every change"
    with Index.open(db) as idx:
        idx.sync()
    with open_store(db, create=False) as store:
        assert links_of(store) == after
    assert orphans(db) == 0
    renamed = files[2].with_name("renamed-" + files[2].name)
    kept = next(f for f in files[4::3] if f.exists())
    sample = [renamed.stem, files[2].stem, kept.stem]  # the old name is a note no more
    sample = [n for n in sample if n != files[2].stem]
    assert backlinks(db, sample) == backlinks(tmp_path / "clean.db", sample)
