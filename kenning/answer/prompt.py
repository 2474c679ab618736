"""Prompts: a system prompt, then the retrieved passages numbered [1]..[n].

Three strategies: ``zero-shot``; ``few-shot`` (one worked example of a cited answer and one of
a refusal); ``cot`` (the model reasons inside <reasoning> tags, kept apart from the answer and
shown only with --show-reasoning). Passages are fitted to the model's window with the model's
own token count: the best-ranked first; one that does not fit whole is cut at a word boundary,
the rest are dropped, and ``Prompt.notes`` says so. Nothing is truncated silently.
"""

from __future__ import annotations

import re

from kenning.errors import ConfigError

from .llms import LLM, Message, Passage, Prompt

STRATEGIES = ("zero-shot", "few-shot", "cot")
REFUSAL = "Your notes don't answer this."

SYSTEM = (
    "You answer questions from the user's own notes, given below as numbered passages. "
    "Use only what the passages say. After every sentence, cite the passages it comes from "
    "by number in square brackets, like [1] or [2][3]. Keep numbers, dates and names exactly "
    f'as the passages give them. If the passages do not answer the question, reply "{REFUSAL}" '
    "and nothing else. Be concise: one to four sentences."
)
COT = (
    " First think step by step inside <reasoning>...</reasoning>: which passages are relevant "
    "and what they say. Then write the final answer after the closing tag, with citations."
)
EXAMPLE_USER = (
    "Passages:\n[1] kitchen/bread.md (Sourdough)\nFeed the starter the night before. The dough "
    "rises for 12 hours at room temperature.\n\n[2] garden/tomatoes.md (Watering)\nWater "
    "tomatoes at the base every morning.\n\nQuestion: How long does the dough rise?"
)
EXAMPLE_ANSWER = "The dough rises for 12 hours at room temperature [1]."
EXAMPLE_REFUSAL_USER = (
    "Passages:\n[1] garden/tomatoes.md (Watering)\nWater tomatoes at the base every morning.\n\n"
    "Question: When was the Eiffel Tower built?"
)
_REASONING = re.compile(r"<reasoning>(.*?)(?:</reasoning>|$)", re.DOTALL | re.IGNORECASE)
#: a passage is cut rather than dropped when at least this many tokens of it still fit
MIN_CUT_TOKENS = 48


def passage_block(p: Passage, text: str | None = None) -> str:
    return f"[{p.n}] {p.label()}\n{(text if text is not None else p.text).strip()}"


def user_message(question: str, blocks: list[str]) -> str:
    body = "\n\n".join(blocks) if blocks else "(no passages)"
    return f"Passages:\n{body}\n\nQuestion: {question}"


def build_prompt(
    question: str,
    passages: list[Passage],
    llm: LLM,
    strategy: str = "zero-shot",
    history: list[Message] | None = None,
) -> Prompt:
    """Messages for ``llm``, with as many passages as its window holds (best first)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    system = SYSTEM + (COT if strategy == "cot" else "")
    head = [Message("system", system)]
    if strategy == "few-shot":
        head += [
            Message("user", EXAMPLE_USER),
            Message("assistant", EXAMPLE_ANSWER),
            Message("user", EXAMPLE_REFUSAL_USER),
            Message("assistant", REFUSAL),
        ]
    head += list(history or [])
    fixed = sum(llm.count_tokens(m.content) + 4 for m in head)
    budget = (
        llm.context_window
        - llm.max_new_tokens
        - fixed
        - llm.count_tokens(user_message(question, []))
    )
    blocks: list[str] = []
    kept: list[Passage] = []
    notes: list[str] = []
    for i, p in enumerate(passages):
        block = passage_block(p)
        cost = llm.count_tokens(block) + 2
        if cost <= budget:
            blocks.append(block)
            kept.append(p)
            budget -= cost
            continue
        if budget >= MIN_CUT_TOKENS:
            text = _cut(p, budget - 2, llm)
            blocks.append(passage_block(p, text))
            kept.append(p)
            notes.append(
                f"passage [{p.n}] was cut to {len(text)} of {len(p.text)} characters "
                "to fit the model's window"
            )
        rest = [q.n for q in passages[i + (1 if budget >= MIN_CUT_TOKENS else 0) :]]
        if rest:
            notes.append(
                f"passage{'s' if len(rest) > 1 else ''} {', '.join(f'[{n}]' for n in rest)} "
                f"did not fit the model's window ({llm.context_window} tokens) and "
                f"{'were' if len(rest) > 1 else 'was'} left out"
            )
        break
    messages = [*head, Message("user", user_message(question, blocks))]
    return Prompt(question, kept, messages, strategy, notes)


def _cut(p: Passage, budget: int, llm: LLM) -> str:
    """The longest word-boundary prefix of the passage whose block fits ``budget`` tokens."""
    words = p.text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if llm.count_tokens(passage_block(p, " ".join(words[:mid]) + " …")) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " …"


def split_reasoning(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a chain-of-thought reply; (None, text) when there is none."""
    m = _REASONING.search(text)
    if not m:
        return None, text.strip()
    answer = (text[: m.start()] + text[m.end() :]).strip()
    answer = re.sub(r"^\s*(final\s+)?answer\s*:\s*", "", answer, flags=re.IGNORECASE)
    return m.group(1).strip(), answer
