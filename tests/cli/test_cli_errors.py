"""The errors a user meets in the first hour (issue 30), each through the real command line:
one line that names the path, option or field and says what to do, the documented exit code
(``kenning.errors.EXIT_CODES``), and nothing left on disk by a command that failed."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_notes
from typer.testing import CliRunner, Result

from kenning import Index
from kenning.cli import app
from kenning.embedders import HashEmbedder
from kenning.errors import EXIT_CODES, ConfigError, KenningError
from kenning.filters import Filters
from kenning.index.watch import change_filter, watch
from kenning.ingest.sync import walk
from kenning.text.loaders import load

runner = CliRunner()

VAULT = {
    "projects/kenning-ideas.md": "---\nstatus: draft\ntags: [ml]\n---\n# Ideas\n\nA local "
    "search engine for notes.\n",
    "daily/2025-01-02.md": "---\nstatus: done\n---\n# Monday\n\nBought flour for sourdough.\n",
}


def kenning(*args: str) -> Result:
    return runner.invoke(app, list(args))


def tree(folder: Path) -> set[Path]:
    """Every file and folder under ``folder``."""
    return set(folder.rglob("*"))


def error_line(result: Result) -> str:
    """The one error line on stderr: rich must not wrap it, nor add a traceback."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "unexpected error" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return write_notes(tmp_path / "vault", VAULT)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no index in it and no $KENNING_INDEX: the default location."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KENNING_INDEX", raising=False)
    return tmp_path


@pytest.fixture
def indexed(tmp_path: Path, vault: Path) -> Path:
    db = tmp_path / "i.db"
    assert kenning("-i", str(db), "-e", "hash", "-q", "add", str(vault)).exit_code == 0
    return db


# ---- the exit codes are documented -------------------------------------------------------


