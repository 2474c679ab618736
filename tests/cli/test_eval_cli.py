"""`kenning eval` at its edges: an index of another embedder, a bad run config, a missing
extra and a missing index each end in a message, not a traceback, and create nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kenning import ConfigError
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
