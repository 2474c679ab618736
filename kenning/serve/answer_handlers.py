"""Answers over HTTP and MCP: the same ``kenning.answer.ask`` call as `kenning ask`/`chat`.

``ask`` answers one question, optionally as the next turn of a stored conversation (the
follow-up is made to stand alone exactly as `kenning chat` does it, and the turn is stored);
``chat`` answers the last user message of an OpenAI-style message list, whose earlier turns
are the conversation (nothing is stored: the client keeps its own history). Both return the
``Answer`` as JSON, each source with the ``doc_id`` that ``GET /api/documents/{doc_id}`` opens.

Backends keep state per answer (the extractive one binds the index's sentence vectors), so
the extractive answerer is built afresh for each request; a generative backend (one model
in memory, or a remote server) answers one question at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kenning.answer import LLM, Answer
from kenning.answer import ask as answer_question
from kenning.answer.memory import Conversations, history_messages, standalone_query
from kenning.errors import ConfigError
from kenning.filters import Filters

from .service import Service, doc_ids, find_conversation

OnText = Callable[[str], None]


@contextmanager
def _llm(service: Service) -> Iterator[LLM]:
    answering = service.answering
    if not answering.llm.generative:
        yield answering.new_llm()
        return
    with service.llm_lock:
        yield answering.llm


def answer(
    service: Service,
    question: str,
    k: int | None = None,
    filters: Filters | None = None,
    turns: list[dict[str, Any]] | None = None,
    on_text: OnText | None = None,
) -> tuple[Answer, dict[str, Any]]:
    """The answer to ``question`` (after ``turns``, earlier turns of its conversation) and
    its JSON form."""
    answering, turns = service.answering, turns or []
    with _llm(service) as llm, service.pool.borrow() as index:
        query = standalone_query(question, turns, llm)
        result = answer_question(
            index,
            question,
            llm,
            k=k or answering.k,
            filters=filters,
            strategy=answering.strategy,
            thresholds=answering.thresholds,
            on_text=on_text,
            history=history_messages(turns) if llm.generative and turns else None,
            query=query,
        )
        docs = doc_ids(index, [s.chunk_id for s in result.sources])
    return result, answer_json(result, docs)


def answer_json(result: Answer, docs: dict[int, int]) -> dict[str, Any]:
    """``Answer.to_dict()`` with each source's ``doc_id`` and its line range as a list."""
    data = result.to_dict()
    for source in data["sources"]:
        source["doc_id"] = docs.get(source["chunk_id"])
        source["lines"] = list(source["lines"]) if source["lines"] else None
    return data


def ask(
    service: Service,
    question: str,
    k: int | None = None,
    where: list[str] | None = None,
    paths: list[str] | None = None,
    types: list[str] | None = None,
    conversation_id: str | int | None = None,
    on_text: OnText | None = None,
) -> dict[str, Any]:
    """Answer a question as the next turn of a conversation (a new one when no id is given),
    and store the turn, as `kenning chat` does."""
    filters = Filters.parse(where, paths, types)
    with Conversations(service.location) as convos:
        found = find_conversation(convos, conversation_id) if conversation_id else None
        turns = convos.turns(found["id"]) if found else []
        result, data = answer(service, question, k, filters, turns, on_text)
        cid = found["id"] if found else convos.start(question[:80])
        data["conversation_id"] = str(cid)
        details = {
            "sources": [s.path for s in result.sources],
            "refused": result.refused,
            "answer": data,  # so a resumed conversation shows its citations again
        }
        convos.add(cid, question, result.query, result.text, details)
    return data


def chat(
    service: Service,
    messages: list[tuple[str, str]],
    k: int | None = None,
    on_text: OnText | None = None,
) -> tuple[Answer, dict[str, Any]]:
    """Answer the last user message of ``(role, content)`` messages; the user/assistant
    pairs before it are the conversation. System messages are not used: kenning's own
    prompt asks for cited answers from the notes."""
    question, turns = conversation(messages)
    return answer(service, question, k, None, turns, on_text)


def conversation(messages: list[tuple[str, str]]) -> tuple[str, list[dict[str, Any]]]:
    """The last user message of ``(role, content)`` messages, and the turns before it (each
    user message with the assistant's reply that follows it)."""
    users = [i for i, (role, _) in enumerate(messages) if role == "user"]
    if not users or not messages[users[-1]][1].strip():
        raise ConfigError("messages: no user message with a question to answer")
    turns: list[dict[str, Any]] = []
    for i in users[:-1]:
        reply = next((c for r, c in messages[i + 1 : users[-1]] if r == "assistant"), "")
        turns.append({"question": messages[i][1], "query": messages[i][1], "answer": reply})
    return messages[users[-1]][1], turns
