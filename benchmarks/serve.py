"""Load on `kenning serve`: many concurrent clients searching over loopback.

    python benchmarks/serve.py                              # 50 clients, 60 s, til notes
    python benchmarks/serve.py --clients 10 --duration 20 --embedder hash
    python benchmarks/serve.py --sync-edits 100             # a sync of 100 edited notes midway
    python benchmarks/serve.py --index ~/notes/.kenning/index.db   # your own index

The server is the real thing, started as `kenning serve --port 0` in its own process, so
the load generator (asyncio + httpx2 in this process, one connection per client) does not
share its GIL. Each client sends `GET /api/search` again as soon as the last answer arrives
(a closed loop); queries are the til notes' titles, in turn. First one client alone measures
the unloaded latency, then all clients together; both print requests/s, p50/p99 latency and
the number of errors (any non-200 or transport error). With ``--sync-edits N``, N notes are
edited halfway through the loaded run and a ``POST /api/sync`` indexes them while the
searches go on; every search must still succeed, and the edits are undone afterwards.

The default index is the til collection from ../shared/data with the default embedder, built
once under the kenning cache folder (about 2.5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx2 as httpx

from kenning import Index
from kenning.config import cache_dir

SHARED = Path(
    os.environ.get("KENNING_SHARED_DATA") or Path(__file__).parents[2] / "shared" / "data"
)


def til_index(embedder: str) -> Path:
    """The til notes, indexed once per embedder under the cache folder."""
    home = cache_dir() / "bench" / f"serve-til-{embedder}"
    db = home / "index.db"
    if not db.exists():
        archive = SHARED / "notes-jbranchaud-til" / "jbranchaud-til-md.tar.gz"
        print(f"indexing the til notes with {embedder} (once) ...", file=sys.stderr)
        with tarfile.open(archive) as tar:
            tar.extractall(home / "notes", filter="data")
        with Index.open(home / "tmp.db", embedder=embedder) as index:
            index.add([home / "notes" / "til"])
        for suffix in ("", "-wal", "-shm", ".hnsw", ".bm25.npz"):
            if (home / f"tmp.db{suffix}").exists():
                (home / f"tmp.db{suffix}").rename(home / f"index.db{suffix}")
    return db


def queries(db: Path, limit: int = 200) -> list[str]:
    with Index.open(db) as index:
        titles = sorted({s.title for s in index.store.sources().values() if s.title})
    return titles[:limit] or ["notes"]


def start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "kenning", "--index", str(db), "-q", "serve", "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("kenning serve: "):
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    url = line.split(": ", 1)[1].strip().rstrip("/")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/status", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not answer")


async def load(url: str, qs: list[str], clients: int, seconds: float, midway=None) -> dict:
    """``clients`` closed-loop searchers for ``seconds``; ``midway`` runs halfway through."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(n: int, http: httpx.AsyncClient) -> None:
        i = n
        while time.monotonic() < stop:
            q = qs[i % len(qs)]
            i += clients
            t = time.perf_counter()
            try:
                r = await http.get("/api/search", params={"q": q, "k": 10})
                if r.status_code != 200 or not isinstance(r.json().get("hits"), list):
                    errors.append(f"{r.status_code}: {r.text[:120]}")
            except httpx.HTTPError as e:
                errors.append(repr(e))
            latencies.append(time.perf_counter() - t)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        tasks = [asyncio.create_task(client(n, http)) for n in range(clients)]
        extra = None
        if midway is not None:
            await asyncio.sleep(seconds / 2)
            extra = await midway(http)
        await asyncio.gather(*tasks)
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))]  # noqa: E731
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": pick(0.99) * 1000 if latencies else float("nan"),
        "errors": len(errors),
        "first_errors": errors[:3],
        "midway": extra,
    }


def edit_notes(db: Path, n: int) -> list[tuple[Path, bytes]]:
    """Append a line to ``n`` Markdown notes; returns what to restore."""
    with Index.open(db) as index:
        paths = sorted(p for p in index.store.sources() if p.endswith(".md"))[:n]
    saved = []
    for p in map(Path, paths):
        saved.append((p, p.read_bytes()))
        p.write_bytes(saved[-1][1] + b"\n\nEdited by the serve benchmark.\n")
    return saved


def report(name: str, r: dict) -> None:
    print(
        f"{name:>10}: {r['clients']:>3} clients, {r['requests']:>6} requests, "
        f"{r['rps']:7.1f} requests/s, p50 {r['p50_ms']:7.1f} ms, p99 {r['p99_ms']:7.1f} ms, "
        f"{r['errors']} errors"
    )
    for e in r["first_errors"]:
        print(f"            error: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, help="an existing index (default: the til notes)")
    ap.add_argument("--embedder", default="minilm", help="embedder for the til index")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--baseline", type=float, default=10.0, help="seconds of one client alone")
    ap.add_argument("--sync-edits", type=int, default=0, help="notes edited and synced midway")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    db = args.index or til_index(args.embedder)
    qs = queries(db)
    proc, url = start_server(db)
    saved: list[tuple[Path, bytes]] = []
    try:
        status = httpx.get(url + "/api/status").json()
        print(f"{url}: {status['files']} files, {status['chunks']} chunks, {status['embedder']}")
        asyncio.run(load(url, qs, args.clients, 3.0))  # warm up: open every pooled index
        single = asyncio.run(load(url, qs, 1, args.baseline))
        report("alone", single)

        async def sync_midway(http: httpx.AsyncClient) -> dict:
            saved.extend(edit_notes(db, args.sync_edits))
            t = time.perf_counter()
            r = await http.post("/api/sync")
            body = r.json()
            return {
                "status": r.status_code,
                "changed": body.get("changed"),
                "s": time.perf_counter() - t,
            }

        midway = sync_midway if args.sync_edits else None
        loaded = asyncio.run(load(url, qs, args.clients, args.duration, midway))
        report("loaded", loaded)
        print(
            f"     ratio: p50 under load / p50 alone = {loaded['p50_ms'] / single['p50_ms']:.1f}x"
        )
        if loaded["midway"]:
            m = loaded["midway"]
            print(
                f"      sync: {m['status']}, {m['changed']} notes changed, {m['s']:.1f} s, mid-load"
            )
    finally:
        for path, data in saved:
            path.write_bytes(data)
        if saved:
            httpx.post(url + "/api/sync", timeout=600)
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
