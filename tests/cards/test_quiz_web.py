"""The Quiz view's API (``/api/cards``), in-process, and the view itself in real headless
Chromium: a whole quiz with the keyboard alone, on a phone-sized screen."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import fsrs
import pytest
from conftest import write_notes
from serving import running
from test_cards import NOTES

from kenning import Index
from kenning.cards import CardStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    vault = write_notes(tmp_path / "vault", NOTES)
    db = tmp_path / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([vault])
    return db


def test_api_makes_cards_serves_due_ones_and_schedules_with_fsrs(db: Path) -> None:
    from starlette.testclient import TestClient

    from kenning.serve.app import create_app

    with TestClient(create_app(db, embedder="hash", warm=False, mcp=False)) as client:
        empty = client.get("/api/cards/due").json()
        assert empty["cards"] == [] and empty["stats"]["active"] == 0
        made = client.post("/api/cards", json={}).json()
        assert made["cards"] == made["added"] > 0 and made["notes"] == len(NOTES)
        due = client.get("/api/cards/due", params={"limit": 100}).json()
        assert len(due["cards"]) == made["cards"] == due["stats"]["new"]
        choice = next(c for c in due["cards"] if c["kind"] == "choice")
        wrong = next(o for o in choice["choices"] if o != choice["answer"])
        r = client.post(f"/api/cards/{choice['id']}/review", json={"choice": wrong}).json()
        assert r["correct"] is False and r["rating"] == 1 and r["answer"] == choice["answer"]
        assert r["source"] == " ".join(choice["source"].split()) and r["link"].startswith("file://")
        qa = next(c for c in due["cards"] if c["kind"] != "choice")
        r2 = client.post(f"/api/cards/{qa['id']}/review", json={"rating": 4}).json()
        assert client.post(f"/api/cards/{qa['id']}/review", json={}).status_code == 400
        assert client.post("/api/cards/nope/review", json={"rating": 3}).status_code == 404
        assert client.post(f"/api/cards/{qa['id']}/review", json={"rating": 5}).status_code == 422
        after = client.get("/api/cards/due", params={"limit": 100}).json()
    assert after["stats"]["reviews"] == 2
    assert qa["id"] not in {c["id"] for c in after["cards"]}  # easy: due in days
    with CardStore(db) as store:
        (review,) = store.reviews(qa["id"])
    at = datetime.fromtimestamp(review["reviewed_at"]).astimezone()
    expected, _ = fsrs.Scheduler(enable_fuzzing=False).review_card(fsrs.Card(), fsrs.Rating(4), at)
    assert datetime.fromisoformat(r2["due"]) == expected.due


@pytest.fixture
def served(db: Path) -> Iterator[str]:
    with Index.open(db) as index:
        from kenning.cards import cards_for

        cards_for(index)
    with running(db, embedder="hash") as server:
        yield server.url


def _wait(page: Any, expression: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


@pytest.mark.browser
def test_a_whole_quiz_with_the_keyboard_on_a_phone(served: str, db: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is not installed (./install.sh installs it)"
    with CardStore(db) as store:
        queue = store.due(limit=20)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, base_url=served, is_mobile=True, has_touch=True
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        try:
            page.goto("/")
            page.wait_for_selector("body[data-ready]")
            # to the Quiz tab with Tab and Enter only
            for _ in range(20):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.dataset.view === 'quiz'"):
                    break
            page.keyboard.press("Enter")
            page.wait_for_selector("#quiz-question")
            assert page.is_hidden("#view-search")
            wrong_once = False
            for n, card in enumerate(queue, 1):
                status = f"Card {n} of {len(queue)}"
                _wait(page, f"document.getElementById('quiz-status').textContent === '{status}'")
                assert page.inner_text("#quiz-question") == card.question
                if card.kind == "choice":
                    right = card.choices.index(card.answer) + 1
                    pick = right if wrong_once else (right % len(card.choices)) + 1
                    page.keyboard.press(str(pick))
                    page.wait_for_selector(".quiz-verdict")
                    if not wrong_once:
                        assert "the answer is" in page.inner_text(".quiz-verdict.wrong")
                        assert page.inner_text(".quiz-source blockquote") == " ".join(
                            card.source.split()
                        )
                        wrong_once = True
                    else:
                        assert page.inner_text(".quiz-verdict") == "Correct."
                else:
                    page.keyboard.press("Space")
                    page.wait_for_selector(".quiz-answer")
                    assert page.inner_text(".quiz-answer") == card.answer
                    page.keyboard.press("3")
                page.wait_for_selector("#quiz-next:focus")
                widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                assert widths[0] <= widths[1], f"the quiz scrolls sideways: {widths}"
                page.keyboard.press("Enter")
            _wait(page, "document.getElementById('quiz-status').textContent.startsWith('Done')")
            assert f"Done: {len(queue)} reviewed" in page.inner_text("#quiz-status")
        finally:
            context.close()
            browser.close()
    assert not errors, errors
    with CardStore(db) as store:
        reviews = store.reviews()
    assert len(reviews) == len(queue)
    ratings = {r["card_id"]: r["rating"] for r in reviews}
    choices = [c for c in queue if c.kind == "choice"]
    assert ratings[choices[0].id] == 1 and all(ratings[c.id] == 3 for c in choices[1:])
