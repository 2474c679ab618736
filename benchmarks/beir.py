"""Retrieval quality of bm25, dense and hybrid search on a BEIR-format dataset.

    python benchmarks/beir.py ../shared/data/scifact               # test split
    python benchmarks/beir.py ../shared/data/scifact --tune train   # also grid-search fusion

Each document is written as a Markdown file ("# title" + text) and indexed through the real
pipeline (``Index.add``), so chunking, the keyword index and the embedder are the ones users
get. A document's score is its best chunk's. The index is cached under --work, so a second run
re-embeds nothing. Prints nDCG@10, Recall@100 and MRR@10 per method.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from kenning import Index, store
from kenning.datasets import load_beir, write_corpus
from kenning.metrics import evaluate, to_run
from kenning.search import ALPHA, DEPTH, fuse


def doc_ranking(hits: list[tuple[int, float]], doc_of: dict[int, str]) -> dict[str, float]:
    return to_run(doc_of[c] for c, _ in hits if c in doc_of)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--tune", metavar="SPLIT", help="grid-search the fusion on this split")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--depth", type=int, default=DEPTH, help="candidates per ranking")
    ap.add_argument("--work", type=Path, default=None, help="cache folder for files and index")
    ap.add_argument(
        "--large",
        action="store_true",
        help="search as on a large index: HNSW vectors and the common-term cut-off",
    )
    ap.add_argument("--share", type=float, default=None, help="common-term share (with --large)")
    args = ap.parse_args()
    if args.large:
        store.COMMON_TERM_MIN_CHUNKS = 0
        if args.share is not None:
            store.COMMON_TERM_SHARE = args.share

    name = args.dataset.resolve().name
    work = args.work or Path(os.environ.get("KENNING_CACHE", Path.home() / ".cache/kenning"))
    work = work / "bench" / f"{name}-{args.embedder}"
    data = load_beir(args.dataset, args.split)
    names = write_corpus(data, work / "docs")
    t0 = time.perf_counter()
    index = Index.open(
        work / "index.db", embedder=args.embedder, vector_index="hnsw" if args.large else "auto"
    )
    report = index.add([work / "docs"])
    print(
        f"# {name}: {len(data.corpus)} docs, index ready in {time.perf_counter() - t0:.0f}s "
        f"({report.chunks_embedded} chunks embedded, {index.status()['chunks']} chunks)",
        flush=True,
    )

    splits = [args.split] + ([args.tune] if args.tune else [])
    for split in splits:
        d = data if split == args.split else load_beir(args.dataset, split)
        lists = {}
        doc_of: dict[int, str] = {}
        t0 = time.perf_counter()
        for qid, text in d.queries.items():
            per_mode = []
            for mode in ("bm25", "dense"):
                hits = index.search(text, k=args.depth, mode=mode, depth=args.depth)
                for h in hits:
                    doc_of[h.chunk_id] = names[Path(h.path).stem]
                per_mode.append(
                    [(h.chunk_id, h.bm25_score if mode == "bm25" else h.dense_score) for h in hits]
                )
            lists[qid] = per_mode
        print(
            f"\n## split {split}: {len(d.queries)} queries "
            f"({(time.perf_counter() - t0) / len(d.queries) * 1000:.1f} ms per query pair)"
        )
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
                ranking = (
                    b if label == "bm25" else dn if label == "dense" else fuse(b, dn, fusion, alpha)
                )
                run[qid] = doc_ranking(ranking, doc_of)
            mean, _ = evaluate(run, d.qrels, ks=(10, 100))
            ndcg, recall, mrr = mean["ndcg@10"], mean["recall@100"], mean["mrr@10"]
            print(f"{label:<22} {ndcg:8.4f} {recall:8.4f} {mrr:8.4f}", flush=True)
        if split == args.split:
            run = {}
            for qid, text in d.queries.items():
                hits = index.search(text, k=2 * args.depth, depth=args.depth)
                run[qid] = to_run(names[Path(h.path).stem] for h in hits)
            mean, _ = evaluate(run, d.qrels, ks=(10, 100))
            print(
                f"{'default hybrid (API)':<22} {mean['ndcg@10']:8.4f} {mean['recall@100']:8.4f} "
                f"{mean['mrr@10']:8.4f}"
            )
    index.close()


if __name__ == "__main__":
    sys.exit(main())
