"""One conformance suite for every registered LLM backend.

Each backend answers the same ``Prompt`` and must: stream its answer as non-empty text pieces
that join to what ``complete`` returns; name itself with an id that starts with its registered
name; rebuild itself from ``config()`` and answer the same; keep its answer within its cap
(``max_new_tokens`` for a model, ``max_sentences`` for the extractive quoter), counting what
it generated in ``usage``; survive a caller that stops reading half-way; refuse an unknown
setting with ``ConfigError``; and turn a failure into a typed ``KenningError``.

Where the backends run:
- ``extractive``: in-process, nothing to fake.
- ``openai`` and ``anthropic``: their real SDKs against ``FakeLLMServer`` from
  test_remote_llm.py (a stdlib HTTP server on 127.0.0.1 that speaks both protocols), here
  made to honour the request's token limit as a real server does: each of its pieces counts
  as one token. Only the far side of the network is fake.
- ``local``: llama.cpp on the real packaged Qwen2.5-Coder-0.5B (``kenning[llm-small]``),
  marked ``real_model`` (so ``slow``).

The backends' own behaviour beyond the shared contract is tested in test_answer.py,
test_remote_llm.py and test_local_llm.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from test_local_llm import make_prompt as numbered_prompt
from test_remote_llm import ENV_VARS, FakeLLMServer, Handler, free_port, serving

from kenning.answer.llms import LLM, Prompt, get_llm, llms
from kenning.errors import ConfigError, KenningError, RemoteLLMError

NOTES = [
    (
        "travel/lisbon.md",
        "The ferry from Cais do Sodré to Cacilhas leaves every 20 minutes. "
        "The crossing takes about ten minutes. Buy a Viva Viagem card for the ferry.",
    ),
    (
        "garden/tomatoes.md",
        "Tomato seedlings go outside once night temperatures stay above 10 °C. "
        "Water them at the base, never on the leaves.",
    ),
]
QUESTION = "How often does the ferry to Cacilhas leave?"
SYSTEM = (
    "Answer the question from the numbered notes only, in one short sentence, then the note "
    'number in brackets, like: The shop opens at 9 am [2]. If the notes do not say, answer "I '
    "don't know\"."
)
#: the cap each generative backend is built with in the capped check, in its own tokens
CAP = 3
SMALL_MODEL = "qwen2.5-coder-0.5b"


def make_prompt(question: str = QUESTION, notes: list[tuple[str, str]] = NOTES) -> Prompt:
    return numbered_prompt(question, notes, SYSTEM)


# -- a fake server that stops at the request's token limit -----------------------------------


class CappingHandler(Handler):
    """Reads the request's token limit before the fake server answers it."""

    server: CappingServer

    def openai(self, body: dict[str, Any]) -> None:
        self.server.cap.value = body.get("max_tokens") or body.get("max_completion_tokens")
        super().openai(body)

    def anthropic(self, body: dict[str, Any]) -> None:
        self.server.cap.value = body.get("max_tokens")
        super().anthropic(body)


class CappingServer(FakeLLMServer):
    """``FakeLLMServer`` whose answer is cut at the request's token limit, one token a piece
    (its usage counts follow, as they are the pieces' count)."""

    def __init__(self) -> None:
        self.cap = threading.local()  # per handler thread: the request being answered
        super().__init__()
        self.RequestHandlerClass = CappingHandler

    @property  # type: ignore[override]
    def pieces(self) -> list[str]:
        cap = getattr(self.cap, "value", None)
        return self._pieces[:cap] if cap else self._pieces

    @pieces.setter
    def pieces(self, value: list[str]) -> None:
        self._pieces = value


@pytest.fixture
def server() -> Iterator[CappingServer]:
    with serving(CappingServer()) as srv:
        yield srv


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# -- how each backend is built here ----------------------------------------------------------


@dataclass
class Case:
    """How the suite builds one backend: its arguments (given the fake server, if it needs
    one), the arguments that cap its answer, and a way to make it fail (None: it cannot)."""

    args: Callable[[CappingServer | None], dict[str, Any]]
    capped: dict[str, Any]
    remote: bool = False
    failing: Callable[[], tuple[LLM, Prompt]] | None = None
    marks: list[pytest.MarkDecorator] = field(default_factory=list)


def _unreachable(name: str, root: str) -> tuple[LLM, Prompt]:
    url = f"http://127.0.0.1:{free_port()}{root}"
    return get_llm(name, model="m", base_url=url, max_retries=0, timeout=5), make_prompt()


def _over_the_window() -> tuple[LLM, Prompt]:
    llm = get_llm("local", model=SMALL_MODEL, context_window=64, max_new_tokens=8)
    return llm, make_prompt(notes=NOTES * 4)


def _remote(root: str, model: str) -> Callable[[CappingServer | None], dict[str, Any]]:
    def args(server: CappingServer | None) -> dict[str, Any]:
        assert server is not None
        return {"model": model, "base_url": server.url + root, "api_key": "k", "max_retries": 0}

    return args


