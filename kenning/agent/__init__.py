"""The agent: several steps through the notes with read-only tools, traces and memory.

``Agent(index, llm).run(question)`` is the one call behind `kenning agent`, `POST /api/agent`
and `kenning eval agent`.
"""

from .calling import ScriptedCaller, SearchCaller, ToolCaller, Turn
from .loop import Agent, Run, Step, caller_for
from .memory import Memory
from .tools import TOOLS, Tool, Toolbox, ToolCall
from .trace import TraceStore, Tracing

__all__ = [
    "TOOLS",
    "Agent",
    "Memory",
    "Run",
    "ScriptedCaller",
    "SearchCaller",
    "Step",
    "Tool",
    "ToolCall",
    "ToolCaller",
    "Toolbox",
    "TraceStore",
    "Tracing",
    "Turn",
    "caller_for",
]
