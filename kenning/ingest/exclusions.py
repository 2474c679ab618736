"""What a sync leaves out of a root on purpose, and why.

Besides hidden files and folders (``.git``, ``.obsidian``, ``.trash``), which the walk never
enters, a root's files are left out by, in this order:

- ``.kenningignore`` in the root: gitignore syntax (through ``pathspec``), relative to the root;
- ``--exclude GLOB`` given to ``kenning add`` (gitignore syntax too), kept with the root;
- the vault's own "Excluded files" (``userIgnoreFilters`` in ``.obsidian/app.json``), read the
  way Obsidian reads them: ``/regex/`` is a regular expression, anything else a path prefix,
  both on the vault-relative path and case-insensitive;
- the vault's templates folder: the core Templates plugin's ``folder`` in
  ``.obsidian/templates.json`` (and Templater's ``templates_folder``);
- Excalidraw drawings (``*.excalidraw.md``, ``*.excalidraw``) and Obsidian canvases
  (``*.canvas``): a drawing's Markdown is compressed scene data, not prose, and a canvas is
  JSON layout around notes that are indexed themselves.

The vault is the root, or the nearest folder above it holding ``.obsidian/``. A file that
becomes excluded leaves the index on the next sync, as a deleted file does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from kenning.errors import ConfigError

IGNORE_FILE = ".kenningignore"
#: the reasons a file is left out, as ``kenning status`` shows them
IGNORED = ".kenningignore"
OPTION = "--exclude"
OBSIDIAN = "Obsidian excluded files (.obsidian/app.json)"
TEMPLATES = "Obsidian templates folder"
DRAWING = "Excalidraw drawing"
CANVAS = "Obsidian canvas"
#: how many example paths status keeps per root and reason
EXAMPLES = 5


def _spec(lines: Sequence[str], source: str) -> pathspec.PathSpec | None:
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError) as e:  # GitWildMatchPatternError is a ValueError
        raise ConfigError(f"{source}: invalid pattern ({e}); fix or remove it") from None


def check_globs(globs: Sequence[str]) -> None:
    """``ConfigError`` naming the first ``--exclude`` glob that is not valid gitignore syntax."""
    for glob in globs:
        _spec([glob], f"--exclude {glob!r}")


def _read_json(path: Path) -> dict[str, Any]:
    """A settings file of the vault; an absent, unreadable or half-written one counts as
    empty (it is Obsidian's file, and Obsidian rewrites it while it runs)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def obsidian_filters(filters: Sequence[Any]) -> list[re.Pattern[str]]:
    """``userIgnoreFilters`` as Obsidian reads them: ``/regex/`` a regular expression, any
    other string a path prefix (``Archive/``, ``Daily``), both case-insensitive. A regex that
    does not compile is left out, as Obsidian leaves it out."""
    out = []
    for f in filters:
        if not isinstance(f, str) or not f.strip():
            continue
        f = f.strip()
        try:
            if len(f) > 1 and f.startswith("/") and f.endswith("/"):
                out.append(re.compile(f[1:-1], re.IGNORECASE))
            else:
                out.append(re.compile("^" + re.escape(f), re.IGNORECASE))
        except re.error:
            continue
    return out


def _folder(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip("/ "):
        return None
    return value.strip().strip("/") + "/"


def find_vault(root: Path) -> Path | None:
    """The Obsidian vault ``root`` belongs to: itself or the nearest folder above it that
    holds ``.obsidian/``."""
    for folder in (root, *root.parents):
        if (folder / ".obsidian").is_dir():
            return folder
    return None


@dataclass
class Exclusions:
    """The rules for one root; ``reason(path)`` says why a path is left out, or None."""

    root: Path
    vault: Path | None = None
    ignored: pathspec.PathSpec | None = None
    option: pathspec.PathSpec | None = None
    obsidian: list[re.Pattern[str]] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)  # vault-relative, ending in "/"
    in_vault: str = ""  # the root's path in the vault ("" or "folder/")

    @classmethod
    def load(cls, root: Path, exclude: Sequence[str] = ()) -> Exclusions:
        """Read the root's ``.kenningignore`` and its vault's settings; ``exclude`` are the
        root's ``--exclude`` globs. A pattern pathspec cannot read is a ``ConfigError``."""
        rules = cls(root)
        ignore_file = root / IGNORE_FILE
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"cannot read {ignore_file} ({e})") from None
            rules.ignored = _spec(lines, str(ignore_file))
        rules.option = _spec(list(exclude), f"--exclude of {root}")
        rules.vault = find_vault(root)
        if rules.vault is not None:
            if rules.vault != root:
                rules.in_vault = root.relative_to(rules.vault).as_posix() + "/"
            settings = rules.vault / ".obsidian"
            app = _read_json(settings / "app.json")
            rules.obsidian = obsidian_filters(app.get("userIgnoreFilters") or [])
            folders = [
                _folder(_read_json(settings / "templates.json").get("folder")),
                _folder(
                    _read_json(settings / "plugins" / "templater-obsidian" / "data.json").get(
                        "templates_folder"
                    )
                ),
            ]
            rules.templates = [f.lower() for f in folders if f]
        return rules

    def reason(self, rel: str, is_dir: bool) -> str | None:
        """Why the file or folder at ``rel`` (its path under the root, with / between
        parts) is left out; None to index it."""
        if is_dir:
            rel += "/"
        if self.ignored is not None and self.ignored.match_file(rel):
            return IGNORED
        if self.option is not None and self.option.match_file(rel):
            return OPTION
        if self.vault is not None:
            in_vault = self.in_vault + rel  # a folder's ends in /: Obsidian tries both forms
            candidates = (in_vault, in_vault[:-1]) if is_dir else (in_vault,)
            if any(p.search(c) for p in self.obsidian for c in candidates):
                return OBSIDIAN
            if in_vault.lower().startswith(tuple(self.templates)):
                return TEMPLATES
        if not is_dir:
            name = rel.rpartition("/")[2].lower()
            if name.endswith((".excalidraw.md", ".excalidraw")):
                return DRAWING
            if name.endswith(".canvas"):
                return CANVAS
        return None


def summary(excluded: Sequence[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Per reason: how many paths a sync left out, and the first few (folders end in /)."""
    out: dict[str, dict[str, Any]] = {}
    for path, why in excluded:
        entry = out.setdefault(why, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < EXAMPLES:
            entry["examples"].append(path)
    return out
