from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kenning import ChunkSpec, Index
from kenning.answer.llms import LLM, Prompt
from kenning.embedders import HashEmbedder
from kenning.store.postgres.local import LocalPostgres

#: markers whose tests are slow by nature: each adds ``slow``, so ``-m "not slow"`` (the fast
#: lane, tests/README.md) leaves them out without every test carrying both markers
SLOW_BY_NATURE = ("browser", "postgres", "real_model")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_BY_NATURE):
            item.add_marker(pytest.mark.slow)


_POSTGRES: list[LocalPostgres] = []


def postgres_url() -> str:
    """A fresh database on this test run's own PostgreSQL server (started on first use)."""
    if not _POSTGRES:
        _POSTGRES.append(LocalPostgres().start())
    return _POSTGRES[0].new_database()


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres() -> object:
    yield
    while _POSTGRES:
        _POSTGRES.pop().stop()


#: the shared evaluation data: ../shared/data beside the checkout, or $KENNING_SHARED_DATA
SHARED = Path(
    os.environ.get("KENNING_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def shared(*parts: str) -> Path:
    """A path in the shared evaluation data. Missing data fails the test: it is required."""
    path = SHARED.joinpath(*parts)
    assert path.exists(), (
        f"shared data not found at {path}: check the project out beside ../shared, "
        "or point KENNING_SHARED_DATA at the data folder"
    )
    return path


NOTES = {
    "ml/attention.md": """---
title: Attention is all you need
tags: [ml, transformers]
aliases: attention paper
date: 2025-03-01
---
# Attention

Transformers replace recurrence with self-attention over all tokens.

## Scaled dot product

Queries and keys are compared with a dot product scaled by the square root of the dimension.
See [[softmax]] and [[Linear Algebra|vectors]].
""",
    "ml/softmax.md": """---
tags: ml
date: 2024-11-20
---
# Softmax

The softmax function turns scores into probabilities that sum to one.
""",
    "cooking/bread.md": """---
tags: [cooking]
date: 2025-06-10
---
# Sourdough bread

Feed the starter, mix flour and water, and let the dough rise overnight before baking.
""",
    "projects/kenning/plan.txt": "Plan: a local search engine for notes with hybrid ranking.\n",
    "projects/site.html": "<html><head><title>My site</title>"
    "<script>var x=1;</script></head>"
    "<body><nav>menu</nav><main><h1>Welcome</h1><p>Gardening tips for tomatoes and basil.</p>"
    "</main><footer>copyright</footer></body></html>",
}


def write_notes(root: Path, notes: dict[str, str] = NOTES) -> Path:
    for rel, text in notes.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return write_notes(tmp_path / "notes")


@pytest.fixture
def index(tmp_path: Path):
    idx = Index.open(tmp_path / "idx" / "index.db", embedder=HashEmbedder(), chunking=ChunkSpec())
    yield idx
    idx.close()


def copy_folders(src: Path, dest: Path, names: list[str]) -> Path:
    """Copy the folders ``names`` of ``src`` (say, some of the til notes) into ``dest``."""
    for name in names:
        shutil.copytree(src / name, dest / name)
    return dest


@pytest.fixture(scope="session")
def til_notes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real til notes collection, unpacked once per test session."""
    archive = shared("notes-jbranchaud-til", "jbranchaud-til-md.tar.gz")
    dest = tmp_path_factory.mktemp("til")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "til"


class TitleAsker(LLM):
    """A writer for unit tests that turns each passage's title into a question, and gives an
    unusable reply (a fragment) for every third passage. The real model writes questions in
    tests/answer/test_local_llm.py."""

    id = "title-asker"

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[Prompt] = []
        self.closed = 0

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.prompts.append(prompt)
        user = prompt.messages[-1].content
        title = user.split("\n", 1)[0].removeprefix("Title: ")
        reply = "notes." if len(self.prompts) % 3 == 0 else f"Why would I {title.lower()}?"
        try:
            yield from (reply[:5], reply[5:], "\nAnd a second line that is never read.")
        finally:
            self.closed += 1


def make_pdf(path: Path, pages: list[str]) -> bytes:
    """A PDF at ``path`` with one line of text per page (reportlab); returns its bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Test PDF")
    for text in pages:
        c.drawString(72, 720, text)
        c.showPage()
    c.save()
    return path.read_bytes()
