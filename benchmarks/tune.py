"""`kenning tune` on a BEIR dataset: tuned from the corpus alone, scored on the test queries.

    python benchmarks/tune.py ../shared/data/scifact                 # 300 test queries
    python benchmarks/tune.py ../shared/data/scifact --queries 100 -n 300

The index is the one `kenning eval retrieval` caches under ``$KENNING_CACHE/eval`` (built
first if missing), copied with SQLite's backup API so the tuning never touches the cache
(nor waits on another process using it).
``kenning.tuning.tune`` then generates pairs from the corpus only (never the test queries),
and each setting is scored on the test split through ``Index.search``: the default hybrid,
what tune kept, and that plus the reranker it trained. Prints nDCG@10 and Recall@100, the
paired bootstrap p-value against the default, tuning time and p50 query latency.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import cache_dir
from kenning.eval.datasets import load_beir, write_corpus
from kenning.eval.evaluate import RunConfig, corpus_digest, corpus_index, paired_bootstrap
from kenning.eval.metrics import evaluate, to_run
from kenning.index import Index
from kenning.ingest.chunking import ChunkSpec
from kenning.search import ALPHA
from kenning.tuning.tune import tune


def score(
    index: Index, queries: dict[str, str], names: dict[str, str], **search: Any
) -> tuple[dict[str, dict[str, float]], float]:
    """A run over the queries (a document ranks where its best chunk ranks), and the p50
    latency in milliseconds."""
    run: dict[str, dict[str, float]] = {}
    times = []
    for qid, text in queries.items():
        start = time.perf_counter()
        hits = index.search(text, k=100, **search)
        times.append(time.perf_counter() - start)
        run[qid] = to_run(d for h in hits if (d := names.get(Path(h.path).stem)) is not None)
    return run, statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--queries", type=int, default=0, help="only the first N queries (0: all)")
    ap.add_argument("-n", type=int, default=300, help="pairs generated for tuning")
    ap.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    data = load_beir(args.dataset, args.split)
    queries = dict(sorted(data.queries.items())[: args.queries or None])
    qrels = {q: data.qrels[q] for q in queries if q in data.qrels}
    name = args.dataset.resolve().name
    base = cache_dir() / "eval" / f"{name}-{corpus_digest(data)}"
    db = base / f"{args.embedder}-{ChunkSpec().size}-{ChunkSpec().overlap}.db"
    names = write_corpus(data, base / "docs")
    if not db.exists():  # built (and cached) as `kenning eval retrieval` builds it
        corpus_index(data, name, RunConfig("x", args.embedder))[0].close()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "index.db"
        with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        with Index.open(copy) as index:
            rows: list[tuple[str, dict[str, dict[str, float]], float]] = []
            run, ms = score(index, queries, names, alpha=ALPHA)
            rows.append(("default hybrid", run, ms))
            t0 = time.perf_counter()
            report = tune(index, n=args.n, log=lambda m: print(f"  .. {m}", flush=True))
            took = time.perf_counter() - t0
            print(f"\n{report.message}\n(tuning took {took:.0f}s)")
            for s in report.settings:
                print(f"  held-out {s['setting']:<18} nDCG@10 {s['ndcg@10']:.4f}")
            if report.reranker:
                r = report.reranker
                print(f"  held-out reranker {r['ndcg@10']:.4f} -> {r['reranked_ndcg@10']:.4f}")
            if report.changed:
                run, ms = score(index, queries, names)
                rows.append((f"tuned ({report.kept})", run, ms))
            if report.reranker and report.reranker["kept"]:
                run, ms = score(index, queries, names, rerank=True)
                rows.append(("tuned + reranker", run, ms))
    _, base_q = evaluate(rows[0][1], qrels, (10, 100))
    qids = sorted(base_q)
    print(f"\n## {args.dataset.name} {args.split}: {len(qids)} queries")
    print(f"{'setting':<28} {'nDCG@10':>8} {'R@100':>8} {'p':>6} {'p50 ms':>7}")
    for name, run, ms in rows:
        mean, per_q = evaluate(run, qrels, (10, 100))
        a = np.array([base_q[q]["ndcg@10"] for q in qids])
        p = paired_bootstrap(a, np.array([per_q[q]["ndcg@10"] for q in qids]))
        print(f"{name:<28} {mean['ndcg@10']:8.4f} {mean['recall@100']:8.4f} {p:6.3f} {ms:7.1f}")


if __name__ == "__main__":
    main()