def test_help_documents_every_exit_code() -> None:
    result = kenning("--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.output
    text = " ".join(result.output.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {' '.join(meaning.split()[:3])}" in text, code

    def classes(cls: type) -> Iterator[type]:
        yield cls
        for sub in cls.__subclasses__():
            yield from classes(sub)

    assert {c.exit_code for c in classes(KenningError)} <= EXIT_CODES.keys()  # type: ignore[attr-defined]


# ---- an index path that cannot hold an index ------------------------------------------------


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_reader_that_stops_early_ends_the_command_quietly(
    indexed: Path, output: list[str]
) -> None:
    """`kenning search ... | head`: a closed pipe is no crash, whichever writer met it."""
    import subprocess

    command = [sys.executable, "-m", "kenning", "-i", str(indexed), "search", "search", *output]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first line is written
        stderr = proc.stderr.read()
        assert proc.wait(timeout=60) == 141
    assert stderr == b""
    assert 141 in EXIT_CODES


@pytest.mark.parametrize("command", ["status", "add"])
@pytest.mark.parametrize("kind", ["folder", "note", "under a file", "under /proc"])
def test_an_index_path_that_is_no_index_is_exit_4(
    tmp_path: Path, vault: Path, command: str, kind: str
) -> None:
    notes = write_notes(tmp_path / "notes", {"a.md": "# A\n\ntext\n"})
    location = {
        "folder": notes,
        "note": notes / "a.md",
        "under a file": notes / "a.md" / "x.db",
        "under /proc": Path("/proc/nope/x.db"),
    }[kind]
    if kind == "under /proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    before, text = tree(tmp_path), (notes / "a.md").read_bytes()
    args = ["add", str(vault)] if command == "add" else ["status"]
    result = kenning("-i", str(location), "-e", "hash", *args)
    exists = kind in ("folder", "note")
    # a path where no index can be is no index for `status` (5), no place for one for `add`
    assert result.exit_code == (4 if exists or command == "add" else 5), result.output
    line = error_line(result)
    assert str(location) in line and ("--index" in line or "kenning add" in line)
    assert tree(tmp_path) == before and (notes / "a.md").read_bytes() == text
    assert not Path("/proc/nope").exists()


def test_a_folder_that_holds_an_index_is_named_in_the_hint(indexed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    (folder / ".kenning").mkdir(parents=True)
    os.link(indexed, folder / ".kenning" / "index.db")
    result = kenning("-i", str(folder), "status")
    assert result.exit_code == 4
    assert f"did you mean --index {folder / '.kenning' / 'index.db'}?" in error_line(result)


# ---- the serve extra -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve"], ["mcp"], ["serve", "--watch"]])
@pytest.mark.parametrize("missing", ["starlette", "fastapi", "uvicorn", "mcp"])
def test_serve_without_its_extra_names_it(
    tmp_path: Path,
    indexed: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    missing: str,
) -> None:
    before = tree(tmp_path)
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: import fails
    result = kenning("-i", str(indexed), *command)
    assert result.exit_code == 3, result.output
    line = error_line(result)
    assert "pip install 'kenning[serve]'" in line
    assert tree(tmp_path) == before


def test_a_serve_package_that_fails_to_import_names_the_extra(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the up-front check: mcp is there, but too old to have what kenning imports."""
    for name in [m for m in sys.modules if m.startswith(("kenning.serve", "mcp"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp.server.mcpserver", None)
    result = kenning("-i", str(indexed), "serve")
    assert result.exit_code == 3, result.output
    assert "'mcp'" in error_line(result) and "kenning[serve]" in result.stderr


# ---- a command that fails before its job creates nothing ------------------------------------


def test_add_of_a_missing_folder_creates_no_index(here: Path, vault: Path) -> None:
    before = tree(here)
    result = kenning("-e", "hash", "add", str(vault), str(here / "missing" / "folder"))
    assert result.exit_code == 5
    assert str(here / "missing" / "folder") in error_line(result)
    assert tree(here) == before  # no ./.kenning/index.db
    assert kenning("search", "flour").exit_code == 5  # so search says there is no index


@pytest.mark.parametrize(
    ("embedder", "named"),
    [("nope", "'nope'"), ("hash:size=3", "['size']"), ("hash:dim", "'hash:dim'")],
)
def test_add_with_a_bad_embedder_creates_no_index(
    here: Path, vault: Path, embedder: str, named: str
) -> None:
    before = tree(here)
    result = kenning("-e", embedder, "add", str(vault))
    assert result.exit_code == 2, result.output
    assert named in error_line(result)
    assert tree(here) == before


def test_a_bad_embedder_for_a_new_index_in_a_new_folder_leaves_no_folder(
    tmp_path: Path, vault: Path
) -> None:
    before = tree(tmp_path)
    db = tmp_path / "a" / "b" / "index.db"
    assert kenning("-i", str(db), "-e", "nope", "add", str(vault)).exit_code == 2
    assert tree(tmp_path) == before


# ---- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "fix"),
    [
        ("tag==ml", "write tag=ml"),
        ("date>>2024", "write date>2024"),
        ("date=>2024", "write date>=2024"),
        ("status<>draft", "use =, !=, >=, <=, > or <"),
    ],
)
def test_a_malformed_operator_is_an_error(
    tmp_path: Path, indexed: Path, where: str, fix: str
) -> None:
    before = tree(tmp_path)
    for command in ("search", "ask"):
        result = kenning("-i", str(indexed), command, "flour", "--where", where)
        assert result.exit_code == 2, result.output
        line = error_line(result)
        assert repr(where) in line and fix in line
    assert tree(tmp_path) == before


def test_a_quoted_value_may_start_with_an_operator_character(indexed: Path) -> None:
    assert Filters.parse(["title='=x'"]).where[0].value == "=x"
    assert kenning("-i", str(indexed), "search", "flour", "--where", "title='=x'").exit_code == 0


def test_a_field_no_note_has_warns_with_close_names(indexed: Path) -> None:
    result = kenning("-i", str(indexed), "search", "ideas", "--where", "statu=draft")
    assert result.exit_code == 0
    assert "statu" in result.stderr and "did you mean status?" in result.stderr
    assert "no results" in result.stderr and result.stdout == ""
    result = kenning("-i", str(indexed), "search", "ideas", "--where", "status=draft", "--json")
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert "kenning-ideas.md" in result.stdout
    # tag is an alias of tags, title and path are columns: none of them warns
    for where in ("tag=ml", "title=Ideas", "path=x"):
        assert "warning" not in kenning("-i", str(indexed), "search", "x", "--where", where).stderr
    asked = kenning("-i", str(indexed), "ask", "what ideas?", "--where", "stauts!=draft")
    assert asked.exit_code == 0 and "did you mean status" in asked.stderr


def test_the_known_fields_follow_the_notes(
    indexed: Path, vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warn = Filters.parse(["status=draft"])
    with Index.open(indexed) as index:
        assert index.filter_warnings(warn) == []
    (vault / "projects" / "kenning-ideas.md").unlink()
    (vault / "daily" / "2025-01-02.md").write_text("# Monday\n\nNo front matter now.\n")
    with Index.open(indexed) as index:
        index.sync()
        assert "no indexed note has the field 'status'" in index.filter_warnings(warn)[0]
        # an index last synced before the fields were kept: they are read from the sources
        monkeypatch.setattr(index.store, "get_meta", lambda key: None)
        assert "field 'status'" in index.filter_warnings(warn)[0]


@pytest.mark.parametrize(
    ("pattern", "found"),
    [
        ("vault/projects/**", {"kenning-ideas.md"}),  # as the results table shows it
        ("projects/**", {"kenning-ideas.md"}),  # under the root
        ("vault/**", {"kenning-ideas.md", "2025-01-02.md"}),
        ("vault/*.md", set()),  # no note at the top of the vault
        ("other/projects/**", set()),  # another root's name
        ("**/daily/*.md", {"2025-01-02.md"}),
    ],
)
def test_path_globs_match_paths_as_the_results_show_them(
    indexed: Path, vault: Path, pattern: str, found: set[str]
) -> None:
    result = kenning("-i", str(indexed), "search", "notes flour", "--path", pattern, "--json")
    assert result.exit_code == 0, result.output
    shown = {Path(json.loads(line)["path"]).name for line in result.stdout.splitlines()}
    assert shown == found
    with Index.open(indexed) as index:  # the reference semantics agree with the store's
        rows = index.store.sources().values()
        matched = {Path(r.path).name for r in rows if Filters.parse(paths=[pattern]).matches(r)}
    assert matched == found


# ---- an empty query --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_is_an_error(
    tmp_path: Path, indexed: Path, command: str, query: str
) -> None:
    before = tree(tmp_path)
    result = kenning("-i", str(indexed), command, query)
    assert result.exit_code == 2, result.output
    assert "query is empty" in error_line(result)
    assert result.stdout == "" and tree(tmp_path) == before
    with Index.open(indexed) as index, pytest.raises(ConfigError, match="query is empty"):
        index.search(query)  # the library refuses it too (and so the HTTP API, with 400)


# ---- failures are never quiet ----------------------------------------------------------------


@pytest.mark.parametrize("flags", [["-q"], [], ["--json"], ["-q", "--json"]])
def test_add_prints_failures_even_when_quiet_and_exits_7(
    tmp_path: Path, vault: Path, flags: list[str]
) -> None:
    (vault / "bad.md").write_bytes(b"\xff\xfe\x00\x00")
    (vault / "latin1.txt").write_bytes("d\xe9j\xe0 vu".encode("latin-1"))
    db = tmp_path / "i.db"
    result = kenning("-i", str(db), "-e", "hash", "add", str(vault), *flags)
    assert result.exit_code == 7, result.output
    if "--json" in flags:  # the failures are in the report, for the script that reads it
        failed = dict(json.loads(result.stdout)["failed"])
        assert failed.keys() == {str(vault / "bad.md"), str(vault / "latin1.txt")}
    else:
        assert f"failed  {vault / 'bad.md'}: binary" in result.stderr
        assert f"failed  {vault / 'latin1.txt'}: invalid UTF-8" in result.stderr
    assert "2 files or folders could not be indexed" in result.stderr
    if "-q" in flags:
        assert "files scanned" not in result.stderr  # quiet: no summary, no progress
    # everything else is indexed; a sync with nothing new to fail exits 0
    assert "kenning-ideas.md" in kenning("-i", str(db), "search", "ideas", "--json").stdout
    assert kenning("-i", str(db), "-q", "sync").exit_code == 0


def test_an_empty_note_is_indexed_as_an_empty_note(tmp_path: Path, vault: Path) -> None:
    (vault / "Untitled.md").write_bytes(b"")
    (vault / "blank.txt").write_bytes(b"  \n\n")
    doc = load(vault / "Untitled.md", b"")
    assert (doc.type, doc.text, doc.title) == ("markdown", "", "Untitled")
    db = tmp_path / "i.db"
    result = kenning("-i", str(db), "-e", "hash", "add", str(vault))
    assert result.exit_code == 0, result.output
    assert "failed" not in result.stderr
    with Index.open(db) as index:
        sources = index.store.sources()
        assert sources[str(vault / "Untitled.md")].status == "ok"
        assert sources[str(vault / "blank.txt")].status == "ok"
        assert index.status()["problems"] == []
    # once written, it is found
    (vault / "Untitled.md").write_text("# Untitled\n\nA quokka lives here.\n")
    assert kenning("-i", str(db), "-q", "sync").exit_code == 0
    assert "Untitled.md" in kenning("-i", str(db), "search", "quokka", "--json").stdout


def _unreadable(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``folder`` fail to list, as mode 000 does for anyone but root."""
    real = os.scandir

    def scandir(path: os.PathLike[str] | str = ".") -> object:
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_folder_is_reported_like_an_unreadable_file(
    tmp_path: Path, vault: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "i.db"
    assert kenning("-i", str(db), "-e", "hash", "-q", "add", str(vault)).exit_code == 0
    _unreadable(monkeypatch, vault / "daily")
    (vault / "projects" / "new.md").write_text("# New\n\nA new idea.\n")
    result = kenning("-i", str(db), "-q", "sync")
    assert result.exit_code == 7, result.output
    assert f"failed  {vault / 'daily'}: cannot read folder (Permission denied)" in result.stderr
    with Index.open(db) as index:  # what was indexed under it stays, the rest goes on
        paths = set(index.store.sources())
    assert {str(vault / "daily" / "2025-01-02.md"), str(vault / "projects" / "new.md")} <= paths
    monkeypatch.undo()
    assert kenning("-i", str(db), "-q", "sync").exit_code == 0


def test_walk_lists_what_it_cannot_read(tmp_path: Path, vault: Path, monkeypatch) -> None:
    _unreadable(monkeypatch, vault / "daily")
    unreadable: list[tuple[str, str]] = []
    files = [p.name for p, _ in walk(vault, None, unreadable)]
    assert files == ["kenning-ideas.md"]
    assert unreadable == [(str(vault / "daily"), "cannot read folder (Permission denied)")]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads a mode-000 folder"
)
def test_a_mode_000_folder_is_reported(tmp_path: Path, vault: Path) -> None:
    (vault / "daily").chmod(0)
    try:
        result = kenning("-i", str(tmp_path / "i.db"), "-e", "hash", "-q", "add", str(vault))
    finally:
        (vault / "daily").chmod(0o755)
    assert result.exit_code == 7
    assert f"{vault / 'daily'}: cannot read folder" in result.stderr


# ---- watch with the index in a folder above the notes ---------------------------------------


def test_the_watch_filter_skips_only_the_index_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    relevant = change_filter([str(home / "vault")], home / "notes.db")
    for own in (
        "notes.db",
        "notes.db-wal",
        "notes.db-shm",
        "notes.db-journal",
        "notes.db.embed.lock",
    ):
        assert not relevant(None, str(home / own))
    assert relevant(None, str(home / "vault" / "a.md"))
    assert relevant(None, str(home / "vault" / "notes.db.md"))  # not beside the index
    assert not relevant(None, str(home / "vault" / ".obsidian" / "workspace.json"))
    hidden = change_filter([str(tmp_path / ".hidden" / "vault")], None)
    assert hidden(None, str(tmp_path / ".hidden" / "vault" / "a.md"))  # the root's own path
    assert not hidden(None, str(tmp_path / ".hidden" / "vault" / ".git" / "HEAD"))


def test_watch_sees_changes_when_the_index_sits_above_the_notes(tmp_path: Path) -> None:
    vault = write_notes(tmp_path / "vault", {"seed.md": "# Seed\n\nThe first note.\n"})
    db = tmp_path / "notes.db"  # KENNING_INDEX=~/notes.db, the vault in ~/vault
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([vault])
    stop, reports, errors = threading.Event(), [], []

    def run() -> None:
        try:
            with Index.open(db) as index:
                watch(index, lambda r, c: reports.append(c), stop, step_ms=50)
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not reports and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        (vault / "zebra.md").write_text("# Zebra\n\nStripes on a zebra.\n")
        found = False
        while not found and time.monotonic() < deadline + 10:
            with Index.open(db) as index:
                found = bool(index.search("zebra", mode="bm25"))
            time.sleep(0.05)
        assert found, reports
        assert all(not str(p).startswith(str(db)) for changed in reports for p in changed)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive() and not errors, errors


# ---- progress on a pipe ----------------------------------------------------------------------


@pytest.mark.parametrize("every", [0.0, 5.0])
def test_progress_on_a_pipe_is_plain_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: float
) -> None:
    from kenning.cli import shell

    monkeypatch.setattr(shell, "PLAIN_EVERY", every)
    notes = write_notes(
        tmp_path / "many", {f"n{i}.md": f"# Note {i}\n\nabout {i}\n" for i in range(450)}
    )
    result = kenning("-i", str(tmp_path / "i.db"), "-e", "hash", "add", str(notes))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    keyword = [ln for ln in lines if ln.startswith("keyword index: ")]
    assert keyword[-1].startswith("keyword index: 450/450 files · 450 chunks")
    assert any(ln.startswith("embedding: 450/450 chunks") for ln in lines)
    if every == 0.0:  # periodic: one line per committed batch of files
        assert len(keyword) >= 3 and keyword[0].startswith("keyword index: 200/450 files")
    assert not any("━" in ln or "ETA" in ln or "…" in ln for ln in lines), result.stderr
