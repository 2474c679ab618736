"""Where kenning keeps things, and the user's settings.

One place answers where the index and the cache folder are, so the ONNX export, the
evaluation indexes and the joined model files all agree on ``$KENNING_CACHE`` and
``$XDG_CACHE_HOME``; and one place reads ``kenning.toml`` (the default LLM, model, strategy
and thresholds), with the environment on top.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

#: the index used when neither --index nor $KENNING_INDEX says otherwise
DEFAULT_INDEX = Path(".kenning") / "index.db"


def default_index() -> str:
    """``$KENNING_INDEX`` if set, else ``./.kenning/index.db`` (a path or a store URL)."""
    return os.environ.get("KENNING_INDEX") or str(DEFAULT_INDEX)


def cache_dir() -> Path:
    """``$KENNING_CACHE``, else ``$XDG_CACHE_HOME/kenning``, else ``~/.cache/kenning``."""
    explicit = os.environ.get("KENNING_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "kenning"


#: every key kenning.toml may hold, with its type; anything else is an error
SETTINGS: dict[str, dict[str, type]] = {
    "answer": {"llm": str, "model": str, "strategy": str, "k": int},
    "thresholds": {"similarity": float, "overlap": float, "refuse": float},
    # a PostgreSQL index's HNSW graph (kenning.store.postgres.hnsw; the store URL's query wins)
    "postgres": {"hnsw_m": int, "hnsw_ef_construction": int, "hnsw_ef_search": int},
}
#: environment variables that override kenning.toml
ENVIRONMENT = {
    "KENNING_LLM": ("answer", "llm"),
    "KENNING_MODEL": ("answer", "model"),
    "KENNING_STRATEGY": ("answer", "strategy"),
}


def settings_paths(index: str) -> list[Path]:
    """Where kenning.toml is looked for: beside the index file, then the user's config folder."""
    paths = []
    if "://" not in index or index.startswith("sqlite:///"):
        paths.append(Path(index.removeprefix("sqlite:///")).parent / "kenning.toml")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    paths.append(Path(xdg) / "kenning" / "kenning.toml")
    return paths


def load_settings(index: str | None = None) -> dict[str, Any]:
    """Settings from the first kenning.toml found, then the environment on top.

    Returns ``{"answer": {...}, "thresholds": {...}, "llm": {backend id: {arg: value}}}``.
    A misspelt key is an error that names the file and the key, never a silent default;
    ``[llm.<id>]`` tables hold a backend's own arguments, checked when it is built.
    """
    from kenning.errors import ConfigError

    out: dict[str, Any] = {**{section: {} for section in SETTINGS}, "llm": {}}
    for path in settings_paths(index or default_index()):
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        for section, values in data.items():
            if section == "llm" and isinstance(values, dict):
                for backend, args in values.items():
                    if not isinstance(args, dict):
                        raise ConfigError(f"{path}: [llm.{backend}] must be a table of arguments")
                    out["llm"][backend] = dict(args)
                continue
            if section not in SETTINGS or not isinstance(values, dict):
                raise ConfigError(
                    f"{path}: unknown section [{section}]; known: "
                    + ", ".join(f"[{s}]" for s in [*SETTINGS, "llm.<id>"])
                )
            for key, value in values.items():
                kind = SETTINGS[section].get(key)
                if kind is None:
                    raise ConfigError(
                        f"{path}: unknown key {key!r} in [{section}]; known: "
                        + ", ".join(SETTINGS[section])
                    )
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise ConfigError(
                        f"{path}: [{section}] {key} must be {kind.__name__}, not {value!r}"
                    )
                out[section][key] = value
        break
    for var, (section, key) in ENVIRONMENT.items():
        if os.environ.get(var):
            out[section][key] = os.environ[var]
    return out


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask; cgroups quotas are not seen), not
    all the machine has: thread counts for onnxruntime and llama.cpp follow it.
    ``KENNING_THREADS`` caps it: each of `kenning serve --workers N`'s processes gets its
    share of the cores, so N processes do not each start a thread per core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    cap = os.environ.get("KENNING_THREADS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else cores
