"""Making cards: the extractive rules, the citation check on every answer, distractors,
near-duplicates, stable ids across edits, the LLM writer (a scripted fake) and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_notes
from typer.testing import CliRunner

from kenning import Index
from kenning.answer.llms import LLM, Prompt
from kenning.cards import BLANK, CardStore, Selection, cards_for, make_cards
from kenning.cards.make import leaks, merge, supported
from kenning.cards.rules import Note, candidates
from kenning.cli import app

NOTES = {
    "tools/tar.md": """# tar

> Archiving utility.
> More information: <https://www.gnu.org/software/tar>.

- Create an archive from files:

`tar cf target.tar file1 file2`

- Extract an archive into the current directory:

`tar xf source.tar`
""",
    "tools/git.md": """---
tags: [vcs]
---
# Git basics

## Staging

Git is a distributed version control system.

Running `git add --patch` stages changes one hunk at a time in the terminal.
The staging area was introduced in 2005 by Linus Torvalds for the first release.
""",
    "tools/rsync.md": """# Rsync

Use `rsync --archive --verbose` to copy a folder while keeping permissions intact.
The transfer resumed after 1999 attempts on the slow network link.
""",
    "tools/curl.md": """# Curl

Send a request with `curl --head` to see only the response headers from the server.
The mirror served 4096 files during the nightly backup window.
""",
    "tools/make.md": """# Make

