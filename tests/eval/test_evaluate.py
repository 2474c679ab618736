from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from conftest import TitleAsker
from typer.testing import CliRunner

from kenning import ConfigError, Index
from kenning.answer.llms import get_llm, llms
from kenning.cli import app
from kenning.embedders import HashEmbedder
from kenning.eval.evaluate import RunConfig, evaluate_beir, evaluate_questions, paired_bootstrap
from kenning.eval.questions import clean_question, generate

DOCS = {
    "d1": ("Sourdough", "Sourdough bread rises slowly with a wild yeast starter."),
    "d2": ("Attention", "Self-attention compares queries and keys with a scaled dot product."),
    "d3": ("Softmax", "The softmax function turns scores into a probability distribution."),
    "d4": ("Tomatoes", "Tomatoes need full sun, regular watering and support stakes."),
    "d5": ("Git rebase", "Interactive rebase rewrites commits: squash, reword or drop them."),
    "d6": ("Vacuum", "PostgreSQL vacuum reclaims storage held by dead tuples."),
}
QUERIES = {
    "q1": ("how does wild yeast bread rise", {"d1": 1}),
    "q2": ("scaled dot product attention keys", {"d2": 2, "d3": 1}),
    "q3": ("squash commits with rebase", {"d5": 1}),
    "q4": ("reclaim storage dead tuples postgres", {"d6": 1}),
    "q5": ("watering tomatoes in the sun", {"d4": 1}),
}


@pytest.fixture
def beir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items())
    )
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{r}" for q, (_, rels) in QUERIES.items() for d, r in rels.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_config_parsing() -> None:
    assert RunConfig.parse("b=bm25").mode == "bm25"
    rrf = RunConfig.parse("r=rrf,depth=50")
    assert (rrf.mode, rrf.fusion, rrf.depth) == ("hybrid", "rrf", 50)
    small = RunConfig.parse("small=hybrid, alpha=0.6, chunk-size=64, overlap=8, embedder=hash")
    assert (small.alpha, small.chunk_size, small.overlap, small.embedder) == (0.6, 64, 8, "hash")
    # Defaults (the user's index settings) fill only what the spec leaves out, any spelling.
    mine = {"embedder": "hash", "chunk_size": 200, "overlap": 32}
    kept = RunConfig.parse("s=hybrid,chunk-size=100", mine)
    assert (kept.embedder, kept.chunk_size, kept.overlap) == ("hash", 100, 32)
    for bad, message in [
        ("noequals", "NAME=SPEC"),
        ("x=colour=red", "unknown key 'colour'"),
        ("x=alpha=high", "alpha must be float"),
        ("x=fancy", "not a mode"),
        ("x=chunk_size=8", "at least 16"),
    ]:
        with pytest.raises(ConfigError, match=message):
            RunConfig.parse(bad)


def test_paired_bootstrap_matches_a_paired_t_test() -> None:
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.2, 300)
    for shift in (0.0, 0.01, 0.03):
        b = a + shift + rng.normal(0, 0.15, 300)
        assert paired_bootstrap(a, b) == pytest.approx(ttest_rel(a, b).pvalue, abs=0.03)
    assert paired_bootstrap(a, a) == 1.0
    assert paired_bootstrap(a, a + 0.2 + rng.normal(0, 0.01, 300)) < 0.001


