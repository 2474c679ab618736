"""OpenAI-compatible routes under ``/v1``, so any OpenAI client or chat app can use the notes.

- ``GET /v1/models`` lists ``kenning`` (answers from the notes) and the index's embedder.
- ``POST /v1/chat/completions`` answers the last user message through ``kenning.answer.ask``,
  with the earlier user/assistant turns as the conversation (a follow-up is made to stand
  alone, as in `kenning chat`). The message is the answer with its ``[n]`` markers followed
  by a "Sources" list; the same sources are in an extra top-level ``citations`` field, and the
  whole checked answer in ``kenning``. ``stream: true`` sends chat.completion.chunk events as
  the answer is written, the sources, and a last chunk carrying ``citations``. Any model name
  is accepted (clients insist on one); the answerer is the one kenning.toml configures.
  The model ``kenning-agent`` answers through the agent instead (``kenning.agent``, as
  ``POST /api/agent``): several tool calls, then the checked answer; ``kenning`` then also
  holds ``run_id`` and ``steps``, and a stream sends each step as a chunk with an empty
  delta and a ``kenning_step`` field before the answer's text.
- ``POST /v1/embeddings`` embeds with the index's own embedder. Texts are embedded as
  *documents* (``Embedder.embed_documents``: the document prefix, as chunks are embedded);
  pass ``"input_type": "query"`` (``extra_body`` in the openai client) to embed them as
  queries (``Embedder.embed_query``: the query prefix, as searches are embedded). For the
  default MiniLM both are the same. ``encoding_format`` ``float`` and ``base64`` both work.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kenning.answer import Answer
from kenning.errors import ConfigError

from . import agent_api
from . import answer_handlers as answers
from .errors import error_body
from .service import Service
from .streaming import ERROR, RESULT, Emit, event_stream, run_streaming, sse

router = APIRouter(prefix="/v1", tags=["openai"])
MODEL = "kenning"
AGENT_MODEL = "kenning-agent"
MAX_INPUTS = 2048


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (text parts of a multi-part message, joined)."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens ... are accepted

    model: str = MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[str] = Field(description="text or texts (token arrays are not accepted)")
    model: str = ""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["document", "query"] = Field(
        "document", description="kenning's extension: embed as documents (chunks) or queries"
    )


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


@router.get("/models")
def models(request: Request) -> dict[str, Any]:
    """``kenning`` (chat: answers from the notes) and the index's embedder (embeddings)."""
    ids = [MODEL, AGENT_MODEL, service(request).embedder_id()]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "kenning"} for i in ids]
    return {"object": "list", "data": data}


@router.post(
    "/chat/completions",
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def chat_completions(request: Request, body: ChatRequest) -> Any:
    """An answer from the notes, with citations, in OpenAI's chat completion format."""
    svc = service(request)
    messages = [(m.role, m.text()) for m in body.messages]
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": body.model}
    agent = body.model == AGENT_MODEL
    if not body.stream:
        if agent:
            run, data = await run_in_threadpool(agent_api.chat, svc, messages)
            result = run.answer
        else:
            result, data = await run_in_threadpool(answers.chat, svc, messages)
        content = result.text + sources_text(data)
        return {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(result),
            "citations": citations(data),
            "kenning": data,
        }
    usage = bool((body.stream_options or {}).get("include_usage"))

    def work(emit: Emit) -> Any:
        if agent:
            run, data = agent_api.chat(svc, messages, _agent_events(emit))
            return run.answer, data
        return answers.chat(svc, messages, on_text=lambda text: emit("text", text))

    async def chunks() -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse({**base, "object": "chat.completion.chunk", "choices": [choice], **extra})

        yield chunk({"role": "assistant", "content": ""})
        async for event, data in run_streaming(work):
            if event == "text":
                yield chunk({"content": data})
            elif event == "step":
                yield chunk({}, kenning_step=data)
            elif event == RESULT:
                result, answer = data
                yield chunk({"content": sources_text(answer)})
                extra = {"citations": citations(answer), "kenning": answer}
                yield chunk({}, "stop", **extra, **({"usage": _usage(result)} if usage else {}))
            elif event == ERROR:
                yield sse(error_body(data, "/v1/chat/completions"))
        yield sse("[DONE]")

    return event_stream(chunks())


@router.post("/embeddings")
def embeddings(request: Request, body: EmbeddingRequest) -> dict[str, Any]:
    """Vectors from the index's embedder (unit length; documents unless ``input_type``)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > MAX_INPUTS:
        raise ConfigError(f"input: give between 1 and {MAX_INPUTS} texts")
    svc = service(request)
    vectors, tokens = svc.embed(texts, body.input_type)
    if body.dimensions is not None and body.dimensions != vectors.shape[1]:
        raise ConfigError(
            f"dimensions: this index's embedder gives {vectors.shape[1]}-dimensional vectors"
        )
    data = []
    for i, vec in enumerate(vectors):
        value: Any = (
            base64.b64encode(vec.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else [float(x) for x in vec]
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": body.model or svc.embedder_id(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _agent_events(emit: Emit) -> Emit:
    """The agent's ``token`` events as the ``text`` the stream sends; ``step`` as it is."""

    def forward(event: str, data: Any) -> None:
        emit("text", data["text"]) if event == "token" else emit(event, data)

    return forward


def cited(answer: dict[str, Any]) -> set[int]:
    return {n for sentence in answer["sentences"] for n in sentence["citations"]}


def citations(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Every passage the answer was given, and whether a sentence cites it."""
    keys = ("n", "doc_id", "path", "title", "heading", "page", "start", "end", "lines")
    used = cited(answer)
    return [{**{k: s.get(k) for k in keys}, "cited": s["n"] in used} for s in answer["sources"]]


def sources_text(answer: dict[str, Any]) -> str:
    """The "Sources" list that follows the answer in the message: the cited passages (the
    nearest ones, when the notes do not answer)."""
    used = cited(answer)
    shown = [s for s in answer["sources"] if s["n"] in used] or answer["sources"]
    if not shown:
        return ""
    lines = []
    for s in shown:
        where = f"page {s['page']}" if s["page"] is not None else (s["heading"] or s["title"])
        span = f", lines {s['lines'][0]}-{s['lines'][1]}" if s["lines"] else ""
        lines.append(f"[{s['n']}] {s['path']}" + (f" ({where}{span})" if where or span else ""))
    head = "Nearest passages" if answer["refused"] else "Sources"
    return f"\n\n{head}:\n" + "\n".join(lines)


def _usage(result: Answer) -> dict[str, int]:
    prompt, completion = result.usage.prompt_tokens, result.usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
