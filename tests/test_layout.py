"""The package's shape: imports flow one way, each folder is one layer, the public names
resolve, the module map of docs/architecture.md matches the tree.

Layers, lowest first, one folder each. A module may import from its own layer or a lower
one, never from a higher one, and the import graph (lazy imports inside functions and
imports for type checkers included) has no cycles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import kenning

PACKAGE = Path(kenning.__file__).parent
#: one folder per layer, lowest first; the package root holds the base (its plain modules)
#: and, on top of everything, the front door (``__init__``, the public API, and ``__main__``)
LAYERS = [
    ["errors", "config", "registry", "filters"],  # the exception tree, settings, registries
    ["text.*"],  # files read, markup, template lines, chunks, the tokenizer
    ["embedders.*"],  # the embedder role, MiniLM and its ONNX graphs, third-party models
    ["store.*"],  # the Store interface, SQLite and PostgreSQL
    ["ingest.*"],  # bringing a store in line with the disk, embedding what waits
    ["search.*"],  # keyword and vector indexes, rerankers, the stored tuning, Searcher
    ["index.*"],  # Index, the one object every edge drives; watch; copying an index
    ["answer.*"],  # LLM backends, prompts, citations, ask
    ["agent.*", "cards.*"],  # several steps with tools and traces; flashcards and reviews
    ["eval.*"],  # retrieval and answer evaluation, question sets
    ["tuning.*"],  # training: the adapter, MiniLM, rerankers, `kenning tune`
    ["serve.*"],  # the HTTP API, web page, OpenAI routes and MCP
    ["cli.*"],  # `kenning serve` and `kenning mcp` start the server
    ["", "__main__"],  # the public API (kenning/__init__.py) and ``python -m kenning``
]
FRONT_DOOR = {"", "__main__"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    for n, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name.endswith(".*") and module.startswith(name[:-1])):
                return n
            if name.endswith(".*") and module == name[:-2]:
                return n
    raise AssertionError(f"kenning.{module} is in no layer: add it to LAYERS")


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of kenning that ``module`` imports (``from pkg import submodule`` included)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [target] + [f"{target}.{a.name}".strip(".") for a in node.names]
                names = ["kenning." + n if n else "kenning" for n in names]
            elif node.module == "kenning" and all(a.name.startswith("__") for a in node.names):
                # the package's own metadata (``__version__``): kenning/__init__.py has run
                # before any of its modules, so this imports nothing above the importer
                continue
            else:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "kenning" or name.startswith("kenning."):
                short = name.removeprefix("kenning").lstrip(".")
                if short in known and short != module:
                    found.add(short)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


def test_no_module_imports_from_a_layer_above_it() -> None:
    for m in modules():
        layer(m)  # every module has a place
    wrong = [
        f"kenning.{m} (layer {layer(m)}) imports kenning.{d} (layer {layer(d)})"
        for m, deps in graph().items()
        for d in deps
        if layer(d) > layer(m)
    ]
    assert not wrong, "\n".join(wrong)


def folder(module: str) -> str:
    path = modules()[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def test_each_folder_holds_one_layer() -> None:
    """A folder is a layer: its modules import each other freely, and nothing above."""
    layers: dict[str, set[int]] = {}
    for m in modules():
        if m not in FRONT_DOOR:
            layers.setdefault(folder(m), set()).add(layer(m))
    wide = {f"kenning/{f}": sorted(n) for f, n in layers.items() if len(n) > 1}
    assert not wide, f"folders spanning layers: {wide}"


def test_the_import_graph_has_no_cycles() -> None:
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_the_walk_sees_lazy_and_relative_imports() -> None:
    g = graph()
    assert "index" in g["cli.commands"]  # a lazy import inside a command
    assert "store.sqlite" in g["store"] and "store.base" in g["store.sqlite"]  # relative


def test_public_names_resolve() -> None:
    for name in kenning.__all__:
        assert getattr(kenning, name) is not None, name


def test_the_architecture_page_module_map_matches_the_tree() -> None:
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    section = page.split("## Module map", 1)[1].split("\n## ", 1)[0]
    listed = {p for p in re.findall(r"`([\w/]+\.py)`", section) if not p.startswith("tests/")}

    def has_code(path: Path) -> bool:  # a package __init__ with only a docstring is no module
        body = ast.parse(path.read_text()).body
        return len(body) > 1 or not (body and isinstance(body[0], ast.Expr))

    actual = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if has_code(p)}
    assert listed == actual, f"missing: {sorted(actual - listed)}, stale: {sorted(listed - actual)}"
