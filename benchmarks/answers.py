"""Answers: `kenning ask` latency, local-model speed, and PubMedQA answer quality.

    python benchmarks/answers.py ../shared/data                  # extractive only
    python benchmarks/answers.py ../shared/data --local qwen2.5-coder-0.5b qwen2.5-coder-1.5b

1. `ask` latency with the extractive answerer on the til notes (index already open): the
   median and p95 over questions generated from the notes.
2. For each local model: load time, time to first token, generation tokens/s and peak
   memory, each model in a fresh process (`benchmarks/llm_speed.py`).
3. PubMedQA (500 test questions; the local models on the first ``--limit``): EM, F1,
   ROUGE-L, BLEU, citation precision and recall, verified sentences, refusal rate, yes/no/maybe
   accuracy and seconds per answer, through `kenning.eval.qa.answer_eval` (what
   `kenning eval qa --answerer` runs). Published reference points for the decision accuracy:
   majority class 55%, a single human 78%.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from thresholds import til_index

from kenning import Index
from kenning.answer import ask, get_llm
from kenning.eval.evaluate import RunConfig
from kenning.eval.qa import answer_eval, load_qa
from kenning.eval.questions import generate

METRICS = (
    "decision_accuracy",
    "f1",
    "rouge_l",
    "bleu",
    "citation_precision",
    "citation_recall",
    "verified_sentences",
    "attributed_sentences",
    "refusal_rate",
    "seconds_p50",
)


def ask_latency(data: Path, n: int) -> None:
    with Index.open(til_index(data)) as index:
        questions = [q["question"] for q in generate(index, n, seed=2)]
        for q in questions[:3]:  # warm up: model session, vector index, page cache
            ask(index, q)
        times, refused = [], 0
        for q in questions:
            t = time.perf_counter()
            answer = ask(index, q)
            times.append(time.perf_counter() - t)
            refused += answer.refused
    times.sort()
    print(f"## kenning ask, extractive, til notes ({len(times)} questions, index open)")
    print(
        f"median {statistics.median(times) * 1000:.0f} ms, p95 "
        f"{times[int(len(times) * 0.95) - 1] * 1000:.0f} ms; refused {refused}",
        flush=True,
    )


def pubmedqa(data: Path, answerers: list[tuple[str, dict]], limit: int, k: int) -> None:
    qa = load_qa(data / "pubmedqa-labeled")
    print(
        f"\n## PubMedQA answers (test split, {k} passages; local models and the extractive "
        f"row marked 'same': first {limit} questions)"
    )
    print(f"{'answerer':<28}{'n':>5}" + "".join(f"{m[:12]:>13}" for m in METRICS), flush=True)
    for name, args, n in answerers:
        llm = get_llm(name, **args)
        mean, rows = answer_eval(qa, "pubmedqa-labeled", RunConfig("h"), llm, k=k, limit=n)
        cells = "".join(f"{mean.get(m, float('nan')):13.3f}" for m in METRICS)
        label = llm.id + (" (same)" if name == "extractive" and n else "")
        print(f"{label:<28}{len(rows):>5}{cells}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder")
    ap.add_argument("--local", nargs="*", default=[], help="local models to measure too")
    ap.add_argument("--limit", type=int, default=40, help="PubMedQA questions per local model")
    ap.add_argument("--k", type=int, default=5, help="passages per answer")
    ap.add_argument("--max-new-tokens", type=int, default=160, help="answer length cap")
    ap.add_argument("-n", type=int, default=50, help="til questions for the latency figure")
    args = ap.parse_args()
    ask_latency(args.data, args.n)
    for model in args.local:
        speed = Path(__file__).with_name("llm_speed.py")
        subprocess.run([sys.executable, str(speed), "--model", model], check=True)
    answerers = [("extractive", {}, None)]
    if args.local:
        answerers.append(("extractive", {}, args.limit))
    answerers += [
        ("local", {"model": m, "max_new_tokens": args.max_new_tokens}, args.limit)
        for m in args.local
    ]
    pubmedqa(args.data, answerers, args.limit, args.k)


if __name__ == "__main__":
    sys.exit(main())
