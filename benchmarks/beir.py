"""Retrieval quality of bm25, dense and hybrid search on a BEIR-format dataset.

    python benchmarks/beir.py ../shared/data/scifact               # test split
    python benchmarks/beir.py ../shared/data/scifact --tune train   # also grid-search fusion
    python benchmarks/beir.py ../shared/data/scifact --large        # as on a >20k-chunk index

Every figure comes from the library's own evaluation path (``kenning.eval.evaluate``, what
`kenning eval retrieval` runs): each document is a Markdown file ("# title" + text) indexed
through the real pipeline and cached under ``$KENNING_CACHE/eval``; a document ranks where its
best chunk ranks in the engine's own order. Prints nDCG@10, Recall@100 and MRR@10.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kenning.eval.evaluate import RunConfig, evaluate_beir
from kenning.search import ALPHA


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--tune", metavar="SPLIT", help="grid-search the fusion on this split")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument(
        "--large",
        action="store_true",
        help="search as a >20k-chunk index does: HNSW vectors, in-memory BM25",
    )
    args = ap.parse_args()
    common: dict[str, str] = {"embedder": args.embedder}
    if args.large:
        common.update(vector_index="hnsw", keyword_index="memory")
    print(f"# {args.dataset.name}; large-index mode: {args.large}", flush=True)
    for split in [args.split] + ([args.tune] if args.tune else []):
        alphas = [a / 20 for a in range(2, 19)] if split == args.tune else [ALPHA]
        configs = [
            RunConfig("bm25", mode="bm25", **common),
            RunConfig("dense", mode="dense", **common),
            RunConfig("rrf", fusion="rrf", **common),
            *(RunConfig(f"weighted a={a:.2f}", alpha=a, **common) for a in alphas),
        ]
        t0 = time.perf_counter()
        results = evaluate_beir(args.dataset, split, configs, ks=(10, 100))
        took = time.perf_counter() - t0
        print(f"\n## split {split}: {len(results[0].per_query)} queries ({took:.0f}s)")
        print(f"{'method':<22} {'nDCG@10':>8} {'R@100':>8} {'MRR@10':>8}")
        for r in results:
            m = r.mean
            print(
                f"{r.config.name:<22} {m['ndcg@10']:8.4f} {m['recall@100']:8.4f} "
                f"{m['mrr@10']:8.4f}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
