"""The embedded default at 100k and 1M chunks: build, size, memory, speed, recall, nDCG.

    python benchmarks/scale.py ../shared/data                 # 100k and 1M, SQLite
    python benchmarks/scale.py ../shared/data --sizes 100000  # just 100k
    python benchmarks/scale.py ../shared/data --sizes 100000 --store pgserver  # PostgreSQL

How the indexes are made. Embedding a million chunks with MiniLM takes days on 2 cores, so:
the real chunks come first, with their real MiniLM vectors: SciFact's corpus (12,346 chunks,
the index ``benchmarks/beir.py`` builds and caches) and the jbranchaud TIL notes (4,496
chunks, embedded once and cached, from ../shared/data/notes-jbranchaud-til). Then copies of
those real chunks fill the index to the target size: each copy drops ~10% of its words at
random (so BM25 lengths and term counts vary as in real text) and carries its original's
real vector plus Gaussian noise (sigma 0.02 per dimension, renormalised: cosine ~0.93 to the
original), so the vector cloud has the shape of real embeddings (random vectors would make
approximate search look broken) with ~60 near-duplicates per real chunk at 1M, a hard case
for HNSW. Indexes are cached under /tmp/kenning-scale/ (``--cache``); 1M grows from 100k.

What is measured, each in a fresh process (``query`` sub-command), so its peak RSS is the
query path's own: open the index, first query (loading the caches), then SciFact's 300 test
claims as hybrid queries with the query embedding included: p50/p95. Recall@10 of the
vector index that ``auto`` picks against exact search over the same vectors, on the same
claims' embeddings. SciFact nDCG@10 of hybrid search as ``auto`` runs it on SciFact itself.

Measured 2026-11-27 on the 2-core box, shared with other jobs (load 3-10: every latency is
inflated; the query embedding alone took 8-11 ms here against 4.7 ms on a quiet machine):

    index      build: store / vectors file / HNSW / BM25    files: db / vectors / hnsw / bm25
    100k       34 s / 3.5 s / 24 s / 15 s                   437 / 154 / 104 / 37 MB
    1M         947 s / 19 s / 299 s / 132 s                 4330 / 1544 / 1044 / 356 MB

    index      hybrid p50 / p95   first query   peak RSS   recall@10 (HNSW vs exact)
    SciFact    35 / 52 ms (FTS5: 45 / 82 ms)     0.5 s    221 MB    (exact vectors)
    100k       22 / 37 ms                        0.4 s    470 MB    0.9997
    1M         38 / 92 ms                        0.9 s    2269 MB   0.953

SciFact nDCG@10 (hybrid, test): 0.7392 with in-memory BM25 (now ``auto`` from 5k chunks),
0.7402 with FTS5. At 1M, HNSW with 16 links and 256 candidates found only 0.676 of the exact
top 10 (the ~60 near-duplicates per real chunk); 32 links and 512 candidates: 0.953.
At 100k the graph's float16 copy scored 0.996, float32 0.996, int8 0.946 (16 links).

PostgreSQL 16 + pgvector 0.6.2 (``--store pgserver``), 2026-11-27: at 100k, loaded in 205 s,
1,251 MB, hybrid p50 45.7 / p95 91.0 ms (SQLite 16.4 / 25.0 in the same sitting), pgvector
recall@10 0.989; at 1M (niced, beside other jobs), loaded in 4,045 s, 13.9 GB, hybrid p50
456 / p95 1,237 ms, recall@10 0.554 (pgvector's default graph; BM25 in SQL is most of the time).
Since then ``auto`` ranks BM25 in memory above 200k chunks on PostgreSQL too; at 1M (loaded
again in 3,347 s and kept running, then ``scale.py query URL ../shared/data auto auto``, the
same sitting): p50 30.2 / p95 59.1 ms in the process that built the postings (first query
91 s), 24.3 / 62.2 ms in the next, which loaded them (0.33 s); with ``store`` keywords
instead of ``auto``, 493 / 1,241 ms.

``--store URL`` (or ``--store pgserver``): measure PostgreSQL instead of the SQLite file:
the indexes are built as SQLite files, then copied into the store as ``kenning migrate``
does (vectors kept, HNSW built once at the end) and queried there.

PostgreSQL's HNSW settings and filtered queries, on an index loaded that way (``URL``):

    python benchmarks/scale.py pg-tune URL ../shared/data CACHE 16:64,32:128 40,100,200,400
    python benchmarks/scale.py pg-filters URL ../shared/data CACHE 100

``pg-tune`` rebuilds the graph for each ``m:ef_construction`` (build time, size), then per
``ef_search`` gives the recall@10 of the store's vector search against an exact scan (the 300
claims; exact top 10s cached) and the hybrid p50 (the first 100 claims, query embedding
included). ``pg-filters`` keeps 0.1%, 1%, 10% and 50% of the chunks by path globs and gives,
for the exact scan, the graph walk and what the store picks, the vector recall@10 against the
exact filtered top 10 and the vector and hybrid p50.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
from query import Copy  # the chunk copy with its own hash, as the 100k query benchmark makes

from kenning import Chunk, Index
from kenning.store import SourceRow

CACHE = Path("/tmp/kenning-scale")
NOISE = 0.02
DROP = 0.1


def scifact_index(data: Path) -> Path:
    """SciFact's corpus indexed with MiniLM through the real pipeline (cached)."""
    from kenning.eval.datasets import load_beir
    from kenning.eval.evaluate import RunConfig, corpus_index

    beir = load_beir(data / "scifact", "test")
    index, _ = corpus_index(beir, "scifact", RunConfig("h"))
    location = index.location
    index.close()
    return Path(location)


