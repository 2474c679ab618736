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
and settings, so the same tuning run twice reuses the folder. ``search.rerankers.CrossReranker``
loads it by path, and ``search.crossencoder`` scores with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kenning.config import cache_dir, usable_cores
from kenning.errors import ConfigError
from kenning.search.crossencoder import READ_TOKENS, load
from kenning.search.rerankers import CrossReranker, TrainingList, read_passage

from .finetune import passes, publish, warmup_then_decay

#: passes over the groups: one leaves a fresh head barely trained; on SciFact with the train
#: claims, three scored 0.7666 on the test claims (held-out 0.7782) where two scored
#: 0.7561 (held-out 0.7764) on the same pairs, at 1.5x the training time (README)
EPOCHS = 3
#: word pieces of (question + passage) the model reads when trained
MAX_TOKENS = READ_TOKENS
#: hard negatives per gold passage in a training group
NEGATIVES = 7
#: groups per optimiser step
GROUPS = 4
LEARNING_RATE = 5e-5
HEAD_LEARNING_RATE = 1e-3

#: (question, gold passages, hard negatives), each passage as the reranker sees it; each
#: step reads one of the gold passages, so a question counts once however many answer it
Group = tuple[str, list[str], list[str]]


def prepare(
    lists: Sequence[TrainingList],
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> CrossReranker:
    """A ``CrossReranker`` whose cross-encoder is trained on ``kenning tune``'s (question,
    candidates, gold mask) lists: what tune calls in place of ``CrossReranker.prepare``."""
    groups = []
    for question, passages, gold in lists:
        texts = [read_passage(p) for p in passages]
        golds = [t for t, g in zip(texts, gold, strict=True) if g]
        groups.append((question, golds, [t for t in texts if t not in golds]))
    return CrossReranker(model=str(train(groups, seed=seed, log=log)))


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
    torch, model = load(None)
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
