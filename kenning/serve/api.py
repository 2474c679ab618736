"""The JSON API under ``/api``: search, facets, ask (plain and streamed), documents, links,
status, sync, conversations and the evaluation history.

Each route is one ``Service`` (or ``answers``) call; kenning's exceptions become status codes
in ``errors``, never here. Streams are Server-Sent Events: ``/api/ask/stream`` sends ``token``
events while the answer is written, then one ``answer`` event with the whole answer (the same
JSON as ``POST /api/ask``), or an ``error`` event; ``POST /api/sync`` with
``Accept: text/event-stream`` sends ``progress`` events, then the ``report``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from kenning.search import DEPTH

from . import answer_handlers as answers
from .errors import message_of, status_of
from .schemas import (
    AnswerResponse,
    AskRequest,
    ConversationList,
    ConversationResponse,
    DocumentResponse,
    EvalRun,
    EvalRunList,
    FacetsResponse,
    LinksResponse,
    SearchResponse,
    StatusResponse,
    SyncReportResponse,
)
from .service import Service
from .streaming import ERROR, RESULT, Emit, ProgressEvents, event_stream, run_streaming, sse

router = APIRouter(prefix="/api", tags=["api"])
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
}


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


@router.get("/search", response_model=SearchResponse)
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="the query, in words")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    where: Annotated[
        list[str] | None, Query(description="metadata condition: tag=ml, date>=2025")
    ] = None,
    path: Annotated[list[str] | None, Query(description="glob on the path under its root")] = None,
    type: Annotated[list[str] | None, Query(description="markdown, text, html or pdf")] = None,
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid",
    fusion: Literal["weighted", "rrf"] = "weighted",
    explain: Annotated[bool, Query(description="say how the rankings were fused")] = False,
) -> dict[str, Any]:
    """Hybrid search. Each hit carries its BM25 rank, dense rank and fused score."""
    svc = service(request)
    result = svc.search(q, k, where, path, type, mode, fusion)
    if explain:
        result["explain"] = {"fusion": fusion, **_tuning(svc), "depth": DEPTH}
    return result


def _tuning(svc: Service) -> dict[str, Any]:
    """The fusion weight search used (the one ``kenning tune`` fitted, else the packaged
    one) and whether a tuned query adapter moved the query."""
    with svc.pool.borrow() as index:
        tuning = index.searcher.tuning()
        alpha = index.searcher.alpha(tuning)
    return {"alpha": alpha, "adapter": tuning is not None and tuning.adapter is not None}


@router.get("/facets", response_model=FacetsResponse)
def facets(request: Request) -> dict[str, Any]:
    """Tags, types and top-level folders of the indexed notes, for filters."""
    return service(request).facets()


def _ask(svc: Service, body: AskRequest, on_text: Callable[[str], None] | None = None) -> Any:
    return answers.ask(
        svc, body.question, body.k, body.where, body.path, body.type, body.conversation_id, on_text
    )


@router.post("/ask", response_model=AnswerResponse)
def ask(request: Request, body: AskRequest) -> dict[str, Any]:
    """A cited answer from the notes, every citation checked; the turn is stored in its
    conversation (a new one when ``conversation_id`` is null)."""
    result: dict[str, Any] = _ask(service(request), body)
    return result


@router.post("/ask/stream", responses=SSE_RESPONSE, response_class=Response)
async def ask_stream(request: Request, body: AskRequest) -> Response:
    """``POST /api/ask`` as Server-Sent Events: ``token`` {text} events, then ``answer``
    (the JSON answer) or ``error`` {message}."""
    svc = service(request)

    def work(emit: Emit) -> Any:
        return _ask(svc, body, lambda text: emit("token", {"text": text}))

    return event_stream(_events(work, "answer"))


@router.get("/documents/{doc_id}", response_model=DocumentResponse)
def document(request: Request, doc_id: str) -> dict[str, Any]:
    """An indexed source's text (the text chunk offsets index into); unknown ids are 404."""
    return service(request).document(doc_id)


@router.get("/links", response_model=LinksResponse)
def links(
    request: Request,
    note: Annotated[
        str,
        Query(
            min_length=1, max_length=4096, description="its path as search shows it, or its name"
        ),
    ],
) -> dict[str, Any]:
    """A note's outgoing links, backlinks and unresolved links (``kenning links --json``),
    resolved as Obsidian resolves them; a note the index does not hold is 404."""
    return service(request).links(note)


@router.get("/status", response_model=StatusResponse)
def status(request: Request) -> dict[str, Any]:
    """Roots, files, chunks, size, embedder, last sync, problem files, embedding progress."""
    return service(request).status()


@router.post(
    "/sync",
    response_model=SyncReportResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def sync(request: Request) -> Any:
    """Rescan every root. With ``Accept: text/event-stream``: ``progress`` {stage, done,
    total} events, then ``report``. 409 while another sync runs."""
    svc = service(request)
    if "text/event-stream" in request.headers.get("accept", ""):
        return event_stream(_events(lambda emit: svc.sync(ProgressEvents(emit)), "report"))
    return await run_in_threadpool(svc.sync)


@router.get("/conversations", response_model=ConversationList)
def conversations(request: Request) -> dict[str, Any]:
    return {"conversations": service(request).conversations()}


@router.get("/conversations/{conversation_id}", response_model=ConversationResponse)
def conversation(request: Request, conversation_id: str) -> dict[str, Any]:
    """A conversation and its turns."""
    return service(request).conversation(conversation_id)


@router.get("/eval/runs", response_model=EvalRunList)
def eval_runs(request: Request) -> dict[str, Any]:
    """Every stored evaluation run (`kenning eval history`), oldest first."""
    return {"runs": service(request).eval_runs()}


@router.get("/eval/runs/{run_id}", response_model=EvalRun)
def eval_run(request: Request, run_id: str) -> dict[str, Any]:
    return service(request).eval_run(run_id)


async def _events(work: Callable[[Emit], Any], final: str) -> AsyncIterator[str]:
    async for event, data in run_streaming(work):
        if event == RESULT:
            yield sse(data, final)
        elif event == ERROR:
            error = {"message": message_of(data), "error": type(data).__name__}
            yield sse({**error, "status": status_of(data)}, "error")
        else:
            yield sse(data, event)
