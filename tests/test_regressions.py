"""Regression tests for the defects listed in issue #6, one per defect, each failing on the
code before the fix. Defects covered elsewhere: SentenceTransformerEmbedder
(test_embedders), the plugin entry-point group (test_vectors), stores by URL
(test_store), tests that could not fail (test_kill, test_real_model, test_cli)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kenning import ConfigError, Filters, Index
from kenning.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def qa_files(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "q.jsonl").write_text('{"id": "a", "question": "q?", "answers": ["yes"]}\n')
    (tmp_path / "p.jsonl").write_text('{"id": "a", "answer": "yes"}\n')
    return str(tmp_path / "q.jsonl"), str(tmp_path / "p.jsonl")


def test_eval_qa_on_an_index_of_another_embedder_prints_no_traceback(
    tmp_path: Path, notes: Path
) -> None:
    db = str(tmp_path / "i.db")
    assert invoke("-i", db, "-e", "hash", "-q", "add", str(notes))[0] == 0
    q, p = qa_files(tmp_path)
    result = runner.invoke(
        app, ["-i", db, "-e", "minilm", "eval", "qa", q, "--predictions", p, "-o", str(tmp_path)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.exit_code == 0, result.output


def test_a_bad_chunk_size_in_an_eval_config_is_a_config_error(tmp_path: Path) -> None:
    from kenning.eval.evaluate import RunConfig

    with pytest.raises(ConfigError, match="chunk_size must be at least 16"):
        RunConfig.parse("x=chunk_size=8")
    code, out = invoke(
        "-i", str(tmp_path / "i.db"), "eval", "retrieval", str(tmp_path), "-c", "x=chunk_size=8"
    )
    assert code == 2 and "chunk_size must be at least 16" in out


def test_a_missing_extra_is_named_right_on_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message said `pip install 'kenning'`: the terminal ate "[eval]" as markup."""
    q, p = qa_files(tmp_path)
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr(
        "importlib.util.find_spec", lambda name, *a: None if name == "sacrebleu" else real(name)
    )
    code, out = invoke("-i", str(tmp_path / "i.db"), "eval", "qa", q, "--predictions", p)
    assert code == 3 and "pip install 'kenning[eval]'" in " ".join(out.split()), out


def test_eval_history_on_a_missing_index_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "missing.db"
    code, out = invoke("-i", str(db), "eval", "history")
    assert code == 5 and "no index at" in out
    assert not db.exists()


def test_the_store_interface_carries_no_evaluation_tables() -> None:
    from kenning.store import Store

    for name in ("save_questions", "questions", "add_eval_run", "eval_runs"):
        assert not hasattr(Store, name), name


def test_filtered_search_never_loads_every_source(index: Index, notes: Path) -> None:
    index.add([notes])

    def refuse() -> None:
        raise AssertionError("filtered search loaded every source row")

    index.store.sources = refuse  # type: ignore[method-assign]
    hits = index.search("dough", filters=Filters.parse(where=["tag=cooking"]))
    assert [Path(h.path).name for h in hits] == ["bread.md"]


@pytest.mark.parametrize(
    "args",
    [
        ["add", "{notes}", "-q", "--index", "{db}", "-e", "hash"],
        ["add", "{notes}", "--index={db}", "--quiet", "--embedder=hash"],
        ["-q", "add", "{notes}", "-i", "{db}", "-e", "hash"],
    ],
)
def test_global_options_work_after_the_command(tmp_path: Path, notes: Path, args: list) -> None:
    db = tmp_path / "i.db"
    filled = [a.format(notes=notes, db=db) for a in args]
    code, out = invoke(*filled)
    assert code == 0 and out.strip() == "", out  # -q: nothing printed
    code, out = invoke("search", "softmax", "--json", "--index", str(db), "-k", "1")
    assert code == 0 and json.loads(out)["path"].endswith("softmax.md")
    code, out = invoke("status", "--json", "-i", str(db))
    assert json.loads(out)["embedder"] == "hash"


def test_a_command_keeps_its_own_option_of_a_global_name(tmp_path: Path, notes: Path) -> None:
    db = str(tmp_path / "i.db")
    assert invoke("add", str(notes), "-q", "-i", db, "-e", "hash")[0] == 0
    # reembed's own --embedder is the new embedder, not the global one
    code, out = invoke("reembed", "--embedder", "hash", "-i", db, "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 5


def test_library_messages_never_reach_the_terminal(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    root = tmp_path / "docs"
    root.mkdir()
    c = canvas.Canvas(str(root / "good.pdf"))
    c.drawString(72, 720, "A page about tomatoes")
    c.save()
    data = (root / "good.pdf").read_bytes()
    (root / "no-eof.pdf").write_bytes(data[: data.rindex(b"%%EOF")])  # pypdf logs about it
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage")
    cmd = [sys.executable, "-c", "from kenning.cli import main; main()"]
    args = ["add", str(root), "-i", str(tmp_path / "i.db"), "-e", "hash"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 7, proc.stderr  # FilesFailed: corrupt.pdf
    assert "corrupt.pdf" in proc.stderr  # kenning's own report names the file
    lines = proc.stderr.splitlines()
    assert not [ln for ln in lines if "EOF marker" in ln and "no-eof.pdf" not in ln], proc.stderr
    assert "pypdf" not in proc.stderr.replace("PDF reader", "")
    with Index.open(tmp_path / "i.db") as index:
        assert index.search("tomatoes", k=1, mode="bm25")  # the damaged-but-readable one


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, notes: Path
) -> None:
    cmd = [sys.executable, "-c", "from kenning.cli import main; main()"]
    db = str(tmp_path / "i.db")
    subprocess.run([*cmd, "add", str(notes), "-q", "-i", db, "-e", "hash"], check=True)
    bad = "import kenning.index as m; m.Index.search = lambda *a, **k: 1 / 0"
    script = f"{bad}; from kenning.cli import main; main()"
    plain = subprocess.run(
        [sys.executable, "-c", script, "search", "x", "-i", db], capture_output=True, text=True
    )
    assert plain.returncode == 70 and "Traceback" not in plain.stderr
    assert "ZeroDivisionError" in plain.stderr and "--debug" in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-c", script, "search", "x", "-i", db, "--debug"],
        capture_output=True,
        text=True,
    )
    assert debug.returncode == 70 and "Traceback" in debug.stderr


def test_one_cache_folder_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kenning.config import cache_dir

    monkeypatch.delenv("KENNING_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kenning"
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    import kenning.embedders
    import kenning.eval.evaluate

    assert not hasattr(kenning.embedders, "_cache_dir")  # both use config.cache_dir
    assert kenning.eval.evaluate.cache_dir is cache_dir


def test_sync_stores_the_chunker_s_own_chunks(index: Index, notes: Path) -> None:
    """One chunk type: what chunking makes is what the store takes, field for field."""
    import kenning.store.base as base

    assert not hasattr(base, "NewChunk") and not hasattr(
        __import__("kenning.store", fromlist=["x"]), "NewChunk"
    )
    index.add([notes])
    row = index.search("sourdough", k=1, mode="bm25")[0]
    assert Path(row.path).read_text()[row.start : row.end] == row.text
