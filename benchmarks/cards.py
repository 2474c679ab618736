"""Making flashcards for a notes collection: how long, and how good (`kenning eval cards`).

    python benchmarks/cards.py                        # the til notes, 3 runs
    python benchmarks/cards.py --notes tldr --runs 1  # the tldr pages
    python benchmarks/cards.py --cores 2              # pinned to two cores (Linux)
    python benchmarks/cards.py --notes tldr --every 10 # in-process, every 10th page only
    python benchmarks/cards.py --sample 30 --llm local --model qwen2.5-coder-0.5b

The shared collection is unpacked into a temporary folder and indexed with the hash
embedder (making cards reads the notes and never embeds, so the embedder does not matter
here). Then, in fresh processes, ``kenning cards --json`` runs ``--runs`` times (the first
stores the cards, the others find every card unchanged), and ``kenning eval cards --json``
once. Printed: each run's wall time and CPU time (user + system of the child process: what
the run costs whatever else the machine is doing; making cards is single-threaded, so on an
idle machine its wall time is about its CPU time), their medians, the machine's load, and
the evaluation report. Issue 35 asks for the til notes' cards in under a minute on two cores.

``--every N`` skips the index and the subprocesses: every Nth note (sorted by path) is read,
its cards made (``make_cards``) and scored (``evaluate_cards``) in this process, with the
same library calls `kenning eval cards` makes; for a quick figure on a large collection.
``--sample N`` takes N notes spread evenly over the sorted paths instead, and ``--llm``
(with ``--model``) has that backend write the cards (``kenning cards --llm``); the yield
(notes that gave a card, cards per note) and the CPU time are printed with the report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KENNING_SHARED_DATA", ROOT.parent / "shared" / "data"))
COLLECTIONS = {
    "til": ("notes-jbranchaud-til/jbranchaud-til-md.tar.gz", "til"),
    "tldr": ("notes-tldr-pages-en/tldr-pages-en-md.tar.gz", "tldr-pages-en"),
}


def kenning(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kenning", "--index", str(db), *args]


def sample(folder: Path, every: int, n: int = 0, llm: str | None = None, model: str = "") -> None:
    """Every ``every``-th note (or ``n`` notes evenly spread), cards made and scored here."""
    from kenning.cards.make import describe, make_cards, notes_at
    from kenning.cards.rules import candidates
    from kenning.eval.cards import evaluate_cards

    paths = sorted(str(p) for p in folder.rglob("*.md"))
    paths = paths[:: max(1, len(paths) // n)][:n] if n else paths[::every]
    propose: Any = candidates
    if llm:
        from kenning.answer.llms import get_llm
        from kenning.cards.writer import LLMWriter

        propose = LLMWriter(get_llm(llm, **({"model": model} if model else {})))
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    notes = list(notes_at(paths))
    made = make_cards(notes, propose)
    making, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    report = evaluate_cards(made.cards, {n.path: n.text for n in notes}).to_dict()
    with_cards = len({c.path for c in made.cards})
    yield_ = {
        "notes_read": len(notes),
        "notes_with_a_card": with_cards,
        "cards_per_note": len(made.cards) / max(1, len(notes)),
        "making_seconds": making,
        "making_cpu_seconds": cpu,
        "load": os.getloadavg()[0],
    }
    counts = {"writer": propose.counts} if llm else {}
    print(json.dumps({**report, **describe(made), **yield_, **counts}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", choices=sorted(COLLECTIONS), default="til")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cores", type=int, default=0, help="pin to this many cores")
    parser.add_argument("--every", type=int, default=0, help="in-process, every Nth note")
    parser.add_argument("--sample", type=int, default=0, help="in-process, N notes spread out")
    parser.add_argument("--llm", help="in-process, cards written by this LLM backend")
    parser.add_argument("--model", default="", help="the --llm backend's model")
    args = parser.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    archive, folder = COLLECTIONS[args.notes]
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(SHARED / archive) as tar:
            tar.extractall(tmp, filter="data")
        if args.every or args.sample or args.llm:
            sample(Path(tmp) / folder, args.every or 1, args.sample, args.llm, args.model)
            return
        db = Path(tmp) / "index.db"
        add = kenning(db, "--embedder", "hash", "add", str(Path(tmp) / folder), "--quiet")
        subprocess.run(add, check=True, env=env)
        times, cpu, count = [], [], 0
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            done = subprocess.run(
                kenning(db, "cards", "--json"), check=True, env=env, capture_output=True, text=True
            )
            times.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            count = len(done.stdout.splitlines())
        report = subprocess.run(
            kenning(db, "eval", "cards", "--json"),
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
    print(
        f"{args.notes}: {count} cards; kenning cards wall: " + ", ".join(f"{t:.1f}" for t in times)
    )
    print("CPU (user + system): " + ", ".join(f"{t:.1f}" for t in cpu))
    print(
        f"median wall {statistics.median(times):.1f} s, CPU {statistics.median(cpu):.1f} s "
        "(target: under 60 s on 2 cores)"
    )
    print(json.dumps(json.loads(report.stdout), indent=1))
    print(f"load: {os.getloadavg()[0]:.1f}, cores: {len(os.sched_getaffinity(0))}")


if __name__ == "__main__":
    main()
