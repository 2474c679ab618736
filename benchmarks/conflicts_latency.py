"""What conflict detection adds to `kenning ask`: extractive answers on the til notes, each
question asked with detection off and on, alternately (same sitting, same warm index).

    python benchmarks/conflicts_latency.py ../shared/data [-n 60] [--index til.db]

The til notes are indexed with the default embedder once (``thresholds.til_index``); the
questions are generated from them (``kenning eval generate``'s structural questions). Each
question is asked once per setting, the order flipping from one question to the next so that
neither setting always runs on a warmer cache. Prints the medians and p95s, their
difference, and the median time of the detection step itself (``timings["conflicts"]``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from thresholds import til_index

from kenning import Index
from kenning.answer import ask
from kenning.eval.questions import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="the shared data folder")
    parser.add_argument("-n", type=int, default=60, help="questions")
    parser.add_argument(
        "--index", type=Path, help="an index of the til notes to use instead (already built)"
    )
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    step: list[float] = []
    found = 0
    with Index.open(args.index or til_index(args.data)) as index:
        questions = [q["question"] for q in generate(index, args.n, seed=3)]
        for q in questions[:3]:  # warm up: model session, vector index, page cache
            ask(index, q)
        for i, q in enumerate(questions):
            for on in (i % 2 == 0, i % 2 == 1):
                t = time.perf_counter()
                answer = ask(index, q, conflicts=on)
                times[on].append(time.perf_counter() - t)
                if on:
                    step.append(answer.timings.get("conflicts", 0.0))
                    found += bool(answer.conflicts)
    off, on = (statistics.median(times[k]) * 1000 for k in (False, True))
    print(
        f"## conflict detection in `kenning ask` (extractive, til notes, "
        f"{len(questions)} questions)"
    )
    for label, key in (("detection off", False), ("detection on", True)):
        ts = sorted(times[key])
        print(
            f"{label:<14} median {statistics.median(ts) * 1000:6.0f} ms, "
            f"p95 {ts[int(len(ts) * 0.95) - 1] * 1000:6.0f} ms"
        )
    print(f"difference of the medians: {on - off:+.1f} ms")
    print(
        f"detection step: median {statistics.median(step) * 1000:.1f} ms, "
        f"max {max(step) * 1000:.1f} ms; answers with a conflict: {found}"
    )


if __name__ == "__main__":
    main()
