"""Hybrid query latency (p50/p95) at ~10k and 100k chunks, query embedding included.

    python benchmarks/query.py ../shared/data/scifact

The ~10k index is SciFact's corpus indexed through the real pipeline with the default
embedder (built by benchmarks/beir.py, or here if missing). The 100k index adds copies of
those chunks whose embeddings are the real ones perturbed by small noise (embedding 100k
chunks with MiniLM takes about an hour on 2 cores); the query path is the real one: the
packaged MiniLM embeds each query, FTS5 ranks BM25, the vector index ranks dense, and the
two are fused. Queries are SciFact's 300 test claims.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kenning import Chunk, Index
from kenning.config import cache_dir
from kenning.eval.datasets import load_beir
from kenning.eval.evaluate import RunConfig, corpus_index
from kenning.store import SourceRow


@dataclass
class Copy(Chunk):
    """A copy of a real chunk under its own hash, so it can carry a perturbed vector."""

    body: str = ""
    key: str = ""

    @property
    def indexed_text(self) -> str:
        return self.body

    @property
    def hash(self) -> str:
        return self.key


def timed(index: Index, queries: list[str], **kw: object) -> tuple[float, float]:
    for q in queries[:10]:  # warm up: model session, vector index, page cache
        index.search(q, **kw)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q, **kw)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def grow(index: Index, target: int, seed: int = 0) -> None:
    """Add perturbed copies of the real chunks until the index holds ``target`` chunks."""
    rng = np.random.default_rng(seed)
    db = index.store.db
    rows = db.execute(
        "SELECT c.text, f.body, e.vector, c.heading FROM chunks c "
        "JOIN chunks_fts f ON f.rowid = c.id JOIN embeddings e ON e.hash = c.hash"
    ).fetchall()
    have = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    copy = 0
    while have < target:
        copy += 1
        batch: list[tuple[SourceRow, list[Chunk] | None]] = []
        vectors: dict[str, np.ndarray] = {}
        for n, (text, body, blob, heading) in enumerate(rows[: target - have]):
            v = np.frombuffer(blob, dtype=np.float32)
            v = v + rng.normal(0, 0.02, v.shape).astype(np.float32)
            v /= np.linalg.norm(v)
            h = hashlib.sha256(f"{copy}:{n}:{body}".encode()).hexdigest()
            vectors[h] = v
            chunk = Copy(0, len(text), text, heading, None, body=body, key=h)
            src = SourceRow(
                0,
                f"/synthetic/{copy}/{n}.md",
                "/synthetic",
                0,
                0,
                h,
                "markdown",
                "ok",
                None,
                heading,
                {},
            )
            batch.append((src, [chunk]))
        index.store.write_sources(batch, vectors)
        have += len(batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--large", type=int, default=100_000)
    args = ap.parse_args()
    data = load_beir(args.dataset, "test")
    queries = list(data.queries.values())
    index, _ = corpus_index(
        data, args.dataset.resolve().name, RunConfig("h", embedder=args.embedder)
    )
    small = index.location
    index.close()
    cache = cache_dir() / "bench"
    cache.mkdir(parents=True, exist_ok=True)

    print(f"{'index':<34} {'chunks':>8} {'p50 ms':>8} {'p95 ms':>8}")
    with Index.open(small) as index:
        n = index.status()["chunks"]
        emb = [index.embedder.embed_query(q) for q in queries[:5]]  # noqa: F841 (warm-up)
        t = time.perf_counter()
        for q in queries:
            index.embedder.embed_query(q)
        per_query = (time.perf_counter() - t) / len(queries) * 1000
        print(f"{'(query embedding alone)':<34} {'':>8} {per_query:8.1f}")
        for mode in ("bm25", "dense", "hybrid"):
            p50, p95 = timed(index, queries, mode=mode)
            print(f"{mode + ' (exact vectors)':<34} {n:8d} {p50:8.1f} {p95:8.1f}", flush=True)

    big = cache / f"query-{args.large}.db"
    if not big.exists() or Index.open(big).status()["chunks"] < args.large:
        for suffix in ("", "-wal", "-shm", ".hnsw", ".hnsw.json", ".vectors.npy", ".bm25.npz"):
            Path(f"{big}{suffix}").unlink(missing_ok=True)
        shutil.copy(small, big)
        with Index.open(big) as index:
            t = time.perf_counter()
            grow(index, args.large)
            print(f"(grew to {args.large} chunks in {time.perf_counter() - t:.0f}s)", flush=True)
    for vindex in ("exact", "hnsw"):
        with Index.open(big, vector_index=vindex) as index:
            n = index.status()["chunks"]
            t = time.perf_counter()
            index.search(queries[0])
            load = time.perf_counter() - t
            for mode in ("dense", "hybrid"):
                p50, p95 = timed(index, queries, mode=mode)
                label = f"{mode} ({vindex} vectors)"
                print(
                    f"{label:<34} {n:8d} {p50:8.1f} {p95:8.1f}   (first query {load:.1f}s)",
                    flush=True,
                )
        if vindex == "exact":
            with Index.open(big) as index:
                p50, p95 = timed(index, queries, mode="bm25")
                print(f"{'bm25':<34} {n:8d} {p50:8.1f} {p95:8.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
