"""Cold start: what a new user waits for, each command in a fresh process.

    python benchmarks/cold_start.py                       # examples/notes, 5 runs of each
    python benchmarks/cold_start.py --runs 9 --serve-questions 10
    python benchmarks/cold_start.py --src /tmp/old-kenning    # another checkout's package
    python benchmarks/cold_start.py --embedder minilm:query_precision=int8   # as on VNNI CPUs
    python benchmarks/cold_start.py --first-add           # also time `add` in an empty cache

A small index of the notes (``examples/notes`` by default) is built in a temporary folder
with `kenning add`. Then `kenning search` and `kenning ask` (the extractive answerer) run as
fresh subprocesses, alternating, ``--runs`` times each, on the same question: their medians
and the ratio ask/search are printed (issue #30 asks for at most 1.5). One more cold ask runs
under ``python -X importtime`` to show whether torch or sentence-transformers were imported.

Then `kenning serve --port 0` starts in its own process; once it prints its URL (it says so
only when it is ready) the same question goes to ``POST /api/ask`` ``--serve-questions``
times in a row: the first, the last and the median of the others are printed, with the
ratio first/last (issue #30 asks for at most 2).

``--first-add`` first builds the index with an empty kenning cache (``KENNING_CACHE`` in
the temporary folder, the model files not yet exported) and prints how long it took and
what it said on stderr. ``--src DIR`` runs the kenning package found in ``DIR`` instead of
the installed one (``DIR/kenning``), to compare two versions in one sitting. ``--runtime``
writes the batch runtime into the (temporary) calibration cache, to time a machine where the
calibration chose torch (``torch``, ``torch-bf16``) on one where it chose ONNX.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "how do I split a tmux window into panes?"


def kenning(*args: str) -> list[str]:
    """The command line of a fresh `kenning` process."""
    return [sys.executable, "-m", "kenning", *args]


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stderr


def post(url: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=600) as res:
        return dict(json.load(res))


def serve_timings(env: dict[str, str], cwd: Path, index: Path, n: int) -> list[float]:
    """Seconds for each of ``n`` answers from a freshly started `kenning serve`."""
    cmd = kenning("-q", "-i", str(index), "serve", "--port", "0")
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("kenning serve: "):
            sys.exit(f"kenning serve did not start: {line!r}")
        url = line.split(": ", 1)[1].strip().rstrip("/")
        out = []
        for _ in range(n):
            start = time.perf_counter()
            answer = post(url + "/api/ask", {"question": QUESTION})
            out.append(time.perf_counter() - start)
            if not answer.get("sources"):
                sys.exit(f"the server's answer has no sources: {answer}")
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def imported(env: dict[str, str], cwd: Path, index: Path) -> list[str]:
    """The heavy modules a cold ask imports (``-X importtime``)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "kenning", "-i", str(index), "ask", QUESTION]
    _, err = timed(cmd, env, cwd)
    heavy = ("torch", "sentence_transformers", "transformers")
    names = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    return [name for name in heavy if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=Path, default=ROOT / "examples" / "notes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve-questions", type=int, default=10)
    parser.add_argument("--embedder", default=None, help="embedder id for the new index")
    parser.add_argument("--src", type=Path, default=None, help="a checkout whose kenning to run")
    parser.add_argument("--first-add", action="store_true", help="build in an empty cache")
    parser.add_argument("--runtime", choices=["onnx", "torch", "torch-bf16"], default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kenning-cold-"))
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if args.src:
            env["PYTHONPATH"] = str(args.src.resolve())
        notes = tmp / "notes"
        shutil.copytree(args.notes, notes)
        index = tmp / "index.db"
        if args.first_add or args.runtime:
            env["KENNING_CACHE"] = str(tmp / "cache")
            (tmp / "cache").mkdir()
        if args.runtime and not args.first_add:  # the exported models, without re-exporting
            (tmp / "cache" / "models").symlink_to(_models(env, tmp), target_is_directory=True)
        if args.runtime:
            _force_runtime(env, tmp, args.runtime)
            print(f"calibration cache says: batches on {args.runtime}")
        add = ["-i", str(index)] + (["-e", args.embedder] if args.embedder else [])
        seconds, err = timed(kenning(*add, "add", str(notes)), env, tmp)
        first = [ln for ln in err.splitlines() if "ONNX" in ln or "calibrat" in ln]
        print(f"add {len(list(notes.rglob('*.md')))} notes: {seconds:.1f} s", end="")
        print(" (empty cache)" if args.first_add else "")
        for line in first:
            print(f"  said: {line.strip()}")

        search = kenning("-i", str(index), "search", QUESTION)
        ask = kenning("-i", str(index), "ask", QUESTION)
        times: dict[str, list[float]] = {"search": [], "ask": []}
        for _ in range(args.runs):
            times["search"].append(timed(search, env, tmp)[0])
            times["ask"].append(timed(ask, env, tmp)[0])
        med = {name: statistics.median(ts) for name, ts in times.items()}
        for name, ts in times.items():
            runs = " ".join(f"{t:.2f}" for t in ts)
            print(f"cold {name:6} median {med[name]:.2f} s  (runs: {runs})")
        print(f"ask / search: {med['ask'] / med['search']:.2f}  (at most 1.5)")
        heavy = imported(env, tmp, index)
        print(f"a cold ask imports: {', '.join(heavy) if heavy else 'no torch, no transformers'}")

        if args.serve_questions:
            ts = serve_timings(env, tmp, index, args.serve_questions)
            rest = statistics.median(ts[1:]) if len(ts) > 1 else ts[0]
            print(
                f"serve: first question {ts[0]:.2f} s, last {ts[-1]:.2f} s, "
                f"median of the others {rest:.2f} s; first / last: {ts[0] / ts[-1]:.2f} "
                "(at most 2)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _models(env: dict[str, str], cwd: Path) -> Path:
    """The exported model folder of the cache this process would use without the override."""
    probe = "from kenning.config import cache_dir; print(cache_dir() / 'models')"
    plain = {k: v for k, v in env.items() if k != "KENNING_CACHE"}
    if "KENNING_CACHE" in os.environ:
        plain["KENNING_CACHE"] = os.environ["KENNING_CACHE"]
    out = subprocess.run(
        [sys.executable, "-c", probe], env=plain, cwd=cwd, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def _force_runtime(env: dict[str, str], cwd: Path, runtime: str) -> None:
    """Write ``runtime`` as this machine's calibrated batch runtime in the cache."""
    code = (
        "import json, sys; from kenning.config import cache_dir; "
        "from kenning.embedders.hardware import machine_key; "
        "entry = {'batch_runtime': sys.argv[1], 'texts_per_s': {}, 'measured': 'forced'}; "
        "(cache_dir() / 'runtimes.json').write_text(json.dumps("
        "{'format': 1, 'calibrations': {machine_key(): entry}}))"
    )
    subprocess.run([sys.executable, "-c", code, runtime], env=env, cwd=cwd, check=True)


if __name__ == "__main__":
    main()
