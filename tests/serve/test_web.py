"""The web page of `kenning serve`, in real headless Chromium against a real server.

One uvicorn server on 127.0.0.1 (a free port) serves a real SQLite index of the til notes
(hash embedder, the default extractive answerer: no model, no network) plus a small root of
our own: a note with tags and hostile markup, and a binary file that fails to load. Chromium
is Debian's (`install.sh` installs it), driven by the Playwright package without
`playwright install`. Screenshots go to $KENNING_ARTIFACTS (or the test's temporary folder),
their paths are printed, and each is checked to hold a real picture, not a blank page.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kenning import Index
from kenning.eval.history import History
from kenning.serve.app import create_app
from kenning.serve.security import Security
from kenning.serve.server import BackgroundServer
from kenning.serve.web import render_markdown, render_plain

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HOSTILE = """---
title: "Hostile 1 < 2 & 3 > 2"
tags: [web, security]
---
# Hostile note

The xylophone <script>window.__xss = 1</script> plays <img src=x onerror="window.__xss = 2">.

[a javascript link](javascript:window.__xss=3) and <a href="#" onclick="window.__xss=4">raw</a>.

Zebra crossings are striped.
"""


# ---- the server and the browser ------------------------------------------------------------


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "Debian's chromium is not installed: ./install.sh installs it (CI runs install.sh), "
            "or run: sudo apt-get install -y chromium"
        )
    return path


@pytest.fixture(scope="module")
def served(til_notes: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real server on 127.0.0.1 over an index of the til notes and a small hostile root."""
    base = tmp_path_factory.mktemp("web")
    extra = base / "extra"
    extra.mkdir()
    (extra / "hostile.md").write_text(HOSTILE)
    (extra / "binary.md").write_bytes(b"\x00\x01\x02PNG")
    location = base / "index.db"
    with Index.open(location, embedder="hash") as index:
        index.add([til_notes, extra])
        status = index.status()
    with History(location, create=True) as history:
        history.add_run(
            "til-questions",
            "hybrid",
            {"mode": "hybrid", "k": 10},
            {"ndcg@10": 0.61, "recall@10": 0.83},
            40,
        )

    app = create_app(location, embedder="hash", security=Security.for_bind("127.0.0.1", None))
    with BackgroundServer(app) as server:
        yield {"url": server.url, "status": status, "extra": extra, "location": location}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]' (install.sh does)")
    executable = _chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@contextmanager
def checked_page(context: Any) -> Iterator[Any]:
    """A page of ``context`` that fails the test on a script error or a blocked resource: the
    page keeps to its own Content-Security-Policy (no inline script or style)."""
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
    yield pg
    assert not errors, f"errors on the page: {errors}"


@pytest.fixture
def page(browser: Any, served: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=served["url"])
    with checked_page(context) as pg:
        yield pg
        context.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("KENNING_ARTIFACTS")
    folder = Path(env) / "web" if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def api(served: dict[str, Any], path: str) -> Any:
    with urllib.request.urlopen(served["url"] + path) as res:
        return json.load(res)


def screenshot(page: Any, artifacts: Path, name: str) -> Path:
    """Save a screenshot and check it is a real picture: Chromium itself decodes the PNG and
    counts its colours (a blank page has one or two)."""
    path = artifacts / f"{name}.png"
    data = page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
    blank = page.context.new_page()
    colours = blank.evaluate(
        """async (src) => {
            const img = new Image();
            img.src = src;
            await img.decode();
            const canvas = document.createElement("canvas");
            canvas.width = img.width; canvas.height = img.height;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(0, 0, img.width, img.height).data;
            const seen = new Set();
            for (let i = 0; i < px.length; i += 4 * 7) {
                seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
            }
            return {colours: seen.size, width: img.width, height: img.height};
        }""",
        "data:image/png;base64," + base64.b64encode(data).decode(),
    )
    blank.close()
    assert colours["width"] > 0 and colours["height"] > 0
    assert colours["colours"] > 20, f"{path} looks blank ({colours['colours']} colours)"
    return path


def no_horizontal_overflow(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths[0]} > {widths[1]} px"


