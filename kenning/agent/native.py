"""Tool calls on the remote backends, through each server's native tool-calling API.

``openai`` (any chat-completions server: OpenAI, Ollama, vLLM, llama.cpp's server) gets the
tools as ``functions`` and answers with ``tool_calls``; ``anthropic`` gets them as ``tools``
with an ``input_schema`` and answers with ``tool_use`` blocks, and takes results back as
``tool_result`` blocks. Requests go through the backends' own ``send``
(``kenning.answer.remote``): the same settings and key, and a failing server is the same
``RemoteLLMError`` naming its URL. A call
whose arguments are not JSON, or that names no tool, goes back to the model as an error.
"""

from __future__ import annotations

import json
from typing import Any

from kenning.answer.llms import LLM, Usage
from kenning.answer.remote import AnthropicLLM, OpenAILLM

from .calling import SYSTEM, Decision, ToolCaller, Turn
from .tools import TOOLS, ToolCall

#: the most tokens one call may take
CALL_TOKENS = 256


def native_caller(llm: LLM) -> ToolCaller:
    if isinstance(llm, OpenAILLM):
        return OpenAICaller(llm)
    if isinstance(llm, AnthropicLLM):
        return AnthropicCaller(llm)
    raise TypeError(f"no native tool calling for {llm.id}")


def _arguments(text: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(text, dict):
        return text, None
    try:
        args = json.loads(text or "{}")
    except (json.JSONDecodeError, TypeError) as e:
        return None, f"the arguments are not JSON ({e})"
    if not isinstance(args, dict):
        return None, "the arguments must be a JSON object"
    return args, None


class OpenAICaller(ToolCaller):
    """Chat completions with ``tools``; one call per step (the first, if several)."""

    provider = "openai"
    llm: OpenAILLM

    def messages(self, turns: list[Turn]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
        for i, t in enumerate(turns):
            call_id = (t.call.id if t.call else "") or f"call_{i}"
            if t.role == "assistant" and t.call is not None:
                fn = {"name": t.call.name, "arguments": json.dumps(t.call.arguments)}
                out.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": call_id, "type": "function", "function": fn}],
                    }
                )
            elif t.role == "assistant":
                out.append({"role": "assistant", "content": t.content})
            elif t.role == "tool" and t.call is not None:
                prev = (t.call.id or "") or f"call_{i - 1}"
                out.append({"role": "tool", "tool_call_id": prev, "content": t.content})
            else:
                out.append({"role": "user", "content": t.content})
        return out

    def decide(self, turns: list[Turn]) -> Decision:
        llm = self.llm
        args: dict[str, Any] = {
            "model": llm.model,
            "messages": self.messages(turns),
            "tools": [{"type": "function", "function": t.spec()} for t in TOOLS],
            "max_tokens": CALL_TOKENS,
        }
        if llm.temperature is not None:
            args["temperature"] = llm.temperature
        response = llm.send(args)
        usage = Usage()
        if getattr(response, "usage", None) is not None:
            usage = Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
        if not getattr(response, "choices", None):
            return Decision(None, usage=usage)
        message = response.choices[0].message
        calls = message.tool_calls or []
        if not calls:
            return Decision(None, raw=message.content or "", usage=usage)
        first = calls[0]
        parsed, error = _arguments(first.function.arguments)
        raw = json.dumps({"tool": first.function.name, "arguments": first.function.arguments})
        if parsed is None:
            return Decision(None, raw=raw, error=error, usage=usage)
        return Decision(ToolCall(first.function.name, parsed, first.id or ""), raw, usage=usage)


class AnthropicCaller(ToolCaller):
    """The Messages API with ``tools``; ``tool_use`` in, ``tool_result`` back."""

    provider = "anthropic"
    llm: AnthropicLLM

    def messages(self, turns: list[Turn]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        def add(role: str, block: dict[str, Any]) -> None:
            if out and out[-1]["role"] == role:
                out[-1]["content"].append(block)
            else:
                out.append({"role": role, "content": [block]})

        for i, t in enumerate(turns):
            if t.role == "assistant" and t.call is not None:
                block = {
                    "type": "tool_use",
                    "id": t.call.id or f"toolu_{i}",
                    "name": t.call.name,
                    "input": t.call.arguments,
                }
                add("assistant", block)
            elif t.role == "assistant":
                add("assistant", {"type": "text", "text": t.content or "(no call)"})
            elif t.role == "tool" and t.call is not None:
                result = {
                    "type": "tool_result",
                    "tool_use_id": t.call.id or f"toolu_{i - 1}",
                    "content": t.content,
                }
                add("user", result)
            else:
                add("user", {"type": "text", "text": t.content})
        return out

    def decide(self, turns: list[Turn]) -> Decision:
        llm = self.llm
        args: dict[str, Any] = {
            "model": llm.model,
            "max_tokens": CALL_TOKENS,
            "system": SYSTEM,
            "messages": self.messages(turns),
            "tools": [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in TOOLS
            ],
        }
        if llm.temperature is not None:
            args["extra_body"] = {"temperature": llm.temperature}
        response = llm.send(args)
        usage = Usage(response.usage.input_tokens or 0, response.usage.output_tokens or 0)
        text = "".join(b.text for b in response.content if b.type == "text")
        for block in response.content:
            if block.type == "tool_use":
                parsed, error = _arguments(block.input)
                raw = json.dumps({"tool": block.name, "arguments": block.input}, default=str)
                if parsed is None:
                    return Decision(None, raw=raw, error=error, usage=usage)
                return Decision(ToolCall(block.name, parsed, block.id), raw, usage=usage)
        return Decision(None, raw=text, usage=usage)
