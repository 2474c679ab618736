"""Remote LLM backends: OpenAI-compatible chat servers and Anthropic's Messages API.

Both go through the vendors' official SDKs (the ``openai`` and ``anthropic`` extras), imported
only when a backend calls its server, so ``kenning --help`` stays fast and the core install
needs neither (building a backend only checks that its SDK is there). ``openai`` covers any
server that speaks the chat-completions protocol: OpenAI itself, and the local ones (Ollama,
vLLM, LM Studio, llama.cpp's server) through ``base_url``.

Settings come from the arguments, then the vendor's usual environment variables
(``OPENAI_MODEL``/``OPENAI_BASE_URL``/``OPENAI_API_KEY``, ``ANTHROPIC_*``). ``config()`` saves
the resolved model and URL so a saved conversation rebuilds the same backend, and never the
key: the key is read from the environment again when the backend is rebuilt.

Every failure of the server (unreachable, refused key, unknown model, timeout, an error or a
dropped connection in the middle of a stream, a URL that is not the API) becomes a
``RemoteLLMError`` that names the server URL and what to check, instead of an SDK exception
with a traceback. ``send`` makes one request of the backend's own kind with any arguments
the SDK takes (the agent's tool calls use it), with the same errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from kenning.errors import ConfigError, MissingExtra, RemoteLLMError

from .llms import LLM, Message, Prompt, Usage, llms

#: sent as the key to a server that wants none (a local Ollama, vLLM, llama.cpp...): the
#: SDKs refuse to start without one, and such servers ignore it
NO_KEY = "not-needed"
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
ANTHROPIC_DEFAULT_MODEL = "claude-haiku-4-5"
ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"


def _env(name: str) -> str | None:
    """An environment variable, with an empty value read as unset (``FOO= kenning ...``)."""
    value = os.environ.get(name, "").strip()
    return value or None


def _check_numbers(
    backend: str,
    max_new_tokens: int,
    temperature: float | None,
    context_window: int,
    timeout: float,
) -> None:
    if max_new_tokens < 1:
        raise ConfigError(f"{backend}: max_new_tokens must be at least 1, not {max_new_tokens}")
    if context_window <= max_new_tokens:
        raise ConfigError(
            f"{backend}: context_window ({context_window}) must be larger than "
            f"max_new_tokens ({max_new_tokens})"
        )
    if temperature is not None and temperature < 0:
        raise ConfigError(f"{backend}: temperature must be 0 or more, not {temperature}")
    if timeout <= 0:
        raise ConfigError(f"{backend}: timeout must be a positive number of seconds, not {timeout}")


def _api_key(backend: str, api_key: str | None, base_url: str | None, env: str) -> str:
    """The key to send: given, else ``$env``, else a placeholder when a base_url is set.

    Only a server named by base_url can be one that needs no key; the vendor's own API always
    does, so a missing key there is a configuration error said up front, not a 401 later.
    """
    key = api_key or _env(env)
    if key:
        return key
    if base_url:
        return NO_KEY
    url_env = env.replace("API_KEY", "BASE_URL")
    raise ConfigError(
        f"the {backend} backend needs an API key: set {env} (or pass api_key). For a local "
        f"server that needs no key, set its URL with {url_env} (or base_url) instead"
    )


def _status_hint(status: int, env_prefix: str, model: str) -> str:
    """What to check for an HTTP error status, in the user's terms."""
    if status in (401, 403):
        return f"the server refused the API key; check {env_prefix}_API_KEY (or api_key)"
    if status == 404:
        return (
            f"check the model name {model!r} ({env_prefix}_MODEL or model) and that the URL "
            f"is the API's root ({env_prefix}_BASE_URL or base_url)"
        )
    if status == 429:
        return "the server is rate limiting or the account is out of quota; wait or check it"
    if status == 400:
        return "the server rejected the request; check the model and its settings"
    if status >= 500:
        return "the server failed; check its logs or try again later"
    return "check the server and the settings"


def _server_message(exc: Any) -> str:
    """The server's own error text, from an SDK status error, shortened."""
    body = getattr(exc, "body", None)
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
    text = str(message or getattr(exc, "message", "") or exc).strip()
    return text[:300] + ("…" if len(text) > 300 else "")


