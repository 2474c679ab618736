"""LLM backends: a base class with one required streaming method, and a registry.

``LLM.stream(prompt)`` yields the answer's text in pieces as the model produces it. The
``Prompt`` carries both the chat messages (for models) and the question with its numbered
passages (for the ``extractive`` backend, which quotes sentences instead of generating), so
every backend answers the same object. Built-ins register here like embedders; plugins use the
entry-point group ``kenning.llms``.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kenning.errors import ConfigError
from kenning.registry import Registry

llms: Registry[LLM] = Registry("llm", "kenning.llms")

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass
class Passage:
    """A retrieved chunk as the model sees it: numbered ``[n]`` in the prompt."""

    n: int
    chunk_id: int
    path: str
    title: str
    heading: str
    page: int | None
    start: int
    end: int
    text: str
    score: float

    def label(self) -> str:
        """Where the passage comes from, as the prompt and the source list show it."""
        where = f"page {self.page}" if self.page is not None else (self.heading or self.title)
        return f"{self.path}" + (f" ({where})" if where else "")


@dataclass
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass
class Prompt:
    """What an answerer is asked: the messages, and the question and passages behind them."""

    question: str
    passages: list[Passage]
    messages: list[Message]
    strategy: str = "zero-shot"
    #: what was dropped or cut to fit the model's window, said to the user
    notes: list[str] = field(default_factory=list)
    #: whether the model was shown excerpts of the passages rather than the whole passages
    excerpted: bool = False


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLM(ABC):
    """Base for answer backends. Subclasses set ``id`` and implement ``stream``."""

    id: str = ""
    #: the model's context window, in its own tokens
    context_window: int = 4096
    #: tokens kept free for the answer
    max_new_tokens: int = 512
    #: chat models get messages; a base (completion) model gets ``completion_text``
    chat: bool = True
    #: whether the backend calls a model (the extractive one does not)
    generative: bool = True

    def __init__(self) -> None:
        self.usage = Usage()

    @abstractmethod
    def stream(self, prompt: Prompt) -> Iterator[str]:
        """Yield the answer's text in pieces, as the model produces them."""

    def complete(self, prompt: Prompt) -> str:
        return "".join(self.stream(prompt))

    def bind(self, vectors: Any) -> None:  # noqa: B027 - optional hook
        """Receive the index's sentence vectors (``SentenceVectors``); the extractive
        answerer scores meaning with them, model backends have no use for them."""

    def count_tokens(self, text: str) -> int:
        """The model's token count; backends with a tokenizer override this estimate."""
        return int(len(_WORD.findall(text)) * 1.3) + 1

    def config(self) -> dict[str, Any]:
        """Constructor arguments, so ``get_llm(id, **config)`` rebuilds the backend."""
        return {}


def completion_text(messages: list[Message]) -> str:
    """A completion-style prompt for a base model that has no chat template."""
    parts = []
    for m in messages:
        head = {"system": "", "user": "Question and notes:\n", "assistant": "Answer: "}[m.role]
        parts.append(head + m.content.strip())
    return "\n\n".join(parts) + "\n\nAnswer:"


def get_llm(name: str, **kwargs: Any) -> LLM:
    """Build a registered LLM backend by id (``extractive``, ``local``, ``openai``, ...).

    Arguments are checked against the backend's constructor first, so a misspelt option in
    kenning.toml is an error that lists the valid ones, not a TypeError.
    """
    cls = llms.get(name)
    accepted = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"the {name} LLM takes no argument {unknown[0]!r}; it takes: "
            + (", ".join(accepted) or "none")
        )
    return cls(**kwargs)
