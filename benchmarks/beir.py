"""Retrieval quality of bm25, dense and hybrid search on a BEIR-format dataset.

    python benchmarks/beir.py ../shared/data/scifact               # test split
    python benchmarks/beir.py ../shared/data/scifact --tune train   # also grid-search fusion
    python benchmarks/beir.py ../shared/data/scifact --large        # as on a >20k-chunk index

Each document is written as a Markdown file ("# title" + text) and indexed through the real
pipeline, so chunking, the keyword index and the embedder are the ones users get; the index is
the one `kenning eval retrieval` builds and caches (``$KENNING_CACHE/eval``), so both report
the same figures. A document scores its best chunk. Prints nDCG@10, Recall@100 and MRR@10.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kenning.eval.datasets import load_beir
from kenning.eval.evaluate import RunConfig, corpus_index, run_queries
from kenning.eval.metrics import evaluate, to_run
from kenning.search import ALPHA, DEPTH, fuse


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

    data = load_beir(args.dataset, args.split)
    t0 = time.perf_counter()
    default = RunConfig("hybrid", embedder=args.embedder)
    index, names = corpus_index(data, args.dataset.resolve().name, default)
    if args.large:
        index.vector_index_name, index.keyword_index_name = "hnsw", "memory"
    print(
        f"# {args.dataset.name}: {len(data.corpus)} docs, {index.status()['chunks']} chunks, "
        f"index ready in {time.perf_counter() - t0:.0f}s; large-index mode: {args.large}",
        flush=True,
    )

    def doc(h_path: str) -> str | None:
        return names.get(Path(h_path).stem)

    for split in [args.split] + ([args.tune] if args.tune else []):
        d = data if split == args.split else load_beir(args.dataset, split)
        lists, doc_of = {}, {}
        t0 = time.perf_counter()
        for qid, text in d.queries.items():
            per_mode = []
            for mode in ("bm25", "dense"):
                hits = index.search(text, k=DEPTH, mode=mode)
                doc_of.update({h.chunk_id: doc(h.path) for h in hits})
                per_mode.append(
                    [(h.chunk_id, h.bm25_score if mode == "bm25" else h.dense_score) for h in hits]
                )
            lists[qid] = per_mode
        per_pair = (time.perf_counter() - t0) / len(d.queries) * 1000
        print(f"\n## split {split}: {len(d.queries)} queries ({per_pair:.1f} ms per query pair)")
        configs: list[tuple[str, str, float]] = [
            ("bm25", "", 0),
            ("dense", "", 0),
            ("rrf", "rrf", 0),
        ]
        alphas = [a / 20 for a in range(2, 19)] if split == args.tune else [ALPHA]
        configs += [(f"weighted a={a:.2f}", "weighted", a) for a in alphas]
        print(f"{'method':<22} {'nDCG@10':>8} {'R@100':>8} {'MRR@10':>8}")
        for label, fusion, alpha in configs:
            run = {}
            for qid, (b, dn) in lists.items():
                ranking = {"bm25": b, "dense": dn}.get(label) or fuse(b, dn, fusion, alpha)
                run[qid] = to_run(doc_of[c] for c, _ in ranking)
            mean, _ = evaluate(run, d.qrels, ks=(10, 100))
            ndcg, recall, mrr = mean["ndcg@10"], mean["recall@100"], mean["mrr@10"]
            print(f"{label:<22} {ndcg:8.4f} {recall:8.4f} {mrr:8.4f}", flush=True)
        if split == args.split:  # the library path, as `kenning eval retrieval` runs it
            run = run_queries(index, d.queries, default, lambda _q, h: doc(h.path), k=DEPTH)
            mean, _ = evaluate(run, d.qrels, ks=(10, 100))
            ndcg, recall, mrr = mean["ndcg@10"], mean["recall@100"], mean["mrr@10"]
            print(f"{'default (library)':<22} {ndcg:8.4f} {recall:8.4f} {mrr:8.4f}")
    index.close()


if __name__ == "__main__":
    sys.exit(main())