def _network_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """The HTTP library's (transport errors, timeouts), which an SDK may let escape mid-stream.

    The anthropic SDK does not wrap a connection dropped while a stream is being read. The
    SDKs use ``httpx2`` (older releases ``httpx``): both are looked for.
    """
    transport: list[type[BaseException]] = []
    timeouts: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        transport.append(module.TransportError)
        timeouts.append(module.TimeoutException)
    return tuple(transport), tuple(timeouts)


def _import(module: str) -> Any:
    """The SDK module, or MissingExtra naming the extra (the module and extra share a name)."""
    try:
        return __import__(module)
    except ImportError:
        raise MissingExtra(module, module) from None


def _not_the_api(backend: str, url: str, what: str) -> RemoteLLMError:
    """A server that answered, but not in the protocol: most often a URL without its /v1."""
    env_prefix = backend.upper()
    return RemoteLLMError(
        f"the {backend} server at {url} answered with {what}, not the {backend} API; check that "
        f"{env_prefix}_BASE_URL (or base_url) is the API's root"
        + (" (for most local servers it ends in /v1)" if backend == "openai" else ""),
        url,
    )


def _translate(
    exc: BaseException,
    sdk: Any,
    *,
    backend: str,
    url: str,
    model: str,
    timeout: float,
    started: bool = False,
) -> RemoteLLMError:
    """An SDK or network exception as a RemoteLLMError naming the URL and what to check.

    ``started`` says whether part of the answer had arrived, which turns "cannot reach" into
    "the connection broke off".
    """
    env_prefix = backend.upper()
    transport, timeouts = _network_errors()
    if started and isinstance(exc, (sdk.APIConnectionError, *transport)):
        broke = exc.__cause__ or exc.__context__ or exc
        return RemoteLLMError(
            f"the connection to the {backend} server at {url} broke off in the middle of the "
            f"answer ({broke or type(broke).__name__}); check the server (its logs, whether it "
            "restarted) and try again",
            url,
        )
    if isinstance(exc, (sdk.APITimeoutError, *timeouts)):
        return RemoteLLMError(
            f"the {backend} server at {url} did not answer within {timeout:g} s; check that it "
            "is not overloaded (a local server may still be loading the model), or raise timeout",
            url,
        )
    if isinstance(exc, (sdk.APIConnectionError, *transport)):
        cause = exc.__cause__ or exc.__context__
        why = f" ({cause})" if cause and str(cause) else ""
        return RemoteLLMError(
            f"cannot reach the {backend} server at {url}{why}; check that the server is running "
            f"and that {env_prefix}_BASE_URL (or base_url) is right",
            url,
        )
    if isinstance(exc, sdk.APIStatusError) and exc.status_code < 400:
        # an ``error`` event inside a stream that had begun well (Anthropic's "overloaded")
        return RemoteLLMError(
            f"the {backend} server at {url} broke off the answer of model {model!r} with an "
            f"error: {_server_message(exc)}; try again, or later if the server is overloaded",
            url,
        )
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        return RemoteLLMError(
            f"the {backend} server at {url} answered HTTP {status} for model {model!r}: "
            f"{_server_message(exc)}; {_status_hint(status, env_prefix, model)}",
            url,
            status,
        )
    return RemoteLLMError(
        f"the {backend} server at {url} failed for model {model!r}: {_server_message(exc)}",
        url,
    )


class _RemoteLLM(LLM):
    """What both remote backends share: settings from arguments or the environment, checked
    up front, the server's URL, and a config that never holds the key."""

    backend = ""  # "openai" or "anthropic": the extra, the env prefix, the id
    default_model = ""
    default_url = ""

    def _settings(
        self,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        max_new_tokens: int,
        temperature: float | None,
        context_window: int,
        timeout: float,
        max_retries: int,
    ) -> None:
        name, env = self.backend, self.backend.upper()
        MissingExtra.require(name, name, name)
        _check_numbers(name, max_new_tokens, temperature, context_window, timeout)
        self.model = model or _env(f"{env}_MODEL") or self.default_model
        self.base_url = (base_url or _env(f"{env}_BASE_URL") or "").rstrip("/") or None
        self._api_key = _api_key(name, api_key, self.base_url, f"{env}_API_KEY")
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.context_window, self.timeout, self.max_retries = context_window, timeout, max_retries
        self.id = f"{name}:{self.model}"

    @property
    def url(self) -> str:
        """The server's API root, as error messages name it."""
        return self.base_url or self.default_url

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "context_window": self.context_window,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }


