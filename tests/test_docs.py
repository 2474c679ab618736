"""The documentation is executable and complete.

- docs/cli.md is what docs/gen_cli.py writes from every command's --help, and names each one;
- docs/configuration.md names every kenning.toml key, every argument of every built-in LLM
  backend, and every environment variable the code reads;
- docs/dependencies.md carries every model hash pinned in the code;
- every ```console block of README.md and docs/ runs: its `$ kenning ...` lines, in order, in a
  temporary folder holding a copy of examples/ (lines without `$ ` are output for the reader);
- every ```python block runs, each in a fresh interpreter in that folder, after the console
  blocks above it; a block that talks to http://127.0.0.1:8000 gets a real server of the
  page's index there;
- every ```toml block loads as a kenning.toml.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)
#: where a docs example finds `kenning serve`; the test serves the page's index there
SERVE_URL = "http://127.0.0.1:8000"


def blocks(page: Path, lang: str | None = None) -> list[tuple[str, str, int]]:
    """The fenced blocks of a page as (language, body, line), in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if lang is None or m.group(1) == lang:
            out.append((m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1))
    return out


def gen_cli():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the CLI reference ------------------------------------------------------------------------


def test_cli_reference_is_generated_from_the_current_help() -> None:
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == gen_cli().render(), "docs/cli.md is stale: run python docs/gen_cli.py"


def test_every_command_has_a_section_in_the_cli_reference() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = [" ".join(words) for words in gen_cli().command_paths()]
    assert {"add", "search", "ask", "serve", "eval retrieval", "tune"} <= set(commands)
    for command in commands:
        assert f"\n## kenning {command}\n" in page, command
        assert f"Usage: kenning {command} " in page, command


# -- configuration ----------------------------------------------------------------------------


def table_rows(page: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith("|")]


def test_every_settings_key_is_in_the_configuration_page() -> None:
    from kenning.config import ENVIRONMENT, SETTINGS

    rows = table_rows((DOCS / "configuration.md").read_text(encoding="utf-8"))
    for section, keys in SETTINGS.items():
        for key in keys:
            assert any(f"`[{section}]`" in r and f"`{key}`" in r for r in rows), (section, key)
    for var in ENVIRONMENT:
        assert any(f"`{var}`" in r for r in rows), var


def test_every_llm_backend_argument_is_in_the_configuration_page() -> None:
    import kenning.answer  # noqa: F401  (registers the built-in backends)
    from kenning.answer.llms import llms

    rows = table_rows((DOCS / "configuration.md").read_text(encoding="utf-8"))
    for name in llms.names():
        params = list(inspect.signature(llms.get(name).__init__).parameters)[1:]
        row = next((r for r in rows if r.startswith(f"| `{name}` |")), None)
        assert row is not None, f"backend {name} has no row"
        # a backend documented as "the same as X" shares X's arguments
        same = re.search(r"the same as `(\w+)`", row)
        if same:
            row = next(r for r in rows if r.startswith(f"| `{same.group(1)}` |"))
        for param in params:
            assert f"`{param}`" in row, (name, param)


