"""Answers: the extractive answerer, checked citations, refusal, prompts, chat, settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kenning import ConfigError, Index
from kenning.answer import LLM, Passage, Prompt, Thresholds, ask, get_llm
from kenning.answer.ask import REREAD
from kenning.answer.citations import CONTRADICTED, SUPPORTED, UNSUPPORTED, check
from kenning.answer.memory import standalone_query
from kenning.answer.prompt import REFUSAL, build_prompt, split_reasoning
from kenning.answer.sentences import SentenceVectors
from kenning.cli import app
from kenning.embedders import HashEmbedder

BREAD = (
    "# Sourdough bread\n\nFeed the starter the night before. The dough rises for 12 hours at "
    "room temperature. Bake it at 250 degrees in a Dutch oven."
)
TOMATO = "# Tomatoes\n\nWater tomatoes at the base every morning. Stake them in June."


def passage(n: int, text: str, path: str = "notes/x.md") -> Passage:
    return Passage(n, n, path, "T", "H", None, 0, len(text), text, 1.0)


@pytest.fixture
def vectors() -> SentenceVectors:
    return SentenceVectors(HashEmbedder(dim=256))


def test_a_quoted_sentence_is_supported(vectors: SentenceVectors) -> None:
    [s] = check(
        "The dough rises for 12 hours at room temperature [1].", [passage(1, BREAD)], vectors
    )
    assert s.status == SUPPORTED and s.citations == [1] and s.support > 0.9
    start, end = s.checks[0].best_sentence
    assert BREAD[start:end] == "The dough rises for 12 hours at room temperature."


def test_a_planted_unsupported_sentence_is_flagged(vectors: SentenceVectors) -> None:
    answer = "Feed the starter the night before [1]. Sourdough was invented on the moon [1]."
    first, planted = check(answer, [passage(1, BREAD)], vectors)
    assert first.status == SUPPORTED
    assert planted.status == UNSUPPORTED


def test_a_different_number_is_flagged(vectors: SentenceVectors) -> None:
    [s] = check(
        "The dough rises for 8 hours at room temperature [1].", [passage(1, BREAD)], vectors
    )
    assert s.status == CONTRADICTED and s.missing == ["8"]
    [name] = check("Bake it at 250 degrees in a French oven [1].", [passage(1, BREAD)], vectors)
    assert name.status == CONTRADICTED and name.missing == ["french"]


def test_a_citation_to_a_missing_passage_is_removed(vectors: SentenceVectors) -> None:
    [s] = check("Water tomatoes at the base every morning [1][7].", [passage(1, TOMATO)], vectors)
    assert s.citations == [1] and s.removed == [7] and s.status == SUPPORTED
    [alone] = check("Stake them in June [3].", [passage(1, TOMATO)], vectors)
    assert alone.removed == [3] and alone.citations == [1] and alone.attributed  # checked
    [made_up] = check("Prune roses in March [3].", [passage(1, TOMATO)], vectors)
    assert made_up.citations == [] and made_up.removed == [3] and made_up.status == UNSUPPORTED


def test_a_sentence_without_citation_is_unsupported(vectors: SentenceVectors) -> None:
    [s] = check("Cats sleep sixteen hours a day.", [passage(1, TOMATO)], vectors)
    assert s.status == UNSUPPORTED and s.citations == [] and not s.attributed


def test_markers_after_the_full_stop_stay_with_their_sentence(vectors: SentenceVectors) -> None:
    answer = "Feed the starter the night before. [1] Water tomatoes every morning. [2]"
    a, b = check(answer, [passage(1, BREAD), passage(2, TOMATO)], vectors)
    assert (a.citations, b.citations) == ([1], [2])


class Counting(LLM):
    """A model stand-in that only counts calls: the refusal must not reach it."""

    id = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.calls += 1
        yield "The dough rises for 12 hours [1]."


def test_no_support_means_a_refusal_without_a_model_call(index: Index, notes: Path) -> None:
    index.add([notes])
    llm = Counting()
    answer = ask(
        index, "When did the Eiffel Tower open to visitors?", llm, thresholds=Thresholds(refuse=0.5)
    )
    assert answer.refused and answer.text == REFUSAL and llm.calls == 0
    assert answer.sources  # the nearest passages are still shown
    answer = ask(
        index, "how long does sourdough dough rise", llm, thresholds=Thresholds(refuse=0.0)
    )
    assert not answer.refused and llm.calls == 1


class Skimmer(LLM):
    """Reads excerpts, as ``LocalLLM`` does, and declines unless shown a passage whole."""

    id = "skimmer"
    excerpt_sentences = 1

    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer, self.prompts = answer, []

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.prompts.append(prompt)
        if prompt.excerpted:
            yield from ["Your", " notes", " don't", " answer", " this."]
        else:
            yield from (self.answer[:4], self.answer[4:])


def test_a_refusal_over_excerpts_is_tried_again_on_the_whole_passages(
    index: Index, notes: Path
) -> None:
    index.add([notes])
    shown: list[str] = []
    llm = Skimmer("The dough rises for 12 hours [1].")
    q = "how long does sourdough dough rise"
    answer = ask(index, q, llm, thresholds=Thresholds(refuse=0.0), on_text=shown.append)
    assert [p.excerpted for p in llm.prompts] == [True, False]
    assert not answer.refused and "".join(shown) == answer.text  # the refusal never showed
    assert "Your" not in "".join(shown) and answer.timings["first_token"] > 0
    assert REREAD in answer.notes
    # a refusal over the whole passages stands, and is shown once
    shown.clear()
    declines = Skimmer("Your notes don't answer this.")
    answer = ask(index, q, declines, thresholds=Thresholds(refuse=0.0), on_text=shown.append)
    assert answer.refused and "".join(shown).strip() == REFUSAL
    assert [p.excerpted for p in declines.prompts] == [True, False]


def test_extractive_answers_quote_and_cite(index: Index, notes: Path) -> None:
    index.add([notes])
    answer = ask(index, "what does the softmax function do?", thresholds=Thresholds(refuse=0.0))
    assert not answer.refused and answer.llm == "extractive"
    assert "softmax function turns scores into probabilities" in answer.text
    cited = {n for s in answer.sentences for n in s.citations}
    src = {s.n: s for s in answer.sources}
    assert cited and all(src[n].path.endswith(".md") for n in cited)
    assert all(s.status == SUPPORTED for s in answer.sentences)
    first = answer.sources[0]
    body = Path(first.path).read_text()
    assert body[first.start : first.end] == first.text and first.lines is not None
    assert answer == ask(
        index, "what does the softmax function do?", thresholds=Thresholds(refuse=0.0)
    ).__class__(**answer.__dict__)


def test_the_extractive_answer_is_deterministic(index: Index, notes: Path) -> None:
    index.add([notes])
    a = ask(index, "attention keys queries", thresholds=Thresholds(refuse=0.0))
    b = ask(index, "attention keys queries", thresholds=Thresholds(refuse=0.0))
    assert a.text == b.text and a.text


class Words(LLM):
    id = "words"
    context_window = 300
    max_new_tokens = 40

    def stream(self, prompt: Prompt) -> Iterator[str]:
        yield "ok"

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_passages_are_fitted_to_the_window_and_the_cut_is_said() -> None:
    long = " ".join(f"word{i}" for i in range(100))
    passages = [passage(i, long) for i in range(1, 5)]
    prompt = build_prompt("question?", passages, Words())
    assert [p.n for p in prompt.passages] == [1, 2]
    assert any("[2] was cut" in n for n in prompt.notes)
    assert any("[3], [4] did not fit" in n for n in prompt.notes)
    total = sum(Words().count_tokens(m.content) for m in prompt.messages)
    assert total <= Words.context_window - Words.max_new_tokens


def test_strategies() -> None:
    few = build_prompt("q?", [passage(1, BREAD)], Words(), "few-shot")
    assert [m.role for m in few.messages][:3] == ["system", "user", "assistant"]
    assert "<reasoning>" in build_prompt("q?", [], Words(), "cot").messages[0].content
    with pytest.raises(ConfigError, match="zero-shot, few-shot, cot"):
        build_prompt("q?", [], Words(), "tree-of-thought")
    reasoning, answer = split_reasoning(
        "<reasoning>[1] says 12 h.</reasoning>\nAnswer: 12 hours [1]."
    )
    assert reasoning == "[1] says 12 h." and answer == "12 hours [1]."


def test_follow_ups_become_standalone_queries() -> None:
    turns = [
        {
            "question": "What license does SQLite use?",
            "query": "What license does SQLite use?",
            "answer": "Public domain [1].",
        }
    ]
    assert "SQLite" in standalone_query("and what about its performance?", turns)
    assert "license" in standalone_query("Is it fast?", turns)
    alone = "How do I vacuum a Postgres table?"
    assert standalone_query(alone, turns) == alone  # already stands alone
    assert standalone_query("and its speed?", []) == "and its speed?"


def test_unknown_llm_arguments_and_settings_are_errors(tmp_path: Path, monkeypatch) -> None:
    from kenning.config import load_settings

    with pytest.raises(ConfigError, match="takes no argument 'sentences'.*max_sentences"):
        get_llm("extractive", sentences=2)
    (tmp_path / "kenning.toml").write_text('[answer]\nllm = "extractive"\nstrtegy = "cot"\n')
    with pytest.raises(ConfigError, match=r"kenning.toml: unknown key 'strtegy'.*strategy"):
        load_settings(str(tmp_path / "index.db"))
    (tmp_path / "kenning.toml").write_text('[answer]\nstrategy = "cot"\n[thresholds]\nrefuse = 0\n')
    monkeypatch.setenv("KENNING_STRATEGY", "few-shot")
    settings = load_settings(str(tmp_path / "index.db"))
    assert settings["answer"]["strategy"] == "few-shot" and settings["thresholds"]["refuse"] == 0.0


def test_cli_ask_json_and_text(tmp_path: Path, notes: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "i.db")
    (tmp_path / "kenning.toml").write_text("[thresholds]\nrefuse = 0.0\n")
    assert runner.invoke(app, ["add", str(notes), "-q", "-i", db, "-e", "hash"]).exit_code == 0
    result = runner.invoke(app, ["ask", "what does softmax turn scores into?", "-i", db, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["sentences"] and data["sentences"][0]["citations"]
    assert {"status", "support", "checks"} <= data["sentences"][0].keys()
    src = data["sources"][0]
    assert {"path", "start", "end", "lines", "support"} <= src.keys()
    assert {"search", "total"} <= data["timings"].keys()
    text = runner.invoke(app, ["ask", "what does softmax turn scores into?", "-i", db])
    assert text.exit_code == 0 and "Sources" in text.output and "[1]" in text.output


def test_chat_rewrites_follow_ups_and_survives_a_restart(tmp_path: Path, notes: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "i.db")
    (tmp_path / "kenning.toml").write_text("[thresholds]\nrefuse = 0.0\n")
    assert runner.invoke(app, ["add", str(notes), "-q", "-i", db, "-e", "hash"]).exit_code == 0
    first = runner.invoke(app, ["chat", "-i", db], input="What is the softmax function?\n")
    assert first.exit_code == 0, first.output
    follow = runner.invoke(
        app, ["chat", "--continue", "-i", db], input="and what does it sum to?\n"
    )
    assert follow.exit_code == 0, follow.output
    assert "searching: and what does it sum to? softmax function" in follow.output
    listed = runner.invoke(app, ["chat", "--list", "-i", db])
    assert "2 turns" in listed.output and "What is the softmax function?" in listed.output


@pytest.mark.slow
def test_eval_qa_scores_an_answerer(tmp_path: Path, monkeypatch) -> None:
    from kenning.eval.qa import decision

    monkeypatch.setenv("KENNING_CACHE", str(tmp_path / "cache"))
    rows = [
        {
            "id": "a",
            "question": "How long does the dough rise?",
            "answers": ["12 hours"],
            "context": BREAD,
        },
        {
            "id": "b",
            "question": "When are tomatoes watered?",
            "answers": ["every morning"],
            "context": TOMATO,
        },
    ]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "kenning.toml").write_text("[thresholds]\nrefuse = 0.0\n")
    db = str(tmp_path / "i.db")
    result = CliRunner().invoke(
        app,
        [
            "-i",
            db,
            "eval",
            "qa",
            str(tmp_path / "qa.jsonl"),
            "--answerer",
            "extractive",
            "-c",
            "h=hybrid,embedder=hash",
            "-o",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    assert metrics["citation_precision"] == 1.0 and metrics["refusal_rate"] == 0.0
    assert metrics["f1"] > 0.2 and metrics["verified_sentences"] == 1.0
    assert {"em", "rouge_l", "bleu", "seconds_p50", "attributed_sentences"} <= metrics.keys()
    history = json.loads(CliRunner().invoke(app, ["-i", db, "eval", "history", "--json"]).output)
    assert history[-1]["config_name"] == "answers:extractive"
    assert [
        decision(t)
        for t in (
            "Yes, it does.",
            "It did not improve survival.",
            "The effect may be small.",
            "Survival improved.",
        )
    ] == ["yes", "no", "maybe", "yes"]


def test_an_uncited_sentence_is_cited_by_kenning_only_when_it_checks_out(
    vectors: SentenceVectors,
) -> None:
    """Models that cite nothing: kenning cites what passes the whole check, and says so."""
    answer = (
        "Water tomatoes at the base every morning. The moon is made of cheese. "
        "The dough rises for 30 hours."
    )
    watered, moon, dough = check(answer, [passage(1, BREAD), passage(2, TOMATO)], vectors)
    assert watered.status == SUPPORTED and watered.citations == [2] and watered.attributed
    assert moon.status == UNSUPPORTED and moon.citations == [] and not moon.attributed
    assert dough.status != SUPPORTED and not dough.attributed  # a wrong number is not cited
