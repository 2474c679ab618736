"""Retrieval evaluation: several search configurations, side by side, on one query set.

A query set is either a BEIR folder (documents, queries, graded qrels) or a question set
generated from the user's own notes (each question's gold passage is a source span). Each
configuration is run over every query; metrics come from ``kenning.metrics`` (trec_eval
semantics), and every configuration is compared with the first by a paired bootstrap test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import cache_dir
from kenning.errors import ConfigError
from kenning.index import Index
from kenning.ingest.sync import Progress
from kenning.search import ALPHA, DEPTH, FUSIONS, MODES, Hit, check_mode
from kenning.text.chunking import ChunkSpec

from .datasets import BeirDataset, write_corpus
from .metrics import evaluate, to_run

_DEFAULT_SPEC = ChunkSpec()


@dataclass(frozen=True)
class RunConfig:
    """One configuration to evaluate: how to search, and how the index is built."""

    name: str
    mode: str = "hybrid"
    fusion: str = "weighted"
    alpha: float = ALPHA
    depth: int = DEPTH
    embedder: str = "minilm"
    chunk_size: int = _DEFAULT_SPEC.size
    overlap: int = _DEFAULT_SPEC.overlap
    #: ``auto``, or a registered id: compare exact and HNSW vectors, or FTS5 and in-memory BM25
    vector_index: str = "auto"
    keyword_index: str = "auto"

    @classmethod
    def parse(cls, text: str, defaults: dict[str, Any] | None = None) -> RunConfig:
        """Read ``NAME=SPEC``; SPEC is ``key=value`` pairs and/or a mode or fusion name.

        ``bm25=bm25``, ``rrf=rrf``, ``a6=hybrid,alpha=0.6``, ``small=chunk_size=128``.
        ``defaults`` fill the keys the spec leaves out (e.g. the embedder of the user's index).
        """
        name, sep, spec = text.partition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"--config {text!r}: write NAME=SPEC, e.g. hybrid=hybrid or rrf=fusion=rrf"
            )
        types = {f.name: f.type for f in fields(cls) if f.name != "name"}
        values: dict[str, Any] = {}
        for part in filter(None, (s.strip() for s in spec.split(","))):
            key, eq, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not eq:
                if key in MODES:
                    values["mode"] = key
                elif key in FUSIONS:
                    values.update(mode="hybrid", fusion=key)
                else:
                    raise ConfigError(
                        f"--config {text!r}: {key!r} is not a mode ({', '.join(MODES)}) or "
                        f"fusion ({', '.join(FUSIONS)})"
                    )
                continue
            if key not in types:
                raise ConfigError(
                    f"--config {text!r}: unknown key {key!r}; valid keys: {', '.join(types)}"
                )
            kind = {"str": str, "float": float, "int": int}[str(types[key])]
            try:
                values[key] = kind(value.strip())
            except ValueError:
                raise ConfigError(
                    f"--config {text!r}: {key} must be {kind.__name__}, not {value!r}"
                ) from None
        config = cls(name.strip(), **{**(defaults or {}), **values})
        check_mode(config.mode, config.fusion)
        ChunkSpec(config.chunk_size, config.overlap)  # validates
        return config

    def search_args(self) -> dict[str, Any]:
        return {"mode": self.mode, "fusion": self.fusion, "alpha": self.alpha, "depth": self.depth}

    def spec(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "name"}


DEFAULT_CONFIGS = [
    RunConfig("bm25", mode="bm25"),
    RunConfig("dense", mode="dense"),
    RunConfig("hybrid"),
]


@dataclass
class ConfigResult:
    """Metrics of one configuration: means, per-query figures, the run, and p-values."""

    config: RunConfig
    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: dict[str, dict[str, float]]
    p_values: dict[str, float] = field(default_factory=dict)


def corpus_digest(data: BeirDataset) -> str:
    h = hashlib.sha256()
    for doc_id in sorted(data.corpus):
        title, text = data.corpus[doc_id]
        h.update(f"{doc_id}\x00{title}\x00{text}\x01".encode())
    return h.hexdigest()[:16]


def corpus_index(
    data: BeirDataset, name: str, config: RunConfig, progress: Progress | None = None
) -> tuple[Index, dict[str, str]]:
    """An index of the corpus for this config, reused while corpus and settings match.

    Returns the index and a map from file stem to document id. Indexes are cached under
    ``$KENNING_CACHE/eval/<name>-<corpus hash>/``, one per (embedder, chunk size, overlap).
    """
    base = cache_dir() / "eval" / f"{name}-{corpus_digest(data)}"
    names = write_corpus(data, base / "docs")
    spec = ChunkSpec(config.chunk_size, config.overlap)
    db = base / f"{config.embedder}-{spec.size}-{spec.overlap}.db"
    index = Index.open(
        db,
        embedder=config.embedder,
        chunking=spec,
        vector_index=config.vector_index,
        keyword_index=config.keyword_index,
    )
    index.add([base / "docs"], progress=progress)
    return index, names


def run_queries(
    index: Index,
    queries: dict[str, str],
    config: RunConfig,
    doc_id: Callable[[str, Hit], str | None],
    k: int,
    tick: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Search every query; a document ranks where its best chunk ranks.

    Run scores are minus the rank, so the run keeps the engine's own order. The raw fused
    scores would not: reciprocal rank fusion gives many documents equal scores, and trec_eval
    breaks such ties by document id, which is not the order a user sees.
    """
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        hits = index.search(text, k=k, **config.search_args())
        run[qid] = to_run(d for hit in hits if (d := doc_id(qid, hit)) is not None)
        if tick:
            tick()
    return run


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value that configs a and b differ, by a paired bootstrap over queries.

    The per-query differences are resampled with replacement; the p-value is the share of
    null-centred resampled means at least as far from zero as the observed mean.
    """
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if len(d) == 0 or not np.any(d):
        return 1.0
    rng = np.random.default_rng(seed)
    observed = abs(d.mean())
    hits = 0
    for start in range(0, samples, 1000):
        n = min(1000, samples - start)
        means = d[rng.integers(0, len(d), (n, len(d)))].mean(axis=1) - d.mean()
        hits += int(np.sum(np.abs(means) >= observed - 1e-12))
    return hits / samples


def score_configs(
    runs: list[tuple[RunConfig, dict[str, dict[str, float]]]],
    qrels: dict[str, dict[str, int]],
    ks: tuple[int, ...],
) -> list[ConfigResult]:
    """Metrics for each run, and p-values of each against the first."""
    results = []
    for config, run in runs:
        mean, per_query = evaluate(run, qrels, ks)
        results.append(ConfigResult(config, mean, per_query, run))
    base = results[0]
    qids = sorted(base.per_query)
    for result in results[1:]:
        for metric in base.mean:
            a = np.array([base.per_query[q][metric] for q in qids])
            b = np.array([result.per_query[q][metric] for q in qids])
            result.p_values[metric] = paired_bootstrap(a, b)
    return results


def write_trec_run(path: Path, name: str, run: dict[str, dict[str, float]]) -> None:
    """A TREC run file: ``qid Q0 docid rank score name`` per line."""
    from .metrics import ranked

    with path.open("w") as f:
        for qid in sorted(run):
            for rank, doc in enumerate(ranked(run[qid]), 1):
                f.write(f"{qid} Q0 {doc} {rank} {run[qid][doc]:.6f} {name}\n")


def evaluate_beir(
    folder: Path,
    split: str,
    configs: list[RunConfig],
    ks: tuple[int, ...] = (10, 100),
    progress: Progress | None = None,
    tick: Callable[[], None] | None = None,
) -> list[ConfigResult]:
    """Run every config over a BEIR split; indexes are built once and cached."""
    from .datasets import load_beir

    data = load_beir(folder, split)
    name = Path(folder).resolve().name
    runs = []
    for config in configs:
        index, names = corpus_index(data, name, config, progress)

        def doc_id(_qid: str, hit: Hit, names: dict[str, str] = names) -> str | None:
            return names.get(Path(hit.path).stem)

        with index:
            run = run_queries(
                index, data.queries, config, doc_id, k=max(max(ks), config.depth), tick=tick
            )
        runs.append((config, run))
    return score_configs(runs, data.qrels, ks)


def evaluate_questions(
    index: Index,
    questions: list[dict[str, Any]],
    configs: list[RunConfig],
    ks: tuple[int, ...] = (10, 100),
    tick: Callable[[], None] | None = None,
) -> list[ConfigResult]:
    """Score a generated question set on the user's own index (gold = source span)."""
    from .questions import gold_doc

    by_id = {q["qid"]: q for q in questions}
    base = RunConfig(
        "index",
        embedder=index.embedder.id,
        chunk_size=index.chunking.size,
        overlap=index.chunking.overlap,
    )
    runs = []
    for config in configs:
        if (config.embedder, config.chunk_size, config.overlap) != (
            base.embedder,
            base.chunk_size,
            base.overlap,
        ):
            raise ConfigError(
                f"--config {config.name}: on your own index only mode, fusion, alpha, depth "
                f"and the vector and keyword indexes can vary (it is built with {base.embedder}, "
                f"chunk size {base.chunk_size}, "
                f"overlap {base.overlap})"
            )
        queries = {q["qid"]: q["question"] for q in questions}
        # The same store, searched with this config's vector and keyword indexes.
        view = Index(
            index.store, index.embedder, index.chunking, config.vector_index, config.keyword_index
        )
        run = run_queries(
            view,
            queries,
            config,
            lambda qid, h: gold_doc(by_id[qid], h),
            k=max(max(ks), config.depth),
            tick=tick,
        )
        runs.append((config, run))
    qrels = {q["qid"]: {"gold": 1} for q in questions}
    return score_configs(runs, qrels, ks)
