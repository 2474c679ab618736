"""Exclusions: .kenningignore, --exclude, the vault's "Excluded files" and templates folder,
drawings and canvases. Left out of search, listed by status with the reason, and a file that
becomes excluded leaves the index on the next sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_notes
from typer.testing import CliRunner

from kenning import ChunkSpec, Index
from kenning.cli import app
from kenning.embedders import HashEmbedder
from kenning.errors import ConfigError
from kenning.index.watch import change_filter
from kenning.ingest import exclusions as ex

#: each note carries one word found nowhere else, so a keyword search tells if it is indexed
VAULT = {
    "tmux.md": "# tmux\n\nThe terminal multiplexer keeps sessions: word keptalpha.\n",
    "ideas/plan.md": "# Plan\n\nA plan for the garden: word keptbeta.\n",
    "ideas/Draft plan.md": "# Draft\n\nNot ready: word regexgamma.\n",
    "Daily/2024-01-01.md": "# Monday\n\nStand-up notes: word dailydelta.\n",
    "Daily notes.md": "# Daily notes\n\nA prefix, not a folder: word prefixepsilon.\n",
    "Templates/Meeting.md": "# {{title}}\n\nAttendees and agenda: word templatezeta.\n",
    "private/diary.md": "# Diary\n\nSecrets: word ignoredeta.\n",
    "scratch.tmp.md": "# Scratch\n\nThrowaway: word ignoredtheta.\n",
    "Drawing.excalidraw.md": "---\nexcalidraw-plugin: parsed\n---\n# Text Elements\ndrawiota\n",
    "Board.canvas": json.dumps({"nodes": [{"type": "text", "text": "canvaskappa"}]}),
    "keep/extra.md": "# Extra\n\nIndexed until ignored: word laterlambda.\n",
}
KENNINGIGNORE = "# comments and blank lines are fine\n\nprivate/\n*.tmp.md\n"
APP_JSON = {"userIgnoreFilters": ["Daily", "/draft/"], "alwaysUpdateLinks": True}
KEPT = {"keptalpha", "keptbeta", "laterlambda"}
GONE = {
    "regexgamma",
    "dailydelta",
    "prefixepsilon",
    "templatezeta",
    "ignoredeta",
    "ignoredtheta",
    "drawiota",
    "canvaskappa",
}


def write_vault(root: Path) -> Path:
    write_notes(root, VAULT)
    (root / ".kenningignore").write_text(KENNINGIGNORE)
    (root / ".obsidian").mkdir()
    (root / ".obsidian" / "app.json").write_text(json.dumps(APP_JSON))
    (root / ".obsidian" / "templates.json").write_text(json.dumps({"folder": "Templates"}))
    return root


def found(index: Index, word: str) -> list[str]:
    return [Path(h.path).name for h in index.search(word, k=5, mode="bm25")]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return write_vault(tmp_path.resolve() / "vault")


def open_index(tmp_path: Path) -> Index:
    return Index.open(tmp_path / "i.db", embedder=HashEmbedder(), chunking=ChunkSpec())


def test_excluded_files_are_not_searchable_and_status_says_why(tmp_path: Path, vault: Path) -> None:
    with open_index(tmp_path) as index:
        report = index.add([vault])
        assert report.added == 3 and not report.failed and not report.skipped
        indexed = {Path(p).relative_to(vault).as_posix() for p in index.store.sources()}
        assert indexed == {"tmux.md", "ideas/plan.md", "keep/extra.md"}
        for word in KEPT:
            assert found(index, word), word
        for word in GONE:
            assert found(index, word) == [], word
        why = {p.removeprefix(f"{vault}/"): r for p, r in report.excluded}
        assert why == {
            "private/": ex.IGNORED,  # a folder is left out whole, not entered
            "scratch.tmp.md": ex.IGNORED,
            "ideas/Draft plan.md": ex.OBSIDIAN,  # /draft/: a regex, case-insensitive
            "Daily/": ex.OBSIDIAN,  # "Daily": a path prefix, so the folder ...
            "Daily notes.md": ex.OBSIDIAN,  # ... and a note whose name starts with it
            "Templates/": ex.TEMPLATES,
            "Drawing.excalidraw.md": ex.DRAWING,
            "Board.canvas": ex.CANVAS,
        }
        status = {e["reason"]: e for e in index.status()["excluded"]}
        assert {r: e["count"] for r, e in status.items()} == {
            ex.IGNORED: 2,
            ex.OBSIDIAN: 3,
            ex.TEMPLATES: 1,
            ex.DRAWING: 1,
            ex.CANVAS: 1,
        }
        assert status[ex.TEMPLATES]["examples"] == [str(vault / "Templates") + "/"]
        assert all(e["roots"] == [str(vault.resolve())] for e in status.values())
    # The record outlives the process: a new one reads it without a sync.
    with open_index(tmp_path) as index:
        assert sum(e["count"] for e in index.status()["excluded"]) == 8


def test_a_file_that_becomes_excluded_leaves_the_index(tmp_path: Path, vault: Path) -> None:
    with open_index(tmp_path) as index:
        index.add([vault])
        assert found(index, "laterlambda") == ["extra.md"]
        (vault / ".kenningignore").write_text(KENNINGIGNORE + "keep/\n")
        report = index.sync()
        assert report.deleted == 1 and report.added == 0
        assert found(index, "laterlambda") == []
        assert str(vault / "keep" / "extra.md") not in index.store.sources()
        status = {e["reason"]: e for e in index.status()["excluded"]}
        assert status[ex.IGNORED]["count"] == 3
        assert str(vault / "keep") + "/" in status[ex.IGNORED]["examples"]
        # The vault's own setting changes too: the daily notes come back when it lets them.
        (vault / ".obsidian" / "app.json").write_text(json.dumps({"userIgnoreFilters": []}))
        (vault / ".kenningignore").unlink()
        back = index.sync()
        assert back.added == 6  # keep/, private/, scratch, the draft and both daily notes
        assert found(index, "dailydelta") == ["2024-01-01.md"]
        assert found(index, "templatezeta") == []  # the templates folder stays out
        reasons = {e["reason"] for e in index.status()["excluded"]}
        assert reasons == {ex.TEMPLATES, ex.DRAWING, ex.CANVAS}


def test_a_root_inside_a_vault_follows_the_vaults_settings(tmp_path: Path, vault: Path) -> None:
    (vault / "ideas" / "Templates").mkdir()  # not the vault's templates folder: kept
    (vault / "ideas" / "Templates" / "t.md").write_text("# T\n\nword nestedmu\n")
    with open_index(tmp_path) as index:
        index.add([vault / "ideas"])
        names = {Path(p).name for p in index.store.sources()}
        assert names == {"plan.md", "t.md"}  # "Draft plan.md" matches /draft/ in the vault
        assert found(index, "nestedmu") == ["t.md"]


def test_exclude_option_is_kept_with_the_root(tmp_path: Path, vault: Path) -> None:
    with open_index(tmp_path) as index:
        index.add([vault], exclude=["ideas/", "tmux.md"])
        names = {Path(p).name for p in index.store.sources()}
        assert names == {"extra.md"}
    with open_index(tmp_path) as index:  # a later sync, in another process, still applies it
        (vault / "ideas" / "new.md").write_text("# New\n\nword newnu\n")
        report = index.sync()
        assert report.added == 0 and found(index, "newnu") == []
        status = {e["reason"]: e["count"] for e in index.status()["excluded"]}
        assert status[ex.OPTION] == 2
        index.add([vault], exclude=[])  # an empty list clears the root's globs
        assert {Path(p).name for p in index.store.sources()} >= {"tmux.md", "new.md"}
        index.remove(vault)
        assert index.store.get_meta("root_options") == "{}"
        assert index.status()["excluded"] == []


def test_cli_add_exclude_and_status(tmp_path: Path, vault: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "cli.db")
    base = ["--index", db, "-e", "hash"]
    bad = runner.invoke(app, [*base, "add", str(vault), "--exclude", "!"])
    assert bad.exit_code != 0 and "--exclude" in bad.output
    assert not Path(db).exists()  # refused before the index was created
    added = runner.invoke(app, [*base, "add", str(vault), "--exclude", "keep/", "--json"])
    assert added.exit_code == 0, added.output
    report = json.loads(added.stdout)
    assert [str(vault / "keep") + "/", ex.OPTION] in report["excluded"]
    status = runner.invoke(app, ["--index", db, "status", "--json"])
    listed = {e["reason"]: e["count"] for e in json.loads(status.stdout)["excluded"]}
    assert listed == {
        ex.IGNORED: 2,
        ex.OPTION: 1,
        ex.OBSIDIAN: 3,
        ex.TEMPLATES: 1,
        ex.DRAWING: 1,
        ex.CANVAS: 1,
    }
    text = runner.invoke(app, ["--index", db, "status"]).stdout
    assert "9 paths excluded on purpose" in text
    assert f"{ex.TEMPLATES} ×1: vault/Templates/" in text


def test_obsidian_filters_read_as_obsidian_reads_them() -> None:
    prefix, regex = ex.obsidian_filters(["Archive/", r"/\.pdf$/", "", 3, "/([/"])
    assert prefix.search("archive/2020/a.md") and not prefix.search("notes/Archive/a.md")
    assert regex.search("papers/A.PDF") and not regex.search("papers/a.pdf.md")


def test_a_bad_kenningignore_stops_the_sync_before_any_change(tmp_path: Path, vault: Path) -> None:
    with open_index(tmp_path) as index:
        index.add([vault])
        before = set(index.store.sources())
        (vault / ".kenningignore").write_text("!\n")
        with pytest.raises(ConfigError, match=".kenningignore"):
            index.sync()
        assert set(index.store.sources()) == before


def test_watch_resyncs_when_the_rules_change(tmp_path: Path) -> None:
    relevant = change_filter([str(tmp_path)], None)
    for rules in (".kenningignore", ".obsidian/app.json", ".obsidian/templates.json"):
        assert relevant(None, str(tmp_path / rules)), rules
    for hidden in (".obsidian/workspace.json", ".git/index", "notes/.kenningignore.swp"):
        assert not relevant(None, str(tmp_path / hidden)), hidden
