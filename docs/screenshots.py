"""Take the web page's screenshots in docs/img/ from the example notes.

    python docs/screenshots.py

Builds a fresh index of examples/notes in a temporary folder, serves it, and drives Debian's
chromium through Playwright (as tests/serve/test_web.py does): a search (web.png) and an answer
(web-ask.png). Needs the serve extra, playwright and `chromium` on the PATH.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from playwright.sync_api import sync_playwright

    from kenning import Index
    from kenning.serve.app import create_app
    from kenning.serve.server import BackgroundServer

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not on the PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples" / "notes", Path(tmp) / "notes")
        db = Path(tmp) / "index.db"
        with Index.open(db) as index:
            index.add([Path(tmp) / "notes"])
        with BackgroundServer(create_app(db)) as server, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(server.url + "/")
            page.fill("#q", "undo the last commit but keep my changes")
            page.click("#search-form button[type=submit]")
            page.wait_for_selector("#results li")
            time.sleep(0.5)
            page.screenshot(path=str(IMG / "web.png"))
            page.goto(server.url + "/#ask")
            page.fill("#question", "how do I name a tmux session?")
            page.click("#ask-form button[type=submit]")
            deadline = time.monotonic() + 120
            while "Answering" in page.inner_text("#ask-status") or not page.inner_text(
                "#ask-status"
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("no answer within 120 s")
                time.sleep(0.5)
            time.sleep(0.5)
            page.screenshot(path=str(IMG / "web-ask.png"))
            browser.close()
    print(f"wrote {IMG / 'web.png'} and {IMG / 'web-ask.png'}")


if __name__ == "__main__":
    main()
