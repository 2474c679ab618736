"""``kenning eval``: retrieval and answer evaluation, a thin shell over ``kenning.eval``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from kenning.errors import ConfigError

from .answer import Answering, ModelOpt, WriterOpt, writer
from .shell import ProgressBars, err, open_history, open_index, out

eval_app = typer.Typer(
    help="Measure retrieval and answers: on BEIR benchmarks, QA sets, or your own notes.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help="NAME=SPEC, repeatable. SPEC: a mode (bm25, dense, hybrid), a fusion (rrf, "
        "weighted) and/or key=value pairs: mode, fusion, alpha, depth, embedder, chunk_size, "
        "overlap. Default: bm25, dense and hybrid.",
    ),
]
KOpt = Annotated[list[int] | None, typer.Option("--k", help="Cut-offs (default 10 and 100).")]
OutOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Folder for the report and run files.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
HISTORY_METRICS = ("ndcg@10", "recall@100", "mrr@10", "hit@1", "hit@10", "em", "f1", "rouge_l")


def _configs(specs: list[str] | None, **defaults: Any) -> list[Any]:
    """Parse --config specs; ``defaults`` (the user's index settings) fill keys left out."""
    from dataclasses import replace

    from kenning.eval.evaluate import DEFAULT_CONFIGS, RunConfig

    if specs:
        configs = [RunConfig.parse(s, defaults) for s in specs]
    else:
        configs = [replace(c, **defaults) for c in DEFAULT_CONFIGS]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--config names must differ: {names}")
    return configs


def _table(results: list[Any]) -> Table:
    """Metrics as rows and configs as columns, so many metrics still fit a terminal."""
    table = Table(
        title=f"{len(results[0].per_query)} queries; p: paired bootstrap vs "
        f"{results[0].config.name}"
    )
    table.add_column("metric")
    for r in results:
        table.add_column(r.config.name, justify="right")
    for m in results[0].mean:
        cells = []
        for r in results:
            p = r.p_values.get(m)
            cells.append(f"{r.mean[m]:.4f}" + ("" if p is None else f" [dim](p={p:.3f})[/]"))
        table.add_row(m, *cells)
    return table


def _finish(dataset: str, results: list[Any], output: Path | None, as_json: bool) -> None:
    from kenning.eval.report import results_json, write_report

    folder = output or Path("kenning-eval") / (
        f"{Path(dataset).name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    written = write_report(folder, dataset, results)
    with open_history(create=True) as h:
        for r in results:
            h.add_run(dataset, r.config.name, r.config.spec(), r.mean, len(r.per_query))
    if as_json:
        data = results_json(dataset, results)
        data["outputs"] = {k: str(v) for k, v in written.items()}
        out.print_json(json.dumps(data))
        return
    out.print(_table(results))
    if "plot" not in written:
        err.print(
            "note: the report has no plot because matplotlib is not installed; "
            "`pip install 'kenning[eval]'` adds it",
            markup=False,
        )
    err.print(f"report: {written['report']}  (runs, per-query scores and JSON in {folder})")


@eval_app.command("retrieval")
def retrieval(
    dataset: Annotated[
        Path | None, typer.Argument(help="A BEIR folder (corpus, queries, qrels/).")
    ] = None,
    config: ConfigOpt = None,
    split: Annotated[str, typer.Option(help="The qrels split to score.")] = "test",
    generated: Annotated[
        str | None,
        typer.Option(help="Score a question set made by `kenning eval generate` instead."),
    ] = None,
    k: KOpt = None,
    output: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score search configurations side by side: nDCG, Recall, MRR, MAP, Precision @k.

    Examples:

        kenning eval retrieval ../shared/data/scifact -c bm25=bm25 -c dense=dense -c hybrid=hybrid

        kenning eval retrieval --generated mine -c hybrid=hybrid -c rrf=rrf
    """
    from kenning.eval.evaluate import evaluate_beir, evaluate_questions

    ks = tuple(k or (10, 100))
    if generated:
        with open_history() as h:
            questions = h.questions(generated)
        if not questions:
            raise ConfigError(
                f"no question set {generated!r}; make one with `kenning eval generate`"
            )
        with open_index() as index:
            configs = _configs(
                config,
                embedder=index.embedder.id,
                chunk_size=index.chunking.size,
                overlap=index.chunking.overlap,
            )
            with ProgressBars(hidden=as_json) as progress:
                tick = progress.ticker("querying", len(questions) * len(configs))
                results = evaluate_questions(index, questions, configs, ks, tick)
        _finish(f"generated:{generated}", results, output, as_json)
        return
    if dataset is None:
        raise ConfigError("give a BEIR DATASET folder or --generated NAME")
    configs = _configs(config)
    with ProgressBars(hidden=as_json) as progress:
        results = evaluate_beir(dataset, split, configs, ks, progress, progress.ticker("querying"))
    _finish(str(dataset), results, output, as_json)


@eval_app.command("generate")
def generate(
    name: Annotated[str, typer.Option(help="Name of the question set.")] = "default",
    n: Annotated[int, typer.Option("-n", help="How many questions.")] = 100,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same set).")] = 0,
    llm: WriterOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a question set from your indexed notes; each question keeps its gold passage.

    Without --llm, questions come from headings, titles and key sentences, in the notes' own
    words. With --llm, the model reads each sampled passage and writes a question about it,
    told not to copy its phrases: on the til notes such questions no longer favour keyword
    search.

    Example:

        kenning eval generate --name mine -n 200 && kenning eval retrieval --generated mine

        kenning eval generate --name written --llm local -n 50
    """
    from kenning.eval.questions import generate as make

    author = writer(llm, model)
    with open_index() as index, ProgressBars(hidden=as_json or author is None) as progress:
        tick = progress.ticker("writing questions", n, "questions") if author else None
        questions = make(index, n, seed, author, tick)
    method = "structure" if author is None else f"llm:{author.id}:{model or 'default'}"
    with open_history() as h:
        h.save_questions(name, {"n": n, "seed": seed, "method": method}, questions)
    if as_json:
        out.print_json(json.dumps(questions))
        return
    for q in questions[:5]:
        out.print(f"[bold]{escape(q['question'])}[/]  [dim]{escape(q['path'])}[/]", highlight=False)
    written = sum(q["kind"] == "llm" for q in questions)
    by = f" ({written} written by {author.id}, the rest from structure)" if author else ""
    err.print(
        f"saved {len(questions)} questions as set {name!r}{by}; score them with "
        f"`kenning eval retrieval --generated {name}`"
    )


@eval_app.command("qa")
def qa(
    dataset: Annotated[Path, typer.Argument(help="SQuAD JSON, JSONL, or a PubMedQA folder.")],
    predictions: Annotated[
        Path | None, typer.Option(help="JSONL of {id|question, answer, citations?} to score.")
    ] = None,
    config: Annotated[str, typer.Option("--config", "-c", help="NAME=SPEC for retrieval.")] = (
        "hybrid=hybrid"
    ),
    split: Annotated[str, typer.Option(help="PubMedQA split: test (500) or all.")] = "test",
    answerer: Annotated[
        str | None,
        typer.Option(
            help="Answer every question with this LLM backend (extractive, local, openai, "
            "anthropic) and score the answers.",
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model for --answerer.")] = None,
    strategy: Annotated[str, typer.Option(help="zero-shot, few-shot or cot.")] = "zero-shot",
    limit: Annotated[
        int | None, typer.Option(help="Only the first N questions (local models are slow).")
    ] = None,
    output: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score retrieval for a question set (gold-passage hit rate, 'contains'), or answers.

    With --answerer, kenning answers each question from an index of the set's passages and
    reports EM, F1, ROUGE-L, BLEU, citation precision and recall, verified sentences, refusal
    rate, latency and (PubMedQA) yes/no/maybe accuracy.

    Examples:

        kenning eval qa ../shared/data/pubmedqa-labeled

        kenning eval qa squad-dev.json --predictions answers.jsonl

        kenning eval qa ../shared/data/pubmedqa-labeled --answerer local --limit 50
    """
    from kenning.eval.evaluate import RunConfig
    from kenning.eval.qa import load_qa, read_predictions, retrieval_eval, score_predictions

    qa_set = load_qa(dataset, split)
    if predictions:
        mean, rows = score_predictions(qa_set, read_predictions(predictions))
        kind = "answers"
    elif answerer:
        from kenning.eval.qa import answer_eval

        answering = Answering(answerer, model, strategy, None)
        llm = answering.llm
        with ProgressBars(hidden=as_json) as progress:
            tick = progress.ticker("answers", min(limit or 10**9, len(qa_set.items)), "answers")
            mean, rows = answer_eval(
                qa_set,
                dataset.resolve().name,
                RunConfig.parse(config),
                llm,
                strategy=answering.strategy,
                thresholds=answering.thresholds,
                limit=limit,
                tick=tick,
            )
        kind = f"answers:{llm.id}"
    else:
        with ProgressBars(hidden=as_json) as progress:
            tick = progress.ticker("questions", len(qa_set.items))
            mean, rows = retrieval_eval(
                qa_set, dataset.resolve().name, RunConfig.parse(config), tick=tick
            )
        kind = "retrieval"
    with open_history(create=True) as h:
        spec = {"config": config, "answerer": answerer, "strategy": strategy, "limit": limit}
        h.add_run(f"qa:{dataset.resolve().name}", kind, spec, mean, len(rows))
    folder = output or Path("kenning-eval") / (
        f"qa-{dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    stem = kind.replace(":", "-").replace("/", "-")
    (folder / f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / f"{stem}.json").write_text(json.dumps(mean, indent=2))
    if as_json:
        out.print_json(json.dumps({"kind": kind, "questions": len(rows), "metrics": mean}))
        return
    table = Table(title=f"{dataset.name}: {len(rows)} questions ({kind})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in mean.items():
        table.add_row(key, f"{value:.4f}")
    out.print(table)
    err.print(f"per-question results: {folder / (stem + '.jsonl')}")


@eval_app.command("refusals")
def refusals(
    n: Annotated[int, typer.Option("-n", help="How many question pairs.")] = 100,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same set).")] = 0,
    answerer: Annotated[
        str | None, typer.Option(help="LLM backend to ask (default: the configured one).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model for --answerer.")] = None,
    output: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Near misses: does the answerer decline questions your notes almost answer?

    From your indexed notes, kenning builds questions that name a year, number or name the
    notes hold, and a twin of each with that one value changed to one the notes do not cover
    (another year, version or name). It asks both and reports the share declined of each.

    Example:

        kenning eval refusals -n 100
    """
    from kenning.eval.refusals import generate as make
    from kenning.eval.refusals import run

    answering = Answering(answerer, model, None, None)
    with open_index() as index, ProgressBars(hidden=as_json) as progress:
        pairs = make(index, n, seed)
        tick = progress.ticker("asking", len(pairs), "pairs")
        mean, rows = run(index, pairs, answering.llm, k=answering.k, tick=tick)
    folder = output or Path("kenning-eval") / f"refusals-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "refusals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if as_json:
        out.print_json(json.dumps({"answerer": answering.llm.id, "metrics": mean}))
        return
    table = Table(title=f"near misses: {len(rows)} pairs ({answering.llm.id})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in mean.items():
        table.add_row(key, f"{value:.0f}" if key.endswith("pairs") else f"{value:.3f}")
    out.print(table)
    err.print(f"per-question results: {folder / 'refusals.jsonl'}")


@eval_app.command("history")
def history(as_json: JsonOpt = False) -> None:
    """Show every stored evaluation run, oldest first, to spot regressions.

    Example:

        kenning eval history
    """
    with open_history() as h:
        runs = h.runs()
    if as_json:
        out.print_json(json.dumps(runs))
        return
    if not runs:
        err.print("no evaluation runs yet: try `kenning eval retrieval`")
        return
    table = Table(title="evaluation history")
    for col in ("when", "dataset", "config", "queries", "metrics"):
        table.add_column(col, justify="right" if col == "queries" else "left")
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        shown = [m for m in HISTORY_METRICS if m in r["metrics"]][:4]
        metrics = "  ".join(f"{m} {r['metrics'][m]:.4f}" for m in shown)
        table.add_row(when, r["dataset"], r["config_name"], str(r["queries"]), metrics)
    out.print(table)