@llms.register("openai")
class OpenAILLM(_RemoteLLM):
    """Any OpenAI-compatible chat-completions server, through the ``openai`` SDK.

    ``base_url`` points it at a local server, e.g. ``http://localhost:11434/v1`` for Ollama or
    ``http://localhost:8000/v1`` for vLLM; such a server needs no key. The answer streams;
    ``self.usage`` is filled from the final usage chunk, which is asked for with
    ``stream_options.include_usage`` and which some servers never send (usage then stays 0).
    ``temperature=None`` leaves it out of the request, for models that accept only their own
    (OpenAI's reasoning models).
    """

    backend, default_model, default_url = "openai", OPENAI_DEFAULT_MODEL, OPENAI_DEFAULT_URL

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        max_new_tokens: int = 512,
        temperature: float | None = 0.0,
        context_window: int = 8192,
        timeout: float = 60,
        max_retries: int = 2,
    ) -> None:
        super().__init__()
        self._settings(
            model,
            base_url,
            api_key,
            max_new_tokens,
            temperature,
            context_window,
            timeout,
            max_retries,
        )

    def _client(self, openai: Any) -> Any:
        return openai.OpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        """The chat-completions arguments shared by the streaming and the single request.

        OpenAI's own API wants ``max_completion_tokens`` (its reasoning models reject
        ``max_tokens``); the compatible servers know ``max_tokens``, and not all of them the
        newer name, so each gets the one it understands.
        """
        on_openai = urlsplit(self.url).hostname == "api.openai.com"
        args: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "max_completion_tokens" if on_openai else "max_tokens": self.max_new_tokens,
        }
        if self.temperature is not None:
            args["temperature"] = self.temperature
        return args

    def _fail(self, exc: BaseException, openai: Any, started: bool = False) -> RemoteLLMError:
        return _translate(
            exc,
            openai,
            backend="openai",
            url=self.url,
            model=self.model,
            timeout=self.timeout,
            started=started,
        )

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.usage = Usage()
        openai = _import("openai")
        chunks_seen, started = 0, False
        try:
            with self._client(openai) as client:
                chunks = client.chat.completions.create(
                    **self._request(prompt),
                    stream=True,
                    stream_options={"include_usage": True},
                )
                with chunks:
                    for chunk in chunks:
                        chunks_seen += 1
                        if chunk.usage is not None:  # the last chunk, or every one on some servers
                            self.usage = Usage(
                                chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0
                            )
                        for choice in chunk.choices:
                            if choice.index == 0 and choice.delta and choice.delta.content:
                                started = True
                                yield choice.delta.content
                    if not chunks_seen:  # every real stream sends at least its closing chunk
                        what = f"no stream events ({chunks.response.headers.get('content-type')})"
                        raise _not_the_api("openai", self.url, what)
        except (openai.OpenAIError, *_network_errors()[0]) as exc:
            raise self._fail(exc, openai, started) from exc

    def send(self, args: dict[str, Any]) -> Any:
        """One chat-completions request without streaming (``args`` as the SDK's ``create``
        takes them, ``tools`` included): the SDK's response; a failure is the
        ``RemoteLLMError`` an answer would raise."""
        openai = _import("openai")
        try:
            with self._client(openai) as client:
                return client.chat.completions.create(**args)
        except (openai.OpenAIError, *_network_errors()[0]) as exc:
            raise self._fail(exc, openai) from exc

    def complete(self, prompt: Prompt) -> str:
        """One request without streaming: the whole answer, and usage from every server."""
        self.usage = Usage()
        response = self.send(self._request(prompt))
        if isinstance(response, str):  # the SDK hands back a body that is not JSON as text
            raise _not_the_api("openai", self.url, f"text ({response[:60].strip()!r}…)")
        if response.usage is not None:
            self.usage = Usage(
                response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0
            )
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""