@pytest.mark.slow
def test_beir_evaluation_agrees_with_pytrec_eval_and_writes_a_report(
    beir: Path, tmp_path: Path
) -> None:
    configs = [
        RunConfig.parse(s)
        for s in ("bm25=bm25,embedder=hash", "dense=dense,embedder=hash", "hybrid=embedder=hash")
    ]
    results = evaluate_beir(beir, "test", configs, ks=(3, 10))
    assert [r.config.name for r in results] == ["bm25", "dense", "hybrid"]
    qrels = {q: rels for q, (_, rels) in QUERIES.items()}
    for r in results:
        ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_3", "recall_10"}).evaluate(r.run)
        for q in qrels:
            assert r.per_query[q]["ndcg@3"] == pytest.approx(ref[q]["ndcg_cut_3"], abs=1e-6)
            assert r.per_query[q]["recall@10"] == pytest.approx(ref[q]["recall_10"], abs=1e-6)
    assert results[0].mean["ndcg@10"] > 0.9  # the keyword queries are easy
    assert set(results[1].p_values) == set(results[0].mean)

    from kenning.eval.report import write_report

    out = write_report(tmp_path / "out", "tiny", results)
    assert out["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = out["report"].read_text()
    assert "data:image/png;base64," in html and "hybrid" in html and "p=" in html
    lines = (tmp_path / "out" / "bm25.run").read_text().splitlines()
    qid, q0, doc, rank, score, name = lines[0].split()
    assert (q0, rank, name) == ("Q0", "1", "bm25") and doc in DOCS
    saved = json.loads(out["results"].read_text())
    assert saved["configs"][2]["metrics"] == results[2].mean


def test_configs_with_other_chunking_get_their_own_index(beir: Path, tmp_path: Path) -> None:
    configs = [
        RunConfig.parse("base=hybrid,embedder=hash"),
        RunConfig.parse("small=hybrid,embedder=hash,chunk_size=16,overlap=0"),
    ]
    results = evaluate_beir(beir, "test", configs, ks=(10,))
    assert len(results) == 2 and all(r.mean["recall@10"] > 0.5 for r in results)
    dbs = sorted(p.name for p in (tmp_path / "cache" / "eval").glob("*/*.db"))
    assert dbs == ["hash-16-0.db", "hash-200-32.db"]


def test_generated_questions_score_on_own_notes(notes: Path, tmp_path: Path) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        index.add([notes])
        questions = generate(index, n=20, seed=3)
        assert questions and {q["kind"] for q in questions} <= {"heading", "sentence"}
        assert questions == generate(index, n=20, seed=3)  # seeded: reproducible
        for q in questions:
            assert Path(q["path"]).read_text()[q["start"] : q["end"]] == q["text"]
        configs = [
            RunConfig("bm25", mode="bm25", embedder="hash"),
            RunConfig("hybrid", embedder="hash"),
        ]
        results = evaluate_questions(index, questions, configs, ks=(1, 10))
        assert results[1].mean["recall@10"] > 0.5
        with pytest.raises(ConfigError, match="only mode, fusion"):
            evaluate_questions(index, questions, [RunConfig("x", chunk_size=64)], ks=(10,))


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        ("What causes myelodysplasia?", "What causes myelodysplasia?"),
        ("Question: How does A20 affect stem cells? Because it", "How does A20 affect stem cells?"),
        ("1. Why do T cells die?\nAlso this.", "Why do T cells die?"),
        ('**Question:** "Can BC1 RNA be self-primed?"', "Can BC1 RNA be self-primed?"),
        ("What is the aim of this study?", None),  # points at the passage, not its subject
        ("What does the passage say about rebase?", None),
        ("Yes.", None),
        ("", None),
        ("? ? ? ?", None),
    ],
)
def test_a_written_question_is_cut_from_the_reply_or_refused(reply: str, question: str) -> None:
    assert clean_question(reply) == question


def test_a_writer_writes_the_questions_and_structure_fills_its_gaps(
    notes: Path, tmp_path: Path
) -> None:
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        index.add([notes])
        writer = TitleAsker()
        questions = generate(index, n=10, seed=1, writer=writer)
        kinds = [q["kind"] for q in questions]
        # as many as without a writer: a passage whose reply is unusable gets a structural one
        assert len(questions) == len(generate(index, n=10, seed=1)) >= 3
        assert kinds.count("llm") == len(writer.prompts) - len(writer.prompts) // 3 >= 2
        assert set(kinds) - {"llm"}
        assert writer.closed == len(writer.prompts)  # every stream closed, none left open
        usable = [p for i, p in enumerate(writer.prompts, 1) if i % 3]
        for q, prompt in zip((q for q in questions if q["kind"] == "llm"), usable, strict=True):
            assert q["question"].startswith("Why would I ") and q["question"].endswith("?")
            gold = Path(q["path"]).read_text()[q["start"] : q["end"]]
            assert " ".join(gold.split()[:20]) in prompt.messages[-1].content
        with pytest.raises(ConfigError, match="cannot write questions"):
            generate(index, n=2, writer=get_llm("extractive"))


