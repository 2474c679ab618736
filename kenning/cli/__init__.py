"""The ``kenning`` command: thin shells over ``kenning.Index`` and ``kenning.eval``.

``shell`` holds what every command shares (global options, consoles, progress, the one
error handler); ``commands`` and ``eval`` hold one command group each.
"""

from __future__ import annotations

import os

from . import agent as _agent  # noqa: F401  (registers `kenning agent`, `trace`, `eval agent`)
from . import answer, commands, links, serve, tune  # noqa: F401  (register their commands)
from . import cards as _cards  # noqa: F401  (registers `kenning cards` and `kenning quiz`)
from . import conflicts as _conflicts  # noqa: F401  (registers `kenning conflicts`)
from .eval import eval_app
from .shell import app

app.add_typer(eval_app, name="eval")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    app(prog_name="kenning")


__all__ = ["app", "main"]
