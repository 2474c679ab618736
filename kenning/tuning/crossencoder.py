"""A cross-encoder trained here: the packaged MiniLM reading question and passage together.

No cross-encoder weights ship in any package (``../shared/DEPENDENCIES.md``), so ``kenning
tune`` makes one: the packaged MiniLM's encoder, reading ``[CLS] question [SEP] passage``,
mean-pooled (the pooling it was trained with, so its first scores already mean something)
into a new linear head. It is trained listwise: one of each question's gold passages against up
to ``NEGATIVES`` passages the current search ranks high that do not answer it, a softmax over
the group. The head learns at a higher rate than the encoder: a fresh head at the encoder's
rate leaves every score equal for the first hundred steps (in a document-level study on
SciFact's claims: with both at 3e-5, one epoch barely moved the loss; this way two epochs
took the test claims' nDCG@10, mixed with the fused score, from 0.738 to 0.763; README).

The weights land in ``<cache>/models/minilm-cross-<digest>`` (the encoder as
``model.safetensors``, the head as ``head.json``), the digest covering the training groups
and settings, so the same tuning run twice reuses the folder. ``rerank.CrossReranker`` loads
it by path.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import cache_dir, usable_cores
from kenning.errors import ConfigError, MissingExtra

from .finetune import passes, publish, warmup_then_decay

#: passes over the groups: one leaves a fresh head barely trained; on SciFact with the train
#: claims, three scored 0.7666 on the test claims (held-out 0.7782) where two scored
#: 0.7561 (held-out 0.7764) on the same pairs, at 1.5x the training time (README)
EPOCHS = 3
#: word pieces of (question + passage) the model reads: MiniLM's training length
MAX_TOKENS = 256
#: hard negatives per gold passage in a training group
NEGATIVES = 7
#: groups per optimiser step
GROUPS = 4
LEARNING_RATE = 5e-5
HEAD_LEARNING_RATE = 1e-3

#: (question, gold passages, hard negatives), each passage as the reranker sees it; each
#: step reads one of the gold passages, so a question counts once however many answer it
Group = tuple[str, list[str], list[str]]

_lock = threading.Lock()


def train(
    groups: Sequence[Group],
    epochs: float | None = None,
    seed: int = 0,
    max_tokens: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Train a cross-encoder on ``groups`` (CPU, or the GPU torch finds); returns its folder.
    ``epochs`` and ``max_tokens`` default to ``EPOCHS`` and ``MAX_TOKENS``."""
    epochs = EPOCHS if epochs is None else epochs
    max_tokens = MAX_TOKENS if max_tokens is None else max_tokens
    groups = [g for g in groups if g[1] and g[2]]
    if not groups:
        raise ConfigError(
            "no training question has both a gold passage and a hard negative among its "
            "candidates: the cross-encoder needs them"
        )
    folder = _folder(groups, epochs, seed, max_tokens)
    if (folder / "head.json").is_file():
        return folder
    torch, model = _load(None)
    model.max_tokens = max_tokens
    say = log or (lambda _m: None)
    torch.manual_seed(seed)
    torch.set_num_threads(usable_cores())
    rng = random.Random(seed)
    steps = max(1, math.ceil(len(groups) * epochs / GROUPS))
    order = passes(len(groups), steps * GROUPS, rng)
    head = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": LEARNING_RATE}, {"params": head, "lr": HEAD_LEARNING_RATE}],
        weight_decay=0.01,
    )
    schedule = warmup_then_decay(torch, optimiser, steps)
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        batch = [groups[i] for i in order[step * GROUPS : (step + 1) * GROUPS]]
        pairs, sizes = [], []
        for question, golds, negatives in batch:
            picked = rng.sample(negatives, min(NEGATIVES, len(negatives)))
            pairs += [(question, rng.choice(golds))] + [(question, n) for n in picked]
            sizes.append(1 + len(picked))
        scores = model(pairs, max_tokens)
        loss = sum(-torch.log_softmax(part, dim=0)[0] for part in torch.split(scores, sizes)) / len(
            sizes
        )
        loss.backward()
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        if step % 10 == 0 or step == steps - 1:
            say(
                f"cross-encoder step {step + 1}/{steps}, loss {loss.item():.3f}, "
                f"{time.perf_counter() - started:.0f}s"
            )
    model.eval()
    _save(model, folder)
    return folder


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
    torch, model = _load(path)
    model.eval()
    return torch, model


def _load(folder: Path | None) -> tuple[Any, Any]:
    """torch and the model: the packaged encoder with a fresh head, or a trained one."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - core dependencies of the minilm extra
        raise MissingExtra("torch", "minilm") from e
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
            self.max_tokens = MAX_TOKENS

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


def _save(model: Any, folder: Path) -> None:
    """Encoder then head, put in place only once both are written (``finetune.publish``)."""
    head = {
        "weight": model.head.weight.detach().cpu()[0].tolist(),
        "bias": float(model.head.bias.detach().cpu()[0]),
        "max_tokens": model.max_tokens,
    }

    def write(tmp: Path) -> None:
        model.encoder.save_pretrained(tmp)
        (tmp / "head.json").write_text(json.dumps(head))

    publish(folder, write)


def _folder(groups: Sequence[Group], epochs: float, seed: int, max_tokens: int) -> Path:
    digest = hashlib.sha256()
    settings = [epochs, seed, max_tokens, NEGATIVES, GROUPS, LEARNING_RATE, HEAD_LEARNING_RATE]
    digest.update(json.dumps(settings).encode())
    for group in groups:
        digest.update(json.dumps(group).encode())
    return cache_dir() / "models" / f"minilm-cross-{digest.hexdigest()[:12]}"
