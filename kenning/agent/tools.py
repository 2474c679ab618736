"""The agent's tools: read-only looks at the index, each with a JSON schema for its arguments.

``search`` (a query, optionally a tag or a path glob), ``read`` (a note, or one heading of
it), ``list`` (a folder, or the notes with a tag), ``links`` (a note's outgoing links and
backlinks) and ``ask`` (a checked answer to a sub-question). A tool returns the text the model
reads next and the passages it showed: those passages are numbered once per run (``[n]``, the
same number every time a chunk comes back), and the final answer cites and is checked against
them. Nothing here writes to the index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kenning.answer import ask as ask_question
from kenning.answer.llms import LLM, Passage
from kenning.errors import ConfigError, KenningError
from kenning.filters import Condition, Filters, relative
from kenning.index import Index
from kenning.index.links import Resolver
from kenning.store.base import ChunkRow

#: characters of a passage shown in a search result (the check reads the whole chunk)
SHOWN_CHARS = 600
#: characters a ``read`` shows at most
READ_CHARS = 1400
#: notes a ``list`` or ``links`` names at most
LISTED = 25
#: the longest string argument the schemas allow
MAX_ARG = 160


@dataclass(frozen=True)
class Tool:
    """A tool as the model sees it: its name, what it does, and its arguments' schema."""

    name: str
    description: str
    parameters: dict[str, Any]

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style function description (Anthropic's differs only in key names)."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def _schema(required: dict[str, str], optional: dict[str, str] | None = None) -> dict[str, Any]:
    props = {
        name: {"type": "string", "description": text, "minLength": 1, "maxLength": MAX_ARG}
        for name, text in {**required, **(optional or {})}.items()
    }
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": False,
    }


TOOLS: list[Tool] = [
    Tool(
        "search",
        "Search the notes; returns the best passages, numbered.",
        _schema({"query": "what to look for, in words"}),
    ),
    Tool(
        "read",
        "Read a note (its path or name), or one heading of it.",
        _schema({"note": "the note's path or name"}, {"heading": "only this section"}),
    ),
    Tool(
        "list",
        "List the notes in a folder, or the notes with a tag.",
        _schema({}, {"folder": "a folder, as paths show it", "tag": "a tag"}),
    ),
    Tool(
        "links",
        "The notes a note links to, and the notes that link to it.",
        _schema({"note": "the note's path or name"}),
    ),
    Tool(
        "ask",
        "A short checked answer to a simpler sub-question, from a search of the notes.",
        _schema({"question": "the sub-question"}),
    ),
]
TOOL_NAMES = [t.name for t in TOOLS]


