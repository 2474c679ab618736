"""The one place where kenning's typed exceptions become HTTP status codes.

It mirrors ``kenning.cli.shell.KenningGroup``, which turns the same tree into exit codes: a
``KenningError`` answers with its documented status and its own message; anything else is a
500 whose body is one line (the exception's type and message) and never a traceback, which
goes to the server's log instead. Routes raise the library's exceptions as they are; none of
them picks a status code itself. Under ``/v1`` the body has OpenAI's error shape, so OpenAI
clients show the message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kenning.errors import (
    ConfigError,
    KenningError,
    MissingExtra,
    ModelUnavailable,
    NotFound,
    RemoteLLMError,
)

from .pool import Busy

log = logging.getLogger("kenning.serve")

#: exception class -> HTTP status, most specific first; other KenningErrors are 500
STATUS: list[tuple[type[BaseException], int]] = [
    (NotFound, 404),
    (ConfigError, 400),  # UnknownBackend included
    (MissingExtra, 503),
    (ModelUnavailable, 503),  # ModelCorrupt included
    (RemoteLLMError, 502),
    (Busy, 409),  # another sync is running
]


def status_of(exc: BaseException) -> int:
    """The HTTP status for an exception (500 for anything unexpected)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def message_of(exc: BaseException) -> str:
    """One line: a kenning error's own message, else the type and message of the surprise."""
    text = str(exc) if isinstance(exc, KenningError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def error_body(exc: BaseException, path: str = "") -> dict[str, Any]:
    """The JSON body of an error response (OpenAI's shape under ``/v1``)."""
    message = message_of(exc)
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status_of(exc) < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "code": type(exc).__name__}}
    return {"detail": message, "error": type(exc).__name__}


def install(app: FastAPI) -> None:
    """Answer every ``KenningError`` with its status, and anything else with a one-line 500."""

    async def kenning_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(exc, request.url.path), status_of(exc))

    app.add_exception_handler(KenningError, kenning_error)
    app.add_middleware(Unexpected)


class Unexpected:
    """ASGI middleware: an exception no handler took becomes a one-line 500 (logged here with
    its traceback), unless the response has already started (a stream reports its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = json.dumps(error_body(exc, scope.get("path", ""))).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status_of(exc),
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
