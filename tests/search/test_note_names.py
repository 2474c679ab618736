"""Every name of a note finds it: a query that is a note's title, file name (without
extension) or one of its front-matter aliases puts that note first in every mode, and the hit
says which name matched (``Hit.matched_name``, in ``--json`` too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_notes
from typer.testing import CliRunner

from kenning import Index
from kenning.cli import app
from kenning.embedders import HashEmbedder
from kenning.filters import Filters
from kenning.search.names import NoteNames

MODES = ("bm25", "dense", "hybrid")
#: words that every name shares, so plain ranking alone would put the decoy first
DECOY = "tmux cheatsheet terminal multiplexer mux creme brulee dessert custard tart " * 6
VAULT = {
    "tools/tmux.md": (
        "---\naliases: [terminal multiplexer, Mux]\n---\n# Tmux Cheatsheet\n\n"
        "Press prefix then % to split a pane.\n"
    ),
    "recipes/recipe-42.md": (
        "---\naliases: Dessert, Custard tart\n---\n# Crème brûlée\n\nBake in a water bath.\n"
    ),
    "zettel/202401011200.md": "---\naliases: SRS\n---\n# Spaced repetition\n\nReview cards.\n",
    "decoy.md": f"# Decoy\n\n{DECOY}\n\nspaced repetition srs 202401011200 recipe 42\n",
}
#: each note's names as written, and the query that must find it by each
NAMES = {
    "tmux.md": ["Tmux Cheatsheet", "terminal multiplexer", "Mux", "tmux"],
    "recipe-42.md": ["Crème brûlée", "Dessert", "Custard tart", "recipe-42"],
    "202401011200.md": ["Spaced repetition", "SRS", "202401011200"],
}


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("names")
    root = tmp / "vault"
    write_notes(root, VAULT)
    db = tmp / "index.db"
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([root])
    return db, root


def search(db: Path, query: str, **kwargs: object) -> list:
    with Index.open(db, embedder=HashEmbedder()) as index:
        return index.search(query, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
def test_every_note_is_first_for_each_of_its_names(vault: tuple[Path, Path], mode: str) -> None:
    db, _ = vault
    for file, names in NAMES.items():
        for name in names:
            hits = search(db, name, k=3, mode=mode)
            assert Path(hits[0].path).name == file, (name, mode)
            assert hits[0].matched_name == name
            assert all(h.matched_name is None for h in hits[1:])
            assert len(hits) <= 3


@pytest.mark.parametrize("mode", MODES)
def test_case_accents_and_punctuation_are_folded(vault: tuple[Path, Path], mode: str) -> None:
    db, _ = vault
    for query, file, name in [
        ("creme brulee", "recipe-42.md", "Crème brûlée"),
        ("TMUX  cheatsheet", "tmux.md", "Tmux Cheatsheet"),
        ("Terminal Multiplexer!", "tmux.md", "terminal multiplexer"),
        ("recipe 42", "recipe-42.md", "recipe-42"),
    ]:
        top = search(db, query, k=2, mode=mode)[0]
        assert (Path(top.path).name, top.matched_name) == (file, name)


def test_without_the_decoy_ranking_the_names_would_not_win(vault: tuple[Path, Path]) -> None:
    """The vault is built so that plain BM25 puts the decoy first for a name: the promotion,
    not the ranking, is what the tests above see."""
    db, _ = vault
    hits = search(db, "terminal multiplexer", k=2, mode="bm25")
    assert Path(hits[1].path).name == "decoy.md"
    assert hits[1].bm25_rank == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_query_that_is_no_name_ranks_as_before(
    vault: tuple[Path, Path], mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = vault
    for query in ("split a pane", "tmux dessert", "water bath review"):
        hits = search(db, query, k=4, mode=mode)
        assert all(h.matched_name is None for h in hits)
        monkeypatch.setattr(NoteNames, "matching", lambda self, q: [])
        plain = search(db, query, k=4, mode=mode)
        monkeypatch.undo()
        assert [(h.chunk_id, h.score) for h in hits] == [(h.chunk_id, h.score) for h in plain]


@pytest.mark.parametrize("mode", MODES)
def test_a_named_note_the_filters_exclude_is_not_promoted(
    vault: tuple[Path, Path], mode: str
) -> None:
    db, _ = vault
    outside = search(db, "Mux", k=4, mode=mode, filters=Filters.parse(paths=["recipes/**"]))
    assert bool(outside) == (mode != "bm25")  # no recipe has the word "mux"
    assert all(Path(h.path).name == "recipe-42.md" for h in outside)
    assert all(h.matched_name is None for h in outside)
    inside = search(db, "Mux", k=4, mode=mode, filters=Filters.parse(where=["aliases=mux"]))
    assert [(Path(h.path).name, h.matched_name) for h in inside] == [("tmux.md", "Mux")]


def test_a_rename_and_a_new_alias_are_seen_by_the_next_search(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    root.mkdir()
    (root / "a.md").write_text("# Alpha\n\nfirst note\n")
    (root / "b.md").write_text("# Beta\n\nalpha alpha alpha gamma gamma\n")
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        index.add([root])
        assert index.search("gamma", k=2, mode="bm25")[0].matched_name is None
        (root / "a.md").write_text("---\naliases: [Gamma]\n---\n# Alpha\n\nfirst note\n")
        index.sync()
        top = index.search("gamma", k=2, mode="bm25")[0]
        assert (Path(top.path).name, top.matched_name) == ("a.md", "Gamma")


def test_search_json_says_which_name_matched(vault: tuple[Path, Path]) -> None:
    db, _ = vault
    result = CliRunner().invoke(
        app, ["--index", str(db), "search", "custard TART", "--json", "-k", "2"]
    )
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert Path(hits[0]["path"]).name == "recipe-42.md"
    assert hits[0]["matched_name"] == "Custard tart"
    assert hits[1]["matched_name"] is None


def test_the_api_hit_says_which_name_matched(vault: tuple[Path, Path]) -> None:
    from starlette.testclient import TestClient

    from kenning.serve.app import create_app

    db, _ = vault
    with TestClient(create_app(db)) as client:
        r = client.get("/api/search", params={"q": "srs", "k": 2, "mode": "bm25"})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
    assert (Path(hits[0]["path"]).name, hits[0]["matched_name"]) == ("202401011200.md", "SRS")
    assert [h["matched_name"] for h in hits[1:]] == [None] * (len(hits) - 1)