def environment_variables() -> set[str]:
    """Names the code reads: os.environ.get("X"), os.environ["X"], os.getenv("X"), _env("X"),
    and the remote backends' <BACKEND>_API_KEY / _BASE_URL / _MODEL."""
    found: set[str] = set()
    for path in [*(ROOT / "kenning").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            arg = None
            if isinstance(node, ast.Call) and node.args:
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                target = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
                if (name in ("get", "setdefault") and target.endswith("environ")) or name in (
                    "getenv",
                    "_env",
                ):
                    arg = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
                arg = node.slice
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    import kenning.answer  # noqa: F401
    from kenning.answer.llms import llms

    for name in llms.names():
        prefix = getattr(llms.get(name), "backend", "")
        if prefix:
            found |= {f"{prefix.upper()}_{s}" for s in ("API_KEY", "BASE_URL", "MODEL")}
    return found


def test_every_environment_variable_is_in_the_configuration_page() -> None:
    names = environment_variables()
    assert {"KENNING_INDEX", "KENNING_CACHE", "KENNING_API_KEY", "OPENAI_API_KEY"} <= names
    rows = table_rows((DOCS / "configuration.md").read_text(encoding="utf-8"))
    missing = sorted(n for n in names if not any(f"| `{n}` |" in r for r in rows))
    assert not missing, f"not in docs/configuration.md: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_toml_examples_load_as_settings(page: Path, tmp_path: Path) -> None:
    from kenning.config import load_settings

    for _, body, line in blocks(page, "toml"):
        folder = tmp_path / f"line{line}"
        folder.mkdir()
        (folder / "kenning.toml").write_text(body, encoding="utf-8")
        settings = load_settings(str(folder / "index.db"))
        assert any(settings.values()), line


# -- what the docs say of the code ------------------------------------------------------------


def test_every_pinned_model_hash_is_in_the_dependencies_page() -> None:
    page = (DOCS / "dependencies.md").read_text(encoding="utf-8")
    pinned = {
        h
        for path in (ROOT / "kenning").rglob("*.py")
        for h in re.findall(r"\b[0-9a-f]{64}\b", path.read_text(encoding="utf-8"))
    }
    assert pinned, "no pinned SHA-256 found in kenning/"
    assert not sorted(h for h in pinned if h not in page)


def test_the_architecture_diagram_names_the_module_map_layers() -> None:
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    diagram = next(body for _, body, _ in blocks(DOCS / "architecture.md", "mermaid"))
    drawn = re.findall(r'\["([\w ]+):', diagram)
    section = page.split("## Module map", 1)[1]
    listed = [r.split("|")[1].strip() for r in table_rows(section)[2:]]
    assert list(reversed(drawn)) == listed


def test_readme_is_a_landing_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= 150, len(lines)
    first = "\n".join(lines[:30])
    assert "kenning search" in first.replace("-i demo.db ", "") and "kenning ask" in first.replace(
        "-i demo.db ", ""
    )
    assert "docs/" in readme and (ROOT / "docs" / "img" / "web.png").is_file()


# -- the examples run -------------------------------------------------------------------------


def commands(body: str) -> list[list[str]]:
    """The `$ kenning ...` lines of a console block (with `\\` continuations), as argv."""
    out, pending = [], ""
    for line in body.splitlines():
        if pending:
            pending += " " + line.strip()
        elif line.startswith("$ "):
            pending = line[2:].strip()
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        argv = shlex.split(pending, comments=True)
        assert argv[0] == "kenning", f"console blocks run kenning only: {pending}"
        out.append(argv[1:])
        pending = ""
    return out


def run_python(code: str, cwd: Path, page: Path, line: int) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("KENNING_INDEX", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{page.name}:{line}\n{done.stdout}\n{done.stderr}"


def runnable(page: Path) -> bool:
    return any(lang in ("console", "python") for lang, _, _ in blocks(page))


@pytest.mark.real_model
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=lambda p: p.name)
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kenning.cli import app

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KENNING_INDEX", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runner = CliRunner()
    ran = 0
    for lang, body, line in blocks(page):
        if lang == "console":
            for argv in commands(body):
                result = runner.invoke(app, argv, env={"COLUMNS": "100"})
                assert result.exit_code == 0, f"{page.name}:{line} kenning {argv}\n{result.output}"
                ran += 1
        elif lang == "python":
            if SERVE_URL in body:
                from kenning.serve.app import create_app
                from kenning.serve.server import BackgroundServer

                with BackgroundServer(create_app(tmp_path / ".kenning" / "index.db")) as server:
                    run_python(body.replace(SERVE_URL, server.url), tmp_path, page, line)
            else:
                run_python(body, tmp_path, page, line)
            ran += 1
    assert ran
