"""Ingestion speed against the embedder's own speed, and re-sync times.

    python benchmarks/ingest.py                 # tldr-pages and til notes from ../shared/data
    python benchmarks/ingest.py --only til

For each collection: ``Index.add`` on a fresh index with the default embedder (files/s,
chunks/s), then, in the same run, raw ``embed_batch`` throughput on exactly the chunk texts
that were indexed (batches of the embedder's batch size, in index order and length-sorted),
printed as a ratio. Then ``sync`` with nothing changed and with 1% of the files edited.
"""

from __future__ import annotations

import argparse
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from kenning import Index

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COLLECTIONS = {
    "tldr": DATA / "notes-tldr-pages-en" / "tldr-pages-en-md.tar.gz",
    "til": DATA / "notes-jbranchaud-til" / "jbranchaud-til-md.tar.gz",
}


def raw_throughput(index: Index, texts: list[str], sort: bool) -> float:
    emb = index.embedder
    items = sorted(texts, key=len) if sort else texts
    t = time.perf_counter()
    for i in range(0, len(items), emb.batch_size):
        emb.embed_batch(items[i : i + emb.batch_size])
    return len(items) / (time.perf_counter() - t)


def bench(name: str, archive: Path, embedder: str, tmp: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / name, filter="data")
    root = tmp / name
    files = [p for p in root.rglob("*") if p.is_file()]
    with Index.open(tmp / f"{name}.db", embedder=embedder) as index:
        index.embedder.embed_query("warm up")  # load the model outside the timings
        t = time.perf_counter()
        report = index.add([root])
        took = time.perf_counter() - t
        texts = [r[0] for r in index.store.db.execute("SELECT body FROM chunks_fts")]
        ingest = report.chunks_embedded / took
        raw_order = raw_throughput(index, texts, sort=False)
        raw_sorted = raw_throughput(index, texts, sort=True)
        print(
            f"\n## {name}: {len(files)} files, {len(texts)} chunks "
            f"({report.chunks_embedded} embedded), embedder {index.embedder.id}"
        )
        print(
            f"ingest            {took:8.1f} s  {len(files) / took:8.1f} files/s  "
            f"{ingest:8.1f} chunks/s"
        )
        print(
            f"raw embed_batch   index order {raw_order:8.1f} chunks/s   "
            f"length-sorted {raw_sorted:8.1f} chunks/s"
        )
        print(
            f"ratio ingest/raw  {ingest / raw_order:.2f} (index order)   "
            f"{ingest / raw_sorted:.2f} (length-sorted)"
        )
        t = time.perf_counter()
        r = index.sync()
        print(f"sync, unchanged   {time.perf_counter() - t:8.2f} s  ({r.unchanged} unchanged)")
        md = sorted(p for p in files if p.suffix == ".md")
        random.Random(0).shuffle(md)
        edited = md[: max(1, len(md) // 100)]
        for p in edited:
            p.write_text(p.read_text() + "\n\nA line added by the benchmark.\n")
        t = time.perf_counter()
        r = index.sync()
        print(
            f"sync, 1% edited   {time.perf_counter() - t:8.2f} s  ({r.changed} changed, "
            f"{r.chunks_embedded} chunks embedded, {r.chunks_reused} reused)",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=sorted(COLLECTIONS))
    ap.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, archive in COLLECTIONS.items():
            if args.only in (None, name):
                bench(name, archive, args.embedder, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
