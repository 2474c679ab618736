"""What a user's install gets: a version, a LICENSE in the wheel, every imported package
declared, and every extra that an error message names defined in pyproject.toml.

The import and extra checks read the package's source with ``ast``, so a new module is
covered the day it is added.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kenning
from kenning.cli import app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kenning"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: a ``kenning[extra]`` (or ``kenning[a,b]``) written in any string of the package
EXTRA_IN_TEXT = re.compile(r"kenning\[([A-Za-z0-9_,\- ]+)\]")


def canonical(name: str) -> str:
    """PEP 503: PyStemmer, pystemmer and py_stemmer are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip())
    assert match, spec
    return canonical(match.group(0))


def core_dependencies() -> set[str]:
    return {requirement_name(spec) for spec in PROJECT["dependencies"]}


def declared() -> set[str]:
    """Every distribution that the core or an extra installs (kenning itself left out)."""
    names = core_dependencies()
    for specs in PROJECT["optional-dependencies"].values():
        names |= {requirement_name(spec) for spec in specs}
    return names - {"kenning"}


@functools.cache
def distributions() -> dict[str, list[str]]:
    """Import name -> distributions that provide it (a scan of the environment: once)."""
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def trees() -> dict[Path, ast.AST]:
    return {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module name -> the files that import it (lazy imports in functions too)."""
    found: dict[str, set[str]] = {}
    for path, tree in trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "kenning" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_version_option_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"kenning {kenning.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", kenning.__version__)
    # pyproject reads the version from kenning/__init__.py: the installed metadata agrees
    assert importlib.metadata.version("kenning") == kenning.__version__


def test_version_option_skips_the_command() -> None:
    """--version is eager: it answers before any command runs or any index is opened."""
    result = CliRunner().invoke(app, ["--version", "status"])
    assert result.exit_code == 0
    assert result.output == f"kenning {kenning.__version__}\n"


def test_every_imported_package_is_declared() -> None:
    known = declared()
    missing = []
    for module, files in sorted(third_party_imports().items()):
        dists = {canonical(d) for d in distributions().get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)}) is not installed here"
        if not dists & known:
            missing.append(f"{module} ({'/'.join(sorted(dists))}) imported by {sorted(files)}")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)


def test_every_core_dependency_is_imported() -> None:
    """A core dependency that nothing imports only makes every user's install bigger."""
    imported = {
        canonical(dist)
        for module in third_party_imports()
        for dist in distributions().get(module, [])
    }
    assert sorted(core_dependencies() - imported) == []


def extras_named() -> dict[str, set[str]]:
    """Extra -> where the package names it: in text (an error message, a help line, a
    docstring) and as the ``extra`` of MissingExtra, KnownModel or a parameter default."""
    named: dict[str, set[str]] = {}

    def note(extra: str, path: Path, line: int) -> None:
        named.setdefault(extra.strip(), set()).add(f"{path.relative_to(ROOT)}:{line}")

    for path, tree in trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for match in EXTRA_IN_TEXT.finditer(node.value):
                    for extra in match.group(1).split(","):
                        note(extra, path, node.lineno)
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name not in {"MissingExtra", "require", "KnownModel", "Tokenizer"}:
                    continue
                args = list(node.args)
                position = {"MissingExtra": 1, "require": 2}.get(name)
                values = [k.value for k in node.keywords if k.arg == "extra"]
                if position is not None and len(args) > position:
                    values.append(args[position])
                for value in values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        note(value.value, path, value.lineno)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                positional = node.args.posonlyargs + node.args.args
                defaults = zip(
                    positional[len(positional) - len(node.args.defaults) :],
                    node.args.defaults,
                    strict=True,
                )
                for arg, default in defaults:
                    if arg.arg == "extra" and isinstance(default, ast.Constant) and default.value:
                        note(str(default.value), path, default.lineno)
    return named


def test_every_extra_named_in_the_package_exists() -> None:
    named = extras_named()
    defined = set(PROJECT["optional-dependencies"])
    # the collector finds what it must: the serve and eval messages, the llm models' extras
    assert {"serve", "eval", "llm", "llm-small", "postgres"} <= set(named)
    unknown = {extra: sorted(where) for extra, where in named.items() if extra not in defined}
    assert not unknown, f"extras named in kenning but not defined in pyproject.toml: {unknown}"


def test_a_missing_core_package_names_no_extra() -> None:
    """MissingExtra(package, None) is for kenning's own dependencies: the package must be one."""
    core = core_dependencies()
    for path, tree in trees().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "MissingExtra"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value is None
            ):
                package = node.args[0]
                assert isinstance(package, ast.Constant), f"{path}:{node.lineno}"
                assert canonical(package.value) in core, f"{path}:{node.lineno}"
    message = str(kenning.MissingExtra("watchfiles", None))
    assert "pip install 'watchfiles'" in message and "kenning[" not in message


@pytest.mark.slow
def test_the_wheel_ships_the_license_and_metadata(tmp_path: Path) -> None:
    """Build the wheel as pip would, from a copy of the sources (no build/ in the tree)."""
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source / "kenning", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("kenning-*.whl")
    assert wheel.name.startswith(f"kenning-{kenning.__version__}-py3-none-any")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"kenning-{kenning.__version__}.dist-info"
        assert f"{info}/licenses/LICENSE" in names
        license_text = archive.read(f"{info}/licenses/LICENSE").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
    assert license_text == (ROOT / "LICENSE").read_text()
    assert "MIT License" in license_text and "the kenning authors" in license_text
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    assert re.search(r"^Keywords: .*\bsqlite\b", metadata, re.M)
    # the package's data ships too: the web page's files
    assert any(n.startswith("kenning/serve/static/") for n in names)
    assert not any(n.startswith(("tests/", "examples/")) for n in names)
