"""Who may talk to ``kenning serve``: bind rules, the API key, hosts and origins.

The notes behind the server are private, so the defaults are closed:

- The server binds to loopback (127.0.0.1) unless told otherwise, and binding to any other
  address needs an API key (``KENNING_API_KEY``); ``check_bind`` refuses to start without one.
- With a key, every request (the JSON API, the web page, the OpenAI routes, MCP over HTTP)
  carries ``Authorization: Bearer KEY``; the comparison is constant-time. A browser, which
  cannot add that header to a page load, may open ``/?key=KEY`` once: the key moves into an
  HttpOnly, SameSite=Strict cookie and the address bar loses it.
- On loopback, requests must name a loopback host (``Host: 127.0.0.1:8000``), so a web page
  whose domain is re-pointed at 127.0.0.1 (DNS rebinding) cannot read the notes; and a
  cross-site form cannot make the server do work (a state-changing request whose ``Origin``
  is another site is refused).
- Request bodies are limited (413; FastAPI's own limit, set by ``create_app``), and CORS is
  off unless origins are configured.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from kenning.errors import ConfigError

#: default largest request body: a question or a batch of texts to embed, not a file upload
MAX_BODY = 1_000_000
COOKIE = "kenning_key"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Security:
    """The server's access settings (see the module docstring)."""

    api_key: str | None = None
    max_body: int = MAX_BODY
    #: hosts a request may name; None accepts any (a non-loopback bind, behind the key)
    allowed_hosts: frozenset[str] | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def for_bind(
        cls,
        host: str,
        api_key: str | None,
        max_body: int = MAX_BODY,
        cors_origins: tuple[str, ...] = (),
    ) -> Security:
        """Settings for a server bound to ``host``; refuses a non-loopback bind without a key."""
        check_bind(host, api_key)
        hosts = LOOPBACK_HOSTS if is_loopback(host) else None
        return cls(api_key or None, max_body, hosts, tuple(cors_origins))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a host name) stays on this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve the notes beyond this machine without an API key."""
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"refusing to bind to {host}: any other machine could read your notes. Set "
            "KENNING_API_KEY to a long random secret (clients send it as "
            "'Authorization: Bearer KEY'), or bind to 127.0.0.1."
        )


def key_matches(given: str | None, key: str) -> bool:
    """Constant-time comparison, so response timing does not reveal the key."""
    return given is not None and hmac.compare_digest(given.encode(), key.encode())


def request_host(value: str) -> str:
    """The host part of a ``Host`` header: ``[::1]:8000`` -> ``::1``, ``a:80`` -> ``a``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware enforcing ``Security``: hosts, origins and the API key."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app, self.security = app, security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._place(scope, headers)
        key = self.security.api_key
        if refusal is None and key:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if scope.get("method") == "GET" and key_matches(query.get("key", [None])[0], key):
                # The browser's way in: keep the key in a cookie, drop it from the address bar.
                rest = urlencode({k: v for k, v in query.items() if k != "key"}, doseq=True)
                location = scope["path"] + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={key}; HttpOnly; SameSite=Strict; Path=/"
                await _send_json(send, 303, {}, [("location", location), ("set-cookie", cookie)])
                return
            if not _has_key(headers, key):
                refusal = (
                    401,
                    "missing or wrong API key: send 'Authorization: Bearer KEY'",
                    [("www-authenticate", "Bearer")],
                )
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            status, message, extra = refusal
            await _send_json(send, status, {"detail": message, "error": "Refused"}, extra)

    def _place(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]]] | None:
        """Refuse a request that names a foreign host, or a cross-site request with effects."""
        s = self.security
        host = headers.get("host", "")
        if s.allowed_hosts is not None and request_host(host) not in s.allowed_hosts:
            return 400, "this server answers to 127.0.0.1 or localhost only", []
        origin = headers.get("origin")
        if origin and scope.get("method") not in _SAFE_METHODS:
            own = urlsplit(origin).netloc.lower() == host.lower()
            if not own and origin not in s.cors_origins:
                return 403, f"requests from {origin} are not allowed (see --cors-origin)", []
        return None


def _has_key(headers: dict[str, str], key: str) -> bool:
    auth = headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    cookies = dict(
        part.strip().split("=", 1) for part in headers.get("cookie", "").split(";") if "=" in part
    )
    return key_matches(bearer, key) or key_matches(cookies.get(COOKIE), key)


async def _send_json(send: Send, status: int, body: dict, headers: list[tuple[str, str]]) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
