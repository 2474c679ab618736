"""``POST /api/agent`` (JSON and streamed), the runs' traces over HTTP, and the web page's Agent
view in real Chromium. The server's answerer is the openai backend pointed at the local tool
server of test_native, so the model really picks several tools."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import events, make_index, running
from test_native import ToolServer, serve

SCRIPT = [("links", {"note": "attention"}), ("read", {"note": "softmax"}), None]
QUESTION = "what does the note attention links to say?"

pytestmark = pytest.mark.slow  # a real server, and the openai SDK behind it


@pytest.fixture
def tool_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToolServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with serve(list(SCRIPT) * 3) as srv:
        yield srv


@pytest.fixture
def db(tmp_path: Path, tool_server: ToolServer) -> Path:
    db, _ = make_index(tmp_path)
    toml = (db.parent / "kenning.toml").read_text()
    (db.parent / "kenning.toml").write_text(
        toml + f'\n[answer]\nllm = "openai"\n\n[llm.openai]\nmodel = "m"\n'
        f'base_url = "{tool_server.url}/v1"\napi_key = "k"\nmax_retries = 0\n'
    )
    return db


def post(url: str, body: dict[str, Any], stream: bool = False) -> Any:
    headers = {"Content-Type": "application/json"}
    if stream:
        headers["Accept"] = "text/event-stream"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as res:
        text = res.read().decode()
        return (res.headers["Content-Type"], text)


def test_agent_json_and_stream_and_runs(db: Path) -> None:
    with running(db, embedder="hash") as server:
        kind, text = post(server.url + "/api/agent", {"question": QUESTION})
        data = json.loads(text)
        assert kind.startswith("application/json")
        assert [s["tool"] for s in data["steps"]] == ["links", "read"]
        assert data["sentences"][0]["status"] == "supported" and data["sources"][0]["doc_id"]
        assert len(data["run_id"]) == 32

        kind, text = post(server.url + "/api/agent", {"question": QUESTION}, stream=True)
        assert kind.startswith("text/event-stream")
        got = events(text)
        names = [name for name, _ in got]
        assert names[:2] == ["step", "step"] and "token" in names and names[-1] == "answer"
        assert names.index("token") > 1  # the steps come first, then the answer streams
        assert got[1][1]["tool"] == "read" and "probabilities" in got[1][1]["result"]
        final = got[-1][1]

        with urllib.request.urlopen(server.url + "/api/agent/runs") as res:
            runs = json.load(res)["runs"]
        assert [r["run_id"] for r in runs] == [final["run_id"], data["run_id"]]
        with urllib.request.urlopen(f"{server.url}/api/agent/runs/{final['run_id'][:10]}") as res:
            tree = json.load(res)
        assert tree["name"] == "invoke_agent kenning"
        tools = [c["attributes"]["gen_ai.tool.name"] for c in tree["children"]
                 if c["attributes"]["gen_ai.operation.name"] == "execute_tool"]  # fmt: skip
        assert tools == ["links", "read"]


def test_v1_kenning_agent_model(db: Path, tool_server: ToolServer) -> None:
    """``model: kenning-agent`` on the OpenAI-compatible route runs the agent, streamed and
    not; the earlier turns reach the model as the conversation."""
    earlier = [
        {"role": "user", "content": "what is attention?"},
        {"role": "assistant", "content": "A weighting of tokens [1]."},
    ]
    with running(db, embedder="hash") as server:
        url = server.url + "/v1/chat/completions"
        body = {
            "model": "kenning-agent",
            "messages": [*earlier, {"role": "user", "content": QUESTION}],
        }
        _, text = post(url, body)
        reply = json.loads(text)
        content = reply["choices"][0]["message"]["content"]
        assert content.startswith("The softmax function turns scores into probabilities [1].")
        assert "\n\nSources:\n[1] " in content and "softmax.md" in content
        kenning = reply["kenning"]
        assert [s["tool"] for s in kenning["steps"]] == ["links", "read"]
        assert len(kenning["run_id"]) == 32 and reply["citations"][0]["cited"]
        first = tool_server.requests[0]["messages"]
        assert [m["content"] for m in first[1:4]] == [*(m["content"] for m in earlier), QUESTION]

        kind, text = post(url, {**body, "stream": True})
        assert kind.startswith("text/event-stream")
        chunks = [json.loads(line[6:]) for line in text.splitlines()
                  if line.startswith("data: ") and line != "data: [DONE]"]  # fmt: skip
        steps = [c["kenning_step"] for c in chunks if "kenning_step" in c]
        assert [s["tool"] for s in steps] == ["links", "read"]
        said = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert said == content and chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["kenning"]["run_id"] != kenning["run_id"]

        # the plain model still answers with `ask`: no steps
        _, text = post(url, {**body, "model": "kenning"})
        assert "steps" not in json.loads(text)["kenning"]


def test_a_bad_request_is_422(db: Path) -> None:
    from starlette.testclient import TestClient

    from kenning.serve.app import create_app

    with TestClient(create_app(db, embedder="hash")) as client:
        assert client.post("/api/agent", json={"question": ""}).status_code == 422
        assert client.post("/api/agent", json={"question": "x", "steps": 0}).status_code == 422
        assert client.get("/api/agent/runs/ffffff").status_code == 404


@pytest.mark.browser
def test_the_page_shows_a_runs_steps_and_its_trace(db: Path) -> None:
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is not installed (./install.sh installs it)"
    with running(db, embedder="hash") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(base_url=server.url)
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/#agent")
        page.wait_for_selector("body[data-ready]")
        page.fill("#agent-question", QUESTION)
        page.click("#agent-form button[type=submit]")
        page.wait_for_selector("#agent-answer .agent-sources li")
        steps = page.locator(".agent-step")
        assert steps.count() == 2
        assert steps.nth(0).locator(".agent-call").inner_text() == 'links(note="attention")'
        result = steps.nth(1).locator(".agent-result")
        assert not result.is_visible()  # collapsed until opened
        steps.nth(1).locator("summary").click()
        assert "probabilities" in result.inner_text()
        assert page.locator("#agent-answer .sentence.supported").count() >= 1
        # the run is listed; opening it shows its trace
        page.locator("#agent-runs button").first.click()
        page.wait_for_selector("#agent-trace .agent-span")
        trace = page.locator("#agent-trace").inner_text()
        assert "invoke_agent kenning" in trace and "execute_tool read" in trace
        browser.close()
        assert not errors, errors
