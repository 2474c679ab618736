"""Speed and memory of the ``local`` LLM backend: load, first token, generation, peak RSS.

    python benchmarks/llm_speed.py                              # the 0.5B, 2 threads
    python benchmarks/llm_speed.py -m qwen2.5-coder-1.5b -m qwen2.5-coder-0.5b --join

Each model runs in a fresh process (so peak RSS is that model's alone, and nothing is
already in memory), with a prompt of about ``--prompt-tokens`` tokens in kenning's shape
(system message, numbered notes, question) and ``--new-tokens`` tokens generated greedily.
Figures: ``resolve`` finds/verifies the joined GGUF (a stamp check once it has been hashed;
``--join`` also times a cold join + SHA-256 into a temporary folder), ``load`` is the llama.cpp
model and context, ``first token`` is prompt reading plus the first decoded token, and
``gen tok/s`` counts the tokens after the first. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

NOTES = [
    "Tomato seedlings go outside once night temperatures stay above 10 °C. Water them at the "
    "base, never on the leaves, and stake them when they reach knee height.",
    "The ferry from Cais do Sodré to Cacilhas leaves every 20 minutes; the crossing takes "
    "about ten minutes. A Viva Viagem card works on it and on the metro.",
    "Sourdough: feed the starter twice a day at room temperature, mix flour and water, rest "
    "an hour, add salt, fold four times, then let the dough rise overnight in the fridge.",
    "The attention paper replaces recurrence with self-attention; queries and keys are "
    "compared with a dot product scaled by the square root of the key dimension.",
    "Backups run nightly at 02:00 with restic to the NAS; the repository password is in the "
    "password manager under 'restic-nas'. Prune keeps 7 daily and 4 weekly snapshots.",
    "Quarterly planning: the search project ships hybrid ranking first, then answers with "
    "citations; the evaluation set has 120 questions drawn from the team wiki.",
]
QUESTION = "Summarise every note in detail, one paragraph per note, citing each note."


def build_prompt(llm: Any, target: int) -> Any:
    """A kenning-shaped prompt of at least ``target`` tokens (notes repeat as needed)."""
    from kenning.answer.llms import Message, Passage, Prompt

    system = (
        "You answer questions using only the numbered notes the user gives, and cite the "
        "notes you use like [1]. If the notes do not say, answer that you don't know."
    )
    passages: list[Passage] = []
    while True:
        i = len(passages) + 1
        text = NOTES[(i - 1) % len(NOTES)]
        passages.append(Passage(i, i, f"notes/n{i}.md", f"n{i}", "", None, 0, len(text), text, 1))
        body = "\n\n".join(f"[{p.n}] ({p.label()})\n{p.text}" for p in passages)
        user = f"Notes:\n\n{body}\n\nQuestion: {QUESTION}"
        prompt = Prompt(QUESTION, passages, [Message("system", system), Message("user", user)])
        if len(llm.prompt_tokens(prompt)) >= target:
            return prompt


def measure(model: str, threads: int, prompt_tokens: int, new_tokens: int, join: bool) -> dict:
    """One model, in this (fresh) process."""
    import resource

    from kenning.answer import gguf as models
    from kenning.answer.local import LocalLLM

    out: dict[str, Any] = {"model": model, "threads": threads}
    out["rss_start_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if join and model in models.KNOWN_MODELS:
        import tempfile
        from pathlib import Path

        known = models.KNOWN_MODELS[model]
        with tempfile.TemporaryDirectory(dir=models.model_path(known).parent) as tmp:
            t = time.perf_counter()
            models.join_parts(models.part_files(known), Path(tmp) / "m.gguf", known.sha256)
            out["cold_join_s"] = time.perf_counter() - t
    t = time.perf_counter()
    models.resolve_model(model)
    out["resolve_s"] = time.perf_counter() - t
    llm = LocalLLM(model, n_threads=threads, context_window=2048, max_new_tokens=new_tokens)
    t = time.perf_counter()
    llm.count_tokens("x")  # loads
    out["load_s"] = time.perf_counter() - t
    prompt = build_prompt(llm, prompt_tokens)
    t0 = time.perf_counter()
    first = None
    pieces = []
    for piece in llm.stream(prompt):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    assert first is not None
    n = llm.usage.completion_tokens
    out.update(
        prompt_tokens=llm.usage.prompt_tokens,
        new_tokens=n,
        first_token_s=first - t0,
        prompt_tok_per_s=llm.usage.prompt_tokens / (first - t0),
        gen_tok_per_s=(n - 1) / (end - first) if n > 1 else 0.0,
        total_s=end - t0,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        answer_start="".join(pieces)[:80],
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-m", "--model", action="append", help="known name or GGUF path (repeat)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=300)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--join", action="store_true", help="also time a cold join + hash")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = measure(args.child, args.threads, args.prompt_tokens, args.new_tokens, args.join)
        print(json.dumps(res))
        return
    for model in args.model or ["qwen2.5-coder-0.5b"]:
        cmd = [sys.executable, __file__, "--child", model, "--threads", str(args.threads)]
        cmd += ["--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens)]
        cmd += ["--join"] if args.join else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"{model}: failed\n{proc.stderr}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        join = f"cold join+hash {r['cold_join_s']:.1f} s, " if "cold_join_s" in r else ""
        print(
            f"{r['model']} ({r['threads']} threads): {join}resolve {r['resolve_s']:.2f} s, "
            f"load {r['load_s']:.2f} s, prompt {r['prompt_tokens']} tokens -> first token "
            f"{r['first_token_s']:.2f} s ({r['prompt_tok_per_s']:.0f} tok/s), "
            f"{r['new_tokens']} new tokens at {r['gen_tok_per_s']:.1f} tok/s, "
            f"total {r['total_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
        print(f"    {r['answer_start']!r}")


if __name__ == "__main__":
    main()
