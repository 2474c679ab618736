"""Local answers: where the time goes, and the same questions before and after the speed-ups.

    python benchmarks/local_answers.py ../shared/data --model qwen2.5-coder-0.5b -n 30

PubMedQA's test questions (the first ``-n``), answered by the local model over an index of
the abstracts of the first ``--corpus`` questions (so retrieval still has to choose).
``--tokens N`` first counts, without running the model, the tokens each mode has the model
read for the first N questions. Each question is
asked twice in a row, in one process on one loaded model, so both see the same machine load:

- ``before``: whole chunks in the prompt and no KV cache (the cache is emptied first), which
  is what `kenning ask --llm local` did before;
- ``after``: excerpts of the passages (``excerpt_sentences``) and the cached system prompt;
  where the model declines over the excerpts, ``ask`` has it read the passages whole
  (``reread``: the share of answers that did).

Reported for each: median seconds per answer and to the first token, the prompt's tokens and
the seconds spent reading it versus writing the answer, PubMedQA's yes/no/maybe decision
accuracy (the answer's reading, ``kenning.eval.qa.decision``), citation precision against the
gold abstract, and the share of sentences whose citations check out. ``--json`` writes rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kenning.answer import ask
from kenning.answer.ask import REREAD
from kenning.answer.citations import SUPPORTED
from kenning.answer.local import LocalLLM
from kenning.answer.sentences import citations as strip_citations
from kenning.eval.evaluate import RunConfig, corpus_index
from kenning.eval.qa import QASet, citation_scores, decision, load_qa


def prompt_sizes(index: Any, question: str, llm: LocalLLM, k: int) -> tuple[int, int, int]:
    """(tokens of the whole-chunk prompt, of the excerpt prompt, of its system part): what
    each mode reads, counted without running the model."""
    from kenning.answer.llms import Passage
    from kenning.answer.prompt import build_prompt
    from kenning.answer.sentences import SentenceVectors

    hits = index.search(question, k=k)
    passages = [
        Passage(n, h.chunk_id, h.path, h.title, h.heading, h.page, h.start, h.end, h.text, h.score)
        for n, h in enumerate(hits, 1)
    ]
    llm.bind(SentenceVectors(index.embedder))
    sizes = []
    for sentences in (None, llm.excerpt_sentences):
        kept, llm.excerpt_sentences = llm.excerpt_sentences, sentences
        tokens, fixed = llm._tokens(build_prompt(question, passages, llm))
        llm.excerpt_sentences = kept
        sizes.append(len(tokens))
    return sizes[0], sizes[1], fixed


def answer_row(index: Any, names: dict[str, str], item: Any, llm: LocalLLM, k: int) -> dict:
    cpu = time.process_time()
    answer = ask(index, item.question, llm, k=k)
    cpu = time.process_time() - cpu
    by_n = {s.n: names.get(Path(s.path).stem) for s in answer.sources}
    cited = [by_n[n] for s in answer.sentences for n in s.citations if by_n.get(n)]
    plain = " ".join(strip_citations(s.text)[0] for s in answer.sentences) or answer.text
    precision, _ = citation_scores(cited, {item.gold})
    return {
        "seconds": answer.timings["total"],
        "cpu_seconds": cpu,
        "first_token": answer.timings.get("first_token", answer.timings["total"]),
        # from the question, not from the prompt: search and building the prompt included
        "first_token_asked": answer.timings["total"]
        - sum(answer.timings.get(k, 0.0) for k in ("generate", "check", "conflicts"))
        + answer.timings.get("first_token", 0.0),
        "timings": answer.timings,
        "read_tokens": llm.timings.get("read_tokens", 0.0),
        "prompt_tokens": llm.usage.prompt_tokens,
        "completion_tokens": llm.usage.completion_tokens,
        "read_seconds": llm.timings.get("read_seconds", 0.0),
        "write_seconds": llm.timings.get("write_seconds", 0.0),
        "correct": float(decision(plain) == item.decision),
        "citation_precision": precision if cited else 0.0,
        "verified": (
            sum(s.status == SUPPORTED for s in answer.sentences) / len(answer.sentences)
            if answer.sentences
            else 0.0
        ),
        "refused": float(answer.refused),
        "reread": float(REREAD in answer.notes),
        "answer": answer.text,
    }


def summary(rows: list[dict]) -> dict[str, float]:
    med = {
        k: statistics.median(r[k] for r in rows)
        for k in ("seconds", "cpu_seconds", "first_token", "first_token_asked")
    }
    mean = {
        k: statistics.fmean(r[k] for r in rows)
        for k in (
            "prompt_tokens",
            "read_tokens",
            "read_seconds",
            "write_seconds",
            "completion_tokens",
            "correct",
            "citation_precision",
            "verified",
            "refused",
            "reread",
        )
    }
    return {**med, **mean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("-n", type=int, default=30, help="questions")
    ap.add_argument(
        "--corpus", type=int, default=100, help="abstracts indexed: those of the first N questions"
    )
    ap.add_argument("--k", type=int, default=5, help="passages per answer")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--excerpt-sentences", type=int, default=2)
    ap.add_argument(
        "--excerpt-tokens", type=int, default=0, help="0: no limit (the default, as in LocalLLM)"
    )
    ap.add_argument("--skip", type=int, default=0, help="start after this many questions")
    ap.add_argument("--after-only", action="store_true", help="skip the whole-chunk answers")
    ap.add_argument(
        "--also-tokens", type=int, help="a third mode: excerpts with this --excerpt-tokens"
    )
    ap.add_argument("--threads", type=int, help="llama.cpp threads (default: the cores)")
    ap.add_argument(
        "--tokens", type=int, default=0, help="first count both prompts on this many questions"
    )
    ap.add_argument("--json", type=Path, help="write every row here")
    args = ap.parse_args()

    qa = load_qa(args.data / "pubmedqa-labeled")
    items = qa.items[args.skip : args.skip + args.n]
    keep = [i.gold for i in qa.items[: max(args.corpus, args.skip + args.n, args.tokens)]]
    corpus = QASet(items, {p: qa.passages[p] for p in keep if p})
    index, names = corpus_index(corpus.as_corpus(), "pubmedqa-local-bench", RunConfig("h"))
    llm = LocalLLM(
        args.model,
        n_threads=args.threads,
        max_new_tokens=args.max_new_tokens,
        excerpt_tokens=args.excerpt_tokens or None,
    )
    llm.count_tokens("load")  # load the model once, outside the timings
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(
        f"{llm.id}, {llm.n_threads} threads, {len(items)} questions, k={args.k}; "
        f"load at start: {uptime}",
        flush=True,
    )
    rows: dict[str, list[dict]] = {"before": [], "after": []}
    modes = ["after"] if args.after_only else ["before", "after"]
    if args.also_tokens:
        modes.append(f"after_{args.also_tokens}")
        rows[modes[-1]] = []
    if args.tokens:
        sizes = [prompt_sizes(index, i.question, llm, args.k) for i in qa.items[: args.tokens]]
        whole, part, fixed = (statistics.median(s[j] for s in sizes) for j in range(3))
        print(
            f"prompt tokens over {len(sizes)} questions (median): whole chunks {whole:.0f}, "
            f"excerpts {part:.0f}, of which the cached system part {fixed:.0f}: the model reads "
            f"{whole:.0f} before and {part - fixed:.0f} after",
            flush=True,
        )
    with index:
        ask(index, items[0].question, llm, k=args.k)  # warm up: vectors, page cache
        for n, item in enumerate(items, 1):
            for mode in modes:
                if mode == "before":
                    llm.excerpt_sentences = None
                    llm._kv, llm._prefixes = [], {}  # the old path: read the whole prompt
                else:  # a new question: only the kept system-prompt state is reused
                    llm.excerpt_sentences = args.excerpt_sentences
                    llm.excerpt_tokens = (
                        args.also_tokens if mode != "after" else args.excerpt_tokens or None
                    )
                    llm._kv = []
                row = answer_row(index, names, item, llm, args.k)
                row.update(mode=mode, id=item.qid)
                rows[mode].append(row)
            a = rows["after"][-1]
            b = rows["before"][-1] if rows["before"] else a
            print(
                f"{n:3d} before {b['seconds']:6.1f}s ({b['read_tokens']:.0f} tok read) "
                f"after {a['seconds']:6.1f}s ({a['read_tokens']:.0f} tok read, first "
                f"{a['first_token']:.1f}s); correct {b['correct']:.0f}/{a['correct']:.0f}, "
                f"citation precision {b['citation_precision']:.2f}/{a['citation_precision']:.2f}",
                flush=True,
            )
            if args.also_tokens:
                c = rows[modes[-1]][-1]
                print(
                    f"    {modes[-1]} {c['seconds']:6.1f}s ({c['read_tokens']:.0f} tok read, "
                    f"first {c['first_token']:.1f}s); correct {c['correct']:.0f}, "
                    f"citation precision {c['citation_precision']:.2f}",
                    flush=True,
                )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load at end: {uptime}")
    results = {mode: summary(r) for mode, r in rows.items() if r}
    results.setdefault("before", results["after"])
    keys = list(results["before"])
    shown = list(dict.fromkeys(["before", *modes]))
    print(f"\n{'':<20}" + "".join(f"{m:>10}" for m in shown))
    for key in keys:
        print(f"{key:<20}" + "".join(f"{results[m][key]:10.3f}" for m in shown))
    speedup = results["before"]["seconds"] / results["after"]["seconds"]
    print(f"\nspeed-up (median seconds per answer): {speedup:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "rows": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
