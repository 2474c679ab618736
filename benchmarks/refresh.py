"""How long a running searcher takes to see one edited note: the change log applied in place,
against the full rebuild every change used to cost (and a compacted log still costs).

    python benchmarks/refresh.py /tmp/kenning-scale/scale-100000.db            # SQLite
    python benchmarks/refresh.py /tmp/kenning-scale/scale-100000.db --store pgserver

The index is one ``benchmarks/scale.py`` builds (real chunks and their perturbed copies, with
vectors); ``--store`` copies it into PostgreSQL first, as ``scale.py --store`` does. The
searcher runs with the in-memory paths on (``keyword_index="memory"``,
``vector_index="hnsw"``), as ``auto`` picks them at this size on SQLite.

Measured, in one process: loading the caches at the start (or building them: a graph is
built from scratch where none is saved); an edit, then the full rebuild of each cache (BM25
postings from every chunk, saved and mapped; the vectors read again and the HNSW graph
brought to them), which is what every change cost before the change log and what a compacted
log costs now; then ``--edits`` times: another store connection replaces one note's chunks
(5 new chunks, with vectors, in one transaction, as ``sync`` writes an edited note), and the
searcher applies the change (``catch_up`` of the BM25 postings, then of the graph) and finds
the new text (``seen_s``: from the commit to the hits). Medians, as JSON; the first change to
a memory-mapped graph also copies it into RAM (``hnsw_first_apply_s``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from query import Copy  # noqa: E402 - the chunk copy with its own hash
from scale import copy_to_store  # noqa: E402

from kenning import Index  # noqa: E402
from kenning.search import keywords  # noqa: E402
from kenning.store import open_store  # noqa: E402

NEW_CHUNKS = 5


def edit(location: str, n: int, dim: int) -> str:
    """Replace one note's chunks in another connection, as a sync of an edited note does;
    returns a word only the new text has."""
    word = f"refreshword{n}x"
    with open_store(location) as store:
        src = store.sources()[sorted(store.sources())[n * 7919 % len(store.sources())]]
        rng = np.random.default_rng(n)
        chunks, vectors = [], {}
        for i in range(NEW_CHUNKS):
            text = f"edited note {n} part {i} {word} " + " ".join(["lorem", "ipsum"] * 40)
            h = hashlib.sha256(text.encode()).hexdigest()
            chunks.append(Copy(0, len(text), text, "Edited", None, body=text, key=h))
            v = rng.normal(size=dim).astype(np.float32)
            vectors[h] = v / np.linalg.norm(v)
        store.write_sources([(src, chunks)], vectors)
    return word


def timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("db", type=Path, help="an index benchmarks/scale.py built")
    ap.add_argument("--store", default="", help="a postgresql:// URL, or pgserver")
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--no-vectors", action="store_true", help="the BM25 side only")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/kenning-refresh"))
    args = ap.parse_args()
    location = copy_to_store(args.db, args.store, args.cache) if args.store else str(args.db)
    out: dict[str, object] = {"store": "postgresql" if args.store else "sqlite"}
    with Index.open(location, keyword_index="memory", vector_index="hnsw") as idx:
        searcher = idx.searcher
        out["chunks"] = idx.store.chunk_count()
        kw = searcher.keywords()
        assert isinstance(kw, keywords.MemoryKeywords)
        out["bm25_first_s"] = round(timed(kw.refresh), 2)  # built, or loaded when saved
        vectors = not args.no_vectors
        out["vectors_first_s"] = round(timed(searcher.vectors), 2) if vectors else None
        dim = int(idx.store.vectors_of(idx.store.chunk_ids()[:1].tolist())[1].shape[1])
        # after one edit, the full rebuilds: what any change cost before, and what a
        # compacted log costs now (BM25 from every chunk, saved and mapped; the vectors read
        # again and the HNSW graph brought to them)
        edit(location, 0, dim)
        out["bm25_rebuild_s"] = round(timed(lambda: kw._build(kw._side())), 2)
        searcher._vindex = None
        out["vectors_rebuild_s"] = round(timed(searcher.vectors), 2) if vectors else None
        kw.refresh()
        applied: dict[str, list[float]] = {"bm25_apply_s": [], "hnsw_apply_s": [], "seen_s": []}
        for n in range(1, args.edits + 1):
            word = edit(location, n, dim)
            t = time.perf_counter()
            applied["bm25_apply_s"].append(timed(kw.refresh))
            if vectors:
                applied["hnsw_apply_s"].append(timed(searcher.vectors))
            hits = idx.search(word, k=NEW_CHUNKS, mode="bm25")
            applied["seen_s"].append(time.perf_counter() - t)
            assert len(hits) == NEW_CHUNKS, (word, hits)
        if applied["hnsw_apply_s"]:  # the first copies a memory-mapped graph into RAM
            out["hnsw_first_apply_s"] = round(applied["hnsw_apply_s"][0], 3)
        for key, values in applied.items():
            out[key] = round(statistics.median(values), 4) if values else None
        out["edits"] = args.edits
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
