"""SciFact on the PostgreSQL store against the SQLite default: nDCG@10 and query latency.

    python benchmarks/postgres.py ../shared/data/scifact
    python benchmarks/postgres.py ../shared/data/scifact --url postgresql://me@db/scratch

The SQLite index is the evaluation cache (`kenning eval retrieval` and benchmarks/beir.py
build it: SciFact through the real pipeline, default MiniLM). It is copied into PostgreSQL
with ``kenning.index.copying.copy_index`` (what `kenning migrate` runs: no re-embedding), into a
throwaway local server (``kenning.store.postgres.local``) unless ``--url`` names an empty
database. Then the 300 test queries run through the evaluation path on both stores, for
bm25, dense and hybrid, and the nDCG@10 of each pair is printed with its difference, with the
p50/p95 of the hybrid query (query embedding included) on each store.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from kenning import Index
from kenning.eval.datasets import load_beir
from kenning.eval.evaluate import RunConfig, corpus_index, run_queries, score_configs
from kenning.index.copying import copy_index
from kenning.search import Hit
from kenning.store import open_store
from kenning.store.postgres.local import LocalPostgres

MODES = ("bm25", "dense", "hybrid")


def latency(index: Index, queries: list[str]) -> tuple[float, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, k=10)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--url", help="an empty PostgreSQL database (default: a local throwaway)")
    args = ap.parse_args()
    data = load_beir(args.dataset, "test")
    configs = [RunConfig(m, mode=m) for m in MODES]
    sqlite, names = corpus_index(data, args.dataset.resolve().name, configs[0])

    def doc_id(_qid: str, hit: Hit) -> str | None:
        return names.get(Path(hit.path).stem)

    server = None
    url = args.url
    if url is None:
        server = LocalPostgres().start()
        url = server.new_database("scifact")
    try:
        t0 = time.perf_counter()
        with open_store(url) as target:
            report = copy_index(sqlite.store, target)
        print(
            f"copied {report.files} files, {report.chunks} chunks, {report.vectors} vectors "
            f"into PostgreSQL in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        pg = Index.open(url)
        k = 100
        runs = {}
        for store, index in (("sqlite", sqlite), ("postgres", pg)):
            for config in configs:
                runs[(store, config.name)] = run_queries(index, data.queries, config, doc_id, k)
        scored = {
            key: r.mean
            for key, r in zip(
                runs,
                score_configs([(configs[0], run) for run in runs.values()], data.qrels, (10,)),
                strict=True,
            )
        }
        print(f"\n{'mode':<8} {'SQLite':>8} {'PostgreSQL':>11} {'diff':>8}")
        for mode in MODES:
            a, b = scored[("sqlite", mode)]["ndcg@10"], scored[("postgres", mode)]["ndcg@10"]
            print(f"{mode:<8} {a:8.4f} {b:11.4f} {b - a:+8.4f}")
        queries = list(data.queries.values())
        for name, index in (("SQLite", sqlite), ("PostgreSQL", pg)):
            p50, p95 = latency(index, queries)
            print(f"hybrid query on {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
        pg.close()
    finally:
        sqlite.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