@dataclass
class ToolCall:
    """A call the model made: a tool's name and its arguments (``id``: the server's, if any)."""

    name: str
    arguments: dict[str, Any]
    id: str = ""

    def key(self) -> str:
        """What makes two calls the same call: the name and the arguments, in any order."""
        args = {k: " ".join(str(v).split()).lower() for k, v in self.arguments.items() if v}
        return self.name + json.dumps(args, sort_keys=True)

    def show(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        return f"{self.name}({args})"


def invalid(call: ToolCall) -> str | None:
    """Why ``call`` is not a valid call of one of ``TOOLS`` (None: it is)."""
    tool = next((t for t in TOOLS if t.name == call.name), None)
    if tool is None:
        return f"there is no tool {call.name!r}; the tools are: {', '.join(TOOL_NAMES)}"
    if not isinstance(call.arguments, dict):
        return "the arguments must be a JSON object"
    props, required = tool.parameters["properties"], tool.parameters["required"]
    for name, value in call.arguments.items():
        if name not in props:
            return f"{call.name} takes no argument {name!r}; it takes: {', '.join(props)}"
        if not isinstance(value, str):
            return f"{call.name}: {name} must be a string"
    for name in required:
        if not str(call.arguments.get(name, "")).strip():
            return f"{call.name} needs {name!r}"
    return None


@dataclass
class Result:
    """What a tool gave back: the text for the model, and the passages and chunks it showed."""

    text: str
    passages: list[Passage] = field(default_factory=list)
    error: bool = False

    @property
    def chunk_ids(self) -> list[int]:
        return [p.chunk_id for p in self.passages]


class Toolbox:
    """The tools over one index, for one run: it numbers every passage it shows."""

    def __init__(
        self,
        index: Index,
        llm: LLM | None = None,
        k: int = 4,
        filters: Filters | None = None,
        asker: Callable[[str], Any] | None = None,
    ) -> None:
        self.index, self.llm, self.k, self.filters = index, llm, k, filters
        self._asker = asker
        #: every passage shown this run, by (chunk id, start, end), in the order first shown
        self.passages: dict[tuple[int, int, int], Passage] = {}
        #: the number of the call that first showed each passage
        self.shown_by: dict[tuple[int, int, int], int] = {}
        self.calls = 0
        self._resolver: Resolver | None = None

    def run(self, call: ToolCall) -> Result:
        """Run a valid call; a failure the model can act on (no such note) is a result too."""
        self.calls += 1
        try:
            return getattr(self, f"_{call.name}")(**call.arguments)
        except KenningError as e:
            return Result(f"error: {e}", error=True)

    # -- numbering ---------------------------------------------------------------------

    def _number(
        self,
        chunk_id: int,
        path: str,
        title: str,
        heading: str,
        page: int | None,
        start: int,
        end: int,
        text: str,
        score: float,
    ) -> Passage:
        key = (chunk_id, start, end)
        seen = self.passages.get(key)
        if seen is None:
            seen = Passage(
                len(self.passages) + 1,
                chunk_id,
                path,
                title,
                heading,
                page,
                start,
                end,
                text,
                score,
            )
            self.passages[key] = seen
            self.shown_by[key] = self.calls
        return seen

    def latest_first(self) -> list[Passage]:
        """Every passage shown, the latest call's first (later steps followed the question
        further: a link, a read), each call's in its own order."""
        return sorted(
            self.passages.values(),
            key=lambda p: (-self.shown_by[(p.chunk_id, p.start, p.end)], p.n),
        )

    def _block(self, p: Passage, chars: int = SHOWN_CHARS) -> str:
        text = " ".join(p.text.split())
        if len(text) > chars:
            text = text[:chars].rsplit(" ", 1)[0] + " …"
        return (
            f"[{p.n}] {self._short(p.path)}"
            + (f" ({p.heading})" if p.heading else "")
            + (f"\n{text}")
        )

    def _short(self, path: str) -> str:
        row = self._sources().sources.get(path)
        return relative(path, row.root) if row else path

    def _sources(self) -> Resolver:
        if self._resolver is None:
            self._resolver = Resolver(self.index.store.sources())
        return self._resolver

    # -- the tools ---------------------------------------------------------------------

    def _search(self, query: str) -> Result:
        hits = self.index.search(query, k=self.k, filters=self.filters)
        if not hits:
            return Result(f"no passage matches {query!r}")
        shown = [
            self._number(
                h.chunk_id, h.path, h.title, h.heading, h.page, h.start, h.end, h.text, h.score
            )
            for h in hits
        ]
        return Result("\n\n".join(self._block(p) for p in shown), shown)

    def _read(self, note: str, heading: str = "") -> Result:
        path = self._sources().find(note.strip())
        rows = self._rows(path)
        if not rows:
            return Result(f"{self._short(path)} has no text", error=True)
        blocks: list[str] = []
        if heading.strip():
            want = heading.strip().lstrip("#").strip().lower()
            picked = [r for r in rows if want in r.heading.lower()] or _sections(rows, want)
            if not picked:
                # a small model often passes the note's name or its question as the
                # heading: the whole note serves it better than an error
                headings = list(
                    dict.fromkeys(
                        [r.heading for r in rows if r.heading]
                        + [m.group(2) for r in rows for m in _HEADING.finditer(r.text)]
                    )
                )
                blocks.append(
                    f"{self._short(path)} has no heading {heading!r} (its headings: "
                    + ("; ".join(headings[:LISTED]) or "none")
                    + "); the whole note:"
                )
            rows = picked or rows
        shown: list[Passage] = []
        budget = READ_CHARS
        for r in rows:
            if budget <= 0:
                blocks.append(f"(… {len(rows) - len(shown)} more passages of this note)")
                break
            p = self._number(r.id, r.path, r.title, r.heading, r.page, r.start, r.end, r.text, 0.0)
            shown.append(p)
            blocks.append(self._block(p, budget))
            budget -= len(r.text)
        pointers = self._pointers(path, "\n".join(r.text for r in rows))
        if pointers:
            blocks.append(
                "This note links to or names: "
                + ", ".join(self._short(p) for p in pointers[:LISTED])
                + " (read one with read)"
            )
        return Result("\n\n".join(blocks), shown)

    def _pointers(self, path: str, text: str) -> list[str]:
        """The notes ``path`` points to: its resolved links, then the notes its code spans
        name ("See also: `awk`"), so the model sees where to go next without a links call."""
        resolver = self._sources()
        linked = [resolver.resolve(path, link) for link in self.index.store.links_from(path)]
        named = resolver.named_in_code(path, text)
        return list(dict.fromkeys(p for p in [*linked, *named] if p and p != path))

    def _list(self, folder: str = "", tag: str = "") -> Result:
        if not folder.strip() and not tag.strip():
            return Result("list needs a folder or a tag", error=True)
        where = [Condition("tags", "=", tag.strip().lstrip("#"))] if tag.strip() else []
        paths = [f"{folder.strip().strip('/')}/**"] if folder.strip() else []
        filters = Filters(where, paths)
        rows = [
            r
            for r in self.index.store.sources().values()
            if filters.matches(r) or (paths and filters.for_roots([r.root]).matches(r))
        ]
        if not rows:
            what = " and ".join(
                x for x in (folder and f"folder {folder!r}", tag and f"tag {tag!r}") if x
            )
            return Result(f"no note matches {what}")
        rows.sort(key=lambda r: r.path)
        lines = [f"- {self._short(r.path)}" + (f" ({r.title})" if r.title else "") for r in rows]
        more = f"\n(and {len(rows) - LISTED} more)" if len(rows) > LISTED else ""
        return Result("\n".join(lines[:LISTED]) + more)

    def _links(self, note: str) -> Result:
        found = self.index.links(note.strip())
        out = sorted({x.path for x in found.outgoing if x.path})
        back = sorted({x.source for x in found.backlinks})
        lines = [f"{self._short(found.path)} links to:"]
        lines += [f"- {self._short(p)}" for p in out[:LISTED]] or ["(nothing)"]
        lines.append("linked from:")
        lines += [f"- {self._short(p)}" for p in back[:LISTED]] or ["(nothing)"]
        named = self._sources().named_in_code(found.path, self._text(found.path))
        named = [p for p in named if p not in out]
        if named:
            lines.append("named in its code:")
            lines += [f"- {self._short(p)}" for p in named[:LISTED]]
        return Result("\n".join(lines) + "\n(read one with read)")

    def _rows(self, path: str) -> list[ChunkRow]:
        """A note's chunks, in order."""
        store = self.index.store
        rows = store.chunks([int(i) for i in store.chunk_ids(Filters(paths=[path]))]).values()
        return sorted((r for r in rows if r.path == path), key=lambda r: r.start)

    def _text(self, path: str) -> str:
        return "\n".join(r.text for r in self._rows(path))

    def _ask(self, question: str) -> Result:
        if self._asker is not None:
            answer = self._asker(question)
        else:
            answer = ask_question(self.index, question, self.llm, k=self.k, filters=self.filters)
        if answer.refused:
            return Result(answer.text)
        renumber = {
            s.n: self._number(
                s.chunk_id, s.path, s.title, s.heading, s.page, s.start, s.end, s.text, s.score
            )
            for s in answer.sources
        }
        cited = [renumber[n] for s in answer.sentences for n in s.citations if n in renumber]
        text = (
            " ".join(
                s.text + "".join(f"[{renumber[n].n}]" for n in s.citations if n in renumber)
                for s in answer.sentences
            )
            or answer.text
        )
        shown = list({p.chunk_id: p for p in cited}.values()) or list(renumber.values())[:1]
        return Result(text, shown)


def _key(p: Passage) -> tuple[int, int, int]:
    return p.chunk_id, p.start, p.end


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _sections(rows: list[ChunkRow], want: str) -> list[ChunkRow]:
    """The sections under a heading that holds ``want``, cut out of the chunks that hold
    them (a short note is one chunk with several headings)."""
    found = []
    for r in rows:
        heads = list(_HEADING.finditer(r.text))
        for i, m in enumerate(heads):
            if want not in m.group(2).lower():
                continue
            level = len(m.group(1))
            end = next((h.start() for h in heads[i + 1 :] if len(h.group(1)) <= level), None)
            stop = len(r.text) if end is None else end
            text = r.text[m.start() : stop].rstrip()
            found.append(
                replace(
                    r,
                    heading=m.group(2),
                    start=r.start + m.start(),
                    end=r.start + m.start() + len(text),
                    text=text,
                )
            )
    return found


def tool(name: str) -> Tool:
    for t in TOOLS:
        if t.name == name:
            return t
    raise ConfigError(f"unknown tool {name!r}; the tools are: {', '.join(TOOL_NAMES)}")