def wait_until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until it is true (``wait_for_function`` evaluates a
    string, which the page's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def open_page(page: Any, hash_: str = "") -> None:
    page.goto("/" + hash_)
    page.wait_for_selector("body[data-ready]")


# ---- search --------------------------------------------------------------------------------


@pytest.mark.browser
def test_search_with_a_filter_highlights_snippets_and_explains(page, served, artifacts):
    open_page(page)
    page.wait_for_selector("#f-folder option[value='git/**']", state="attached")
    page.fill("#q", "undo the last commit")
    page.select_option("#f-folder", "git/**")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".hit")

    expected = api(served, "/api/search?q=undo+the+last+commit&k=10&path=git%2F**&explain=true")
    hits = page.locator(".hit")
    assert hits.count() == len(expected["hits"]) > 3
    paths = page.locator(".hit .path").all_inner_texts()
    assert all(p.startswith("til/git/") for p in paths), paths  # the filter held, paths short
    assert page.locator(".hit-title a").first.inner_text() == expected["hits"][0]["title"]

    marks = page.locator(".snippet mark").all_inner_texts()
    assert marks, "no highlighted words in the snippets"
    stems = tuple(t[: max(4, len(t) - 2)] for t in expected["terms"])
    assert all(m.lower().startswith(stems) for m in marks), (marks, expected["terms"])

    first = expected["hits"][0]
    explain = page.locator(".hit .explain").first
    assert not explain.locator("dl").is_visible()
    explain.locator("summary").click()
    panel = explain.locator("dl").inner_text()
    assert f"{first['score']:.3f}" in panel
    for key, label in (("bm25_rank", "BM25 rank"), ("dense_rank", "Dense rank")):
        assert label in panel
        if first[key] is not None:
            assert f"#{first[key]}" in panel
    screenshot(page, artifacts, "search")


@pytest.mark.browser
def test_tag_filter_and_hostile_markup_stay_text(page, served, artifacts):
    open_page(page)
    page.wait_for_selector("#f-tag option[value='web']", state="attached")
    page.fill("#q", "xylophone zebra")
    page.select_option("#f-tag", "web")
    page.press("#q", "Enter")
    page.wait_for_selector(".hit")
    assert page.locator(".hit .path").all_inner_texts() == ["extra/hostile.md"]
    # Titles read as text (tags are stripped at indexing); what is left must be escaped.
    assert page.locator(".hit-title").inner_text() == "Hostile 1 < 2 & 3 > 2"

    page.click(".hit-title a")
    page.wait_for_selector("#reader #cited")
    reader = page.locator("#reader-body")
    assert reader.locator("script, img, [onclick], [onerror], a[href^='javascript']").count() == 0
    assert "<script>window.__xss = 1</script>" in reader.inner_text()
    assert page.evaluate("window.__xss") is None

    # the note's own page, server-rendered, is as safe
    page.goto(f"/doc/{api(served, '/api/search?q=xylophone&where=tag%3Dweb')['hits'][0]['doc_id']}")
    assert page.locator("script, img, [onclick], a[href^='javascript']").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.goto("/doc/..%2F..%2Fetc%2Fpasswd").status == 404  # only indexed sources, by id
    csp = page.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self'" in csp


