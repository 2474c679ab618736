"""Cards from the local model, parseable by construction: sampling under a GBNF grammar.

A small model asked for ``Q: ... | A: ...`` lines writes what it likes: two lines per card,
both on one line without the bar, whole sentences as answers. Here the reply is sampled
under a grammar (llama.cpp masks every token that would leave it), so it is always a JSON
list of at most ``most`` cards, ``{"answer": "...", "question": "...?"}``: each question 3
to 30 words ending in a question mark, and it is always read.

The answer can be held to a list of phrases: the note's own commands, names, numbers and
terms, as the extractive rules find them, each already verified against its sentence. The
model then chooses what to ask about and writes the question, and every answer is the note's
text by construction (the answer comes first, so the question is written knowing it). A note
with no such phrase gets free answers of 1 to 8 words, which ``writer.locate`` must find.

The sampler keeps its own llama.cpp context on the backend's loaded model (as the agent's
``GrammarCaller`` does), and reuses the tokens it already holds (the system prompt) from one
note to the next.
"""

from __future__ import annotations

import json
from typing import Any

from kenning.answer.llms import LLM, Prompt

#: tokens a reply may take (five cards of a short question and answer fit well within it)
REPLY_TOKENS = 400


def cards_grammar(phrases: list[str], most: int, least: int = 1, words: int = 8) -> str:
    """GBNF: a JSON list of ``least`` to ``most`` cards, ``{"answer": ..., "question":
    ...?}``. The answer is one of ``phrases`` (written as JSON writes it), or, with no
    phrases, any 1 to ``words`` words; the question is 3 to 30 words ending in "?"."""
    least = max(1, min(least, most))
    more = f'("," " "? card){{{least - 1},{most - 1}}}' if most > 1 else ""
    if phrases:
        answer = "answer ::= " + " | ".join(f'"{_literal(p)}"' for p in phrases)
    else:
        answer = f'answer ::= word (" " word){{0,{words - 1}}}'
    rules = (
        f'root ::= "[" card {more} "]"',
        'card ::= "{\\"answer\\": \\"" answer "\\", \\"question\\": \\"" question "\\"}"',
        'question ::= qword (" " qword){2,29} "?"',
        'qword ::= [^"\\\\\\n? ]+',
        answer,
        'word ::= [^"\\\\\\n ]+',
    )
    return "\n".join(rules) + "\n"


def _literal(phrase: str) -> str:
    """``phrase`` as a GBNF string literal's body, for the text JSON writes for it."""
    escaped = json.dumps(phrase, ensure_ascii=False)[1:-1]
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


class GrammarSampler:
    """Greedy completions of ``llm`` (the ``local`` backend) under a GBNF grammar."""

    def __init__(self, llm: LLM, limit: int = REPLY_TOKENS) -> None:
        self.llm, self.limit = llm, limit
        self.context_window = max(int(getattr(llm, "context_window", 4096)), 4096)
        self._ctx: Any = None
        self._vocab: Any = None
        self._fed: list[int] = []

    def _setup(self) -> Any:
        from kenning.answer.local import _cyllama

        cy = _cyllama()
        if self._ctx is None:
            model = self.llm._load()  # type: ignore[attr-defined]
            threads = int(self.llm.n_threads)  # type: ignore[attr-defined]
            cparams = cy.LlamaContextParams()
            cparams.n_ctx = self.context_window
            cparams.n_batch = cparams.n_ubatch = 512
            cparams.n_threads = cparams.n_threads_batch = threads
            cparams.no_perf = True
            self._ctx = cy.LlamaContext(model, cparams)
            self._vocab = model.get_vocab()
        return cy

    def complete(self, prompt: Prompt, grammar: str) -> str:
        """The reply to ``prompt``, sampled greedily under ``grammar`` (GBNF, rule root)."""
        cy = self._setup()
        sparams = cy.LlamaSamplerChainParams()
        sparams.no_perf = True
        sampler = cy.LlamaSampler(sparams)
        sampler.add_grammar(self._vocab, grammar, "root")
        sampler.add_greedy()
        tokens: list[int] = self.llm.prompt_tokens(prompt)  # type: ignore[attr-defined]
        limit = min(self.limit, self.context_window - len(tokens) - 1)
        if limit < 1:
            return ""
        common = 0
        for a, b in zip(self._fed, tokens[:-1], strict=False):
            if a != b:
                break
            common += 1
        self._ctx.memory_seq_rm(0, common, -1)
        for i in range(common, len(tokens), 512):
            self._ctx.decode(cy.llama_batch_get_one(tokens[i : i + 512], i))
        self._fed = list(tokens)
        out: list[int] = []
        for _ in range(limit):
            tok = sampler.sample(self._ctx, -1)
            if self._vocab.is_eog(tok):
                break
            out.append(tok)
            self._ctx.decode(cy.llama_batch_get_one([tok], len(self._fed)))
            self._fed.append(tok)
        return str(self._vocab.detokenize(out, remove_special=True, unparse_special=False))

    def close(self) -> None:
        self._ctx = None
        self._fed = []