def test_cli_eval_generate_asks_the_named_llm_to_write(
    notes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(llms._classes, "title-asker", TitleAsker)  # a plugin, registered
    db = str(tmp_path / "i.db")
    with Index.open(db, embedder=HashEmbedder()) as index:
        index.add([notes])
    runner = CliRunner()
    args = ["--index", db, "eval", "generate", "--name", "w", "-n", "3"]
    result = runner.invoke(app, [*args, "--llm", "title-asker", "--json"])
    assert result.exit_code == 0, result.output
    kinds = [q["kind"] for q in json.loads(result.output)]
    assert kinds[:2] == ["llm", "llm"] and kinds[2] != "llm"
    result = runner.invoke(app, [*args, "--llm", "title-asker"])
    assert "2 written by title-asker, the rest from structure" in " ".join(result.output.split())
    result = runner.invoke(app, [*args, "--model", "x"])
    assert result.exit_code != 0 and "--llm" in result.output
    result = runner.invoke(app, [*args, "--llm", "extractive"])
    assert result.exit_code != 0 and "cannot write questions" in result.output


@pytest.mark.slow
def test_cli_eval_generate_retrieval_and_history(notes: Path, tmp_path: Path, beir: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "i.db")

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--index", db, "-q", *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("--embedder", "hash", "add", str(notes))
    run("eval", "generate", "--name", "mine", "-n", "10")
    first = json.loads(
        run(
            "eval",
            "retrieval",
            "--generated",
            "mine",
            "-c",
            "hybrid=hybrid",
            "-o",
            str(tmp_path / "r1"),
            "--json",
        )
    )
    assert first["configs"][0]["metrics"]["ndcg@10"] > 0
    run(
        "eval",
        "retrieval",
        "--generated",
        "mine",
        "-c",
        "bm25=bm25",
        "-c",
        "rrf=rrf",
        "-o",
        str(tmp_path / "r2"),
    )
    beir_out = json.loads(
        run(
            "eval",
            "retrieval",
            str(beir),
            "-c",
            "h=hybrid,embedder=hash",
            "--k",
            "5",
            "-o",
            str(tmp_path / "r3"),
            "--json",
        )
    )
    assert "ndcg@5" in beir_out["configs"][0]["metrics"]
    history = json.loads(run("eval", "history", "--json"))
    assert [h["config_name"] for h in history] == ["hybrid", "bm25", "rrf", "h"]
    assert history[0]["dataset"] == "generated:mine"
    assert "generated:mine" in run("eval", "history")


@pytest.mark.slow
def test_without_matplotlib_the_report_has_no_plot_and_json_is_printed(
    beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain install without the ``eval`` extra still gets every result and the report."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed

    def retrieval(out: str, *extra: str):
        args = ["-i", str(tmp_path / "i.db"), "eval", "retrieval", str(beir)]
        return CliRunner().invoke(
            app, [*args, "-c", "h=bm25,embedder=hash", "-o", str(tmp_path / out), *extra]
        )

    result = retrieval("out", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["configs"][0]["metrics"]["ndcg@10"] > 0.9 and "plot" not in data["outputs"]
    assert "kenning[eval]" in (tmp_path / "out" / "report.html").read_text()
    assert not (tmp_path / "out" / "metrics.png").exists()
    table = retrieval("out2")
    assert table.exit_code == 0 and "pip install 'kenning[eval]'" in " ".join(table.output.split())


def test_a_missing_scoring_package_is_named_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from kenning import MissingExtra
    from kenning.eval.qa import load_qa, score_predictions

    (tmp_path / "q.jsonl").write_text('{"id": "a", "question": "q?", "answers": ["yes"]}\n')
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "sacrebleu" else 1)
    with pytest.raises(MissingExtra, match=r"kenning\[eval\]"):
        score_predictions(load_qa(tmp_path / "q.jsonl"), [{"id": "a", "answer": "yes"}])


def test_runs_keep_the_engine_order_when_fused_scores_tie(notes: Path, tmp_path: Path) -> None:
    """RRF ties are common; the run must rank as the engine ranked, not by doc id."""
    from kenning.eval.evaluate import run_queries
    from kenning.eval.metrics import ranked

    config = RunConfig("rrf", fusion="rrf", embedder="hash")
    queries = {
        f"q{i}": q
        for i, q in enumerate(
            [
                "bread",
                "attention keys",
                "softmax scores",
                "tomatoes basil",
                "local search notes",
                "dot product",
                "dough overnight",
                "probabilities",
                "the",  # every note matches: RRF ranks tie across the two rankings
            ]
        )
    }
    with Index.open(tmp_path / "i.db", embedder=HashEmbedder()) as index:
        index.add([notes])
        run = run_queries(index, queries, config, lambda _q, h: Path(h.path).name, k=20)
        ties = 0
        for qid, text in queries.items():
            hits = index.search(text, k=20, **config.search_args())
            scores = [h.score for h in hits]
            ties += len(scores) != len(set(scores))
            engine = list(dict.fromkeys(Path(h.path).name for h in hits))
            assert ranked(run[qid]) == engine
    assert ties, "no query had tied fused scores, so this test would prove nothing"
