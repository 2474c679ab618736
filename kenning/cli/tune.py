"""``kenning tune``: a thin shell over ``kenning.tuning.tune``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kenning.tuning.finetune import EPOCHS, LORA_RANK

from .answer import ModelOpt, WriterOpt, writer
from .shell import app, err, open_index, out, state


@app.command("tune")
def tune_command(
    undo: Annotated[
        bool,
        typer.Option(
            "--undo",
            help="Forget the tuning: back to the packaged search (a fine-tuned model is "
            "replaced by the packaged one, which re-embeds the index).",
        ),
    ] = False,
    n: Annotated[int, typer.Option("-n", help="Question/passage pairs to generate.")] = 300,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same pairs).")] = 0,
    questions: Annotated[
        Path | None,
        typer.Option(
            "--questions",
            help='Real questions as JSON lines, {"question": ..., "paths": [notes that '
            "answer it]}: trained on and held out with the generated pairs; only with them "
            "is the fusion weight fitted.",
        ),
    ] = None,
    finetune: Annotated[
        bool,
        typer.Option(
            "--finetune",
            help="Also fine-tune the packaged MiniLM on the pairs (torch, minutes on a CPU). "
            "Measuring it embeds the whole index with the new model; if it wins, those "
            "vectors replace the index's.",
        ),
    ] = False,
    epochs: Annotated[
        float,
        typer.Option(
            help="Passes over the training pairs when fine-tuning (--finetune). One suits a "
            "few hundred generated pairs; more overfits them, but can help with many real "
            "questions.",
            min=0.1,
        ),
    ] = EPOCHS,
    lora: Annotated[
        bool,
        typer.Option(
            "--lora",
            help=f"Fine-tune (implies --finetune) with LoRA: rank-{LORA_RANK} updates of the "
            "attention weights instead of every weight, which keeps the model closer to what "
            "it knew; merged into the saved model, so search costs the same.",
        ),
    ] = False,
    llm: WriterOpt = None,
    model: ModelOpt = None,
    rerankers: Annotated[
        str | None,
        typer.Option(
            "--rerankers",
            help="Reranker backends to train, comma-separated: 'features' (word matches, "
            "milliseconds) and 'late' (MiniLM token vectors, about a second a query and a "
            "second per training pair on 2 cores), the default pair; and 'cross', a "
            "cross-encoder trained from MiniLM on your questions (about a second a query, "
            "and 3 s a training pair on 2 cores; it gains most with --questions).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Adapt search to your own notes, and keep the result only if it measures better.

    Pairs of (question, passage) are generated from your notes (headings, titles, key sentences;
    or written by an LLM with --llm) and split by note into training and held-out pairs. On the
    training pairs, tune fits the fusion weight, a query adapter (query vectors only: nothing is
    re-embedded), a reranker (used with `kenning search --rerank`; it re-orders the top 10, 20
    or 30, whichever measures best) and, with --finetune or --lora, a fine-tuned copy of the
    embedding model (which re-embeds the index), then shows each
    setting's nDCG@10 on the held-out pairs. The best is kept only when it beats the current
    setting by a significant margin; otherwise the current one stays, and tune says so.
    Generated questions share words with their notes, so the fusion weight (keywords against
    meaning) is fitted only when you add real questions with --questions. Runs offline on the
    CPU (fine-tuning takes a GPU when torch finds one).

    Examples:

        kenning tune

        kenning tune -n 500 --json

        kenning tune --rerankers features     # skip the slow late reranker

        kenning tune --questions my-questions.jsonl

        kenning tune --questions my-questions.jsonl --rerankers late,cross

        kenning tune --finetune --questions my-questions.jsonl

        kenning tune --lora                   # fine-tune low-rank updates only

        kenning tune --llm local -n 100       # a local LLM writes the questions

        kenning tune --undo
    """
    from kenning.search.rerankers import rerankers as reranker_registry
    from kenning.tuning.tune import read_questions, tune
    from kenning.tuning.tune import undo as forget

    with open_index() as index:
        if undo:
            done = forget(index)
            if as_json:
                out.print_json(json.dumps(done))
            elif not state.quiet:
                err.print(
                    "tuning removed: search is back to the packaged behaviour"
                    if done["undone"]
                    else "this index has no tuning; nothing to undo"
                )
                if done["reembed_seconds"] is not None:
                    err.print(f"re-embedded with the packaged model in {done['reembed_seconds']}s")
            return
        log = None if (as_json or state.quiet) else (lambda m: err.print(f"[dim]{escape(m)}[/]"))
        extra = read_questions(questions, index) if questions else None
        backends = [b.strip() for b in (rerankers or "").split(",") if b.strip()]
        for b in backends:
            reranker_registry.get(b)  # an unknown id fails now, listing the valid ones
        report = tune(
            index,
            n=n,
            seed=seed,
            log=log,
            extra=extra,
            finetune_model=finetune or lora,
            reranker_backends=backends or None,
            epochs=epochs,
            writer=writer(llm, model),
            lora=LORA_RANK if lora else 0,
        )
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    if report.ignored:
        err.print(
            f"[yellow]the stored tuning was learnt with embedder {escape(report.ignored)}[/] "
            "and is not applied to this index's vectors; it is replaced now",
            highlight=False,
        )
    table = Table(
        title=f"{report.pairs} pairs from your notes ({sources(report.kinds)}): "
        f"{report.train} for training, {report.held_out} held out; p: paired bootstrap vs "
        "the first row"
    )
    for col in ("setting", "alpha", "adapter", "train nDCG@10", "held-out nDCG@10", "recall@10"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for row in report.settings:
        p = "" if row["p_value"] is None else f" [dim](p={row['p_value']:.3f})[/]"
        mark = " [bold green]← kept[/]" if row["setting"] == report.kept else ""
        table.add_row(
            escape(row["setting"]) + mark,
            f"{row['alpha']:.2f}",
            "yes" if row["adapter"] else "–",
            f"{row['train_ndcg@10']:.4f}",
            f"{row['ndcg@10']:.4f}{p}",
            f"{row['recall@10']:.4f}",
        )
    out.print(table)
    r = report.reranker
    if r:
        verdict = "kept: use it with `kenning search --rerank`" if r["kept"] else "not kept"
        out.print(
            f"reranker ({r['backend']}, top {r['depth']}): held-out nDCG@10 {r['ndcg@10']:.4f} "
            f"-> {r['reranked_ndcg@10']:.4f}, {r['ms_per_query']:.1f} ms a query; {verdict}",
            highlight=False,
        )
        depths = ", ".join(f"top {d} {v:.4f}" for d, v in r["by_depth"].items())
        out.print(f"  the depth it re-orders, chosen on the held-out pairs: {depths}")
        for name, t in r.get("tried", {}).items():
            if name != r["backend"]:
                out.print(
                    f"  also trained: {name} (top {t['depth']}), held-out nDCG@10 "
                    f"{t['reranked_ndcg@10']:.4f}, {t['ms_per_query']:.1f} ms a query",
                    highlight=False,
                )
    f = report.finetuned
    if f:
        out.print(
            f"fine-tuned model {f['model']}: {f['steps']} steps on {f['pairs']} pairs in "
            f"{f['train_seconds']}s; embedding {f['chunks']} chunks with it took "
            f"{f['reembed_seconds']}s",
            highlight=False,
        )
    out.print(escape(report.message), highlight=False)
    err.print(f"[dim]{report.seconds:.1f}s[/]")


def sources(kinds: dict[str, int]) -> str:
    """'212 written by the LLM, 60 from headings, 28 from sentences' (largest first)."""
    said = {"llm": "written by the LLM", "heading": "from headings", "sentence": "from sentences"}
    parts = sorted(kinds.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{n} {said.get(kind, kind + ' questions')}" for kind, n in parts)
