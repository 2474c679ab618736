"""Streams: a blocking library call in a thread, its progress as Server-Sent Events.

The library is synchronous by design (an answer streams through an ``on_text`` callback, a
sync reports through a ``Progress``), and the server keeps it that way: ``run_streaming``
runs the call in a thread of its own and hands what it emits to the event loop, so a slow
answer holds no server thread while it waits for the client. If the client goes away the
call still finishes (its index goes back to the pool); what it emits after that is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from kenning.errors import KenningError

log = logging.getLogger("kenning.serve")

#: what ``run_streaming`` yields last: the call's return value, or the exception it raised
RESULT, ERROR = "result", "error"
Emit = Callable[[str, Any], None]
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any, event: str | None = None) -> str:
    """One Server-Sent Event; ``data`` is JSON on one line (or a string sent as it is)."""
    payload = data if isinstance(data, str) else json.dumps(data, default=str)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


def event_stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


async def run_streaming(work: Callable[[Emit], Any]) -> AsyncIterator[tuple[str, Any]]:
    """Run ``work(emit)`` in a thread; yield each ``(event, data)`` it emits, then
    ``(RESULT, value)`` or ``(ERROR, exception)``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()

    def put(item: tuple[str, Any] | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def run() -> None:
        try:
            put((RESULT, work(lambda event, data: put((event, data)))))
        except Exception as exc:
            if not isinstance(exc, KenningError):
                log.exception("unexpected error in a stream")
            put((ERROR, exc))
        finally:
            put(None)

    threading.Thread(target=run, name="kenning-stream", daemon=True).start()
    while (item := await queue.get()) is not None:
        yield item


class ProgressEvents:
    """A sync ``Progress`` that emits ``progress`` events: stage, done and total."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.name, self.done, self.total, self.unit = "", 0, 0, "files"

    def stage(self, name: str, total: int, unit: str = "files") -> None:
        self.name, self.done, self.total, self.unit = name, 0, total, unit
        self._send()

    def advance(self, files: int, chunks: int) -> None:
        self.done += files
        self._send()

    def _send(self) -> None:
        self.emit(
            "progress",
            {"stage": self.name, "done": self.done, "total": self.total, "unit": self.unit},
        )
