"""Load on `kenning serve`: many concurrent users searching over loopback.

    python benchmarks/serve.py                              # 50 users, 60 s, til notes
    python benchmarks/serve.py --think 0                    # 50 clients back to back
    python benchmarks/serve.py --clients 10 --duration 20 --embedder hash
    python benchmarks/serve.py --sync-edits 100             # a sync of 100 edited notes midway
    python benchmarks/serve.py --index ~/notes/.kenning/index.db   # your own index
    python benchmarks/serve.py --think 0 --workers 1,2      # 1 worker, then 2: requests/s ratio

The server is the real thing, started as `kenning serve --port 0` in its own process, so
the load generator (asyncio + httpx2 in this process, one connection per client) does not
share its GIL. Queries are the til notes' titles, in turn. First one client alone sends
`GET /api/search` back to back: its p50 is the unloaded latency and its requests/s the
server's measured capacity. Then ``--clients`` users search together, each waiting a think
time between an answer and its next request (uniformly 0.5 to 1.5 times ``--think``, so
users do not march in step); the offered load is about clients / think requests/s, printed
beside the capacity. ``--think 0`` is the closed loop: every client sends again as soon as
its answer arrives, which keeps the server saturated, so p50 grows with the number of
clients whatever the server does. Both runs print requests/s, p50/p99 latency, the errors
(any non-200, transport error or inconsistent answer) and p50(load) / p50(alone).

With ``--sync-edits N``, N Markdown notes are first rewritten to a known "old" version and
synced (before any timing); halfway through the loaded run they are rewritten to a "new"
version and ``POST /api/sync`` indexes them while the searches go on. Each version of note
i has the same sections, every sentence of which holds a word of its own (``kb<i>x``) and
the word ``oldvariantx`` or ``newvariantx``. Besides the users, a probe searches
``kb<i>x`` (BM25) for each edited note in turn, during and after the sync: each answer
must hold every chunk of the note (as many as the old version has) and all of one version;
after the sync has answered, the new one. Every user's answer is checked too: no edited
note may show chunks of both versions. A failed check counts as an error. The original
notes are restored and synced afterwards.

``--workers 1,2`` runs the whole measurement once per worker count (``kenning serve
--workers N``), one after the other in this sitting, and prints each count's requests/s
against the first's, and the resident memory of each worker process.

The default index is the til collection from ../shared/data with the default embedder, built
once under the kenning cache folder (about 2.5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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
        for suffix in ("", "-wal", "-shm", ".vectors.npy", ".hnsw", ".bm25.npz"):
            if (home / f"tmp.db{suffix}").exists():
                (home / f"tmp.db{suffix}").rename(home / f"index.db{suffix}")
    return db


def queries(db: Path, limit: int = 200) -> list[str]:
    with Index.open(db) as index:
        titles = sorted({s.title for s in index.store.sources().values() if s.title})
    return titles[:limit] or ["notes"]


def start_server(db: Path, workers: int = 1) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "kenning", "--index", str(db), "-q", "serve", "--port", "0"]
    command += ["--workers", str(workers)]
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


LETTERS = "bcfhjkmnpqrtvwz"
MARK = {"old": "oldvariantx", "new": "newvariantx"}


def note_word(i: int) -> str:
    """A word of note ``i``'s own (letters only, so no tokenizer splits it)."""
    return "kb" + LETTERS[i // len(LETTERS) % len(LETTERS)] + LETTERS[i % len(LETTERS)] + "x"


def version_text(i: int, version: str) -> str:
    """Note ``i`` as the benchmark writes it: three sections, each sentence marked."""
    word, mark = note_word(i), MARK[version]
    filler = (
        "this line keeps a benchmark note long enough to be cut into several chunks, "
        "each of which has to change with the note and never alone"
    )
    sections = []
    for part in ("first", "second", "third"):
        sentences = " ".join(
            f"{word} {mark} {part} part, sentence {n}: {filler}." for n in range(6)
        )
        sections.append(f"## The {part} part\n\n{sentences}\n")
    return f"# Benchmark note {word}\n\n" + "\n".join(sections)


class Edits:
    """The notes ``--sync-edits`` rewrites, and the checks on what searches return."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.index = {str(p): i for i, p in enumerate(paths)}
        self.saved = [(p, p.read_bytes()) for p in paths]
        self.chunks: dict[int, int] = {}  # note -> chunks per version
        self.synced_at: float | None = None  # when the mid-load sync answered

    def write(self, version: str) -> None:
        for i, p in enumerate(self.paths):
            p.write_text(version_text(i, version))

    def restore(self) -> None:
        for p, data in self.saved:
            p.write_bytes(data)

    def mixed(self, hits: list[dict]) -> str | None:
        """A user's answer: no edited note may show chunks of both versions."""
        seen: dict[str, set[str]] = {}
        for h in hits:
            if h["path"] in self.index:
                seen.setdefault(h["path"], set()).update(
                    v for v, m in MARK.items() if m in h["text"]
                )
        bad = [p for p, versions in seen.items() if len(versions) != 1]
        return f"mixed or unmarked versions of {bad[0]}" if bad else None

    def check_probe(self, i: int, hits: list[dict], sent: float) -> str | None:
        """A probe's answer for note ``i``: every chunk, all of one version."""
        mine = [h for h in hits if h["path"] == str(self.paths[i])]
        versions = {v for h in mine for v, m in MARK.items() if m in h["text"]}
        if i not in self.chunks:
            self.chunks[i] = len(mine)
        if len(versions) != 1 or len(mine) != self.chunks[i] or not mine:
            return f"note {i}: {len(mine)} chunks of {self.chunks[i]}, versions {sorted(versions)}"
        if self.synced_at is not None and sent > self.synced_at and versions != {"new"}:
            return f"note {i}: the old version after the sync answered"
        return None


async def probe_all(http: httpx.AsyncClient, edits: Edits, errors: list[str]) -> None:
    for i in range(len(edits.paths)):
        await probe(http, edits, i, errors)


async def probe(http: httpx.AsyncClient, edits: Edits, i: int, errors: list[str]) -> None:
    sent = time.monotonic()
    params = {"q": note_word(i), "k": 20, "mode": "bm25"}
    try:
        r = await http.get("/api/search", params=params)
        problem = (
            f"probe {r.status_code}: {r.text[:120]}"
            if r.status_code != 200
            else edits.check_probe(i, r.json()["hits"], sent)
        )
    except httpx.HTTPError as e:
        problem = f"probe: {e!r}"
    if problem:
        errors.append(problem)


async def load(
    url: str,
    qs: list[str],
    clients: int,
    seconds: float,
    think: float = 0.0,
    midway=None,
    edits: Edits | None = None,
) -> dict:
    """``clients`` users for ``seconds``, each waiting about ``think`` seconds between an answer
    and its next request (0: back to back); ``midway`` runs halfway through, and the users go
    on until it has finished. With ``edits``, answers are checked and a probe runs alongside."""
    latencies: list[float] = []
    errors: list[str] = []
    rng = random.Random(7)
    start = time.monotonic()
    stop = start + seconds
    midway_done = asyncio.Event()
    if midway is None:
        midway_done.set()
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)

    def running() -> bool:
        return time.monotonic() < stop or not midway_done.is_set()

    async def client(n: int, http: httpx.AsyncClient) -> None:
        i = n
        if think:
            await asyncio.sleep(rng.uniform(0, think))  # spread the first requests
        while running():
            q = qs[i % len(qs)]
            i += clients
            t = time.perf_counter()
            try:
                r = await http.get("/api/search", params={"q": q, "k": 10})
                hits = r.json().get("hits") if r.status_code == 200 else None
                if not isinstance(hits, list):
                    errors.append(f"{r.status_code}: {r.text[:120]}")
                elif edits is not None and (problem := edits.mixed(hits)):
                    errors.append(problem)
            except httpx.HTTPError as e:
                errors.append(repr(e))
            latencies.append(time.perf_counter() - t)
            if think:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    async def prober(http: httpx.AsyncClient) -> int:
        assert edits is not None
        n = 0
        while running():
            await probe(http, edits, n % len(edits.paths), errors)
            n += 1
            await asyncio.sleep(0.05)
        return n

    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        tasks = [asyncio.create_task(client(n, http)) for n in range(clients)]
        probes = asyncio.create_task(prober(http)) if edits is not None else None
        extra = None
        if midway is not None:
            await asyncio.sleep(seconds / 2)
            extra = await midway(http)
            midway_done.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
        if probes is not None and edits is not None:
            extra = {**(extra or {}), "probes": await probes}
            await probe_all(http, edits, errors)  # after the run: every note, new version
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))]  # noqa: E731
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": pick(0.99) * 1000 if latencies else float("nan"),
        "errors": len(errors),
        "first_errors": errors[:3],
        "midway": extra,
    }


