"""Prompts: a system prompt, then the retrieved passages numbered [1]..[n].

Three strategies: ``zero-shot``; ``few-shot`` (one worked example of a cited answer and one of
a refusal); ``cot`` (the model reasons inside <reasoning> tags, kept apart from the answer and
shown only with --show-reasoning). Passages are fitted to the model's window with the model's
own token count: the best-ranked first; one that does not fit whole is cut at a word boundary,
the rest are dropped, and ``Prompt.notes`` says so. Nothing is truncated silently.

A backend with ``excerpt_sentences`` set (the local model: reading the prompt is most of its
time) is shown only the sentences around what matched the question (``excerpts``), across the
passages: gaps are marked "…", a passage with none of them is left out, and the citation
check still reads each shown passage whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from kenning.errors import ConfigError

from .llms import LLM, Message, Passage, Prompt
from .sentences import content_words, split

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


def declined(text: str) -> bool:
    """Whether a model's answer is the refusal (maybe followed by what the notes cover)."""
    return text.strip().lower().startswith(REFUSAL.rstrip(".").lower())


_REASONING = re.compile(r"<reasoning>(.*?)(?:</reasoning>|$)", re.DOTALL | re.IGNORECASE)
#: a passage is cut rather than dropped when at least this many tokens of it still fit
MIN_CUT_TOKENS = 48
#: lines of code kept after an excerpt's sentence (the command a sentence introduces)
EXCERPT_CODE_LINES = 4


def passage_block(p: Passage, text: str | None = None, short: bool = False) -> str:
    """A passage as the prompt shows it: its number, where it is from, its text. ``short``
    (excerpts) names the file alone, not its folders: a long path is tokens the model reads
    before each passage (40 for a path in a cache folder) and tells it nothing it cites by."""
    label = _short_label(p) if short else p.label()
    return f"[{p.n}] {label}\n{(text if text is not None else p.text).strip()}"


def _short_label(p: Passage) -> str:
    name = PurePath(p.path).name
    where = f"page {p.page}" if p.page is not None else (p.heading or p.title)
    same = not where or where.lower() == PurePath(p.path).stem.lower()
    return name if same else f"{name} ({where})"


def user_message(question: str, blocks: list[str]) -> str:
    body = "\n\n".join(blocks) if blocks else "(no passages)"
    return f"Passages:\n{body}\n\nQuestion: {question}"


def build_prompt(
    question: str,
    passages: list[Passage],
    llm: LLM,
    strategy: str = "zero-shot",
    history: list[Message] | None = None,
    whole: bool = False,
) -> Prompt:
    """Messages for ``llm``, with as many passages as its window holds (best first).
    ``whole``: the passages whole even where ``llm`` reads excerpts."""
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
    sentences = None if whole else getattr(llm, "excerpt_sentences", None)
    shown_text = {p.n: p.text for p in passages}
    if sentences:
        shown_text = excerpts(
            passages,
            question,
            sentences,
            getattr(llm, "vectors", None),
            getattr(llm, "excerpt_tokens", None),
            llm.count_tokens,
        )
        passages = [p for p in passages if p.n in shown_text]
    short = bool(sentences)
    for i, p in enumerate(passages):
        shown = shown_text[p.n]
        block = passage_block(p, shown, short)
        cost = llm.count_tokens(block) + 2
        if cost <= budget:
            blocks.append(block)
            kept.append(p)
            budget -= cost
            continue
        if budget >= MIN_CUT_TOKENS:
            text = _cut(p, shown, budget - 2, llm, short)
            blocks.append(passage_block(p, text, short))
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
    return Prompt(question, kept, messages, strategy, notes, excerpted=bool(sentences))