@pytest.mark.browser
def test_keyboard_alone_searches_and_opens_a_result(page):
    open_page(page)
    assert page.evaluate("document.activeElement.id") == "q", "the search box has focus"
    page.keyboard.type("name a tmux session")
    page.keyboard.press("Enter")
    page.wait_for_selector(".hit")

    # Tab through the filters to the first result; every stop shows a focus ring.
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement, s = getComputedStyle(el);
                const ring = s.outlineStyle !== "none" && s.outlineWidth !== "0px";
                return {cls: el.className, tag: el.tagName, ring};
            }"""
        )
        assert focused["ring"], f"no visible focus on {focused}"
        if focused["cls"] == "open-doc":
            break
    else:
        pytest.fail("Tab never reached the first result")
    link_text = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reader #cited")
    assert page.evaluate("document.activeElement.id") == "cited"
    page.keyboard.press("Escape")
    assert page.locator("#reader").is_hidden()
    assert page.evaluate("document.activeElement.textContent") == link_text  # focus came back


# ---- ask -------------------------------------------------------------------------------------

_COUNT_TOKENS = """() => {
    window.__tokens = 0;
    new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes)
            if (n.nodeType === 3 && n.parentElement.classList.contains("streaming")) {
                window.__tokens++;
            }
    }).observe(document.getElementById("transcript"), {childList: true, subtree: true});
}"""


@pytest.mark.browser
def test_ask_streams_an_answer_and_a_citation_opens_its_span(page, served, artifacts):
    open_page(page, "#ask")
    page.evaluate(_COUNT_TOKENS)
    page.fill("#question", "how do I name a tmux session?")
    page.press("#question", "Enter")
    page.wait_for_selector(".turn .sentence")
    assert page.evaluate("window.__tokens") >= 2, "the answer did not arrive as a stream"
    assert page.locator(".turn .sources li").count() >= 1
    screenshot(page, artifacts, "ask")

    cite = page.locator(".turn a.cite").first
    href = cite.get_attribute("href")
    m = re.fullmatch(r"/doc/(\d+)\?start=(\d+)&end=(\d+)", href or "")
    assert m, href
    doc = api(served, f"/api/documents/{m.group(1)}")
    cited = doc["text"][int(m.group(2)) : int(m.group(3))]
    cite.click()
    mark = page.locator("#reader mark#cited")
    mark.wait_for()
    marked = " ".join(page.locator("#reader mark.cited").all_inner_texts())
    # the marks hold the cited passage as rendered: its words, markup aside, most of its text
    assert marked.split() and all(word in cited for word in marked.split()), (marked, cited)
    alnum = lambda text: re.sub(r"\W+", "", text)  # noqa: E731
    assert alnum(marked)[:40] in alnum(cited) and len(alnum(marked)) > len(alnum(cited)) / 2
    wait_until(page, "document.activeElement.id === 'cited'")
    assert mark.evaluate(
        """m => { const r = m.getBoundingClientRect();
                  return r.top >= 0 && r.bottom <= innerHeight && r.height > 0; }"""
    ), "the cited span is not scrolled into view"
    screenshot(page, artifacts, "citation")


@pytest.mark.browser
def test_unsupported_sentences_are_marked(page, served):
    """The answer the server gives, with one sentence reported unsupported: the page marks
    it with a visible label, not colour alone."""
    req = urllib.request.Request(
        served["url"] + "/api/ask",
        data=json.dumps({"question": "how do I name a tmux session?"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as res:
        answer = json.load(res)
    assert answer["sentences"]
    answer["sentences"][-1]["status"] = "unsupported"
    body = (
        'event: token\r\ndata: {"text": "..."}\r\n\r\nevent: answer\r\ndata: '
        + json.dumps(answer)
        + "\r\n\r\n"
    )
    page.route(
        "**/api/ask/stream",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body),
    )
    open_page(page, "#ask")
    page.fill("#question", "how do I name a tmux session?")
    page.press("#question", "Enter")
    bad = page.locator(".sentence.unsupported")
    bad.wait_for()
    assert bad.count() == 1 and bad.locator(".flag").inner_text().lower() == "unsupported"
    assert "wavy" in bad.evaluate("e => getComputedStyle(e).textDecorationStyle")
    assert page.locator(".sentence.supported .flag").count() == 0


@pytest.mark.browser
def test_sources_list_each_note_once_with_its_passages_beneath(page, served, artifacts):
    """An answer may draw on several chunks of one note (one listed `Apollo_program` five
    times): the Sources list names each note once, in the order first cited, with every
    passage ([n] and where it sits) beneath it, each opening its own span."""
    req = urllib.request.Request(
        served["url"] + "/api/ask",
        data=json.dumps({"question": "how do I name a tmux session?"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as res:
        answer = json.load(res)
    one = answer["sources"][0]
    other = {**one, "doc_id": one["doc_id"] + 1000, "title": "Another note", "path": "/x/y.md"}
    sources = [
        {**one, "n": 1},
        {**one, "n": 2, "start": 0, "end": 10, "heading": "Second part", "lines": [1, 2]},
        {**other, "n": 3, "start": 5, "end": 9},
        {**one, "n": 4, "start": 11, "end": 20, "heading": "Third part", "lines": [3, 4]},
    ]
    answer["sources"] = sources
    body = "event: answer\r\ndata: " + json.dumps(answer) + "\r\n\r\n"
    page.route(
        "**/api/ask/stream",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body),
    )
    open_page(page, "#ask")
    page.fill("#question", "how do I name a tmux session?")
    page.press("#question", "Enter")
    page.wait_for_selector(".turn .sources .passages")
    notes = page.locator(".turn .sources > li")
    assert notes.count() == 2
    assert notes.nth(0).locator("a.open-doc").first.inner_text() == one["title"]
    assert notes.nth(1).locator("a.open-doc").first.inner_text() == "Another note"
    links = [notes.nth(i).locator(".passages a") for i in range(2)]
    assert [x.all_inner_texts() for x in links] == [["[1]", "[2]", "[4]"], ["[3]"]]
    for n, link in zip([1, 2, 4, 3], links[0].all() + links[1].all(), strict=True):
        s = sources[n - 1]
        assert link.get_attribute("href") == f"/doc/{s['doc_id']}?start={s['start']}&end={s['end']}"
    assert "Second part" in notes.nth(0).locator(".passages li").nth(1).inner_text()
    screenshot(page, artifacts, "sources")


@pytest.mark.browser
def test_ask_within_the_search_filters(page):
    open_page(page)
    page.wait_for_selector("#f-folder option[value='git/**']", state="attached")
    page.select_option("#f-folder", "git/**")
    page.click("nav a[href='#ask']")
    page.check("#ask-filtered")
    page.fill("#question", "how do I undo the last commit?")
    page.press("#question", "Enter")
    page.wait_for_selector(".turn .sources li")
    wheres = page.locator(".turn .sources .where").all_inner_texts()
    assert wheres and all(w.strip().startswith("til/git/") for w in wheres), wheres


@pytest.mark.browser
def test_conversations_are_listed_and_resumable(page, served):
    open_page(page, "#ask")
    page.fill("#question", "how do I rename a tmux session?")
    page.press("#question", "Enter")
    page.wait_for_selector(".turn .answer:not([aria-busy])")
    cid = page.locator("#conv-label").inner_text().split()[1].rstrip(":")
    page.wait_for_selector(f"#conv-list button[data-id='{cid}']")

    page.click("#new-conv")
    assert page.locator(".turn").count() == 0
    page.click(f"#conv-list button[data-id='{cid}']")
    page.wait_for_selector(".turn")
    assert "rename a tmux session" in page.locator(".turn .question").first.inner_text()
    page.fill("#question", "and how do I kill it?")
    page.press("#question", "Enter")
    wait_until(page, "document.querySelectorAll('.turn .answer:not([aria-busy])').length === 2")
    turns = api(served, f"/api/conversations/{cid}")["turns"]
    assert [t["question"] for t in turns][-2:] == [
        "how do I rename a tmux session?",
        "and how do I kill it?",
    ]


# ---- status, sync, evaluation history ------------------------------------------------------------


@pytest.mark.browser
def test_status_view_shows_counts_failures_and_syncs(page, served, artifacts):
    open_page(page, "#status")
    page.wait_for_selector("#stat-files")
    status = served["status"]
    assert page.inner_text("#stat-files") == str(status["files"])
    assert page.inner_text("#stat-chunks") == str(status["chunks"])
    problems = page.locator("#status-body table").inner_text()
    assert "extra/binary.md" in problems and "binary content" in problems
    assert page.locator(".roots li").count() == 2
    screenshot(page, artifacts, "status")

    (served["extra"] / "new-note.md").write_text("# New note\n\nA quokka appeared in the notes.\n")
    page.click("#sync")
    wait_until(page, "document.getElementById('sync-status').textContent.startsWith('Synced')")
    assert "1 added" in page.inner_text("#sync-status")
    wait_until(
        page, f"document.getElementById('stat-files').textContent === '{status['files'] + 1}'"
    )


@pytest.mark.browser
def test_evaluation_history_and_its_report(page, artifacts):
    open_page(page, "#evals")
    page.wait_for_selector("#evals-body table")
    row = page.locator("#evals-body tbody tr").first.inner_text()
    assert "til-questions" in row and "0.610" in row
    page.click("#evals-body button:has-text('Run 1')")
    report = page.locator("#eval-report")
    report.locator("table").wait_for()
    assert "recall@10" in report.inner_text() and "0.8300" in report.inner_text()
    screenshot(page, artifacts, "evals")


@pytest.mark.browser
def test_the_page_works_behind_an_api_key(browser, served):
    """Bound beyond loopback, `kenning serve` wants a key: the browser opens /?key=KEY once,
    and the page's own requests then carry it (an HttpOnly cookie), streams included."""
    app = create_app(
        served["location"], embedder="hash", security=Security(api_key="s3cret"), mcp=False
    )
    with BackgroundServer(app) as server:
        context = browser.new_context(base_url=server.url)
        page = context.new_page()
        try:
            assert page.goto("/").status == 401
            open_page(page, "?key=s3cret")
            assert "key=" not in page.url
            page.fill("#q", "tmux session")
            page.press("#q", "Enter")
            page.wait_for_selector(".hit")
            page.goto("/#ask")
            page.fill("#question", "how do I name a tmux session?")
            page.press("#question", "Enter")
            page.wait_for_selector(".turn .sentence")
        finally:
            context.close()