def markdown_notes(db: Path, n: int) -> list[Path]:
    with Index.open(db) as index:
        paths = sorted(p for p in index.store.sources() if p.endswith(".md"))
    return [Path(p) for p in paths[:n]]


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
    ap.add_argument("--duration", "--seconds", type=float, default=60.0, help="seconds of load")
    ap.add_argument(
        "--think",
        type=float,
        default=5.0,
        help="mean seconds a user waits between an answer and its next search (0: back to back)",
    )
    ap.add_argument("--baseline", type=float, default=10.0, help="seconds of one client alone")
    ap.add_argument("--sync-edits", type=int, default=0, help="notes edited and synced midway")
    ap.add_argument(
        "--workers", default="1", help="worker processes; a list (1,2) measures each in turn"
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    db = args.index or til_index(args.embedder)
    qs = queries(db)
    counts = [int(n) for n in args.workers.split(",")]
    results = {n: measure(args, db, qs, n) for n in counts}
    if len(counts) > 1:
        first = results[counts[0]]
        for n, r in results.items():
            print(
                f"workers {n}: {r['rps']:.1f} requests/s under load "
                f"({r['rps'] / first['rps']:.2f}x of {counts[0]}), p50 {r['p50_ms']:.0f} ms, "
                f"p99 {r['p99_ms']:.0f} ms, {r['errors']} errors"
            )


def worker_rss_mb(pid: int) -> list[float]:
    """Resident memory (MB) of each process serving: the server's spawned workers, or the
    server itself when it has none."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    pids = [c for c in found if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    out = []
    for p in pids or [pid]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out.append(int(line.split()[1]) / 1024)
    return out


def measure(args: argparse.Namespace, db: Path, qs: list[str], workers: int) -> dict:
    """One full run against `kenning serve --workers N`: alone, then loaded."""
    proc, url = start_server(db, workers)
    edits: Edits | None = None
    try:
        status = httpx.get(url + "/api/status").json()
        print(
            f"{url}: {status['files']} files, {status['chunks']} chunks, {status['embedder']}, "
            f"{workers} worker(s)"
        )
        if args.sync_edits:
            edits = Edits(markdown_notes(db, args.sync_edits))
            edits.write("old")
            r = httpx.post(url + "/api/sync", timeout=600)
            print(
                f"  set-up: {len(edits.paths)} notes rewritten to their old version, "
                f"sync {r.status_code}"
            )
            setup_errors: list[str] = []
            asyncio.run(_probe_once(url, edits, setup_errors))
            if setup_errors:
                raise SystemExit(f"the old versions are not searchable: {setup_errors[:3]}")
            counts = sorted(set(edits.chunks.values()))
            print(f"          each edited note has {counts} chunks per version")
        asyncio.run(load(url, qs, args.clients, 3.0))  # warm up: open every pooled index
        single = asyncio.run(load(url, qs, 1, args.baseline))
        report("alone", single)
        capacity = single["rps"]
        if args.think:
            offered = args.clients / args.think
            print(
                f"   offered: {args.clients} users / {args.think:g} s think time = "
                f"{offered:.1f} requests/s; capacity (one client back to back) "
                f"{capacity:.1f} requests/s ({offered / capacity:.0%})"
            )
        else:
            print(f"   offered: back to back (closed loop); capacity {capacity:.1f} requests/s")

        async def sync_midway(http: httpx.AsyncClient) -> dict:
            assert edits is not None
            edits.write("new")
            t = time.perf_counter()
            r = await http.post("/api/sync")
            edits.synced_at = time.monotonic()
            body = r.json()
            return {
                "status": r.status_code,
                "changed": body.get("changed"),
                "s": time.perf_counter() - t,
            }

        midway = sync_midway if edits else None
        loaded = asyncio.run(load(url, qs, args.clients, args.duration, args.think, midway, edits))
        report("loaded", loaded)
        print(
            f"     ratio: p50 under load / p50 alone = {loaded['p50_ms'] / single['p50_ms']:.1f}x"
        )
        if loaded["midway"]:
            m = loaded["midway"]
            print(
                f"      sync: {m['status']}, {m['changed']} notes changed, {m['s']:.1f} s, "
                f"mid-load; {m['probes']} probes during the run, then one per note"
            )
        rss = worker_rss_mb(proc.pid)
        print(f"       rss: {', '.join(f'{m:.0f}' for m in rss)} MB per worker process")
        return loaded
    finally:
        if edits is not None:
            edits.restore()
            httpx.post(url + "/api/sync", timeout=600)
        proc.terminate()
        proc.wait(timeout=30)


async def _probe_once(url: str, edits: Edits, errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        await probe_all(http, edits, errors)


if __name__ == "__main__":
    main()