def anthropic_messages(messages: list[Message]) -> tuple[str, list[dict[str, str]]]:
    """Split chat messages the Messages API way: system text apart, the turns in order.

    The API takes the system prompt as its own parameter, not as a message; turns of the same
    role in a row are merged, as the API wants user and assistant to alternate.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, str]] = []
    for m in messages:
        if m.role == "system":
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"] += "\n\n" + m.content
        else:
            turns.append({"role": m.role, "content": m.content})
    return system, turns


_INPUT_COUNTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@llms.register("anthropic")
class AnthropicLLM(_RemoteLLM):
    """Claude through Anthropic's Messages API and the ``anthropic`` SDK.

    ``base_url`` points it at a proxy or gateway that speaks the same API. ``self.usage`` is
    filled from the stream's ``message_start`` (input tokens, cache reads and writes counted
    in) and ``message_delta`` (output tokens) events. The installed SDK (2.x) no longer lists
    ``temperature`` among the request's parameters, so it is sent as an extra field, and only
    when set: the default None lets the model use its own.
    """

    backend = "anthropic"
    default_model, default_url = ANTHROPIC_DEFAULT_MODEL, ANTHROPIC_DEFAULT_URL

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        max_new_tokens: int = 512,
        temperature: float | None = None,
        context_window: int = 8192,
        timeout: float = 60,
        max_retries: int = 2,
    ) -> None:
        super().__init__()
        self._settings(
            model,
            base_url,
            api_key,
            max_new_tokens,
            temperature,
            context_window,
            timeout,
            max_retries,
        )

    def _count(self, usage: Any, inputs: dict[str, int]) -> None:
        """Take the counts a stream event carries into ``self.usage``.

        They are running totals, so they replace; one that a ``message_delta`` leaves out
        (None) keeps its ``message_start`` value. Cache writes and reads are input tokens too,
        counted apart by the API, so the prompt's count is their sum with ``input_tokens``.
        """
        for name in _INPUT_COUNTS:
            value = getattr(usage, name, None)
            if value is not None:
                inputs[name] = value
        self.usage.prompt_tokens = sum(inputs.values())
        if usage.output_tokens is not None:
            self.usage.completion_tokens = usage.output_tokens

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.usage = Usage()
        anthropic = _import("anthropic")
        system, turns = anthropic_messages(prompt.messages)
        args: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_new_tokens,
            "messages": turns,
        }
        if system:
            args["system"] = system
        if self.temperature is not None:
            args["extra_body"] = {"temperature": self.temperature}
        inputs: dict[str, int] = {}
        events_seen, started = 0, False
        try:
            with self._client(anthropic) as client:
                with client.messages.stream(**args) as events:
                    for event in events:
                        events_seen += 1
                        if event.type == "message_start":
                            self._count(event.message.usage, inputs)
                        elif event.type == "message_delta":
                            self._count(event.usage, inputs)
                        elif (
                            event.type == "content_block_delta"
                            and event.delta.type == "text_delta"
                            and event.delta.text
                        ):
                            started = True
                            yield event.delta.text
                    if not events_seen:  # a real stream always starts with message_start
                        what = f"no stream events ({events.response.headers.get('content-type')})"
                        raise _not_the_api("anthropic", self.url, what)
        except (anthropic.AnthropicError, *_network_errors()[0]) as exc:
            raise self._fail(exc, anthropic, started) from exc

    def _client(self, anthropic: Any) -> Any:
        # An explicit key (the placeholder included) keeps the SDK from looking for
        # credentials in profile files on disk.
        return anthropic.Anthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    def _fail(self, exc: BaseException, anthropic: Any, started: bool = False) -> RemoteLLMError:
        return _translate(
            exc,
            anthropic,
            backend="anthropic",
            url=self.url,
            model=self.model,
            timeout=self.timeout,
            started=started,
        )

    def send(self, args: dict[str, Any]) -> Any:
        """One Messages API request without streaming (``args`` as the SDK's ``create``
        takes them, ``tools`` included): the SDK's response; a failure is the
        ``RemoteLLMError`` an answer would raise."""
        anthropic = _import("anthropic")
        try:
            with self._client(anthropic) as client:
                return client.messages.create(**args)
        except (anthropic.AnthropicError, *_network_errors()[0]) as exc:
            raise self._fail(exc, anthropic) from exc
