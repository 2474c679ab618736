from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared

from kenning import ConfigError
from kenning.eval.evaluate import RunConfig
from kenning.eval.qa import (
    citation_scores,
    corpus_bleu,
    exact_match,
    f1_score,
    load_qa,
    normalize_answer,
    retrieval_eval,
    rouge_l,
    score_predictions,
)


@pytest.mark.parametrize(
    ("prediction", "truths", "em", "f1"),
    [
        ("The Eiffel Tower!", ["eiffel tower"], 1.0, 1.0),  # articles and punctuation go
        ("in Paris, France", ["Paris"], 0.0, 0.5),  # P=1/3, R=1
        ("Paris", ["Lyon", "paris"], 1.0, 1.0),  # the best of several answers
        ("", ["Paris"], 0.0, 0.0),
        ("a an the", ["the"], 1.0, 0.0),  # both normalise to empty: EM 1, F1 0 (as SQuAD)
        ("Denver Broncos won", ["Denver Broncos"], 0.0, 0.8),  # P=2/3, R=1
    ],
)
def test_squad_em_and_f1(prediction: str, truths: list[str], em: float, f1: float) -> None:
    assert exact_match(prediction, truths) == em
    assert f1_score(prediction, truths) == pytest.approx(f1)


def test_normalisation_is_squads() -> None:
    assert normalize_answer("  The  Cat's   HAT. ") == "cats hat"


def test_rouge_bleu_and_citations() -> None:
    assert rouge_l("the cat sat on the mat", ["the cat was on the mat"]) == pytest.approx(5 / 6)
    assert corpus_bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]) == pytest.approx(
        100
    )
    assert corpus_bleu(["zebra quantum"], [["the cat sat on the mat"]]) == 0.0
    two = corpus_bleu(["a b c d e", "f g h i j"], [["a b c d e"], ["x", "f g h i j"]])
    assert two == pytest.approx(100)  # a variable number of references is fine
    assert citation_scores(["p1", "p2"], {"p1"}) == (0.5, 1.0)
    assert citation_scores([], {"p1"}) == (0.0, 0.0)


def test_readers(tmp_path: Path) -> None:
    squad = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is in France.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "Where is Paris?",
                                "answers": [{"text": "France", "answer_start": 12}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (tmp_path / "s.json").write_text(json.dumps(squad))
    s = load_qa(tmp_path / "s.json")
    assert s.items[0].answers == ["France"] and s.items[0].gold in s.passages
    (tmp_path / "q.jsonl").write_text(
        '{"question": "q?", "answers": "a", "context": "ctx"}\n{"question": "r?", "answers": []}\n'
    )
    j = load_qa(tmp_path / "q.jsonl")
    assert [i.answers for i in j.items] == [["a"], []] and j.items[1].gold is None
    (tmp_path / "bad.jsonl").write_text('{"question": "ok"}\nnot json\n')
    with pytest.raises(ConfigError, match="bad.jsonl:2"):
        load_qa(tmp_path / "bad.jsonl")


def test_pubmedqa_reader() -> None:
    folder = shared("pubmedqa-labeled")
    data = load_qa(folder)
    assert len(data.items) == 500 and len(data.passages) == 1000
    assert all(i.gold in data.passages for i in data.items)


def test_score_predictions_file(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text(
        '{"id": "a", "question": "capital of France?", '
        '"answers": ["the city of Paris in France"], "context": "c1"}\n'
        '{"id": "b", "question": "largest planet?", "answers": ["Jupiter"], "context": "c2"}\n'
    )
    qa = load_qa(tmp_path / "q.jsonl")
    gold_b = qa.items[1].gold
    mean, rows = score_predictions(
        qa,
        [
            {"id": "a", "answer": "The city of Paris in France."},
            {"question": "largest planet?", "answer": "it is Jupiter", "citations": [gold_b, "x"]},
        ],
    )
    assert mean["em"] == 0.5 and mean["f1"] == pytest.approx((1 + 0.5) / 2)
    assert mean["citation_precision"] == 0.5 and mean["citation_recall"] == 1.0
    assert 0 < mean["bleu"] <= 100 and rows[1]["rouge_l"] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="no question with id"):
        score_predictions(qa, [{"id": "zzz", "answer": "x"}])


def test_gold_passage_hit_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "cache"))
    rows = [
        ("Which starter makes sourdough rise?", "wild yeast", "Sourdough rises with wild yeast."),
        ("What reclaims dead tuples?", "vacuum", "In PostgreSQL, vacuum reclaims dead tuples."),
        ("How are commits squashed?", "interactive rebase", "Squash commits: interactive rebase."),
    ]
    (tmp_path / "q.jsonl").write_text(
        "".join(
            json.dumps({"question": q, "answers": [a], "context": c}) + "\n" for q, a, c in rows
        )
    )
    mean, per_q = retrieval_eval(
        load_qa(tmp_path / "q.jsonl"), "tiny", RunConfig.parse("h=hybrid,embedder=hash")
    )
    assert mean["hit@10"] == 1.0 and mean["contains@10"] == 1.0
    assert 0 < mean["hit@1"] <= 1.0 and len(per_q) == 3


def test_cli_eval_qa_with_predictions_is_recorded(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kenning.cli import app

    (tmp_path / "q.jsonl").write_text('{"id": "a", "question": "q?", "answers": ["yes it is"]}\n')
    (tmp_path / "p.jsonl").write_text('{"id": "a", "answer": "Yes, it is."}\n')
    runner = CliRunner()
    base = ["--index", str(tmp_path / "i.db"), "-q", "eval"]
    result = runner.invoke(
        app,
        [
            *base,
            "qa",
            str(tmp_path / "q.jsonl"),
            "--predictions",
            str(tmp_path / "p.jsonl"),
            "-o",
            str(tmp_path / "o"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["metrics"]["em"] == 1.0
    assert (tmp_path / "o" / "answers.jsonl").exists()
    history = json.loads(runner.invoke(app, [*base, "history", "--json"]).output)
    assert history[0]["dataset"] == "qa:q.jsonl" and history[0]["metrics"]["f1"] == 1.0
