"""The remote LLM backends against a real HTTP server on 127.0.0.1, through the real SDKs.

``FakeLLMServer`` is a small stdlib server that speaks just enough of two wire protocols:
OpenAI chat completions (streamed as ``data: {chunk}`` server-sent events ending with a usage
chunk and ``data: [DONE]``, or one JSON body) and Anthropic's Messages API (its typed SSE
events). It records every request, so the tests check what the SDKs actually sent: the model,
the messages, where the system prompt went, the token limit, the stream flag and the key's
header. Nothing in the SDKs is patched or mocked.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from kenning.answer.llms import Message, Prompt, get_llm  # noqa: E402
from kenning.answer.remote import (  # noqa: E402
    NO_KEY,
    AnthropicLLM,
    OpenAILLM,
    anthropic_messages,
)
from kenning.errors import ConfigError, KenningError, MissingExtra, RemoteLLMError  # noqa: E402

PIECES = ["The dough ", "rises for ", "12 hours ", "at room temperature [1]."]
TEXT = "".join(PIECES)
SYSTEM = "You answer from the user's notes and cite them."
QUESTION = "Passages:\n[1] kitchen/bread.md\nThe dough rises for 12 hours.\n\nQuestion: How long?"
PROMPT_TOKENS = 42
MISSING_MODEL = "missing-model"

#: variables the SDKs or kenning read, cleared so the developer's own settings never leak in
ENV_VARS = [
    f"{vendor}_{name}"
    for vendor in ("OPENAI", "ANTHROPIC")
    for name in ("API_KEY", "BASE_URL", "MODEL", "CUSTOM_HEADERS", "AUTH_TOKEN", "PROFILE")
] + ["OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_ADMIN_KEY", "ANTHROPIC_CONFIG_DIR"]


class FakeLLMServer(ThreadingHTTPServer):
    """An OpenAI-compatible and Anthropic-compatible server on a free local port."""

    # handler threads are joined on close, so none outlives its test
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.pieces = list(PIECES)
        #: answer every request with this HTTP error status instead
        self.status: int | None = None
        #: seconds to wait before answering (cut short when the server closes)
        self.delay = 0.0
        #: whether an OpenAI stream ends with the usage chunk when asked for one
        self.send_usage = True
        #: an Anthropic stream that fails after its first piece with an ``error`` event
        self.error_mid_stream = False
        #: a stream whose connection is cut after its first piece
        self.drop_mid_stream = False
        self.closing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def last(self) -> dict[str, Any]:
        assert self.requests, "the server received no request"
        return self.requests[-1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like real servers
    timeout = 5  # an idle kept-alive connection lets its thread go after this long
    server: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (gave up waiting, or stopped reading): nothing to answer

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, **body}
        )
        if self.server.delay and self.server.closing.wait(self.server.delay):
            self.close_connection = True  # the test is over; its client stopped waiting
            return
        try:
            if self.path == "/v1/chat/completions":
                self.openai(body)
            elif self.path == "/v1/messages":
                self.anthropic(body)
            else:  # like a web UI that answers every path with its page
                self.send_html("<!doctype html><html><body>Chat UI</body></html>")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            self.close_connection = True

    # -- plumbing

    def send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_html(self, page: str) -> None:
        data = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def drop(self) -> None:
        """Cut the connection mid-body: the client sees the chunked body end too soon."""
        self.wfile.flush()
        self.close_connection = True

    def start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, text: str) -> None:
        """One HTTP chunk, flushed at once so the client sees the answer arrive in pieces."""
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_events(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- OpenAI chat completions

    def openai(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if self.server.status is not None:
            self.send_json(
                self.server.status,
                {
                    "error": {
                        "message": "Incorrect API key provided: sk-wr***ng.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        if model == MISSING_MODEL:
            self.send_json(
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                },
            )
            return
        base = {"id": "chatcmpl-1", "created": int(time.time()), "model": model}
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": len(self.server.pieces),
            "total_tokens": PROMPT_TOKENS + len(self.server.pieces),
        }
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(self.server.pieces)}
            choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            self.send_json(
                200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return

        def event(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**base, "object": "chat.completion.chunk", "choices": choices, **extra}
            self.chunk(f"data: {json.dumps(chunk)}\n\n")

        def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "finish_reason": finish, "logprobs": None}]

        self.start_events()
        event(delta({"role": "assistant", "content": ""}))
        for n, piece in enumerate(self.server.pieces):
            if n == 1 and self.server.drop_mid_stream:
                return self.drop()
            event(delta({"content": piece}))
        event(delta({}, "stop"))
        if self.server.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            event([], usage=usage)
        self.chunk("data: [DONE]\n\n")
        self.end_events()

    # -- Anthropic Messages

    def anthropic(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if self.server.status is not None or model == MISSING_MODEL:
            status = self.server.status or 404
            kind, text = {
                401: ("authentication_error", "invalid x-api-key"),
                404: ("not_found_error", f"model: {model}"),
            }.get(status, ("api_error", "Internal server error"))
            self.send_json(status, {"type": "error", "error": {"type": kind, "message": text}})
            return

        def event(name: str, **data: Any) -> None:
            self.chunk(f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n")

        self.start_events()
        message: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
        }
        event("message_start", message=message)
        event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        event("ping")
        for n, piece in enumerate(self.server.pieces):
            if n == 1 and self.server.drop_mid_stream:
                return self.drop()
            if n == 1 and self.server.error_mid_stream:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                event("error", error=error)
                self.end_events()
                return
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        event("content_block_stop", index=0)
        event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": len(self.server.pieces)},
        )
        event("message_stop")
        self.end_events()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy must not catch local calls


S = TypeVar("S", bound="FakeLLMServer")


@contextmanager
def serving(srv: S) -> Iterator[S]:
    """Run ``srv`` on a thread for the duration of the block, then close it."""
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.closing.set()
        srv.shutdown()
        srv.server_close()  # joins the handler threads
        thread.join(5)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with serving(FakeLLMServer()) as srv:
        yield srv


@pytest.fixture
def prompt() -> Prompt:
    return Prompt(
        question="How long?",
        passages=[],
        messages=[Message("system", SYSTEM), Message("user", QUESTION)],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def anthropic_key(request: dict[str, Any]) -> str | None:
    """The key as the anthropic SDK sent it: ``x-api-key`` in 0.x, a bearer token in 2.x."""
    headers = request["headers"]
    if "x-api-key" in headers:
        return str(headers["x-api-key"])
    bearer = str(headers.get("authorization", ""))
    return bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None


def openai_llm(server: FakeLLMServer, **kwargs: Any) -> OpenAILLM:
    args: dict[str, Any] = {
        "model": "test-model",
        "base_url": f"{server.url}/v1",
        "api_key": "sk-test",
        "max_retries": 0,
        **kwargs,
    }
    return OpenAILLM(**args)


def anthropic_llm(server: FakeLLMServer, **kwargs: Any) -> AnthropicLLM:
    args: dict[str, Any] = {
        "model": "claude-test",
        "base_url": server.url,
        "api_key": "sk-ant-test",
        "max_retries": 0,
        **kwargs,
    }
    return AnthropicLLM(**args)


# -- OpenAI-compatible


def test_openai_streams_pieces_and_fills_usage(server: FakeLLMServer, prompt: Prompt) -> None:
    llm = openai_llm(server, max_new_tokens=64)
    pieces = list(llm.stream(prompt))
    assert pieces == PIECES and "".join(pieces) == TEXT
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens) == (PROMPT_TOKENS, len(PIECES))
    assert llm.id == "openai:test-model"

    sent = server.last()
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-test"
    assert sent["model"] == "test-model"
    assert sent["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 64 and "max_completion_tokens" not in sent
    assert sent["temperature"] == 0.0


def test_openai_without_usage_chunk(server: FakeLLMServer, prompt: Prompt) -> None:
    server.send_usage = False
    llm = openai_llm(server)
    assert "".join(llm.stream(prompt)) == TEXT
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens) == (0, 0)


def test_openai_complete_is_one_plain_request(server: FakeLLMServer, prompt: Prompt) -> None:
    llm = openai_llm(server, temperature=None)
    assert llm.complete(prompt) == TEXT
    assert llm.usage.prompt_tokens == PROMPT_TOKENS
    sent = server.last()
    assert not sent.get("stream") and "stream_options" not in sent
    assert "temperature" not in sent  # None leaves it to the model


def test_openai_stopped_early_closes_cleanly(server: FakeLLMServer, prompt: Prompt) -> None:
    gen = openai_llm(server).stream(prompt)
    assert isinstance(gen, Generator)
    assert next(gen) == PIECES[0]
    gen.close()  # the client and its connection close; no ResourceWarning (warnings are errors)


def test_openai_config_round_trip_keeps_no_key(server: FakeLLMServer, prompt: Prompt) -> None:
    llm = openai_llm(server, api_key="sk-secret", max_new_tokens=77, temperature=0.3)
    cfg = llm.config()
    assert "api_key" not in cfg and "sk-secret" not in json.dumps(cfg)
    assert cfg["base_url"] == f"{server.url}/v1" and cfg["model"] == "test-model"
    again = get_llm("openai", **cfg)
    assert isinstance(again, OpenAILLM)
    assert again.config() == cfg and again.id == llm.id
    assert "".join(again.stream(prompt)) == TEXT
    sent = server.last()
    # no key anywhere now: a local server gets the placeholder
    assert sent["headers"]["authorization"] == f"Bearer {NO_KEY}"
    assert sent["max_tokens"] == 77 and sent["temperature"] == 0.3


def test_openai_env_vars(
    server: FakeLLMServer, prompt: Prompt, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    llm = OpenAILLM(max_retries=0)
    assert llm.id == "openai:env-model"
    assert llm.config()["base_url"] == f"{server.url}/v1"
    assert "".join(llm.stream(prompt)) == TEXT
    sent = server.last()
    assert sent["model"] == "env-model"
    assert sent["headers"]["authorization"] == "Bearer sk-from-env"
    # arguments win over the environment
    OpenAILLM(model="arg-model", api_key="sk-arg", max_retries=0).complete(prompt)
    assert server.last()["model"] == "arg-model"
    assert server.last()["headers"]["authorization"] == "Bearer sk-arg"


def test_openai_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAILLM()


def test_openai_own_api_gets_max_completion_tokens(prompt: Prompt) -> None:
    request = OpenAILLM(api_key="sk-test", max_new_tokens=99)._request(prompt)
    assert request["max_completion_tokens"] == 99 and "max_tokens" not in request
    assert OpenAILLM(api_key="sk-test").url == "https://api.openai.com/v1"


def test_openai_refused_key_is_typed(server: FakeLLMServer, prompt: Prompt) -> None:
    server.status = 401
    llm = openai_llm(server, api_key="sk-wrong")
    with pytest.raises(RemoteLLMError) as info:
        list(llm.stream(prompt))
    err = info.value
    assert isinstance(err, KenningError) and err.exit_code == 6
    assert err.status == 401 and err.url == f"{server.url}/v1"
    assert f"{server.url}/v1" in str(err) and "OPENAI_API_KEY" in str(err)
    assert "Incorrect API key" in str(err)  # the server's own words


def test_openai_unknown_model_is_typed(server: FakeLLMServer, prompt: Prompt) -> None:
    with pytest.raises(RemoteLLMError, match="404") as info:
        openai_llm(server, model=MISSING_MODEL).complete(prompt)
    assert MISSING_MODEL in str(info.value) and "OPENAI_MODEL" in str(info.value)


def test_openai_unreachable_server_is_typed(prompt: Prompt) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAILLM(base_url=url, max_retries=0, timeout=5)
    with pytest.raises(RemoteLLMError, match="cannot reach") as info:
        list(llm.stream(prompt))
    assert url in str(info.value) and "OPENAI_BASE_URL" in str(info.value)
    assert info.value.status is None


def test_openai_timeout_is_typed(server: FakeLLMServer, prompt: Prompt) -> None:
    server.delay = 5  # the fixture cuts it short on teardown
    llm = openai_llm(server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RemoteLLMError, match="did not answer within 0.3 s") as info:
        list(llm.stream(prompt))
    assert time.monotonic() - started < 3
    assert server.url in str(info.value)


def test_bad_numbers_name_the_field() -> None:
    with pytest.raises(ConfigError, match="max_new_tokens"):
        OpenAILLM(base_url="http://127.0.0.1:1/v1", max_new_tokens=0)
    with pytest.raises(ConfigError, match="timeout"):
        AnthropicLLM(base_url="http://127.0.0.1:1", timeout=0)


# -- Anthropic


def test_anthropic_streams_pieces_and_fills_usage(server: FakeLLMServer, prompt: Prompt) -> None:
    llm = anthropic_llm(server, max_new_tokens=128)
    pieces = list(llm.stream(prompt))
    assert pieces == PIECES and "".join(pieces) == TEXT
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens) == (PROMPT_TOKENS, len(PIECES))
    assert llm.id == "anthropic:claude-test"

    sent = server.last()
    assert sent["path"] == "/v1/messages"
    assert anthropic_key(sent) == "sk-ant-test"
    assert "anthropic-version" in sent["headers"]
    assert sent["model"] == "claude-test"
    assert sent["system"] == SYSTEM  # the system prompt is a parameter, not a message
    assert sent["messages"] == [{"role": "user", "content": QUESTION}]
    assert sent["max_tokens"] == 128
    assert sent["stream"] is True
    assert "temperature" not in sent


def test_anthropic_temperature_is_sent_when_set(server: FakeLLMServer, prompt: Prompt) -> None:
    assert anthropic_llm(server, temperature=0.2).complete(prompt) == TEXT
    assert server.last()["temperature"] == 0.2


def test_anthropic_config_round_trip_and_env(
    server: FakeLLMServer, prompt: Prompt, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_MODEL", "claude-env")
    llm = AnthropicLLM(max_retries=0)
    cfg = llm.config()
    assert "api_key" not in cfg and "sk-ant-env" not in json.dumps(cfg)
    again = get_llm("anthropic", **cfg)
    assert again.config() == cfg and again.id == "anthropic:claude-env"
    assert again.complete(prompt) == TEXT
    assert anthropic_key(server.last()) == "sk-ant-env"
    assert server.last()["model"] == "claude-env"


def test_anthropic_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicLLM()


def test_anthropic_refused_key_is_typed(server: FakeLLMServer, prompt: Prompt) -> None:
    server.status = 401
    with pytest.raises(RemoteLLMError) as info:
        anthropic_llm(server).complete(prompt)
    assert info.value.status == 401 and server.url in str(info.value)
    assert "ANTHROPIC_API_KEY" in str(info.value) and "invalid x-api-key" in str(info.value)


def test_anthropic_unknown_model_is_typed(server: FakeLLMServer, prompt: Prompt) -> None:
    with pytest.raises(RemoteLLMError, match="404") as info:
        anthropic_llm(server, model=MISSING_MODEL).complete(prompt)
    assert "ANTHROPIC_MODEL" in str(info.value)


def test_anthropic_error_mid_stream_is_typed(server: FakeLLMServer, prompt: Prompt) -> None:
    server.error_mid_stream = True
    got: list[str] = []
    with pytest.raises(RemoteLLMError, match="Overloaded") as info:
        for piece in anthropic_llm(server).stream(prompt):
            got.append(piece)
    assert got == PIECES[:1]
    assert server.url in str(info.value)


def test_anthropic_unreachable_server_is_typed(prompt: Prompt) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteLLMError, match="cannot reach") as info:
        AnthropicLLM(base_url=url, max_retries=0).complete(prompt)
    assert url in str(info.value) and "ANTHROPIC_BASE_URL" in str(info.value)


def test_anthropic_messages_split_system_and_merge_turns() -> None:
    system, turns = anthropic_messages(
        [
            Message("system", "Be brief."),
            Message("user", "Example question"),
            Message("assistant", "Example answer"),
            Message("user", "Notes"),
            Message("user", "Question"),
        ]
    )
    assert system == "Be brief."
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[-1]["content"] == "Notes\n\nQuestion"


@pytest.mark.parametrize(("name", "cls"), [("openai", OpenAILLM), ("anthropic", AnthropicLLM)])
def test_missing_sdk_names_the_extra(
    name: str, cls: type[OpenAILLM | AnthropicLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # what an environment without the SDK sees
    with pytest.raises(MissingExtra, match=rf"kenning\[{name}\]"):
        cls(base_url="http://127.0.0.1:1")


def drain(llm: OpenAILLM | AnthropicLLM, prompt: Prompt, got: list[str]) -> None:
    for piece in llm.stream(prompt):
        got.append(piece)


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_dropped_connection_mid_stream_is_typed(
    backend: str, server: FakeLLMServer, prompt: Prompt
) -> None:
    server.drop_mid_stream = True
    llm = openai_llm(server) if backend == "openai" else anthropic_llm(server)
    got: list[str] = []
    with pytest.raises(RemoteLLMError, match="broke off in the middle of the answer") as info:
        drain(llm, prompt, got)
    assert got == PIECES[:1] and server.url in str(info.value)


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_url_that_is_not_the_api_is_typed(
    backend: str, server: FakeLLMServer, prompt: Prompt
) -> None:
    # the right server, the wrong root: the answer is a web page, not the protocol
    root = f"{server.url}/ui"
    llm = (
        openai_llm(server, base_url=root)
        if backend == "openai"
        else anthropic_llm(server, base_url=root)
    )
    with pytest.raises(RemoteLLMError, match="not the .* API") as info:
        list(llm.stream(prompt))
    assert root in str(info.value) and f"{backend.upper()}_BASE_URL" in str(info.value)
    if backend == "openai":
        with pytest.raises(RemoteLLMError, match="Chat UI"):
            llm.complete(prompt)
