"""The web page shows a hit's backlinks (``GET /api/links``) when its panel is opened, in real
headless Chromium against a real server on a small vault."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from serving import running

from kenning import Index

VAULT = {
    "Home.md": "# Home\n\nSee [[Tmux]] and [the multiplexer](Tmux.md).\n",
    "Journal.md": "# Journal\n\nLearnt ![[Tmux]] today.\n",
    "Tmux.md": "# Tmux\n\nThe terminal multiplexer splits panes.\n",
    "Lonely.md": "# Lonely\n\nNobody links to this xylophone note.\n",
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("web-links")
    root = base / "vault"
    root.mkdir()
    for rel, text in VAULT.items():
        (root / rel).write_text(text)
    db = base / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([root])
    with running(db, embedder="hash") as server:
        yield server.url


@pytest.fixture
def page(url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    from test_web import CHROMIUM_FLAGS, _chromium, checked_page

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        with checked_page(browser.new_context(base_url=url)) as pg:
            yield pg
            browser.close()


def search(page: Any, query: str) -> Any:
    page.goto("/")
    page.wait_for_selector("body[data-ready]")
    page.fill("#q", query)
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".hit")
    return page.locator(".hit").first


@pytest.mark.browser
def test_a_hits_backlinks_are_listed_when_opened(page) -> None:
    hit = search(page, "terminal multiplexer splits panes")
    assert hit.locator(".hit-title a").inner_text() == "Tmux"
    panel = hit.locator(".backlinks")
    assert not panel.locator(".backlink-list").is_visible()
    panel.locator("summary").click()
    panel.locator(".backlink").first.wait_for()
    shown = panel.locator(".backlink").all_inner_texts()
    # each linking note once (Home links twice), under its root as search shows paths
    assert sorted(shown) == ["vault/Home.md", "vault/Journal.md"]


@pytest.mark.browser
def test_a_note_nobody_links_to_says_so(page) -> None:
    hit = search(page, "xylophone")
    assert hit.locator(".hit-title a").inner_text() == "Lonely"
    hit.locator(".backlinks summary").click()
    assert hit.locator(".backlink-list").inner_text() == "No note links here."