# ---- phone-sized screen --------------------------------------------------------------------------


@pytest.mark.browser
def test_phone_sized_screen_has_no_horizontal_overflow(browser, served, artifacts):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        base_url=served["url"],
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        open_page(page)
        page.fill("#q", "postgres vacuum a table")
        page.press("#q", "Enter")
        page.wait_for_selector(".hit")
        page.locator(".hit .explain summary").first.click()
        no_horizontal_overflow(page)
        screenshot(page, artifacts, "phone-search")
        page.locator(".hit-title a").first.click()
        page.wait_for_selector("#reader #cited")
        no_horizontal_overflow(page)
        width = page.evaluate("document.getElementById('reader').getBoundingClientRect().width")
        assert width == 390  # the reader takes the whole screen
        screenshot(page, artifacts, "phone-reader")
        page.click("#reader-close")
        for view, ready in (
            ("#ask", "#question"),
            ("#status", "#stat-files"),
            ("#evals", "#evals-body table"),
        ):
            page.goto("/" + view)
            page.wait_for_selector(ready)
            no_horizontal_overflow(page)
        screenshot(page, artifacts, "phone-evals")
    finally:
        context.close()


@pytest.mark.browser
def test_every_view_opened_by_link_or_address_is_the_only_one_shown(page):
    """agent.js and quiz.js add their views to app.js's one router; two routers once disagreed."""
    names = ["search", "ask", "status", "evals", "agent", "quiz"]

    def shown() -> list[str]:
        return page.evaluate(
            "[...document.querySelectorAll('main .view')].filter((v) => !v.hidden).map((v) => v.id)"
        )

    def current() -> list[str]:
        return page.evaluate(
            "[...document.querySelectorAll('nav a[aria-current=page]')].map((a) => a.dataset.view)"
        )

    for name in names:  # typed into the address bar: the page loads at that view
        open_page(page, "#" + name)
        wait_until(page, f"!document.getElementById('view-{name}').hidden")
        assert shown() == [f"view-{name}"] and current() == [name]
    for name in reversed(names):  # then moving between views by the navigation links
        page.click(f'nav a[data-view="{name}"]')
        wait_until(page, f"!document.getElementById('view-{name}').hidden")
        assert shown() == [f"view-{name}"] and current() == [name]