def til_index(data: Path, cache: Path) -> Path:
    """The TIL notes indexed with MiniLM (cached: embedding them takes a few minutes)."""
    db = cache / "til-minilm.db"
    if db.exists():
        return db
    folder = cache / "til-notes"
    if not folder.exists():
        for archive in (data / "notes-jbranchaud-til").glob("*.tar.gz"):
            with tarfile.open(archive) as tar:
                tar.extractall(folder, filter="data")
    tmp = db.with_name(db.name + ".tmp")
    with Index.open(tmp, embedder="minilm") as index:
        index.add([folder])
    os.replace(tmp, db)
    return db


def pool(dbs: list[Path]) -> list[tuple[str, str, bytes, str]]:
    """(text, keyword body, vector, heading) of every embedded chunk of these indexes."""
    import sqlite3

    rows: list[tuple[str, str, bytes, str]] = []
    for path in dbs:
        db = sqlite3.connect(path)
        rows += db.execute(
            "SELECT c.text, f.body, e.vector, c.heading FROM chunks c "
            "JOIN chunks_fts f ON f.rowid = c.id JOIN embeddings e ON e.hash = c.hash "
            "JOIN sources s ON s.id = c.source_id WHERE s.path NOT LIKE '/synthetic/%' "
            "ORDER BY c.id"
        ).fetchall()
        db.close()
    return rows


def add_copies(
    index: Index,
    rows: list[tuple[str, str, bytes, str]],
    target: int,
    seed: int,
    perturb: bool = True,
    batch_size: int = 5000,
) -> None:
    """Add copies of ``rows`` (perturbed unless ``perturb`` is off) until ``target`` chunks."""
    rng = np.random.default_rng(seed)
    have = index.store.chunk_count()
    n = 0
    while have < target:
        batch: list[tuple[SourceRow, list[Chunk] | None]] = []
        vectors: dict[str, np.ndarray] = {}
        while len(batch) < min(batch_size, target - have):
            text, body, blob, heading = rows[n % len(rows)]
            v = np.frombuffer(blob, dtype=np.float32)
            if perturb:
                words = body.split()
                keep = rng.random(len(words)) >= DROP
                body = text = " ".join(w for w, k in zip(words, keep, strict=True) if k) or body
                v = v + rng.normal(0, NOISE, v.shape).astype(np.float32)
                v = v / np.linalg.norm(v)
            h = hashlib.sha256(f"{seed}:{n}:{body}".encode()).hexdigest()
            vectors[h] = v
            chunk = Copy(0, len(text), text, heading, None, body=body, key=h)
            path = f"/synthetic/{seed}/{n // 1000}/{n}.md"
            src = SourceRow(0, path, "/synthetic", 0, 0, h, "markdown", "ok", None, heading, {})
            batch.append((src, [chunk]))
            n += 1
        index.store.write_sources(batch, vectors)
        have += len(batch)


