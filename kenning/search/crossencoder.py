"""Scoring with a cross-encoder that ``kenning tune`` trained (``kenning.tuning.crossencoder``):
the packaged MiniLM's encoder reading ``[CLS] question [SEP] passage``, mean-pooled into a
linear head. ``CrossReranker`` loads it by path; a missing folder is a ``ConfigError``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kenning.errors import ConfigError, MissingExtra

#: word pieces of (question + passage) the model reads: MiniLM's training length
READ_TOKENS = 256

_lock = threading.Lock()


def score(folder: str, query: str, texts: Sequence[str]) -> np.ndarray:
    """The trained model's score for each (query, text), higher is better."""
    torch, model = _cached(folder)
    with _lock, torch.inference_mode():
        out = model([(query, t) for t in texts], model.max_tokens)
    return out.float().cpu().numpy().astype(np.float64)


@lru_cache(maxsize=2)
def _cached(folder: str) -> tuple[Any, Any]:
    path = Path(folder)
    if not (path / "head.json").is_file():
        raise ConfigError(
            f"the cross-encoder {folder} is missing (deleted?): run `kenning tune` again, or "
            "`kenning tune --undo`"
        )
    torch, model = load(path)
    model.eval()
    return torch, model


def load(folder: Path | None) -> tuple[Any, Any]:
    """torch and the model: the packaged encoder with a fresh head, or a trained one."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - core dependencies of the minilm extra
        raise MissingExtra("torch", None) from e
    from kenning.embedders.onnxgraph import minilm_dir

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    packaged = str(minilm_dir())
    device = "cuda" if torch.cuda.is_available() else "cpu"

    class CrossEncoder(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.tokenizer = AutoTokenizer.from_pretrained(packaged)
            self.encoder = AutoModel.from_pretrained(str(folder or packaged))
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
            self.max_tokens = READ_TOKENS

        def forward(self, pairs: list[tuple[str, str]], max_tokens: int) -> Any:
            batch = self.tokenizer(
                [q for q, _ in pairs],
                [t for _, t in pairs],
                truncation="only_second",
                max_length=max_tokens,
                padding=True,
                return_tensors="pt",
            ).to(device)
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            return self.head(pooled).squeeze(-1)

    model = CrossEncoder()
    if folder is not None:
        head = json.loads((folder / "head.json").read_text())
        with torch.no_grad():
            model.head.weight.copy_(torch.tensor([head["weight"]]))
            model.head.bias.copy_(torch.tensor([head["bias"]]))
        model.max_tokens = int(head["max_tokens"])
    return torch, model.to(device)
