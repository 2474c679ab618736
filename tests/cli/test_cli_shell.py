"""What every command shares (kenning/cli/shell.py): global options that may follow the
command, and the error path: what reaches the terminal, in one line, and the traceback only
with --debug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kenning import Index
from kenning.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


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


@pytest.mark.slow
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


@pytest.mark.slow
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
