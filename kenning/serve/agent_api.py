"""``/api/agent``: the agent over HTTP, the same ``Agent.run`` as `kenning agent`, and its
stored traces, the same ``TraceStore`` as `kenning trace`.

``POST /api/agent`` answers a question in several steps and returns the checked answer (as
``/api/ask`` returns it) with the run id and its steps; with ``Accept: text/event-stream`` it
streams ``step`` events (each tool call and its result), ``token`` events (the answer as it is
written), then ``answer`` (the whole JSON) or ``error``. ``GET /api/agent/runs`` lists the
latest runs and ``GET /api/agent/runs/{run_id}`` gives one as a tree of spans.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from .answer_handlers import _llm, answer_json
from .api import SSE_RESPONSE, _events, service
from .service import Service, doc_ids
from .streaming import Emit, event_stream

router = APIRouter(prefix="/api", tags=["api"])


class AgentRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    steps: int = Field(4, ge=1, le=12, description="tool calls at most")
    k: int | None = Field(None, ge=1, le=50, description="passages per search")
    timeout: float = Field(300.0, gt=0, le=3600, description="seconds before it answers")


def run_agent(
    svc: Service,
    body: AgentRequest,
    emit: Emit | None = None,
    turns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the agent for ``body`` on a pooled index; its trace goes into the index.
    ``turns``: a conversation's earlier turns (``question``/``answer``), as `chat` keeps them."""
    return _run(svc, body, emit, turns)[1]


def _run(
    svc: Service,
    body: AgentRequest,
    emit: Emit | None = None,
    turns: list[dict[str, Any]] | None = None,
) -> tuple[Any, dict[str, Any]]:
    from kenning.agent import Agent, Memory, Tracing
    from kenning.answer.memory import standalone_query

    answering, turns = svc.answering, turns or []
    with _llm(svc) as llm, svc.pool.borrow() as index:
        tracing = Tracing(index.store.address)
        agent = Agent(
            index,
            llm,
            max_steps=body.steps,
            k=body.k or 4,
            timeout=body.timeout,
            strategy=answering.strategy,
            thresholds=answering.thresholds,
            tracing=tracing,
            memory=Memory(index) if "://" not in index.location else None,
        )
        try:
            run = agent.run(
                body.question,
                on_step=(lambda s: emit("step", asdict(s))) if emit else None,
                on_text=(lambda t: emit("token", {"text": t})) if emit else None,
                history=[(t["question"], t["answer"]) for t in turns[-3:]],
                query=standalone_query(body.question, turns, llm),
            )
        finally:
            agent.caller.close()
            tracing.close()
        docs = doc_ids(index, [s.chunk_id for s in run.answer.sources])
    data = answer_json(run.answer, docs)
    data.update(
        run_id=run.run_id,
        steps=[asdict(s) for s in run.steps],
        stopped=run.stopped,
        seconds=run.seconds,
        remembered=run.remembered,
    )
    return run, data


def chat(
    svc: Service, messages: list[tuple[str, str]], emit: Emit | None = None
) -> tuple[Any, dict[str, Any]]:
    """The agent's answer to the last user message of OpenAI-style ``(role, content)``
    messages, the user/assistant pairs before it being the conversation (``/v1`` with the
    ``kenning-agent`` model); returns the ``Run`` and its JSON."""
    from .answer_handlers import conversation

    question, turns = conversation(messages)
    return _run(svc, AgentRequest.model_construct(question=question), emit, turns)


@router.post("/agent", responses=SSE_RESPONSE)
async def agent(request: Request, body: AgentRequest) -> Any:
    """An answer in several tool-using steps, checked like ``/api/ask``'s, with ``run_id``
    and ``steps``. ``Accept: text/event-stream``: ``step``, ``token``, then ``answer``."""
    svc = service(request)
    if "text/event-stream" in request.headers.get("accept", ""):
        return event_stream(_events(lambda emit: run_agent(svc, body, emit), "answer"))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(run_agent, svc, body)


@router.get("/agent/runs")
def agent_runs(request: Request) -> dict[str, Any]:
    """The latest agent runs (their root spans), newest first."""
    from kenning.agent import TraceStore

    with TraceStore(service(request).location, create=True) as traces:
        return {"runs": [_summary(r.to_dict()) for r in traces.runs()]}


@router.get("/agent/runs/{run_id}")
def agent_run(request: Request, run_id: str) -> dict[str, Any]:
    """One run as a tree of OpenTelemetry spans (``run_id``: its id or a prefix)."""
    from kenning.agent import TraceStore

    with TraceStore(service(request).location, create=True) as traces:
        return traces.run(run_id).to_dict()


def _summary(root: dict[str, Any]) -> dict[str, Any]:
    a = root["attributes"]
    return {
        "run_id": root["trace_id"],
        "question": a.get("kenning.question", ""),
        "steps": a.get("kenning.steps", 0),
        "seconds": root["seconds"],
        "stopped": a.get("kenning.stopped", ""),
    }
