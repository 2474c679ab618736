"""Answers from the notes: LLM backends, prompts, checked citations, conversations.

``ask`` is the one library call behind `kenning ask`, `kenning chat` and (next) the server.
"""

from . import local, remote  # noqa: F401  (register their backends; heavy imports on use)
from .ask import Answer, Source, ask
from .citations import Sentence, Thresholds
from .llms import LLM, Message, Passage, Prompt, get_llm, llms

__all__ = [
    "LLM",
    "Answer",
    "Message",
    "Passage",
    "Prompt",
    "Sentence",
    "Source",
    "Thresholds",
    "ask",
    "get_llm",
    "llms",
]