def excerpts(
    passages: list[Passage],
    question: str,
    sentences: int,
    vectors: Any = None,
    tokens: int | None = None,
    count: Callable[[str], int] | None = None,
) -> dict[int, str]:
    """What the model reads of each passage: the sentences around what matches ``question``.

    Every sentence of the passages is scored by the share of the question's content words it
    holds, plus its cosine with the question when the index's ``vectors``
    (``SentenceVectors``) are given. Taken best first until ``sentences`` are kept, each
    brings the sentence after it (an answer often follows the sentence that restates the
    question) and the code lines it introduces (up to ``EXCERPT_CODE_LINES``). With
    ``tokens``, the sentences kept hold at most that many tokens (``count``, the model's
    tokenizer) between them: a sentence that would pass it is skipped for a shorter one
    further down, and the one after a sentence comes only where it fits. The best sentence
    is always kept. A passage keeps its sentences in its own order, gaps marked "…"; a
    passage none of whose sentences is kept is left out (``{n: text}`` holds only those
    shown), the first is always shown.
    """
    # a line of `code` is not a sentence of its own: it goes with the sentence before it
    spans = {
        p.n: [s for s in split(p.text) if not s.text.lstrip().startswith("`")] for p in passages
    }
    every = [(p.n, i) for p in passages for i in range(len(spans[p.n]))]
    if not every:
        return {p.n: p.text for p in passages}
    texts = [spans[n][i].text for n, i in every]
    words = content_words(question)
    scores = [len(words & content_words(t)) / max(1, len(words)) for t in texts]
    if vectors is not None:
        sims = vectors.vectors(texts) @ vectors.query(question)
        scores = [a + max(0.0, float(b)) for a, b in zip(scores, sims, strict=True)]
    keep: set[tuple[int, int]] = set()
    size = count or (lambda t: len(t.split()))
    left = tokens if tokens is not None else None
    order = sorted(range(len(every)), key=lambda j: -scores[j])

    def fits(at: tuple[int, int]) -> bool:
        nonlocal left
        if at in keep:
            return True
        if left is not None:
            cost = size(spans[at[0]][at[1]].text)
            if keep and cost > left:
                return False
            left -= cost
        keep.add(at)
        return True

    for j in order:
        if len(keep) >= sentences or (left is not None and left <= 0):
            break
        n, i = every[j]
        if fits((n, i)) and i + 1 < len(spans[n]):
            fits((n, i + 1))
    if not any(n == passages[0].n for n, _ in keep):
        # the best-ranked passage is always in the prompt: its best sentence
        best = next(every[j] for j in order if every[j][0] == passages[0].n)
        keep.add(best)
    out: dict[int, str] = {}
    for p in passages:
        mine = sorted(i for n, i in keep if n == p.n)
        if not mine:
            continue
        if len(mine) == len(spans[p.n]):
            out[p.n] = p.text
            continue
        out[p.n] = _excerpt(p.text, spans[p.n], mine)
    return out


def _excerpt(text: str, spans: list[Any], keep: list[int]) -> str:
    pieces: list[str] = []
    last = -1
    for i in keep:
        end = spans[i + 1].start if i + 1 < len(spans) else len(text)
        if i != last + 1:
            pieces.append("…")
        pieces.append(spans[i].text + _code_after(text[spans[i].end : end]))
        last = i
    if last != len(spans) - 1:
        pieces.append("…")
    return "\n".join(pieces)


def _code_after(between: str) -> str:
    """The code right after a sentence (a fenced block or `code` lines), at most
    ``EXCERPT_CODE_LINES`` lines of it, with a fence left open closed again."""
    out: list[str] = []
    fenced, n = False, 0
    for ln in (x for x in between.split("\n") if x.strip()):
        fence = ln.lstrip().startswith(("```", "~~~"))
        if fence:
            out.append(ln)
            fenced = not fenced
            if not fenced:
                break
        elif not fenced and not ln.lstrip().startswith("`"):
            break  # prose the sentence split left out: not the sentence's code
        elif n == EXCERPT_CODE_LINES:
            break
        else:
            out.append(ln)
            n += 1
    if fenced:
        out.append("```")
    return "".join("\n" + ln for ln in out)


def _cut(p: Passage, text: str, budget: int, llm: LLM, short: bool = False) -> str:
    """The longest word-boundary prefix of ``text`` whose block fits ``budget`` tokens."""
    words = text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if llm.count_tokens(passage_block(p, " ".join(words[:mid]) + " …", short)) <= budget:
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
