"""Conflicts: answers say when two notes disagree, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kenning import Index
from kenning.answer import LLM, Prompt, Thresholds, ask
from kenning.answer.citations import SUPPORTED
from kenning.answer.conflicts import FAR, claims, compare
from kenning.answer.sentences import negated, typed_facts
from kenning.embedders import HashEmbedder
from kenning.text.chunking import ChunkSpec

FEED = "Feed the starter the night before.\n\n"  # the same sentence in two notes
STONE = "Heat the stone first.\n\n"
OPEN = Thresholds(refuse=0.0)
FINAL = "# Euro final\n\nThe Euro 2016 final was played in Saint-Denis near the capital.\n"


def index_of(tmp_path: Path, notes: dict[str, str]) -> Index:
    root = tmp_path / "notes"
    for rel, text in notes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    index = Index.open(tmp_path / "index.db", embedder=HashEmbedder(dim=256), chunking=ChunkSpec())
    index.add([root])
    return index


def claim(text: str, path: str = "a.md", title: str = ""):
    [c] = claims(text, path, 1, 0, title)
    return c


def test_facts_are_typed_and_normalised() -> None:
    text = "On 3 March 2024 twelve of 1,500 users in Paris saw version 2.1 in 2016."
    got = {(f.kind, f.value) for f in typed_facts(text)}
    assert got == {
        ("date", "2024-03-03"),
        ("number", "12"),
        ("number", "1500"),
        ("name", "paris"),
        ("number", "2.1"),
        ("date", "2016"),
    }
    assert [f.value for f in typed_facts("It moved to March 3, 2024.")] == ["2024-03-03"]
    assert negated("It does not work.") and negated("It won't work.")
    assert not negated("It never fails, not once.")  # two negations say yes


def test_two_notes_that_disagree_are_reported_with_both_versions(tmp_path: Path) -> None:
    with index_of(
        tmp_path,
        {
            "a.md": "---\ndate: 2024-05-01\n---\n" + FINAL + "The final was won by Portugal.\n",
            "b.md": "---\ndate: 2025-01-10\n---\n# Football\n\nThe final was won by France.\n",
        },
    ) as index:
        answer = ask(index, "who won the final?", thresholds=OPEN)
    [c] = answer.conflicts
    assert c.kind == "name" and set(c.values) == {"portugal", "france"}
    assert c.verified == [True, True]
    by_value = {s.value: s for s in c.sides}
    assert by_value["Portugal"].path.endswith("a.md") and by_value["France"].path.endswith("b.md")
    assert by_value["France"].date == "2025-01-10"
    assert by_value["France"].date_source == "front matter"
    assert c.sides[c.recent].value == "France"
    assert f"[{by_value['France'].n}] is the more recent" in c.recency
    assert "Your notes disagree on the name" in answer.text
    assert "The final was won by Portugal. [" in answer.text  # each version, cited
    versions = [s for s in answer.sentences if s.text.startswith("The final was won by")]
    assert {s.status for s in versions} == {SUPPORTED}
    assert answer.to_dict()["conflicts"][0]["values"] == c.values
    assert by_value["Portugal"].lines == (7, 7)


def test_detection_can_be_switched_off(tmp_path: Path) -> None:
    notes = {"a.md": "The final was won by Portugal.\n", "b.md": "The final was won by France.\n"}
    with index_of(tmp_path, notes) as index:
        assert ask(index, "who won the final?", thresholds=OPEN).conflicts
        plain = ask(index, "who won the final?", thresholds=OPEN, conflicts=False)
    assert plain.conflicts == [] and "disagree" not in plain.text


def test_the_same_fact_in_other_words_is_no_conflict(tmp_path: Path) -> None:
    notes = {
        "a.md": "The dough rises for 12 hours at room temperature. Bake it on 3 March 2024.\n",
        "b.md": "At room temperature the dough rises for twelve hours. Bake it on 2024-03-03.\n",
    }
    with index_of(tmp_path, notes) as index:
        answer = ask(index, "how long does the dough rise at room temperature?", thresholds=OPEN)
        bake = ask(index, "when do I bake it?", thresholds=OPEN)
    assert not answer.refused and answer.conflicts == [] and bake.conflicts == []
    assert (
        compare(
            claim("It was built in March 2024."), claim("It was built on 3 March 2024.", "b.md")
        )
        is None
    )


def test_a_view_the_note_rejects_is_no_conflict(tmp_path: Path) -> None:
    notes = {
        "a.md": "The tower was finished in 1889 after two years of work.\n",
        "b.md": "Some people claim the tower was finished in 1899 after two years of work, "
        "but the records say otherwise.\n",
        "c.md": "The tower was finished in 1899 after two years of work. That is what some "
        "guides claimed, but it is wrong.\n",
    }
    with index_of(tmp_path, notes) as index:
        answer = ask(index, "when was the tower finished?", thresholds=OPEN)
    assert not answer.refused and answer.conflicts == []


def test_a_change_the_notes_date_is_no_conflict(tmp_path: Path) -> None:
    notes = {
        "a.md": "The team meeting is on Tuesday at 10 in room 4.\n",
        "b.md": "Update on 2025-02-01: this has changed.\n\n"
        "The team meeting is on Tuesday at 11 in room 4.\n",
        "c.md": "The team meeting is on Tuesday at 10 in room 6. It used to be room 4.\n",
    }
    with index_of(tmp_path, notes) as index:
        answer = ask(index, "when is the team meeting?", thresholds=OPEN)
    assert not answer.refused and answer.conflicts == []


def test_different_subjects_with_similar_sentences_are_no_conflict(tmp_path: Path) -> None:
    notes = {
        "docker.md": "# Docker\n\nDocker keeps images for 30 days by default.\n",
        "podman.md": "# Podman\n\nPodman keeps images for 90 days by default.\n",
        "euro2016.md": "The Euro 2016 final was won by Portugal in extra time.\n",
        "euro2021.md": "The Euro 2021 final was won by Italy in extra time.\n",
        "tools/Vim.md": "# Vim\n\nThe editor of choice is Vim for quick edits.\n",
        "tools/Emacs.md": "# Emacs\n\nThe editor of choice is Emacs for quick edits.\n",
    }
    with index_of(tmp_path, notes) as index:
        for question in (
            "how long are images kept by default?",
            "who won the final in extra time?",
            "what is the editor of choice for quick edits?",
        ):
            answer = ask(index, question, thresholds=OPEN)
            assert not answer.refused and answer.conflicts == [], question


def test_two_sides_far_apart_in_one_note_conflict(tmp_path: Path) -> None:
    filler = "\n\n".join(f"Paragraph {i} talks about something else entirely." for i in range(30))
    note = (
        "# Server\n\nThe backup job runs every 6 hours on the main server.\n\n"
        f"{filler}\n\nThe backup job runs every 12 hours on the main server.\n"
    )
    with index_of(tmp_path, {"server.md": note}) as index:
        answer = ask(
            index, "how often does the backup job run on the main server?", k=8, thresholds=OPEN
        )
    [c] = answer.conflicts
    assert set(c.values) == {"6", "12"} and c.sides[0].path == c.sides[1].path
    assert abs(c.sides[0].start - c.sides[1].start) >= FAR
    near = "The backup job runs every 6 hours. The backup job runs every 12 hours."
    a, b = claims(near, "x.md")
    assert compare(a, b) is None  # side by side in one note: a list, not a dispute


def test_yes_and_no_conflict() -> None:
    c = compare(
        claim("Postgres supports upserts on older releases."),
        claim("Postgres does not support upserts on older releases.", "b.md"),
    )
    assert c is not None and c.kind == "yes/no" and c.values == ["yes", "no"]


def test_values_in_code_are_not_claims() -> None:
    a = claim("Sleep for a while with `sleep 5` in the shell.")
    b = claim("Sleep for a while with `sleep 10` in the shell.", "b.md")
    assert compare(a, b) is None


class Paraphraser(LLM):
    """A model stand-in that answers from passage [1] in its own words, citing it."""

    id = "paraphraser"

    def stream(self, prompt: Prompt) -> Iterator[str]:
        first = prompt.passages[0].text.strip().splitlines()[-1]
        yield f"According to the notes, {first[0].lower()}{first[1:]} [1]"


@pytest.mark.parametrize("llm", [None, Paraphraser()])
def test_every_answerer_gets_the_conflict(tmp_path: Path, llm: LLM | None) -> None:
    notes = {
        "a.md": "The dough rises for 12 hours at room temperature.\n",
        "b.md": "The dough rises for 8 hours at room temperature.\n",
    }
    seen: list[str] = []
    with index_of(tmp_path, notes) as index:
        answer = ask(
            index, "how long does the dough rise?", llm, thresholds=OPEN, on_text=seen.append
        )
    [c] = answer.conflicts
    assert set(c.values) == {"12", "8"} and c.verified == [True, True]
    assert "".join(seen) == answer.text and "Your notes disagree on the number" in answer.text
    assert c.recency  # says which is newer, or that nothing tells


def test_the_report_finds_pairs_and_rechecks_only_changed_notes(tmp_path: Path) -> None:
    from kenning.answer.conflict_report import ConflictReport

    notes = {
        "a.md": "# Bread\n\n" + FEED + "The dough rises for 12 hours at room temperature.\n",
        "b.md": "# Bread baking\n\n" + FEED + "The dough rises for 8 hours at room temperature.\n",
        "python.md": "# Python\n\nStart the web server on port 8000 in this folder.\n",
        "ruby.md": "# Ruby\n\nStart the web server on port 8080 in this folder.\n",
        "c.md": "# Garden\n\nWater the tomatoes at the base every morning.\n",
        "d.md": "# Plants\n\nWater the tomatoes at the base every morning.\n",
        "e.md": "# Oven\n\n" + STONE + "Bake the loaf at 250 degrees for 40 minutes.\n",
        "f.md": "# Oven loaf\n\n" + STONE + "Bake the loaf at 250 degrees for 40 minutes.\n",
    }
    with index_of(tmp_path, notes) as index:
        with ConflictReport(index) as report:
            first = report.update()
            [c] = report.conflicts()
        # python.md and ruby.md: like sentences in notes on two subjects (no title word shared,
        # no other sentence alike); c.md and d.md agree
        assert first.checked_notes == 8 and first.conflicts == 1
        assert {s.path.rsplit("/", 1)[-1] for s in c.sides} == {"a.md", "b.md"}
        assert [s.lines for s in c.sides] == [(5, 5), (5, 5)]
        with ConflictReport(index) as report:  # nothing changed: nothing compared
            again = report.update()
        assert (again.checked_notes, again.compared, again.conflicts) == (0, 0, 1)
        (tmp_path / "notes" / "d.md").write_text(
            "# Plants\n\nSome notes.\n\nWater the tomatoes at the base every morning.\n"
        )
        (tmp_path / "notes" / "e.md").write_text(
            "# Oven\n\n" + STONE + "Bake the loaf at 230 degrees for 40 minutes.\n"
        )
        index.sync()
        with ConflictReport(index) as report:
            third = report.update()
            kept = report.conflicts()
            only_c = report.conflicts([str(tmp_path / "notes" / "c.md")])
    assert third.checked_notes == 2 and third.compared >= 1
    changed = {str(tmp_path / "notes" / n) for n in ("d.md", "e.md")}
    assert all(changed & set(pair) for pair in third.compared_paths)  # only pairs with them
    assert sorted(Path(p).name for p in third.compared_paths[0]) == ["e.md", "f.md"]
    pairs = [sorted(Path(s.path).name for s in c.sides) for c in kept]
    assert pairs == [["a.md", "b.md"], ["e.md", "f.md"]] or pairs == [
        ["e.md", "f.md"],
        ["a.md", "b.md"],
    ]
    assert only_c == []


def test_cli_ask_and_conflicts_show_both_sides(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from kenning.cli import app

    notes = {
        "a.md": "---\ndate: 2024-01-05\n---\n# Dough\n\nFeed the starter the night before.\n"
        "The dough rises for 12 hours at room temperature.\n",
        "b.md": "---\ndate: 2025-02-01\n---\n# Dough notes\n\nFeed the starter the night before.\n"
        "The dough rises for 8 hours at room temperature.\n",
    }
    index_of(tmp_path, notes).close()
    db = str(tmp_path / "index.db")
    run = CliRunner().invoke
    question = "dough rises for hours at room temperature"
    shown = run(app, ["--index", db, "ask", question])
    assert shown.exit_code == 0, shown.output
    assert "Your notes disagree on the number (12 or 8)" in shown.output
    assert (
        "notes disagree on the number: [1] 12 (2024-01-05, front matter) vs [2] 8" in (shown.output)
        or "notes disagree on the number: [1] 8 (2025-02-01, front matter) vs [2] 12"
        in shown.output
    )
    data = json.loads(run(app, ["--index", db, "ask", question, "--json"]).output)
    assert {tuple(sorted(c["values"])) for c in data["conflicts"]} == {("12", "8")}
    report = run(app, ["--index", db, "conflicts"])
    assert report.exit_code == 0, report.output
    assert "a.md:7" in report.output and "b.md:7" in report.output
    assert "b.md is the more recent by its note's date (2025-02-01, against 2024-01-05)" in (
        report.output
    )
    assert "1 conflict in 2 notes (2 notes checked" in report.output


def test_an_update_just_outside_the_passage_still_explains_it(tmp_path: Path) -> None:
    from kenning.answer.conflicts import explained

    a_text = "The team meeting is on Tuesday at 10 in room 4.\n"
    b_text = (
        "Update on 2025-02-01: this has changed.\n\n"
        "The team meeting is on Tuesday at 11 in room 4.\n"
    )
    (tmp_path / "a.md").write_text(a_text)
    (tmp_path / "b.md").write_text(b_text)
    start = b_text.index("The team")
    [a] = claims(a_text, str(tmp_path / "a.md"), 1)
    [b] = claims(b_text[start:], str(tmp_path / "b.md"), 2, start)  # a passage cut after it
    conflict = compare(a, b)
    assert conflict is not None and set(conflict.values) == {"10", "11"}
    assert explained(conflict)
    (tmp_path / "b.md").write_text("Some other text here.\n\n" + b_text[start:])
    [b] = claims(b_text[start:], str(tmp_path / "b.md"), 2, len("Some other text here.\n\n"))
    plain = compare(a, b)
    assert plain is not None and not explained(plain)


def test_the_report_keeps_sibling_pages_apart(tmp_path: Path) -> None:
    """Near-copies about two subjects (gh and glab, one command per platform) are not a
    dispute; a copy of a page with one name changed still is."""
    from kenning.answer.conflict_report import ConflictReport

    def alike(word: str) -> str:  # a sentence worded alike in the two notes of a pair
        return f"Display a specific {word} in the default web browser.\n\n"

    notes = {
        # each names its own forge, in its links too, and never the other's
        "gh-issue.md": "# gh issue\n\nManage GitHub issues.\n\n"
        + alike("issue")
        + "More information: <https://cli.github.com/manual/gh_issue>.\n",
        "glab-issue.md": "# glab issue\n\nManage GitLab issues.\n\n"
        + alike("issue")
        + "More information: <https://gitlab.com/gitlab-org/cli>.\n",
        # a leading label is no name: "Download" and "Upload" are two actions
        "ftp.md": "# ftp\n\n[Interactive] Download multiple files at once.\n\n" + alike("file"),
        "windows/ftp.md": "# ftp\n\n[Interactive] Upload multiple files at once.\n\n"
        + alike("file"),
        # one command, two platforms: each folder's own version
        "common/tail.md": "# tail\n\nShow the last 10 lines in a file.\n\n" + alike("line"),
        "osx/tail.md": "# tail\n\nShow the last 8 lines in a file.\n\n" + alike("line"),
        # a copy with one name changed: GitHub stays in its link, so it is not its subject
        "hub-issue.md": "# hub issue\n\nThe issues are kept on GitHub servers.\n\n"
        + alike("label")
        + "More information: <https://hub.github.com/hub-issue.1.html>.\n",
        "hub-issue-copy.md": "# hub issue\n\nThe issues are kept on Gitea servers.\n\n"
        + alike("label")
        + "More information: <https://hub.github.com/hub-issue.1.html>.\n",
    }
    with index_of(tmp_path, notes) as index:
        with ConflictReport(index) as report:
            report.update()
            found = report.conflicts()
    pairs = [sorted(Path(s.path).name for s in c.sides) for c in found]
    assert pairs == [["hub-issue-copy.md", "hub-issue.md"]]
    assert sorted(found[0].values) == ["gitea", "github"]
