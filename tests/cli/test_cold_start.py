"""A new user's first commands: what a cold `kenning ask` loads, what the first `add` says,
and when `kenning serve` says it is ready. Each command runs in a fresh process, with the
real packaged model; how long they take is benchmarks/cold_start.py's business, not a test's.

The machine's calibration is written as "torch" in a private cache (the exported models are
shared, not exported again): that is where a cold ask used to import torch for the answer's
sentences, which is what these tests rule out whatever this machine measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from conftest import write_notes

from kenning import Index
from kenning.config import cache_dir
from kenning.embedders.hardware import machine_key
from kenning.embedders.minilm import CALIBRATION_FILE, MiniLMEmbedder
from kenning.serve.app import create_app
from kenning.serve.server import ReadyServer, bind, url_of

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

QUESTION = "what does the attention mechanism replace?"
HEAVY = ("torch", "sentence_transformers", "transformers")
#: the command line's main() in a fresh process, then the heavy modules it had imported
RUN_CLI = f"""
import json, sys
from kenning.cli import main
sys.argv = ["kenning", *sys.argv[1:]]
try:
    main()
finally:
    heavy = [m for m in {HEAVY!r} if m in sys.modules]
    print("imported: " + json.dumps(heavy), file=sys.stderr)
"""


@pytest.fixture
def torch_won(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private kenning cache whose calibration chose torch for batches; the environment."""
    models = cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(models, target_is_directory=True)
    monkeypatch.setenv("KENNING_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = {"batch_runtime": "torch", "texts_per_s": {}, "measured": "test"}
    (cache / CALIBRATION_FILE).write_text(
        json.dumps({"format": 1, "calibrations": {machine_key(): entry}})
    )
    return {**os.environ}


def _index(tmp_path: Path) -> Path:
    db = tmp_path / "index.db"
    with Index.open(db, embedder="minilm") as index:
        index.add([write_notes(tmp_path / "notes")])
    return db


def kenning(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_cold_extractive_ask_imports_neither_torch_nor_sentence_transformers(
    tmp_path: Path, torch_won: dict[str, str]
) -> None:
    db = _index(tmp_path)
    done = kenning(torch_won, tmp_path, "-i", str(db), "ask", QUESTION)
    assert done.returncode == 0, done.stderr
    assert "[1]" in done.stdout and "Sources" in done.stdout  # a cited answer, not a refusal
    assert "imported: []" in done.stderr, done.stderr
    # the same check, for the search it is compared with
    done = kenning(torch_won, tmp_path, "-i", str(db), "search", QUESTION)
    assert done.returncode == 0 and "imported: []" in done.stderr, done.stderr


def test_the_first_add_says_once_what_it_prepares_and_does_not_calibrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty cache: the first `add` exports the model (torch is needed for that, once),
    says so in one line on stderr, and indexes without measuring runtimes first."""
    cache = tmp_path / "cache"
    env = {**os.environ, "KENNING_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    notes = write_notes(tmp_path / "notes")
    db = tmp_path / "index.db"
    done = kenning(env, tmp_path, "-i", str(db), "add", str(notes))
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "ONNX" in line]
    assert len(said) == 1, done.stderr  # one line, before the wait
    assert said[0].startswith("kenning: preparing the embedding model, once: exporting")
    assert str(cache / "models") in said[0]
    assert "measuring" not in done.stderr  # no calibration held up indexing
    assert any(cache.joinpath("models").glob("*.onnx"))
    assert not (cache / CALIBRATION_FILE).exists()
    with Index.open(db, create=False) as index:
        assert index.pending() == 0  # every chunk has its vector
        assert index.search(QUESTION, k=1)[0].path.endswith("attention.md")
    # Prepared once: the next command says nothing of it.
    (notes / "ml" / "extra.md").write_text("# Extra\n\nSelf-attention weighs every token.\n")
    again = kenning(env, tmp_path, "-i", str(db), "add", str(notes))
    assert again.returncode == 0 and "kenning: " not in again.stderr, again.stderr


def test_serve_says_it_is_ready_only_once_answering_is_loaded(
    tmp_path: Path, torch_won: dict[str, str]
) -> None:
    """`kenning serve` prints its URL when its ``ReadyServer`` has started: by then the
    embedder's query and sentence sessions are loaded (and torch is not), so the first
    question waits no longer than the next ones."""
    db = _index(tmp_path)
    app = create_app(db, mcp=False)
    seen: dict[str, Any] = {}

    def ready() -> None:
        embedder = app.state.service.pool._idle.queue[0].embedder
        assert isinstance(embedder, MiniLMEmbedder)
        seen.update(sessions=set(embedder._sessions), torch=embedder._model)

    sock = bind("127.0.0.1", 0)
    server = ReadyServer(uvicorn.Config(app, log_level="warning"), ready)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 300
        while not seen and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "query" in seen["sessions"] and seen["torch"] is None, seen
        req = urllib.request.Request(
            url_of(sock) + "/api/ask",
            data=json.dumps({"question": QUESTION}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=120) as res:
            answer = json.load(res)
        assert answer["sources"] and not answer["refused"]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