Call `make --dry-run` to print the commands without running any of them here.
The build cache holds 7777 objects from previous compiler runs.
""",
}


def _note(rel: str) -> Note:
    return Note(rel, rel.split("/")[-1].removesuffix(".md"), NOTES[rel])


def test_rules_make_each_kind_of_card_from_its_span() -> None:
    found = {(c.rule, c.kind, c.question, c.answer) for n in NOTES for c in candidates(_note(n))}
    assert ("description", "qa", "What is tar?", "Archiving utility") in found
    assert (
        "list", "qa", "How do you create an archive from files (tar)?",
        "tar cf target.tar file1 file2",
    ) in found  # fmt: skip
    assert ("definition", "qa", "What is Git?", "a distributed version control system") in found
    clozes = {(q, a) for rule, kind, q, a in found if rule == "fact"}
    assert (f"Running {BLANK} stages changes one hunk at a time in the terminal.",
            "git add --patch") in clozes  # fmt: skip
    for n in NOTES:
        for card in candidates(_note(n)):
            assert NOTES[n][card.start : card.end] == card.source
            assert card.answer.lower() in " ".join(card.source.split()).lower().replace("`", "")


def test_kept_cards_are_verified_and_distractors_are_not() -> None:
    made = make_cards(_note(n) for n in NOTES)
    assert made.cards and made.unverified >= 0
    for card in made.cards:
        assert supported(card.answer, card.source)
        assert not leaks(card)
        if card.kind == "choice":
            assert card.answer in card.choices and len(card.choices) == 4
            text = NOTES[card.path]
            for option in card.choices:
                if option != card.answer:
                    assert not supported(option, text)
                    assert option.lower() not in text.lower()
    kinds = {c.kind for c in made.cards}
    assert {"qa", "cloze", "choice"} <= kinds


def test_an_answer_missing_from_its_span_is_not_kept() -> None:
    def wrong(note: Note) -> Iterator:
        for card in candidates(note):
            card.answer = "Kubernetes 1.29"  # a name and number the span does not hold
            yield card

    made = make_cards([_note("tools/git.md")], propose=wrong)
    assert made.cards == [] and made.unverified == made.proposed > 0


def test_near_duplicates_merge() -> None:
    twice = {"a.md": NOTES["tools/rsync.md"], "b.md": NOTES["tools/rsync.md"].replace("Use", "Try")}
    cards = [c for rel, text in twice.items() for c in candidates(Note(rel, "Rsync", text))]
    merged = merge(cards)
    assert len(merged) < len(cards)
    assert len({c.answer for c in merged}) == len(merged)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return write_notes(tmp_path / "vault", NOTES)


@pytest.fixture
def db(tmp_path: Path, vault: Path) -> Path:
    db = tmp_path / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([vault])
    return db


def test_cards_keep_their_ids_across_edits(db: Path, vault: Path) -> None:
    with Index.open(db) as index:
        first = cards_for(index)
        assert first.changes.counts()["added"] == len(first.cards)
        again = cards_for(index)
        assert sorted(again.changes.kept) == sorted(c.id for c in first.cards)
        assert not again.changes.added and not again.changes.retired
        before = {c.id: c for c in first.cards if c.path.endswith("git.md")}
        git = vault / "tools" / "git.md"
        # edit one sentence, remove another, and move everything down
        git.write_text(
            "\n\n"
            + NOTES["tools/git.md"]
            .replace("one hunk at a time in the terminal", "one hunk at a time, in the terminal")
            .replace(
                "The staging area was introduced in 2005 by Linus Torvalds "
                "for the first release.\n",
                "",
            )
        )
        index.sync()
        edited = cards_for(index)
    ch = edited.changes
    assert ch.updated and not ch.added
    updated = {c.id: c for c in edited.cards if c.id in ch.updated}
    assert set(updated) <= set(before)
    for cid, card in updated.items():
        assert card.answer == before[cid].answer and card.source != before[cid].source
    gone = [c for c in before.values() if "2005" in c.source or "Linus" in c.source]
    assert gone and {c.id for c in gone} <= set(ch.retired)
    assert all(cid in before for cid in ch.retired)
    others = [c for c in edited.cards if not c.path.endswith("git.md")]
    assert {c.id for c in others} <= set(ch.kept)
    with CardStore(db) as store:
        assert len(store.cards()) == len(edited.cards)
        assert {c.id for c in store.cards(retired=True)} == set(ch.retired)


def test_selection_by_tag_folder_and_path(db: Path, vault: Path) -> None:
    with Index.open(db) as index:
        tagged = cards_for(index, Selection(tag="vcs"), save=False)
        assert {c.path for c in tagged.cards} == {str(vault / "tools" / "git.md")}
        assert tagged.deck == "vcs"
        by_path = cards_for(index, Selection(paths=[str(vault / "tools" / "tar.md")]), save=False)
        assert {c.path for c in by_path.cards} == {str(vault / "tools" / "tar.md")}
        folder = cards_for(index, Selection(folder="tools"), save=False)
        assert folder.deck == "tools" and len({c.path for c in folder.cards}) == len(NOTES)
        searched = cards_for(index, Selection(query="tar archive utility"), save=False)
        assert str(vault / "tools" / "tar.md") in {c.path for c in searched.cards}
        assert searched.deck == "tar archive utility"


class ScriptedLLM(LLM):
    """Writes two cards per note: one whose answer is in the note, one that is not."""

    id = "scripted-cards"

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[Prompt] = []

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.prompts.append(prompt)
        note = prompt.passages[0].text
        if "Archiving" in note:
            yield "Q: How do you extract an archive with tar? | A: tar xf source.tar\n"
        if "distributed" in note:  # as small models write: question and answer on two lines
            yield "1. Q: What sort of system is Git?\n\nA: distributed version control system\n"
        yield "Q: Who wrote it? | A: Grace Hopper in 1952\nsome chatter that is not a card\n"


def test_llm_cards_are_checked_like_extractive_ones(db: Path) -> None:
    llm = ScriptedLLM()
    with Index.open(db) as index:
        result = cards_for(index, llm=llm, save=False)
    assert len(llm.prompts) == len(NOTES)
    assert "atomic" in llm.prompts[0].messages[0].content
    got = {(c.question, c.answer, c.rule) for c in result.cards}
    assert ("How do you extract an archive with tar?", "tar xf source.tar", "llm") in got
    assert ("What sort of system is Git?", "distributed version control system", "llm") in got
    assert not any("Hopper" in c.answer for c in result.cards)
    for c in result.cards:
        assert supported(c.answer, c.source)


@pytest.mark.slow
def test_cli_json_and_exports(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--index", str(db), "cards", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and set(lines[0]) == {
        "id", "kind", "question", "answer", "choices", "path", "heading", "start", "end",
    }  # fmt: skip
    for card in lines:
        text = Path(card["path"]).read_text()
        assert supported(card["answer"], text[card["start"] : card["end"]])
    csv_file, md = tmp_path / "c.csv", tmp_path / "c.md"
    args = ["--index", str(db), "cards", "--csv", str(csv_file), "--obsidian", str(md)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "unchanged" in result.stdout
    assert len(csv_file.read_text().splitlines()) == len(lines) + 1
    note = md.read_text()
    assert note.startswith("#flashcards/vault")
    assert "What is tar?::Archiving utility [[tar#tar]]" in note
    assert sum("==" in line for line in note.splitlines()) == sum(
        c["kind"] == "cloze" for c in lines
    )


@pytest.mark.slow
def test_eval_cards_reports_the_targets(db: Path) -> None:
    result = CliRunner().invoke(app, ["--index", str(db), "eval", "cards", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["notes"] == len(NOTES) and report["cards"] > 0
    assert report["verified"] == 1.0 and report["distractors_supported"] == 0
    assert report["leak"] == 0.0 and report["short_answers"] == 1.0
    assert 0.85 <= report["round_trip"] <= 1.0
    with CardStore(db) as store:
        assert store.cards() == []  # eval stores nothing
