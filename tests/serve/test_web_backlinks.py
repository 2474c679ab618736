"""The web page shows a hit's backlinks (``GET /api/links``) when its panel is opened, and the
links in a shown note open the note they name, in real headless Chromium against a real
server on a small vault; the rendered note's links are also checked without a browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import running

from kenning import Index

VAULT = {
    "Home.md": (
        "# Home\n\nSee [[Tmux]] and [the multiplexer](Tmux.md); [[Tmux#Panes|panes]], "
        "[[Nowhere]], `[[Tmux]]`.\n"
    ),
    "Journal.md": "# Journal\n\nLearnt ![[Tmux]] today.\n",
    "Tmux.md": (
        "# Tmux\n\nThe terminal multiplexer splits panes.\n\n"
        + "".join(f"## Part {i}\n\nFiller text number {i}.\n\n" for i in range(12))
        + "## Panes\n\nPrefix then % splits a pane.\n"
    ),
    "Lonely.md": "# Lonely\n\nNobody links to this xylophone note.\n",
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("web-links")
    root = base / "vault"
    root.mkdir()
    for rel, text in VAULT.items():
        (root / rel).write_text(text)
    db = base / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([root])
    return db


@pytest.fixture(scope="module")
def url(db: Path) -> Iterator[str]:
    with running(db, embedder="hash") as server:
        yield server.url


def doc_ids(db: Path) -> dict[str, int]:
    with Index.open(db, embedder="hash") as index:
        return {Path(p).name: row.id for p, row in index.store.sources().items()}


def test_a_shown_notes_links_open_the_notes_they_name(db: Path) -> None:
    from starlette.testclient import TestClient

    from kenning.serve.app import create_app

    ids = doc_ids(db)
    with TestClient(create_app(db, embedder="hash")) as client:
        r = client.get(f"/doc/{ids['Home.md']}", params={"partial": 1})
        assert r.status_code == 200, r.text
    body = r.text
    tmux = f'href="/doc/{ids["Tmux.md"]}"'
    assert f'<a class="open-doc wikilink wikilink" {tmux}>Tmux</a>' in body
    heading = f'href="/doc/{ids["Tmux.md"]}#h-panes"'  # [[Tmux#Panes|panes]]: the heading
    assert f'<a class="open-doc wikilink wikilink" {heading}>panes</a>' in body
    assert f'<a class="open-doc note-link" {tmux}>the multiplexer</a>' in body
    assert '<span class="wikilink unresolved" title="No indexed note">Nowhere</span>' in body
    assert "<code>[[Tmux]]</code>" in body  # code is left as written


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
    hit.locator(".backlink-list li:not(:text-is('Loading…'))").wait_for()
    assert hit.locator(".backlink-list").inner_text() == "No note links here."


@pytest.mark.browser
def test_a_wikilink_in_the_reader_opens_the_note_it_names(page, db: Path) -> None:
    hit = search(page, "see the multiplexer")
    assert hit.locator(".hit-title a").inner_text() == "Home"
    hit.locator(".hit-title a").click()
    link = page.locator("#reader-body a.wikilink", has_text="Tmux").first
    link.wait_for()
    assert link.get_attribute("href") == f"/doc/{doc_ids(db)['Tmux.md']}"
    link.click()
    page.wait_for_selector("#reader-body #doc-title:text-is('Tmux')")
    assert "terminal multiplexer splits panes" in page.locator("#reader-body").inner_text()
    assert page.locator("#reader-open").get_attribute("href").startswith("/doc/")


@pytest.mark.browser
def test_a_link_to_a_heading_opens_the_note_at_that_heading(page, db: Path) -> None:
    hit = search(page, "see the multiplexer")
    hit.locator(".hit-title a").click()
    link = page.locator("#reader-body a.wikilink", has_text="panes")
    link.wait_for()
    link.click()
    page.wait_for_selector("#reader-body #doc-title:text-is('Tmux')")
    focused = page.evaluate("document.activeElement.id")
    assert focused == "h-panes"
    href = page.locator("#reader-open").get_attribute("href")
    assert href == f"/doc/{doc_ids(db)['Tmux.md']}#h-panes"
