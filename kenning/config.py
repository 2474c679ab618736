"""Where kenning keeps things: the default index location and the cache folder.

One place answers both questions, so the ONNX export, the evaluation indexes and (later)
downloaded models all agree on ``$KENNING_CACHE`` and ``$XDG_CACHE_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

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
