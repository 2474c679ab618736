"""`kenning tune` on a BEIR dataset: tuned without the test queries, scored on them.

    python benchmarks/tune.py ../shared/data/scifact                  # corpus alone
    python benchmarks/tune.py ../shared/data/scifact --train-queries  # + the train queries
    python benchmarks/tune.py ../shared/data/scifact --queries 100 -n 300
    python benchmarks/tune.py ../shared/data/scifact --train-queries --finetune --epochs 4
    python benchmarks/tune.py ../shared/data/scifact --llm local --model qwen2.5-coder-0.5b
    python benchmarks/tune.py ../shared/data/scifact --train-queries --rerankers cross --no-combos

The index is the one `kenning eval retrieval` caches under ``$KENNING_CACHE/eval`` (built
first if missing), copied with SQLite's backup API so the tuning never touches the cache
(nor waits on another process using it).
``kenning.tuning.tune`` then generates pairs from the corpus (never the test queries); with
``--train-queries`` the judged queries of the train split are added to them as pairs (each
with the documents its qrels mark relevant), split, trained on and held out alike.
Every setting tune measured is then scored on the test split through ``Index.search``: the
default hybrid, the fitted fusion weight, the query adapter, both, the reranker on the default
hybrid and on the adapter, and tune's own choice (chosen on its held-out pairs, never on the
test queries) with and without its reranker, then names the best row (an upper bound, as it
is picked on the test queries). ``--finetune`` adds the fine-tuned MiniLM (``kenning tune
--finetune``), with the tuned and with the packaged fusion weight, scored on the index
re-embedded by it whether tune kept it or not, also under each trained reranker (trained on
the packaged model's lists: a pairing tune itself never makes); the other settings are scored
on an untouched copy with the packaged vectors. Prints nDCG@10 and Recall@100, a paired
bootstrap p-value against the default and against the step before, tuning time and p50 query
latency.
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

from kenning.answer.llms import get_llm
from kenning.config import cache_dir
from kenning.eval.datasets import load_beir, safe_name, write_corpus
from kenning.eval.evaluate import RunConfig, corpus_digest, corpus_index, paired_bootstrap
from kenning.eval.metrics import evaluate, to_run
from kenning.index import Index
from kenning.search.tuned import META_KEY, Tuning
from kenning.text.chunking import ChunkSpec
from kenning.tuning.finetune import EPOCHS, MIX
from kenning.tuning.tune import tune

Run = dict[str, dict[str, float]]


def score(
    index: Index, queries: dict[str, str], names: dict[str, str], rerank: bool = False
) -> tuple[Run, float, float | None]:
    """A run over the queries (a document ranks where its best chunk ranks), the p50 query
    latency and, with ``rerank``, the p50 time spent reranking, in milliseconds.

    Reranking asks for k = the depth tune chose (the top 10, 20 or 30 re-ordered, as
    `kenning search --rerank` does for smaller k); the ranks below follow from the plain
    search."""
    run: Run = {}
    times, reranking = [], []
    depth = index.searcher.rerank_depth(index.searcher.tuning())
    for qid, text in queries.items():
        start = time.perf_counter()
        hits = index.search(text, k=depth if rerank else 100, rerank=rerank)
        times.append(time.perf_counter() - start)
        if rerank:
            reranking.append(index.searcher.rerank_seconds or 0.0)
            seen = {h.chunk_id for h in hits}
            hits += [h for h in index.search(text, k=100) if h.chunk_id not in seen]
        run[qid] = to_run(d for h in hits if (d := names.get(Path(h.path).stem)) is not None)
    spent = statistics.median(reranking) * 1000 if reranking else None
    return run, statistics.median(times) * 1000, spent


def train_pairs(dataset: Path, docs: Path) -> list[dict[str, Any]]:
    """The judged train queries as tuning pairs: the question and its relevant documents."""
    data = load_beir(dataset, "train")
    pairs = []
    for qid, text in sorted(data.queries.items()):
        paths = [
            str((docs / f"{safe_name(d)}.md").resolve())
            for d, rel in sorted(data.qrels[qid].items())
            if rel > 0 and d in data.corpus
        ]
        if paths:
            pairs.append(
                {"qid": f"train-{qid}", "question": text, "path": paths[0], "paths": paths}
            )
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--queries", type=int, default=0, help="only the first N queries (0: all)")
    ap.add_argument("-n", type=int, default=300, help="pairs generated for tuning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--train-queries", action="store_true", help="add the train split's queries as pairs"
    )
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--finetune", action="store_true", help="fine-tune MiniLM too")
    ap.add_argument("--epochs", type=float, default=EPOCHS, help="fine-tuning passes")
    ap.add_argument("--mix", type=float, default=MIX, help="fine-tuned weights' share (WiSE-FT)")
    ap.add_argument("--lora", type=int, default=0, help="fine-tune LoRA updates of this rank")
    ap.add_argument("--llm", help="an LLM backend writes the generated questions (local, ...)")
    ap.add_argument("--model", help="the model for --llm (e.g. qwen2.5-coder-0.5b)")
    ap.add_argument("--rerankers", default="features,late", help="reranker backends to train")
    ap.add_argument(
        "--no-combos",
        action="store_true",
        help="score each reranker on the default hybrid only (not also on the adapter)",
    )
    args = ap.parse_args()
    if args.train_queries and args.split == "train":
        ap.error("--train-queries cannot be scored on the train split")
    data = load_beir(args.dataset, args.split)
    queries = dict(sorted(data.queries.items())[: args.queries or None])
    qrels = {q: data.qrels[q] for q in queries if q in data.qrels}
    name = args.dataset.resolve().name
    base = cache_dir() / "eval" / f"{name}-{corpus_digest(data)}"
    db = base / f"{args.embedder}-{ChunkSpec().size}-{ChunkSpec().overlap}.db"
    names = write_corpus(data, base / "docs")
    if not db.exists():  # built (and cached) as `kenning eval retrieval` builds it
        corpus_index(data, name, RunConfig("x", args.embedder))[0].close()
    extra = train_pairs(args.dataset, base / "docs") if args.train_queries else []
    if extra:  # SciFact's train split repeats 2 test claims word for word: left out
        test_texts = set(load_beir(args.dataset, args.split).queries.values())
        kept_pairs = [p for p in extra if p["question"] not in test_texts]
        left = len(extra) - len(kept_pairs)
        print(f"{len(kept_pairs)} train queries ({left} equal to a test query, left out)")
        extra = kept_pairs
    #: name, run, p50 ms, p50 ms reranking, the step before
    rows: list[tuple[str, Run, float, float | None, str | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        copy, plain_copy = Path(tmp) / "index.db", Path(tmp) / "plain.db"
        for target in (copy, plain_copy):
            with sqlite3.connect(db) as src, sqlite3.connect(target) as dst:
                src.backup(dst)
        with Index.open(copy) as index, Index.open(plain_copy) as plain:
            run, ms, _ = score(index, queries, names)
            rows.append(("default hybrid", run, ms, None, None))
            t0 = time.perf_counter()
            report = tune(
                index,
                n=args.n,
                seed=args.seed,
                extra=extra,
                finetune_model=args.finetune or args.lora > 0,
                lora=args.lora,
                reranker_backends=args.rerankers.split(","),
                epochs=args.epochs,
                mix=args.mix,
                writer=get_llm(args.llm, **({"model": args.model} if args.model else {}))
                if args.llm
                else None,
                log=lambda m: print(f"  .. {m}"),
            )
            took = time.perf_counter() - t0
            kept = index.store.get_meta(META_KEY) or ""
            print(f"\n{report.message}\n(tuning took {took:.0f}s, {report.pairs} pairs)")
            for s in report.settings:
                print(
                    f"  held-out {s['setting']:<18} alpha {s['alpha']:.2f} "
                    f"nDCG@10 {s['ndcg@10']:.4f}  (train {s['train_ndcg@10']:.4f})"
                )
            r = report.reranker or {}
            for name, t in r.get("tried", {}).items():
                print(
                    f"  held-out reranker {name}: {r['ndcg@10']:.4f} -> "
                    f"{t['reranked_ndcg@10']:.4f} at top {t['depth']} {t['by_depth']} "
                    f"(trained in {t['train_seconds']}s on "
                    f"{t['trained_on']} lists; kept: {r['kept'] and name == r['backend']})"
                )
            f = report.finetuned
            if f:
                print(
                    f"  fine-tuned {f['model']}: {f['steps']} steps ({f['epochs']} epochs, "
                    f"mix {f['mix']}, LoRA rank {f['lora']}) on {f['pairs']} pairs in "
                    f"{f['train_seconds']}s; "
                    f"re-embedding {f['chunks']} chunks {f['reembed_seconds']}s"
                )
            emb = plain.embedder.id
            trained = {
                name: {
                    "name": name,
                    "args": t["args"],
                    "depth": t["depth"],
                }
                for name, t in r.get("tried", {}).items()
            }

            def setting(
                label: str,
                tuning: Tuning | None,
                before: str | None,
                rerank: bool = False,
                on: Index = plain,
            ) -> None:
                on.store.set_meta(META_KEY, tuning.to_json() if tuning else "")
                run, ms, spent = score(on, queries, names, rerank)
                rows.append((label, run, ms, spent, before))

            for s in report.settings:
                if s["setting"] in ("packaged", "current tuning") or "fine-tuned" in s["setting"]:
                    continue
                adapter = report.adapters.get(s["setting"])
                setting(s["setting"], Tuning(emb, alpha=s["alpha"], adapter=adapter), None)
                combos = adapter is not None and not args.no_combos
                for name, spec in trained.items() if combos else ():
                    both = Tuning(emb, alpha=s["alpha"], adapter=adapter, reranker=spec)
                    setting(f"{s['setting']} + reranker ({name})", both, s["setting"], True)
            for name, spec in trained.items():
                setting(f"reranker ({name})", Tuning(emb, reranker=spec), "default hybrid", True)
            choice = f"tune's choice ({report.kept})"
            if kept:
                stored = Tuning.from_json(kept)
                stored.reranker = None
                setting(choice, stored, None, on=index)
                if r:
                    stored.reranker = trained[r["backend"]]
                    setting(choice + " + reranker", stored, choice, rerank=True, on=index)
            if report.model is not None:
                model, vectors = report.model
                if index.embedder.id != model.id:  # not kept: swap to it to score it
                    index.switch_embedder(model, vectors)
                for s in report.settings:
                    if "fine-tuned" in s["setting"]:
                        tuned = Tuning(model.id, alpha=s["alpha"])
                        setting(s["setting"], tuned, None, on=index)
                        for name, spec in trained.items():  # trained on the packaged lists
                            tuned.reranker = spec
                            label = f"{s['setting']} + reranker ({name})"
                            setting(label, tuned, s["setting"], rerank=True, on=index)
    _, base_q = evaluate(rows[0][1], qrels, (10, 100))
    qids = sorted(base_q)
    per = {}
    mode = "corpus + train queries" if extra else "corpus alone"
    if args.llm:
        mode += f", questions written by {args.llm} {args.model or ''}".rstrip()
    print(f"\n## {args.dataset.name} {args.split}: {len(qids)} queries, tuned from the {mode}")
    print(f"tuning: {took:.0f}s on {report.pairs} pairs ({report.held_out} held out)")
    print(
        f"{'setting':<40} {'nDCG@10':>8} {'R@100':>7} {'p(def)':>7} {'p(prev)':>7} "
        f"{'p50 ms':>7} {'rerank':>7}"
    )
    best = ("", 0.0)
    for label, run, ms, spent, before in rows:
        mean, per_q = evaluate(run, qrels, (10, 100))
        best = max(best, (label, mean["ndcg@10"]), key=lambda b: b[1])
        per[label] = np.array([per_q[q]["ndcg@10"] for q in qids])
        p = paired_bootstrap(per["default hybrid"], per[label])
        prev = f"{paired_bootstrap(per[before], per[label]):7.3f}" if before else " " * 7
        print(
            f"{label:<40} {mean['ndcg@10']:8.4f} {mean['recall@100']:7.4f} {p:7.3f} {prev} "
            f"{ms:7.1f} {'' if spent is None else f'{spent:7.1f}'}"
        )
    print(
        f"best combination: {best[0]} ({best[1]:.4f}; picked on these queries, so an upper "
        "bound: tune's choice is the row it picked on its own held-out pairs)"
    )


if __name__ == "__main__":
    main()