def build(data: Path, size: int, cache: Path, real: list[Path]) -> tuple[Path, dict[str, float]]:
    """An index of ``size`` chunks (cached), and how long its store took to write."""
    db = cache / f"scale-{size}.db"
    stamp = cache / f"scale-{size}.json"
    if db.exists() and stamp.exists():
        return db, json.loads(stamp.read_text())
    cache.mkdir(parents=True, exist_ok=True)
    rows = pool(real)
    smaller = sorted(
        (int(p.stem.split("-")[1]), p)
        for p in cache.glob("scale-*.db")
        if p.with_suffix(".json").exists() and int(p.stem.split("-")[1]) < size
    )
    tmp = db.with_name(db.name + ".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    times = {"store_s": 0.0}
    t = time.perf_counter()
    if smaller:
        base = smaller[-1][1]
        shutil.copy(base, tmp)
        times = dict(json.loads(base.with_suffix(".json").read_text()))
    with Index.open(tmp, embedder="minilm", vector_index="exact", keyword_index="store") as index:
        if not smaller:  # the real chunks first, as they are
            add_copies(index, rows, len(rows), seed=0, perturb=False)
        # each size has its own seed, so the copies 1M adds differ from 100k's
        add_copies(index, rows, size, seed=size)
        index.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    times["store_s"] += time.perf_counter() - t
    os.replace(tmp, db)
    stamp.write_text(json.dumps(times))
    return db, times


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def queries(data: Path) -> list[str]:
    from kenning.eval.datasets import load_beir

    return list(load_beir(data / "scifact", "test").queries.values())


def query_vectors(data: Path, cache: Path) -> np.ndarray:
    """MiniLM embeddings of SciFact's test claims (cached)."""
    path = cache / "scifact-test-queries.npy"
    if not path.exists():
        from kenning.embedders import get_embedder

        emb = get_embedder("minilm")
        np.save(path, np.stack([emb.embed_query(q) for q in queries(data)]))
    return np.load(path)


def sub(*args: str) -> dict[str, float]:
    """Run this script's sub-command in a fresh process; its JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def cmd_prepare(db: str) -> dict[str, float]:
    """Build the search caches of ``auto`` (vectors file, HNSW graph, BM25), timing each."""
    out: dict[str, float] = {}
    with Index.open(db) as index:
        if index.store.searches_itself:  # PostgreSQL: its indexes were built by the copy
            return {"peak_rss_mb": peak_rss_mb()}
        s = index.searcher
        t = time.perf_counter()
        ids, matrix = index.store.vectors()
        out["vectors_file_s"] = time.perf_counter() - t
        del ids, matrix
        t = time.perf_counter()
        s.vectors()
        out["vector_index_s"] = time.perf_counter() - t
        t = time.perf_counter()
        s.keywords().refresh()
        out["keywords_s"] = time.perf_counter() - t
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def cmd_query(db: str, data: Path, keyword_index: str, vector_index: str) -> dict[str, float]:
    """Open the index, first query, then the SciFact claims as hybrid queries: p50/p95."""
    qs = queries(data)
    t = time.perf_counter()
    with Index.open(db, keyword_index=keyword_index, vector_index=vector_index) as index:
        index.search(qs[0])
        first = time.perf_counter() - t
        for q in qs[1:11]:
            index.search(q)
        times = []
        for q in qs:
            t = time.perf_counter()
            index.search(q)
            times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        for q in qs:
            index.embedder.embed_query(q)
        embed_ms = (time.perf_counter() - t) / len(qs) * 1000
        rss_after = peak_rss_mb()
        hits = index.search(qs[0], filters=_some_filter())
        filtered_ms = _time(lambda: index.search(qs[1], filters=_some_filter()))
        del hits
    times.sort()
    return {
        "first_query_s": first,
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95) - 1],
        "embed_ms": embed_ms,
        "peak_rss_mb": rss_after,
        "filtered_ms": filtered_ms,
        "peak_rss_after_filtered_mb": peak_rss_mb(),
    }


def _some_filter() -> object:
    from kenning import Filters

    return Filters.parse(paths=["/synthetic/0/**"])


def _time(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - t) * 1000


def cmd_recall(db: str, data: Path, cache: Path, dtype: str) -> dict[str, float]:
    """Recall@10 of HNSW (graph in ``dtype``) against exact search, on the claims' vectors."""
    from kenning.search.vectors import HNSWIndex, _exact
    from kenning.store.sqlite import SQLiteStore

    qv = query_vectors(data, cache)
    store = SQLiteStore(db)
    ids, matrix = store.vectors()
    # the default graph is the index's own; the others are built beside it, in the cache
    own = dtype == HNSWIndex.dtype
    path = Path(f"{db}.hnsw") if own else cache / f"{Path(db).name}.{dtype}.hnsw"
    HNSWIndex.dtype = dtype
    index = HNSWIndex(path, "minilm")
    t = time.perf_counter()
    index.build(ids, matrix)
    build_s = time.perf_counter() - t
    hits, times = 0, []
    for q in qv:
        exact = {i for i, _ in _exact(ids, matrix, q, 10)}
        t = time.perf_counter()
        got = index.search(q, 10)
        times.append((time.perf_counter() - t) * 1000)
        hits += len(exact & {i for i, _ in got})
    times.sort()
    return {
        "recall@10": hits / (10 * len(qv)),
        "graph_mb": path.stat().st_size / 1e6,
        "build_s": build_s,
        "search_p50_ms": statistics.median(times),
    }


def cmd_store_recall(url: str, data: Path, cache: Path) -> dict[str, float]:
    """Recall@10 of a store's own vector search (pgvector's HNSW) against an exact scan of
    the same table, on the claims' vectors."""
    from kenning.store import open_store

    qv = query_vectors(data, cache)
    hits, times = 0, []
    with open_store(url, create=False) as store:
        for q in qv:
            t = time.perf_counter()
            got = store.vector_search(q, 10)
            times.append((time.perf_counter() - t) * 1000)
            exact = store.db.execute(  # type: ignore[attr-defined]
                "SELECT c.id FROM chunks c JOIN embeddings e ON e.hash = c.hash "
                "ORDER BY (e.vector <=> %s) + 0, c.id LIMIT 10",
                (np.asarray(q, dtype=np.float32),),
            ).fetchall()
            hits += len({int(i) for (i,) in exact} & {i for i, _ in got})
    times.sort()
    return {"recall@10": hits / (10 * len(qv)), "search_p50_ms": statistics.median(times)}


def selectivity_globs(size: int) -> dict[str, list[str]]:
    """Path globs that keep 0.1%, 1%, 10% and 50% of a ``size``-chunk index: its copies sit
    1,000 to a folder under /synthetic/<size>/ (100k: 87 folders, 1M: 900)."""
    # an index a benchmark edited since (benchmarks/refresh.py) keeps its size's folders
    size = min((100_000, 1_000_000), key=lambda built: abs(built - size))
    top = f"/synthetic/{size}"
    if size == 100_000:
        return {
            "0.1%": [f"{top}/5/51??.md"],
            "1%": [f"{top}/5/**"],
            "10%": [f"{top}/?/**"],
            "50%": [f"{top}/?/**", *(f"{top}/{d}?/**" for d in "1234")],
        }
    return {
        "0.1%": [f"{top}/5/**"],
        "1%": [f"{top}/?/**"],
        "10%": [f"{top}/??/**"],
        "50%": [f"{top}/?/**", f"{top}/??/**", *(f"{top}/{d}??/**" for d in "1234")],
    }


def _p50(times: list[float]) -> float:
    return statistics.median(times) * 1000


def cmd_pg_tune(url: str, data: Path, cache: Path, builds: str, efs: str) -> dict[str, object]:
    """PostgreSQL: for each HNSW build (m:ef_construction) the build time, then per
    ef_search the recall@10 of the store's vector search against an exact scan and the
    hybrid p50 (query embedding included, the first 100 claims). Exact top 10s are cached."""
    from dataclasses import replace

    from kenning.store.postgres import PostgresStore

    qv = query_vectors(data, cache)
    qs = queries(data)[:100]
    out: dict[str, object] = {}
    with Index.open(url, create=False) as index:
        store = index.store
        assert isinstance(store, PostgresStore)
        truth_file = cache / f"pg-exact-{store.chunk_count()}.json"
        if truth_file.exists():
            truth = json.loads(truth_file.read_text())
        else:
            truth = []
            for q in qv:
                rows = store.db.execute(
                    "SELECT c.id FROM chunks c JOIN embeddings e ON e.hash = c.hash "
                    "ORDER BY (e.vector <=> %s) + 0, c.id LIMIT 10",
                    (np.asarray(q, dtype=np.float32),),
                ).fetchall()
                truth.append([int(i) for (i,) in rows])
            truth_file.write_text(json.dumps(truth))
        for build in builds.split(","):
            m, efc = (int(x) for x in build.split(":"))
            store.hnsw = replace(store.hnsw, hnsw_m=m, hnsw_ef_construction=efc)
            (have,) = store.db.execute(
                "SELECT reloptions FROM pg_class WHERE relname = 'embeddings_hnsw'"
            ).fetchone()
            t = time.perf_counter()
            if sorted(have or []) != [f"ef_construction={efc}", f"m={m}"]:  # else: as loaded
                store.db.execute("DROP INDEX IF EXISTS embeddings_hnsw")
                store._hnsw = False  # type: ignore[attr-defined]
                store._write(lambda: store._ensure_hnsw(len(qv[0])))  # type: ignore[attr-defined]
            build_s = time.perf_counter() - t
            size = store.db.execute("SELECT pg_relation_size('kenning.embeddings_hnsw')")
            row: dict[str, object] = {"build_s": round(build_s, 1),
                                      "index_mb": round(size.fetchone()[0] / 1e6)}  # fmt: skip
            for ef in (int(x) for x in efs.split(",")):
                store.hnsw = replace(store.hnsw, hnsw_ef_search=ef)
                hits, times = 0, []
                for q, exact in zip(qv, truth, strict=True):
                    t = time.perf_counter()
                    got = store.vector_search(q, 10)
                    times.append(time.perf_counter() - t)
                    hits += len(set(exact) & {i for i, _ in got})
                index.search(qs[0])
                hybrid = []
                for q in qs:
                    t = time.perf_counter()
                    index.search(q)
                    hybrid.append(time.perf_counter() - t)
                row[f"ef{ef}"] = {
                    "recall@10": round(hits / (10 * len(qv)), 4),
                    "vector_p50_ms": round(_p50(times), 1),
                    "hybrid_p50_ms": round(_p50(hybrid), 1),
                }
            out[f"m{m}/efc{efc}"] = row
            print(json.dumps({f"m{m}/efc{efc}": row}), file=sys.stderr, flush=True)
    return out


def cmd_pg_filters(url: str, data: Path, cache: Path, n: int, only: str = "") -> dict[str, object]:
    """PostgreSQL, filtered: per selectivity, the vector recall@10 against the exact filtered
    top 10 and the vector and hybrid p50 (the first ``n`` claims), for each path: exact scan of
    the allowed chunks, the iterative graph walk, and what the store picks (``auto``)."""
    from kenning import Filters
    from kenning.store.base import Scope
    from kenning.store.postgres import PostgresStore
    from kenning.store.postgres.hnsw import EXACT_BELOW

    qv = query_vectors(data, cache)[:n]
    qs = queries(data)[:n]
    out: dict[str, object] = {}
    with Index.open(url, create=False) as index:
        store = index.store
        assert isinstance(store, PostgresStore)
        total = store.chunk_count()
        for name, globs in selectivity_globs(total).items():
            if only and name not in only.split(","):
                continue
            filters = Filters.parse(paths=globs)
            allowed = store.chunk_ids(filters).tolist()
            kept = len(allowed)
            truth = [store._filtered_exact(q, 10, allowed) for q in qv]
            row: dict[str, object] = {"chunks": kept}
            for path, below in (("exact", 10**12), ("walk", 0), ("auto", EXACT_BELOW)):
                store.exact_below = below
                hits, times, hybrid = 0, [], []
                for q, text, exact in zip(qv, qs, truth, strict=True):
                    t = time.perf_counter()
                    got = store.vector_search(q, 10, Scope(store, filters))
                    times.append(time.perf_counter() - t)
                    hits += len({i for i, _ in exact} & {i for i, _ in got})
                    t = time.perf_counter()
                    index.search(text, filters=filters)
                    hybrid.append(time.perf_counter() - t)
                row[path] = {
                    "recall@10": round(hits / sum(len(e) for e in truth), 4),
                    "vector_p50_ms": round(_p50(times), 1),
                    "hybrid_p50_ms": round(_p50(hybrid), 1),
                }
            out[name] = row
            print(json.dumps({name: row}), file=sys.stderr, flush=True)
    return out


def cmd_filters(
    location: str, data: Path, n: int, only: str = "", keyword_index: str = "auto"
) -> dict[str, object]:
    """Filtered hybrid search on either store, per selectivity (path globs that keep 0.1%,
    1%, 10% and 50% of the chunks): p50 of ``Index.search`` as ``auto`` runs it (query
    embedding included) over the first ``n`` SciFact claims, and recall@10 against the same
    search with exact vectors (``vector_index="exact"``: a scan of the allowed chunks): of
    the dense ranking alone (``mode="dense"``) and of the hybrid top 10. ``only``: some
    selectivities (``1%,10%``); ``keyword_index``: ``memory`` ranks BM25 in memory, as
    PostgreSQL does from 200k chunks."""
    from kenning import Filters

    qs = queries(data)[:n]
    out: dict[str, object] = {"kenning": str(Path(sys.modules["kenning"].__file__).parent)}
    with (
        Index.open(location, create=False, keyword_index=keyword_index) as index,
        Index.open(
            location, create=False, keyword_index=keyword_index, vector_index="exact"
        ) as exact,
    ):
        index.search(qs[0])
        exact.search(qs[0])
        total = index.store.chunk_count()
        for name, globs in selectivity_globs(total).items():
            if only and name not in only.split(","):
                continue
            kept = len(index.store.chunk_ids(Filters.parse(paths=globs)))
            index.search(qs[0], filters=Filters.parse(paths=globs))  # a first query
            times, dense_hits, hybrid_hits, want = [], 0, 0, 0
            for q in qs:
                filters = Filters.parse(paths=globs)  # parsed afresh: nothing carried over
                t = time.perf_counter()
                hits = index.search(q, filters=filters)
                times.append(time.perf_counter() - t)
                truth = exact.search(q, filters=filters)
                hybrid_hits += len({h.chunk_id for h in hits} & {h.chunk_id for h in truth})
                dense = index.search(q, k=10, filters=filters, mode="dense")
                best = exact.search(q, k=10, filters=filters, mode="dense")
                dense_hits += len({h.chunk_id for h in dense} & {h.chunk_id for h in best})
                want += len(best)
            row = {
                "chunks": kept,
                "hybrid_p50_ms": round(_p50(times), 1),
                "hybrid_p95_ms": round(sorted(times)[int(len(times) * 0.95) - 1] * 1000, 1),
                "dense_recall@10": round(dense_hits / max(want, 1), 4),
                "hybrid_recall@10": round(hybrid_hits / max(want, 1), 4),
            }
            out[name] = row
            print(json.dumps({name: row}), file=sys.stderr, flush=True)
    return out


def cmd_ndcg(data: Path, keyword_index: str) -> dict[str, float]:
    from kenning.eval.evaluate import RunConfig, evaluate_beir

    config = RunConfig("hybrid", keyword_index=keyword_index)
    result = evaluate_beir(data / "scifact", "test", [config], ks=(10,))[0]
    return {"ndcg@10": result.mean["ndcg@10"]}


def sizes_mb(db: Path) -> dict[str, float]:
    return {
        suffix or "db": Path(f"{db}{suffix}").stat().st_size / 1e6
        for suffix in ("", ".vectors.npy", ".hnsw", ".bm25.npz")
        if Path(f"{db}{suffix}").exists()
    }


def copy_to_store(db: Path, url: str, cache: Path) -> str:
    """Load the SQLite index ``db`` into another store and return its location, as
    ``kenning migrate`` does (no re-embedding). ``url`` ``pgserver`` starts a local
    PostgreSQL (kenning.store.postgres.local) under ``cache`` with a database per index size; a
    ``postgresql://`` URL is used as given, and one that already holds the same number of
    chunks is taken as loaded (the copy takes minutes per 100k chunks)."""
    from kenning.index.copying import copy_index
    from kenning.store import open_store

    if url == "pgserver":
        import atexit

        from kenning.store.postgres.local import LocalPostgres

        server = LocalPostgres(cache / "pgserver").start()
        atexit.register(server.stop)  # its folder goes too: each run loads afresh
        url = server.new_database(db.stem.replace("-", "_"))
    with open_store(str(db), create=False) as source, open_store(url) as target:
        want = source.stats()["chunks"]
        have = target.stats()["chunks"]
        if have != want:
            t = time.perf_counter()
            report = copy_index(source, target)
            print(f"copied {report} in {time.perf_counter() - t:.0f}s", flush=True)
        print(f"{url.rsplit('/', 1)[-1]}: {target.size_bytes() / 1e6:.0f} MB", flush=True)
    return url


def main() -> None:
    subs = (
        "prepare",
        "query",
        "recall",
        "store-recall",
        "ndcg",
        "pg-tune",
        "pg-filters",
        "filters",
    )
    if len(sys.argv) > 1 and sys.argv[1] in subs:
        cmd, rest = sys.argv[1], sys.argv[2:]
        result: dict[str, object]
        if cmd == "pg-tune":
            result = cmd_pg_tune(rest[0], Path(rest[1]), Path(rest[2]), rest[3], rest[4])
        elif cmd == "pg-filters":
            result = cmd_pg_filters(rest[0], Path(rest[1]), Path(rest[2]), int(rest[3]), *rest[4:])
        elif cmd == "filters":
            result = cmd_filters(rest[0], Path(rest[1]), int(rest[2]), *rest[3:])
        elif cmd == "prepare":
            result = cmd_prepare(rest[0])
        elif cmd == "query":
            result = cmd_query(rest[0], Path(rest[1]), rest[2], rest[3])
        elif cmd == "store-recall":
            result = cmd_store_recall(rest[0], Path(rest[1]), Path(rest[2]))
        elif cmd == "recall":
            result = cmd_recall(rest[0], Path(rest[1]), Path(rest[2]), rest[3])
        else:
            result = cmd_ndcg(Path(rest[0]), rest[1])
        print(json.dumps(result))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder (scifact, notes)")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument(
        "--real",
        type=Path,
        action="append",
        help="indexes whose embedded (non-synthetic) chunks are the real ones "
        "(default: SciFact's eval index and the TIL notes)",
    )
    ap.add_argument(
        "--store",
        help="also load each index into this store and measure it there: a postgresql:// "
        "URL, or pgserver for a local PostgreSQL under --cache",
    )
    ap.add_argument("--dtypes", default="f16", help="HNSW graph scalar types to compare")
    ap.add_argument("--small", action="store_true", help="also SciFact itself: p50, nDCG@10")
    args = ap.parse_args()
    data = args.data.resolve()
    real = args.real or [scifact_index(data), til_index(data, args.cache)]
    if args.small:
        small = str(scifact_index(data))
        for kw in ("store", "memory"):
            sub("prepare", small)
            r = sub("query", small, str(data), kw, "auto")
            r.update(sub("ndcg", str(data), kw))
            print(f"scifact keywords={kw}: {json.dumps(r)}", flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        t = time.perf_counter()
        db, times = build(data, size, args.cache, real)
        print(f"{size}: store {times} ({time.perf_counter() - t:.0f}s)", flush=True)
        if args.build_only:
            continue
        location = copy_to_store(db, args.store, args.cache) if args.store else str(db)
        print(f"{size}: prepare {sub('prepare', location)}", flush=True)
        print(f"{size}: files MB {sizes_mb(db)}", flush=True)
        print(f"{size}: query {sub('query', location, str(data), 'auto', 'auto')}", flush=True)
        query_vectors(data, args.cache)
        if args.store:
            r = sub("store-recall", location, str(data), str(args.cache))
            print(f"{size}: recall {location.rsplit('/', 1)[-1]} {r}", flush=True)
            continue
        for dtype in args.dtypes.split(","):
            r = sub("recall", str(db), str(data), str(args.cache), dtype)
            print(f"{size}: recall hnsw/{dtype} {r}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
