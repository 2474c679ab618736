"""Reviews: the schedule is FSRS's own, reviews survive a sync and a card update, and
`kenning quiz` grades, scores multiple choice and shows the source of a wrong answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsrs
import pytest
from conftest import write_notes
from test_cards import NOTES
from typer.testing import CliRunner

from kenning import Index
from kenning.cards import CardStore, cards_for
from kenning.cli import app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    vault = write_notes(tmp_path / "vault", NOTES)
    db = tmp_path / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([vault])
        cards_for(index)
    return db


def test_due_dates_match_fsrs_for_the_same_reviews(db: Path) -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ratings = [3, 3, 1, 3, 4, 2, 3]
    with CardStore(db) as store:
        card = store.cards()[0]
        at, ours = start, []
        for rating in ratings:
            due = store.review(card.id, rating, at=at)
            ours.append(due)
            at = due + timedelta(hours=5)  # reviewed a little after it fell due
        kept = store.reviews(card.id)
    scheduler = fsrs.Scheduler(enable_fuzzing=False)
    reference, at = fsrs.Card(), start
    theirs = []
    for rating in ratings:
        reference, _ = scheduler.review_card(reference, fsrs.Rating(rating), at)
        theirs.append(reference.due)
        at = reference.due + timedelta(hours=5)
    assert ours == theirs
    assert [r["rating"] for r in kept] == ratings
    assert theirs[-1] - theirs[0] > timedelta(days=3)  # the schedule spaces out


def test_due_cards_come_first_then_new_ones(db: Path) -> None:
    with CardStore(db) as store:
        cards = store.cards()
        now = datetime.now(UTC)
        store.review(cards[3].id, 1, at=now - timedelta(days=1))  # due again after minutes
        store.review(cards[4].id, 4, at=now)  # easy: due in days
        order = [c.id for c in store.due(limit=len(cards))]
    assert order[0] == cards[3].id
    assert cards[4].id not in order
    assert set(order) == {c.id for c in cards} - {cards[4].id}


def test_reviews_survive_sync_and_card_updates(db: Path, tmp_path: Path) -> None:
    with CardStore(db) as store:
        card = next(c for c in store.cards() if c.path.endswith("rsync.md") and c.rule == "fact")
        due = store.review(card.id, 3, at=datetime(2026, 12, 1, tzinfo=UTC))
    note = Path(card.path)
    note.write_text(note.read_text().replace("intact.", "intact on the copy."))
    with Index.open(db) as index:
        index.sync()
        result = cards_for(index)
    assert card.id in result.changes.updated
    with CardStore(db) as store:
        kept = store.card(card.id)
        assert kept.source != card.source and kept.answer == card.answer
        assert [r["rating"] for r in store.reviews(card.id)] == [3]
        assert store.schedule(card.id)["due"] == due.isoformat()


@pytest.mark.slow
def test_quiz_grades_and_scores_multiple_choice(db: Path) -> None:
    with CardStore(db) as store:
        cards = store.due(limit=50)
    choice = next(c for c in cards if c.kind == "choice")  # the one answered wrong
    replies = []
    wrong_shown = False
    for card in cards:
        if card.kind == "choice":
            wrong = next(i for i, o in enumerate(card.choices, 1) if o != card.answer)
            right = card.choices.index(card.answer) + 1
            replies.append(str(right if wrong_shown else wrong))
            wrong_shown = True
        else:
            replies += ["", "3"]
    runner = CliRunner()
    args = ["--index", str(db), "quiz", "-n", "50"]
    result = runner.invoke(app, args, input="\n".join(replies) + "\n")
    assert result.exit_code == 0, result.output
    assert "Not quite" in result.stdout and "the answer is" in result.stdout
    shown = " ".join(result.stdout.split())
    assert f"> {' '.join(choice.source.split())}" in shown  # the source passage
    assert "Correct." in shown
    with CardStore(db) as store:
        reviews = store.reviews()
        assert len(reviews) == len(cards)
        by_card = {r["card_id"]: r for r in reviews}
        choices = [c for c in cards if c.kind == "choice"]
        assert by_card[choices[0].id]["rating"] == 1  # the wrong answer
        assert all(by_card[c.id]["rating"] == 3 for c in choices[1:])
        assert all(by_card[c.id]["rating"] == 3 for c in cards if c.kind != "choice")
        assert store.due(limit=50, now=datetime.now(UTC).timestamp()) == []
    again = runner.invoke(app, ["--index", str(db), "quiz"])
    assert "No cards are due" in again.stdout


@pytest.mark.parametrize("package", ["fsrs", "genanki"])
def test_a_missing_package_names_the_cards_extra(
    db: Path, tmp_path: Path, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from kenning import MissingExtra
    from kenning.cards.export import write_apkg

    with CardStore(db) as store:
        card = store.cards()[0]
        monkeypatch.setitem(sys.modules, package, None)
        monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == package else 1)
        with pytest.raises(MissingExtra, match=r"kenning\[cards\]"):
            if package == "fsrs":
                store.review(card.id, 3)
            else:
                write_apkg([card], tmp_path / "x.apkg", "deck")
        assert store.reviews() == []


@pytest.mark.postgres
def test_cards_and_reviews_on_a_postgresql_index(tmp_path: Path) -> None:
    """On a PostgreSQL index the cards and reviews go into tables of its database (the
    cards layer's own, outside the store's migrations): made, reviewed on FSRS's schedule,
    kept across a sync and a card update, and read back by `kenning quiz`."""
    from conftest import postgres_url

    url = postgres_url()
    vault = write_notes(tmp_path / "vault", NOTES)
    with Index.open(url, embedder="hash") as index:
        index.add([vault])
        version = index.store.get_meta("schema_version")
        made = cards_for(index)
    assert made.changes.counts()["added"] == len(made.cards) > 5
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with CardStore(url) as store:
        assert {c.id for c in store.cards()} == {c.id for c in made.cards}
        card = next(c for c in store.cards() if c.path.endswith("rsync.md") and c.rule == "fact")
        first = store.review(card.id, 3, at=at)
        second = store.review(card.id, 1, at=first + timedelta(hours=1))
        assert store.stats(now=at.timestamp())["reviews"] == 2
    scheduler = fsrs.Scheduler(enable_fuzzing=False)
    reference, _ = scheduler.review_card(fsrs.Card(), fsrs.Rating(3), at)
    assert first == reference.due
    reference, _ = scheduler.review_card(reference, fsrs.Rating(1), first + timedelta(hours=1))
    assert second == reference.due
    note = Path(card.path)
    note.write_text(note.read_text().replace("intact.", "intact on the copy."))
    with Index.open(url, embedder="hash") as index:
        index.sync()
        again = cards_for(index)
        assert index.store.get_meta("schema_version") == version  # no migration of its own
    assert card.id in again.changes.updated and not again.changes.added
    with CardStore(url) as store:
        assert store.card(card.id).source != card.source
        assert [r["rating"] for r in store.reviews(card.id)] == [3, 1]
        assert store.schedule(card.id)["due"] == second.isoformat()
    out = CliRunner().invoke(app, ["--index", url, "--embedder", "hash", "quiz", "-n", "1"],
                             input="\n3\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    with CardStore(url) as store:
        assert store.stats()["reviews"] == 3
