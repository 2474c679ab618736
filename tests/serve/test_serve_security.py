"""Who may talk to `kenning serve`: bind rules, the API key on every route, hosts, origins,
body limits and CORS, each checked over a real socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from serving import make_index, running
from typer.testing import CliRunner

from kenning.cli import app as cli
from kenning.errors import ConfigError
from kenning.serve.security import Security, check_bind, is_loopback, request_host

KEY = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_index(tmp_path_factory.mktemp("security"))[0]


@pytest.fixture(scope="module")
def keyed(db: Path) -> Iterator[str]:
    with running(db, Security(api_key=KEY)) as server:
        yield server.url


def test_loopback_is_told_apart_from_other_addresses() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com", "10.0.0.1"):
        assert not is_loopback(host), host
        with pytest.raises(ConfigError, match="KENNING_API_KEY"):
            check_bind(host, None)
        check_bind(host, KEY)
    assert request_host("[::1]:8000") == "::1" and request_host("LocalHost:80") == "localhost"


def test_serve_refuses_a_non_loopback_bind_without_a_key(db: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KENNING_API_KEY"}
    result = CliRunner(env=env).invoke(cli, ["--index", str(db), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2, result.output
    assert "refusing to bind to 0.0.0.0" in result.output and "KENNING_API_KEY" in result.output


def test_every_route_needs_the_key_when_one_is_set(keyed: str) -> None:
    routes = [
        ("GET", "/api/search?q=softmax"),
        ("GET", "/api/status"),
        ("GET", "/api/documents/1"),
        ("POST", "/api/sync"),
        ("GET", "/v1/models"),
        ("POST", "/mcp"),
        ("GET", "/"),
        ("GET", "/api/openapi.json"),
        ("GET", "/no/such/route"),
    ]
    with httpx.Client(base_url=keyed, timeout=30) as client:
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                r = client.request(method, path, headers=headers)
                assert r.status_code == 401, (method, path, headers)
                assert r.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {KEY}"}
        assert client.get("/api/search?q=softmax", headers=good).status_code == 200
        assert client.get("/v1/models", headers=good).status_code == 200


def test_a_browser_trades_the_key_in_the_address_for_a_cookie(keyed: str) -> None:
    with httpx.Client(base_url=keyed, timeout=30) as client:
        r = client.get("/", params={"key": KEY, "tab": "ask"})
        assert r.status_code == 303 and r.headers["location"] == "/?tab=ask"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert client.get("/api/status").status_code == 200  # the cookie now
        assert client.get("/", params={"key": "guess"}).status_code == 200  # cookie, not the guess
    assert httpx.get(keyed + "/", params={"key": "guess"}).status_code == 401


def test_loopback_servers_answer_only_to_loopback_host_names(db: Path) -> None:
    with running(db, Security.for_bind("127.0.0.1", None)) as server:
        port = server.url.rsplit(":", 1)[1]
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/api/status").status_code == 200
            for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
                assert client.get("/api/status", headers={"Host": host}).status_code == 200
            rebound = client.get("/api/status", headers={"Host": f"evil.example:{port}"})
            assert rebound.status_code == 400
            mcp = client.post("/mcp", headers={"Host": "evil.example"}, json={})
            assert mcp.status_code == 400


def test_a_cross_site_request_with_effects_is_refused(db: Path) -> None:
    with running(db) as server, httpx.Client(base_url=server.url) as client:
        r = client.post("/api/sync", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        assert client.get("/api/status", headers={"Origin": "http://evil.example"}).is_success
        own = server.url
        assert client.post("/api/sync", headers={"Origin": own}).status_code == 200


def test_oversized_bodies_get_413(db: Path) -> None:
    with running(db, Security(max_body=10_000)) as server, httpx.Client(base_url=server.url) as c:
        big = {"question": "x" * 20_000}
        assert c.post("/api/ask", json=big).status_code == 413
        assert c.post("/v1/embeddings", json={"input": ["y" * 20_000]}).status_code == 413

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"question": "'
            for _ in range(30):
                yield b"z" * 1000
            yield b'"}'

        headers = {"Content-Type": "application/json"}
        assert c.post("/api/ask", content=chunked(), headers=headers).status_code == 413
        assert c.post("/api/ask", json={"question": "softmax?"}).status_code == 200


def test_cors_is_off_unless_an_origin_is_configured(db: Path) -> None:
    origin = "http://notes.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    with running(db) as server, httpx.Client(base_url=server.url) as c:
        r = c.get("/api/status", headers={"Origin": origin})
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in c.options("/api/ask", headers=preflight).headers
    with running(db, Security(api_key=KEY, cors_origins=(origin,))) as server:
        with httpx.Client(base_url=server.url) as c:
            r = c.options("/api/ask", headers=preflight)  # a preflight carries no key
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
            r = c.post(
                "/api/ask",
                json={"question": "softmax?"},
                headers={"Origin": origin, "Authorization": f"Bearer {KEY}"},
            )
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin


def test_mcp_over_http_needs_the_key(keyed: str) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    seen: list[int] = []

    async def record(response: httpx.Response) -> None:
        seen.append(response.status_code)

    async def tools(headers: dict[str, str]) -> list[str]:
        hooks = {"response": [record]}
        async with httpx.AsyncClient(headers=headers, timeout=30, event_hooks=hooks) as http:
            async with Client(streamable_http_client(keyed + "/mcp", http_client=http)) as c:
                return [t.name for t in (await c.list_tools()).tools]

    names = asyncio.run(tools({"Authorization": f"Bearer {KEY}"}))
    assert sorted(names) == ["ask", "conflicts", "links", "read_document", "search"]
    assert 401 not in seen
    seen.clear()
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the refusal in task groups
        asyncio.run(tools({}))
    assert seen and set(seen) == {401}


@pytest.mark.slow
def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_kenning_serve_prints_its_url_and_serves_until_stopped(db: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("KENNING_API_KEY", None)
    command = [sys.executable, "-m", "kenning", "--index", str(db), "-q", "serve", "--port", "0"]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C as a terminal sends it, even where the suite runs as a background job
        # (whose shell ignores SIGINT, and a child inherits that)
        preexec_fn=_default_sigint,
    ) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith("kenning serve: http://127.0.0.1:"), line
            url = line.split(": ", 1)[1].strip().rstrip("/")
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = httpx.get(url + "/api/status", timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.1)
            assert r.status_code == 200 and r.json()["files"] == 5
        finally:
            proc.send_signal(signal.SIGINT)
            _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors


def test_the_listening_socket_names_tcp_so_responses_are_not_held_back() -> None:
    """asyncio turns Nagle's algorithm off only on sockets created as IPPROTO_TCP; without
    that, each keep-alive response waited ~40 ms for the client's delayed ACK."""
    from kenning.serve.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