# ---- rendering a cited span (no browser) ---------------------------------------------------------

_MARKS = re.compile(r'<mark class="cited"(?: id="cited")?>|</mark>')


def test_marking_a_span_never_changes_how_a_note_renders(served):
    """For a sample of real chunks: the note with its span marked renders exactly as the note
    without, once the marks are taken out; and the marks hold the span's words."""
    import sqlite3

    db = sqlite3.connect(served["location"])
    rows = db.execute(
        'SELECT s.path, c.start, c."end" FROM chunks c JOIN sources s ON s.id = c.source_id '
        "WHERE s.type = 'markdown' ORDER BY c.id"
    ).fetchall()
    db.close()
    plain: dict[str, tuple[str, str]] = {}
    for path, start, end in rows[::25]:
        if path not in plain:
            text = Path(path).read_text(encoding="utf-8").removeprefix("\ufeff")
            plain[path] = (text, render_markdown(text))
        text, rendered = plain[path]
        marked = render_markdown(text, (start, end))
        assert marked.count('id="cited"') == 1, (path, start, end)
        assert _MARKS.sub("", marked) == rendered, (path, start, end)


def test_a_span_across_markdown_blocks_stays_well_formed():
    text = "# Title\n\nSome *intro* text.\n\n```bash\n$ git reset HEAD~\n```\n\n- one\n- two\n"
    start, end = text.index("Title"), text.index("two") + 3
    out = render_markdown(text, (start, end))
    assert _MARKS.sub("", out) == render_markdown(text)
    assert out.count("<mark") == out.count("</mark>") >= 5
    assert '<pre><code class="language-bash"><mark class="cited">$ git reset HEAD~' in out
    # a span starting at a heading or a list bullet leaves the syntax alone
    out = render_markdown(text, (text.index("- one"), len(text)))
    assert '<li><mark class="cited" id="cited">one</mark></li>' in out
    # a table stays a table (its alignment as classes: the page's CSP allows no inline style)
    table = "Intro.\n\n| a | b |\n|--:|:-:|\n| 1 | 2 |\n"
    out = render_markdown(table, (table.index("|"), len(table)))
    assert _MARKS.sub("", out) == render_markdown(table) and "style=" not in out
    assert '<td class="align-right"><mark class="cited">1</mark></td>' in out
    # raw HTML and javascript: links are never live; plain text is escaped
    hostile = render_markdown(HOSTILE, (HOSTILE.index("The"), HOSTILE.index("Zebra")))
    assert "<script" not in hostile and "<img" not in hostile and 'href="javascript' not in hostile
    assert (
        render_plain("<b>x</b> y", (0, 8))
        == '<pre class="plain"><mark class="cited" id="cited">&lt;b&gt;x&lt;/b&gt;</mark> y</pre>'
    )


