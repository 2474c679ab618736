"""Native tool calling on the remote backends, through the real SDKs, against local servers
that speak each protocol's tool calls (OpenAI ``tool_calls``, Anthropic ``tool_use``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kenning import Index
from kenning.agent import Agent, caller_for
from kenning.agent.native import AnthropicCaller, OpenAICaller
from kenning.answer.remote import AnthropicLLM, OpenAILLM
from kenning.errors import RemoteLLMError

#: the SDKs take seconds to import and start on two cores
pytestmark = pytest.mark.slow

ANSWER = "The softmax function turns scores into probabilities [1]."


class ToolServer(ThreadingHTTPServer):
    """Answers each request that offers tools with the next scripted call (a dict of
    name/arguments, a raw arguments string, or None for plain text); streams ``ANSWER``
    to a request without tools."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, script: list[Any]) -> None:
        super().__init__(("127.0.0.1", 0), ToolHandler)
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class ToolHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ToolServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.server.requests.append({"path": self.path, **body})
        anthropic = self.path == "/v1/messages"
        if "tools" not in body:
            return self.stream_anthropic() if anthropic else self.stream_openai()
        step = self.server.script.pop(0) if self.server.script else None
        self.json(self.anthropic_reply(step) if anthropic else self.openai_reply(step, body))

    def json(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def events(self, lines: list[str]) -> None:
        data = "".join(lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def openai_reply(self, step: Any, body: dict[str, Any]) -> dict[str, Any]:
        n = len(self.server.requests)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if step is None:
            message["content"] = "I can answer now."
        else:
            args = step[1] if isinstance(step[1], str) else json.dumps(step[1])
            message["tool_calls"] = [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": step[0], "arguments": args},
                }
            ]
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}
        usage = {"prompt_tokens": 100 + n, "completion_tokens": 10, "total_tokens": 110 + n}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [choice], "usage": usage}  # fmt: skip

    def anthropic_reply(self, step: Any) -> dict[str, Any]:
        n = len(self.server.requests)
        if step is None:
            content: list[dict[str, Any]] = [{"type": "text", "text": "I can answer now."}]
        else:
            content = [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": f"toolu_{n}", "name": step[0], "input": step[1]},
            ]
        return {"id": "msg", "type": "message", "role": "assistant", "model": "claude-test",
                "content": content, "stop_reason": "tool_use", "stop_sequence": None,
                "usage": {"input_tokens": 200 + n, "output_tokens": 20}}  # fmt: skip

    def stream_openai(self) -> None:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choices = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
            body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                    "choices": [] if extra else choices, **extra}  # fmt: skip
            return f"data: {json.dumps(body)}\n\n"

        usage = {"prompt_tokens": 300, "completion_tokens": 12, "total_tokens": 312}
        self.events(
            [
                chunk({"role": "assistant", "content": ANSWER}),
                chunk({}, "stop"),
                chunk({}, usage=usage),
                "data: [DONE]\n\n",
            ]  # fmt: skip
        )

    def stream_anthropic(self) -> None:
        def event(name: str, **data: Any) -> str:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

        message = {"id": "m", "type": "message", "role": "assistant", "model": "claude-test",
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 300, "output_tokens": 1}}  # fmt: skip
        self.events(
            [
                event("message_start", message=message),
                event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                event("content_block_delta", index=0, delta={"type": "text_delta", "text": ANSWER}),
                event("content_block_stop", index=0),
                event(
                    "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 12}
                ),
                event("message_stop"),
            ]
        )


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for vendor in ("OPENAI", "ANTHROPIC"):
        for name in ("API_KEY", "BASE_URL", "MODEL"):
            monkeypatch.delenv(f"{vendor}_{name}", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def serve(script: list[Any]) -> Any:
    class Running:
        def __enter__(self) -> ToolServer:
            self.srv = ToolServer(script)
            self.thread = threading.Thread(
                target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}
            )
            self.thread.start()
            return self.srv

        def __exit__(self, *exc: object) -> None:
            self.srv.shutdown()
            self.srv.server_close()
            self.thread.join(5)

    return Running()


@pytest.fixture
def vault(index: Index, notes: Path) -> Iterator[Index]:
    index.add([notes])
    yield index


SCRIPT = [("links", {"note": "attention"}), ("read", {"note": "softmax"}), None]


def test_openai_tool_calls(vault: Index) -> None:
    with serve(list(SCRIPT)) as srv:
        llm = OpenAILLM(model="m", base_url=f"{srv.url}/v1", api_key="k", max_retries=0)
        agent = Agent(vault, llm)
        assert isinstance(agent.caller, OpenAICaller)
        run = agent.run("what does the note attention links to say?")
    assert [s.tool for s in run.steps] == ["links", "read"]
    assert run.answer.text == ANSWER and run.answer.sentences[0].citations == [1]
    first, second, third, final = srv.requests
    assert [t["function"]["name"] for t in first["tools"]] == [
        "search", "read", "list", "links", "ask"
    ]  # fmt: skip
    assert first["tools"][1]["function"]["parameters"]["required"] == ["note"]
    assert first["messages"][0]["role"] == "system" and first["messages"][1]["content"].startswith(
        "what"
    )
    # the call and its result went back as the protocol wants: tool_calls, then a tool message
    call, result = third["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "read"
    assert result["role"] == "tool" and result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert "probabilities" in result["content"]
    assert second["messages"][-1]["tool_call_id"] == "call_1"
    assert "tools" not in final and final["stream"] is True
    assert run.answer.usage.prompt_tokens == 101 + 102 + 103 + 300


def test_anthropic_tool_use(vault: Index) -> None:
    with serve(list(SCRIPT)) as srv:
        llm = AnthropicLLM(model="claude-test", base_url=srv.url, api_key="k", max_retries=0)
        agent = Agent(vault, llm)
        assert isinstance(agent.caller, AnthropicCaller)
        run = agent.run("what does the note attention links to say?")
    assert [s.tool for s in run.steps] == ["links", "read"]
    assert run.answer.text == ANSWER
    first, _, third, _ = srv.requests
    assert first["tools"][0]["input_schema"]["required"] == ["query"]
    assert "system" in first and first["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "what does the note attention links to say?"}],
        }
    ]
    use, result = third["messages"][-2:]
    assert use["role"] == "assistant" and use["content"][0]["type"] == "tool_use"
    assert result["role"] == "user" and result["content"][0]["type"] == "tool_result"
    assert result["content"][0]["tool_use_id"] == use["content"][0]["id"]


def test_malformed_and_unknown_calls_go_back_as_errors(vault: Index) -> None:
    script = [("search", "{not json"), ("grep", {"pattern": "x"}), ("search", {"query": "softmax"})]
    with serve(script) as srv:
        llm = OpenAILLM(model="m", base_url=f"{srv.url}/v1", api_key="k", max_retries=0)
        run = Agent(vault, llm).run("what is softmax?")
    assert [s.valid for s in run.steps] == [False, False, True]
    assert "not JSON" in (run.steps[0].error or "") and "no tool 'grep'" in (
        run.steps[1].error or ""
    )
    assert "not a valid call" in srv.requests[1]["messages"][-1]["content"]


def test_a_dead_server_is_a_remote_error(vault: Index) -> None:
    with serve([]) as srv:
        url = srv.url
    llm = OpenAILLM(model="m", base_url=f"{url}/v1", api_key="k", max_retries=0, timeout=2)
    with pytest.raises(RemoteLLMError, match="cannot reach"):
        Agent(vault, llm).run("what is softmax?")


def test_caller_for_picks_by_backend() -> None:
    llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert isinstance(caller_for(llm), OpenAICaller)
