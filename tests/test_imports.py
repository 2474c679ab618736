"""Every module of the package imports: in this environment, and without the optional extras.

The first test is what makes the fast lane (``pytest -m "not slow"``, tests/README.md) touch
every module: a module that no fast test reaches still has to import. The second runs in a
fresh interpreter in which every package that only an extra brings (pyproject's
``optional-dependencies``) cannot be imported, as on a user's install without that extra:
heavy and optional imports are lazy, so every module imports anyway, except those listed in
``NEEDS_AT_IMPORT``, whose own framework is the extra (they may fail, and only for a package
of that extra).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import kenning

ROOT = Path(__file__).resolve().parents[1]
#: package prefix -> the extra its modules may need when imported (their web framework)
NEEDS_AT_IMPORT = {"kenning.serve": "serve"}


def modules() -> list[str]:
    """Every module and package under kenning, except ``__main__`` (which runs the CLI)."""
    found = [m.name for m in pkgutil.walk_packages(kenning.__path__, "kenning.")]
    return sorted(name for name in found if not name.endswith(".__main__"))


def test_every_module_imports() -> None:
    names = modules()
    assert {"kenning.cli", "kenning.answer.local", "kenning.store.postgres"} <= set(names)
    for name in names:
        assert importlib.import_module(name).__name__ == name


def _dist(requirement: str) -> str:
    """A requirement's distribution name, normalised (``psycopg[binary]>=3.2`` -> psycopg)."""
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def optional_modules() -> dict[str, str]:
    """Top-level module -> the extra that brings it, for every installed module that only an
    extra brings (not the core dependencies)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(r) for r in project["dependencies"]}
    by_dist: dict[str, str] = {}
    for extra, requirements in project["optional-dependencies"].items():
        for r in requirements:
            if _dist(r) not in core and _dist(r) != "kenning":
                by_dist.setdefault(_dist(r), extra)
    return {
        module: by_dist[_dist(dist)]
        for module, dists in packages_distributions().items()
        for dist in dists
        if _dist(dist) in by_dist and not module.startswith("_")
    }


#: run in a fresh interpreter: block the modules, import every kenning module, report failures
SCRIPT = """
import importlib, json, sys
blocked = set(json.loads(sys.argv[1]))
names = json.loads(sys.argv[2])

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Block())
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        failed[name] = (e.name or "").partition(".")[0]
print(json.dumps(failed))
"""


def test_every_module_imports_without_the_optional_extras() -> None:
    optional = optional_modules()
    # the extras' packages are installed here (the dev extra), so the list is never empty
    assert {"openai", "anthropic", "cyllama", "psycopg", "fastapi"} <= set(optional)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(sorted(optional)), json.dumps(modules())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    failed: dict[str, str] = json.loads(proc.stdout.splitlines()[-1])
    wrong = {
        name: missing
        for name, missing in failed.items()
        if not any(
            name.startswith(prefix + ".") and optional.get(missing) == extra
            for prefix, extra in NEEDS_AT_IMPORT.items()
        )
    }
    assert wrong == {}, "modules that need an extra's package to import: " + json.dumps(wrong)
