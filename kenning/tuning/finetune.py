"""A copy of the packaged MiniLM fine-tuned on one index's tuning pairs.

The training is contrastive, as sentence-transformers' ``MultipleNegativesRankingLoss``: each
question is pulled towards its gold passage and pushed from every other passage in its batch,
the other questions' gold passages and one hard negative per question (a passage the current
search ranks high that does not answer it). The loop is written here in plain torch rather
than through sentence-transformers' trainer, which would add ``datasets`` and ``accelerate``
to the install for a few dozen lines; LoRA (``lora=``) likewise, rather than through ``peft``:
a low-rank update beside each attention weight, merged in before saving.

The weights land in ``<cache>/models/minilm-tuned-<digest>``, where the digest covers the
base model, the training triplets and the settings: the same tuning run twice reuses the
folder, and the embedder id (``minilm-tuned-<digest>``) names exactly those weights, so an
index never searches one model's vectors with another's queries. ``tune`` keeps the model
only when it beats the current one on held-out pairs, and then re-embeds the index with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kenning.config import cache_dir, usable_cores
from kenning.embedders import MiniLMEmbedder, TunedMiniLMEmbedder
from kenning.errors import ConfigError, MissingExtra

#: passes over the triplets; more overfits a few hundred generated pairs
EPOCHS = 1
LEARNING_RATE = 3e-5
BATCH = 32
#: the cosine scale of the softmax over a batch (sentence-transformers' default)
SCALE = 20.0
#: share of the steps over which the learning rate warms up (then it decays linearly)
WARMUP = 0.1
#: how far the saved weights move from the packaged ones towards the trained ones: 1.0 keeps
#: the trained weights, 0.5 their average with the packaged (WiSE-FT's weight interpolation,
#: which keeps more of what the model knew before a few hundred pairs)
MIX = 1.0
#: LoRA: the rank of the low-rank updates trained in place of the attention's query, key and
#: value weights (0: train every weight), their scale (alpha / rank) and learning rate. The
#: updates are merged into the weights before saving, so a LoRA-tuned model loads, exports
#: and embeds exactly as a fully fine-tuned one.
LORA = 0
#: the rank ``kenning tune --lora`` trains
LORA_RANK = 8
LORA_ALPHA = 16.0
LORA_LEARNING_RATE = 5e-4
LORA_TARGETS = ("query", "key", "value")

#: (question, gold passage, hard negative), each as the embedder sees it
Triplet = tuple[str, str, str]


@dataclass
class Finetuned:
    """A trained model and what training it took."""

    embedder: TunedMiniLMEmbedder
    steps: int
    seconds: float
    reused: bool  # the same training had run before: its folder was reused


def finetune(
    base: MiniLMEmbedder,
    triplets: list[Triplet],
    epochs: float = EPOCHS,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    mix: float = MIX,
    lora: int = LORA,
) -> Finetuned:
    """Train a copy of ``base`` on ``triplets`` (CPU, or the GPU torch finds) and save it,
    its weights ``mix`` of the way from the packaged ones to the trained ones.

    With ``lora`` > 0 only rank-``lora`` updates of the attention weights train (LoRA: about
    110k parameters at rank 8 instead of 22M), which moves the model less far from what it
    knew; the updates are merged into the saved weights."""
    if not 0.0 < mix <= 1.0:
        raise ConfigError(f"mix must be in (0, 1], not {mix}")
    if lora < 0:
        raise ConfigError(f"the LoRA rank must be 0 (off) or positive, not {lora}")
    say = log or (lambda _m: None)
    folder = _folder(base, triplets, epochs, seed, mix, lora)
    if (folder / "model.safetensors").is_file():
        return Finetuned(TunedMiniLMEmbedder(str(folder)), 0, 0.0, reused=True)
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - core dependencies of the minilm extra
        raise MissingExtra("torch", None) from e
    started = time.perf_counter()
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    torch.set_num_threads(usable_cores())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(base.model_dir()), device=device)
    model.max_seq_length = base.max_tokens
    batch = min(BATCH, len(triplets))
    steps = max(1, math.ceil(len(triplets) * epochs / batch))
    order = passes(len(triplets), steps * batch, random.Random(seed))
    packaged = {k: v.detach().clone() for k, v in model.state_dict().items()} if mix < 1 else {}
    adapters = _add_lora(model, lora) if lora else []
    trained = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trained, lr=LORA_LEARNING_RATE if lora else LEARNING_RATE)
    schedule = warmup_then_decay(torch, optimiser, steps)

    def encode(texts: list[str]) -> torch.Tensor:
        features = model.preprocess(texts)
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    model.train()
    for step in range(steps):
        part = [triplets[i] for i in order[step * batch : (step + 1) * batch]]
        questions = encode([q for q, _, _ in part])
        passages = encode([p for _, p, _ in part] + [n for _, _, n in part])
        logits = SCALE * questions @ passages.T  # question i's gold passage is column i
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(part), device=device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        say(f"fine-tuning: step {step + 1}/{steps}, loss {loss.item():.3f}")
    model.eval()
    _merge_lora(adapters)
    if mix < 1.0:
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if value.is_floating_point():
                    value.copy_(packaged[name] + mix * (value - packaged[name]))
    publish(folder, lambda tmp: model.save(str(tmp)))
    return Finetuned(
        TunedMiniLMEmbedder(str(folder)), steps, time.perf_counter() - started, reused=False
    )


def passes(items: int, needed: int, rng: random.Random) -> list[int]:
    """At least ``needed`` item indexes: whole passes over the items, each shuffled, end to
    end, so every item is seen as often as the others."""
    order: list[int] = []
    while len(order) < needed:
        shuffled = list(range(items))
        rng.shuffle(shuffled)
        order += shuffled
    return order


def warmup_then_decay(torch: Any, optimiser: Any, steps: int) -> Any:
    """The learning rate rises over the first ``WARMUP`` share of the steps, then falls
    linearly to zero at the last."""
    warm = max(1.0, WARMUP * steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps)
    )


def publish(folder: Path, write: Callable[[Path], None]) -> None:
    """``write`` a model into a folder of this process and thread, then put it in place under
    ``folder``'s name: a killed run never leaves a half-written model under the name, and two
    runs of the same training never write into one folder."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    folder.parent.mkdir(parents=True, exist_ok=True)
    write(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _add_lora(model: Any, rank: int) -> list[tuple[Any, str, Any]]:
    """Freeze ``model`` and put a trainable low-rank update beside each attention query, key
    and value weight; returns (parent module, attribute, wrapper) for ``_merge_lora``."""
    import torch

    class LoRALinear(torch.nn.Module):
        """``base(x) + scale * x A^T B^T``; B starts at zero, so training starts from the
        packaged model exactly."""

        def __init__(self, base: torch.nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.scale = LORA_ALPHA / rank
            self.a = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale

    model.requires_grad_(False)
    wrapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if name in LORA_TARGETS and isinstance(child, torch.nn.Linear):
                adapter = LoRALinear(child).to(child.weight.device)
                setattr(parent, name, adapter)
                wrapped.append((parent, name, adapter))
    if not wrapped:
        raise ConfigError(f"LoRA found no attention layers named {LORA_TARGETS} to adapt")
    return wrapped


def _merge_lora(wrapped: list[tuple[Any, str, Any]]) -> None:
    """Fold each update into its weight and put the plain layer back."""
    import torch

    with torch.no_grad():
        for parent, name, adapter in wrapped:
            adapter.base.weight += adapter.scale * adapter.b @ adapter.a
            setattr(parent, name, adapter.base)


def _folder(
    base: MiniLMEmbedder,
    triplets: list[Triplet],
    epochs: float,
    seed: int,
    mix: float,
    lora: int = 0,
) -> Path:
    digest = hashlib.sha256()
    settings = [base.id, str(base.model_dir()), epochs, seed, LEARNING_RATE, BATCH, SCALE, WARMUP]
    if mix != 1.0:  # folders trained before mixing existed keep their names
        settings.append(mix)
    if lora:
        settings += ["lora", lora, LORA_ALPHA, LORA_LEARNING_RATE, *LORA_TARGETS]
    digest.update(json.dumps(settings).encode())
    for triplet in triplets:
        digest.update(json.dumps(triplet).encode())
    return cache_dir() / "models" / f"minilm-tuned-{digest.hexdigest()[:12]}"