# ---- back into the vault -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vault_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server over an Obsidian vault ("My Notes", a folder with .obsidian/)."""
    base = tmp_path_factory.mktemp("vault")
    vault = base / "My Notes"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / "terminal").mkdir()
    (vault / "terminal" / "tmux basics.md").write_text(
        "# tmux basics\n\n## Sessions & windows\n\n"
        "Name a tmux session with tmux new -s work, and rename it with prefix then $.\n"
    )
    location = base / "index.db"
    with Index.open(location, embedder="hash") as index:
        index.add([vault])
    (base / "kenning.toml").write_text("[thresholds]\nrefuse = 0.0\n")
    app = create_app(location, embedder="hash", security=Security.for_bind("127.0.0.1", None))
    with BackgroundServer(app) as server:
        yield {"url": server.url, "vault": vault}


@pytest.mark.browser
def test_a_citation_and_a_hit_open_the_note_in_obsidian(browser, vault_served, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(vault_served["url"] + "/#ask")
        page.wait_for_selector("body[data-ready]")
        page.fill("#question", "how do I name a tmux session?")
        page.press("#question", "Enter")
        page.wait_for_selector(".turn .sentence")
        expected = (
            "obsidian://open?vault=My%20Notes"
            "&file=terminal%2Ftmux%20basics%23Sessions%20%26%20windows"
        )
        cited = page.locator(".turn .sources a.open-app").first
        assert cited.get_attribute("href") == expected
        assert cited.inner_text().endswith("tmux basics.md")
        assert "Obsidian" in (cited.get_attribute("aria-label") or "")
        screenshot(page, artifacts, "vault-sources")

        page.goto(vault_served["url"] + "/")
        page.wait_for_selector("body[data-ready]")
        page.fill("#q", "rename a tmux session")
        page.click("#search-form button[type=submit]")
        page.wait_for_selector(".hit")
        assert page.locator(".hit .where a.open-app").first.get_attribute("href") == expected
    finally:
        context.close()
    assert not errors, f"errors on the page: {errors}"
