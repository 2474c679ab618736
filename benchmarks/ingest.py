"""Ingestion: time until keyword-searchable, time until fully embedded, re-sync times, and
(optionally) the same add run by an older kenning in the same sitting.

    python benchmarks/ingest.py                       # tldr-pages and til from ../shared/data
    python benchmarks/ingest.py --only tldr --baseline f8e8ede
    python benchmarks/ingest.py --only til --raw      # also the embedder's raw throughput

For each collection, on a fresh index with the default embedder: the keyword pass
(``Index.add(embed=False)``: every file loaded, chunked, keyword-indexed and committed) and a
keyword search right after it; then the embedding pass (``Index.embed()``); then ``sync``
with nothing changed and with 1% of the files edited. ``--baseline REF`` checks out that git
commit into a temporary worktree and runs its ``Index.add`` on the same files in a
subprocess, before kenning's own run, so the ratio compares two versions on one machine in
one sitting (absolute figures move by 2x between machines here). ``--raw`` adds raw
``embed_batch`` throughput on exactly the indexed chunk texts, length-sorted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
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
REPO = Path(__file__).resolve().parents[1]

#: run inside the baseline's worktree: one blocking ``Index.add``, its figures as JSON
BASELINE = """
import json, sys, time
import kenning
from kenning import Index
assert kenning.__file__.startswith(sys.argv[3]), kenning.__file__
with Index.open(sys.argv[1], embedder=sys.argv[4]) as index:
    index.embedder.embed_query("warm up")
    t = time.perf_counter()
    report = index.add([sys.argv[2]])
    took = time.perf_counter() - t
    chunks = index.store.chunk_count()
print(json.dumps({"seconds": took, "chunks": chunks, "embedded": report.chunks_embedded}))
"""


def baseline(ref: str, root: Path, embedder: str, tmp: Path) -> dict[str, float]:
    tree = tmp / f"baseline-{ref}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
    try:
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        db = tmp / f"baseline-{root.name}.db"
        out = subprocess.run(
            [sys.executable, "-c", BASELINE, str(db), str(root), str(tree), embedder],
            env=env,
            cwd=tree,  # not this checkout: ``python -c`` puts the working folder first
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise SystemExit(f"the baseline run failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
            capture_output=True,
        )


def raw_throughput(index: Index, texts: list[str]) -> float:
    emb = index.embedder
    t = time.perf_counter()
    emb.embed_documents(texts)
    return len(texts) / (time.perf_counter() - t)


def bench(name: str, archive: Path, args: argparse.Namespace, tmp: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / name, filter="data")
    root = tmp / name
    files = [p for p in root.rglob("*") if p.is_file()]
    print(f"\n## {name}: {len(files)} files, embedder {args.embedder}", flush=True)
    old = None
    if args.baseline:
        old = baseline(args.baseline, root, args.embedder, tmp)
        print(
            f"baseline {args.baseline}: add {old['seconds']:8.1f} s  "
            f"({old['chunks']} chunks, {old['chunks'] / old['seconds']:.1f} chunks/s), "
            "searchable only at the end",
            flush=True,
        )
    with Index.open(tmp / f"{name}.db", embedder=args.embedder) as index:
        index.embedder.embed_query("warm up")  # load the model outside the timings
        t = time.perf_counter()
        report = index.add([root], embed=False)
        keyword = time.perf_counter() - t
        probe = next(p for p in sorted(files) if p.suffix == ".md").stem.replace("-", " ")
        hits = index.search(probe, k=3, mode="bm25")
        t = time.perf_counter()
        done = index.embed()
        embed = time.perf_counter() - t
        chunks = index.store.chunk_count()
        print(
            f"keyword-searchable {keyword:7.1f} s  {len(files) / keyword:8.1f} files/s  "
            f"({report.chunks_indexed} chunks; a search for {probe!r} found {len(hits)} hits)"
        )
        print(
            f"fully embedded     {keyword + embed:7.1f} s  embedding {embed:.1f} s, "
            f"{done.embedded / embed:.1f} chunks/s, {chunks} chunks "
            f"({chunks / len(files):.2f} per file)"
        )
        if old:
            print(f"speed-up vs baseline (full add): {old['seconds'] / (keyword + embed):.2f}x")
        if args.raw:
            texts = [t for *_, t in index.store.db.execute("SELECT 0, body FROM chunks_fts")]
            raw = raw_throughput(index, texts)
            ratio = done.embedded / embed / raw
            print(f"raw embed_documents {raw:.1f} chunks/s (ingest/raw {ratio:.2f})")
        t = time.perf_counter()
        r = index.sync()
        print(f"sync, unchanged    {time.perf_counter() - t:7.2f} s  ({r.unchanged} unchanged)")
        md = sorted(p for p in files if p.suffix == ".md")
        random.Random(0).shuffle(md)
        edited = md[: max(1, len(md) // 100)]
        for p in edited:
            p.write_text(p.read_text() + "\n\nA line added by the benchmark.\n")
        t = time.perf_counter()
        r = index.sync()
        print(
            f"sync, 1% edited    {time.perf_counter() - t:7.2f} s  ({r.changed} changed, "
            f"{r.chunks_embedded} chunks embedded, {r.chunks_reused} reused)",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=sorted(COLLECTIONS))
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--baseline", metavar="REF", help="git commit to compare a full add with")
    ap.add_argument("--raw", action="store_true", help="also time raw embed_documents")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, archive in COLLECTIONS.items():
            if args.only in (None, name):
                bench(name, archive, args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