CASES: dict[str, Case] = {
    "extractive": Case(args=lambda _: {"relative_floor": 0.0}, capped={"max_sentences": 1}),
    "openai": Case(
        args=_remote("/v1", "test-model"),
        capped={"max_new_tokens": CAP},
        remote=True,
        failing=lambda: _unreachable("openai", "/v1"),
    ),
    "anthropic": Case(
        args=_remote("", "claude-test"),
        capped={"max_new_tokens": CAP},
        remote=True,
        failing=lambda: _unreachable("anthropic", ""),
    ),
    "local": Case(
        # One thread: on a busy machine llama.cpp's threads wait on one another. With two
        # threads and the machine's load at 12, the first check took 450 s; with one, 80 s.
        args=lambda _: {"model": SMALL_MODEL, "max_new_tokens": 16, "n_threads": 1},
        capped={"max_new_tokens": CAP},
        failing=_over_the_window,
        marks=[pytest.mark.real_model],
    ),
}


def _params(names: list[str]) -> list[Any]:
    return [pytest.param(name, marks=CASES[name].marks, id=name) for name in names]


@dataclass
class Backend:
    name: str
    case: Case
    server: CappingServer | None

    def args(self, **extra: Any) -> dict[str, Any]:
        return {**self.case.args(self.server), **extra}

    def build(self, **extra: Any) -> LLM:
        return get_llm(self.name, **self.args(**extra))


@pytest.fixture(params=_params(sorted(CASES)))
def backend(request: pytest.FixtureRequest) -> Backend:
    case = CASES[request.param]
    server = request.getfixturevalue("server") if case.remote else None
    return Backend(request.param, case, server)


# -- the checks ------------------------------------------------------------------------------


def test_every_llm_is_covered() -> None:
    # The suite runs on every id here; this pins the list, so a new built-in (or a plugin
    # installed in a developer's environment) must be given a case.
    assert sorted(llms.names()) == sorted(CASES)


def test_streams_text_pieces_that_make_the_complete_answer(backend: Backend) -> None:
    llm = backend.build()
    pieces = list(llm.stream(make_prompt()))
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    answer = "".join(pieces)
    assert answer.strip()
    assert llm.complete(make_prompt()) == answer  # deterministic: greedy or no model at all


def test_id_names_the_backend_and_config_rebuilds_it(backend: Backend) -> None:
    llm = backend.build()
    assert llm.id.split(":")[0] == backend.name
    assert llms.name_of(type(llm)) == backend.name
    config = llm.config()
    again = get_llm(backend.name, **config)
    assert type(again) is type(llm) and again.id == llm.id and again.config() == config
    assert again.complete(make_prompt()) == llm.complete(make_prompt())


def test_answer_stays_within_its_cap(backend: Backend) -> None:
    full = backend.build().complete(make_prompt())
    llm = backend.build(**backend.case.capped)
    capped = llm.complete(make_prompt())
    assert capped.strip() and len(capped) < len(full) and capped in full
    if llm.generative:
        assert 0 < llm.usage.completion_tokens <= CAP
    if backend.server is not None:  # the cap went to the server in the protocol's field
        sent = backend.server.last()
        assert sent.get("max_tokens", sent.get("max_completion_tokens")) == CAP


def test_usage_counts_what_a_model_generated(backend: Backend) -> None:
    llm = backend.build()
    pieces = list(llm.stream(make_prompt()))
    if llm.generative:
        assert llm.usage.prompt_tokens > 0
        assert 0 < llm.usage.completion_tokens <= llm.max_new_tokens
        assert llm.usage.completion_tokens >= len(pieces) // 4  # a piece is a token or a few
    else:  # the extractive quoter calls no model
        assert (llm.usage.prompt_tokens, llm.usage.completion_tokens) == (0, 0)


def test_a_caller_that_stops_reading_leaves_the_backend_usable(backend: Backend) -> None:
    llm = backend.build()
    full = llm.complete(make_prompt())
    gen = llm.stream(make_prompt())
    first = next(gen)
    gen.close()  # resources freed here: a leaked socket is a ResourceWarning, an error here
    assert full.startswith(first)
    assert llm.complete(make_prompt()) == full


def test_count_tokens_grows_with_the_text(backend: Backend) -> None:
    llm = backend.build()
    short = llm.count_tokens("ferry")
    long = llm.count_tokens("The ferry to Cacilhas leaves every 20 minutes. " * 5)
    assert 0 < short < long


def test_an_unknown_setting_is_a_config_error(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="no argument 'temprature'") as info:
        backend.build(temprature=0.5)
    assert "it takes:" in str(info.value)


@pytest.mark.parametrize("name", _params(sorted(n for n, c in CASES.items() if c.failing)))
def test_a_failure_is_a_typed_error(name: str) -> None:
    failing = CASES[name].failing
    assert failing is not None
    llm, prompt = failing()
    with pytest.raises(KenningError) as info:
        llm.complete(prompt)
    assert isinstance(info.value.exit_code, int) and info.value.exit_code > 0
    if CASES[name].remote:
        assert isinstance(info.value, RemoteLLMError) and "cannot reach" in str(info.value)
    with pytest.raises(KenningError):  # streaming fails the same way
        list(llm.stream(prompt))
