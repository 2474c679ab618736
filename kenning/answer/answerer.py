"""``Answering``: the answerer as the user configured it, built once per session or server.

`kenning ask`, `kenning chat`, `kenning eval qa` and `kenning serve` all answer with the same
settings: the LLM backend and its arguments, the prompting strategy, how many passages, and the
citation thresholds, read from kenning.toml beside the index (or the user's config folder) with
the environment and explicit options on top. Keeping that reading in one place means a
question asked over HTTP gets exactly the answer the command line would give.
"""

from __future__ import annotations

from typing import Any

from kenning.config import load_settings

from .citations import Thresholds
from .llms import LLM, get_llm


class Answering:
    """What every turn needs: settings, the LLM and thresholds, built once.

    ``llm``, ``model``, ``strategy`` and ``k`` override the settings file when given.
    """

    def __init__(
        self,
        location: str | None = None,
        llm: str | None = None,
        model: str | None = None,
        strategy: str | None = None,
        k: int | None = None,
    ) -> None:
        settings = load_settings(location)
        chosen = settings["answer"]
        self.llm_name: str = llm or chosen.get("llm") or "extractive"
        args: dict[str, Any] = dict(settings["llm"].get(self.llm_name, {}))
        if model or (chosen.get("model") and not llm):
            args["model"] = model or chosen["model"]
        self.llm_args = args
        self.llm = get_llm(self.llm_name, **args)
        self.strategy: str = strategy or chosen.get("strategy") or "zero-shot"
        self.k: int = k or chosen.get("k") or 5
        self.thresholds = Thresholds(**settings["thresholds"])

    def new_llm(self) -> LLM:
        """Another instance of the same backend, for a caller that answers concurrently:
        a backend keeps per-answer state (its bound sentence vectors, its usage counts)."""
        return get_llm(self.llm_name, **self.llm_args)
