"""Markup: the parts of a note's source that a reader of the rendered note does not see.

kenning cites exact offsets into the source, so it never rewrites a document's text. What it
indexes, embeds and shows in snippets is the text *as it reads*: a ``Reading`` locates the
markup of a text once, as a sorted list of ``(start, end, replacement)`` edits, and any span
of the source can then be read with that markup left out. Because the edits come from one
pass over the whole text, a comment or code fence that spans several paragraphs is known
even when a chunk holds only part of it.

What is left out, and why:

- HTML tags (``<span class="git-footer">``), ``<!-- -->`` comments and Obsidian's
  ``%% %%`` comments: rendered notes never show them, yet they fill keyword and embedding
  text with attribute names and class names that match queries by accident.
- Link targets: ``[text](url)`` reads ``text``, an image ``![alt](url)`` its alt text,
  ``[[target|alias]]`` its alias, ``[[target#part]]`` its target (``[[#part]]`` the part),
  and an embedded image or file (``![[pic.png]]``) nothing. A bare or ``<autolink>`` URL
  keeps only its host (``https://www.gnu.org/s/tar`` reads ``gnu.org``): the host says
  where a link goes, the path is noise that no one searches for.
- Callout markers (``> [!note]``) and block ids (``^a1b2c3``), Obsidian plumbing.
- A few HTML entities (``&nbsp;``, ``&amp;``) read as their characters.

Code is kept as written: a fenced block or an inline code span may well be *about* HTML
(``<div>``) or links, and its text is what a reader searches for.
"""

from __future__ import annotations

import bisect
import copy
import functools
import html
import re
from collections.abc import Iterable

#: an edit: source span [start, end) reads as ``replacement``
Edit = tuple[int, int, str]
#: a source span [start, end)
Span = tuple[int, int]

_MEDIA = (
    ".png .jpg .jpeg .gif .svg .webp .bmp .avif .mp3 .mp4 .webm .ogg .wav .m4a .mov .pdf "
    ".excalidraw"
).split()

# Each kind of markup has its own regex, run only when a cheap substring test says the text
# may hold it; each regex starts with a literal character, which ``re`` scans for quickly.
# (One alternation of all kinds was ten times slower: it is tried at every position.)
_ANGLE = re.compile(  # comments, <autolinks>, tags
    r"<(?:!--(?s:.*?)(?:-->|\Z)|(?P<auto>(?:https?|ftp)://[^\s<>]+)>"
    r"|/?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>)"
)
_OBSIDIAN_COMMENT = re.compile(r"%%.*?%%", re.DOTALL)
_BRACKET = re.compile(  # [[wikilinks]] and [text](target); a leading "!" is checked apart
    r"\[(?:\[(?P<wiki>[^\[\]\n]*)\]\]"
    r"|(?P<ltext>[^\[\]\n]*)\]\(\s*(?:<[^<>\n]*>|(?:[^()\s]|\([^()\s]*\))*)"
    r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\))"
)
#: a URL after its scheme: "://" is a literal that ``re`` finds fast; the scheme is checked apart
_URL = re.compile(r"://[^\s<>()\[\]\"'`]+")
_SCHEMES = ("https", "http", "ftp")
_CALLOUT = re.compile(r"^[ \t]*>[ \t]*\[![\w-]+\][+-]?", re.MULTILINE)
_BLOCK_ID = re.compile(r"\^(?<=[ \t]\^)[A-Za-z0-9-]+[ \t]*$", re.MULTILINE)
_ENTITY = re.compile(r"&(?:nbsp|amp|lt|gt|quot|apos|#\d{1,5}|#x[0-9a-fA-F]{1,4});")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})", re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)[^`\n](?:[^\n]*?[^`\n])??\1(?!`)")
#: (gate, regex, kind): the regex runs only on texts that contain the gate
_KINDS: list[tuple[str, re.Pattern[str], str]] = [
    ("<", _ANGLE, "angle"),
    ("%%", _OBSIDIAN_COMMENT, "comment"),
    ("[", _BRACKET, "bracket"),
    ("[!", _CALLOUT, "callout"),
    ("^", _BLOCK_ID, "blockid"),
    ("&", _ENTITY, "entity"),
]
_URL_PARTS = re.compile(r"(?:https?|ftp)://(?:[^@/\s]*@)?(?:www\.)?([^/?#:\s]*)")
# Written so that ``re`` stops only where there is something to collapse.
_SPACES = re.compile(r"[\t\r\f\v\u00a0][ \t\r\f\v\u00a0]*| [ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\n\n+")
#: characters that start markup: a text without any reads as it is written
_MARKUP_CHAR = re.compile(r"[<\[%&^:`~>]")


def _url_edits(start: int, url: str) -> list[Edit]:
    """Keep a URL's host: drop the scheme (and ``www.``) before it and the path after it."""
    m = _URL_PARTS.match(url)
    host = m.group(1).rstrip(".") if m else ""
    if not m or not host:
        return [(start, start + len(url), " ")]
    host_start = start + m.start(1)
    return [(start, host_start, " "), (host_start + len(host), start + len(url), " ")]


def _wiki_edits(start: int, end: int, link: str) -> list[Edit]:
    embed = link.startswith("!")
    inner_start = start + (3 if embed else 2)
    inner = link[(3 if embed else 2) : -2]
    target = inner.split("|", 1)[0].split("#", 1)[0].strip()
    if embed and target.lower().endswith(tuple(_MEDIA)):
        return [(start, end, " ")]
    if "|" in inner:  # [[target|alias]] reads as the alias
        bar = inner_start + inner.index("|") + 1
        return [(start, bar, ""), (end - 2, end, "")]
    if "#" in inner:  # [[target#part]] reads as the target; [[#part]] as the part
        hash_at = inner_start + inner.index("#")
        if target:
            return [(start, inner_start, ""), (hash_at, end, "")]
        return [(start, hash_at + 1, ""), (end - 2, end, "")]
    return [(start, inner_start, ""), (end - 2, end, "")]


@functools.lru_cache(maxsize=64)
def _closer(fence: str) -> re.Pattern[str]:
    return re.compile(r"^[ \t]*" + re.escape(fence), re.MULTILINE)


def fences(text: str, start: int = 0) -> list[tuple[int, int]]:
    """Code fences in ``text[start:]`` as (start, end) spans, as the chunker finds them: a
    line opening with three backticks or tildes, to a line opening with the same; an unclosed
    fence runs to the end."""
    if "```" not in text and "~~~" not in text:
        return []
    spans: list[tuple[int, int]] = []
    pos, n = start, len(text)
    while (m := _FENCE.search(text, pos)) is not None:
        line_end = text.find("\n", m.end())
        closing = _closer(m.group(1)).search(text, line_end + 1) if line_end != -1 else None
        if closing is None:
            spans.append((m.start(), n))
            break
        close_end = text.find("\n", closing.end())
        pos = n if close_end == -1 else close_end
        spans.append((m.start(), pos))
    return spans


def _in_code_span(text: str, pos: int, cache: dict[int, list[tuple[int, int]]]) -> bool:
    """Whether ``pos`` lies inside an inline code span (which never crosses a line)."""
    line_start = text.rfind("\n", 0, pos) + 1
    if "`" not in text[line_start:pos]:
        return False
    if line_start not in cache:
        line_end = text.find("\n", pos)
        stop = len(text) if line_end == -1 else line_end
        cache[line_start] = [m.span() for m in _CODE_SPAN.finditer(text, line_start, stop)]
    return any(s < pos < e for s, e in cache[line_start])


def _edits(
    text: str, start: int, code: list[tuple[int, int]], links: list[Span] | None = None
) -> list[Edit]:
    """The edits that read ``text[start:]`` without its markup; ``code`` spans are kept.
    ``links`` collects the source spans of the links found (``Reading.links``)."""
    found: list[tuple[int, int, str, re.Match[str] | None]] = [
        (s, e, "code", None) for s, e in code
    ]
    for gate, regex, kind in _KINDS:
        if gate in text:
            found.extend((m.start(), m.end(), kind, m) for m in regex.finditer(text, start))
    if "://" in text:
        for u in _URL.finditer(text, start):
            s = u.start()
            scheme = next((x for x in _SCHEMES if text.endswith(x, start, s)), None)
            if scheme and not text[s - len(scheme) - 1 : s - len(scheme)].isalnum():
                found.append((s - len(scheme), u.end(), "url", u))
    # Leftmost wins; an earlier match hides what starts inside it, and a fence wins a tie.
    found.sort(key=lambda f: (f[0], f[2] != "code"))
    edits: list[Edit] = []
    done = start
    code_spans: dict[int, list[tuple[int, int]]] = {}
    for s, e, kind, m in found:
        if s < done:
            continue
        if m is None or _in_code_span(text, s, code_spans):  # code is kept as written
            done = e if m is None else done
            continue
        if kind == "angle":
            if m.group("auto"):
                edits.append((s, s + 1, ""))
                edits.extend(_url_edits(s + 1, m.group("auto")))
                edits.append((e - 1, e, ""))
            else:
                edits.append((s, e, " "))
        elif kind == "bracket":
            if s - 1 >= done and text[s - 1] == "!":
                s -= 1  # an image or an embed
            if links is not None:
                links.append((s, e))
            if m.group("wiki") is not None:
                edits.extend(_wiki_edits(s, e, text[s:e]))
            else:
                text_start, text_end = m.span("ltext")
                edits.append((s, text_start, ""))
                edits.append((text_end, e, " " if text_start == text_end else ""))
        elif kind == "url":
            edits.extend(_url_edits(s, text[s:e]))
        elif kind == "entity":
            edits.append((s, e, html.unescape(m.group())))
        else:  # comment, callout, block id
            edits.append((s, e, " "))
        done = e
    return [x for x in edits if x[0] < x[1]]


def merge(edits: Iterable[Edit]) -> list[Edit]:
    """Sort edits and fuse overlapping ones (the fused span reads as one space)."""
    out: list[Edit] = []
    for s, e, rep in sorted(edits):
        if out and s < out[-1][1]:
            ps, pe, prep = out[-1]
            out[-1] = (ps, max(pe, e), " " if (rep or prep) else "")
        else:
            out.append((s, e, rep))
    return out


class Reading:
    """A text with its markup located once, so that any span of it reads as a reader sees it.

    ``markdown=False`` locates nothing (plain text, extracted HTML and PDF text already read
    as they are); ``hiding`` leaves more spans out, such as boilerplate lines.
    """

    def __init__(self, text: str, start: int = 0, markdown: bool = True) -> None:
        self.text = text
        #: code fences as (start, end) spans: kept as written, and never boilerplate
        self.fences = fences(text, start) if markdown else []
        #: the links outside code, as source spans: ``[[wiki]]``, ``[text](target)``, each
        #: with its leading ``!`` when it is an embed or an image (read by ``text.links``)
        self.links: list[Span] = []
        self._edits = _edits(text, start, self.fences, self.links) if markdown else []
        self._ends = [e for _, e, _ in self._edits]

    @property
    def edits(self) -> list[Edit]:
        """The sorted, disjoint edits: the source spans that read otherwise than written."""
        return list(self._edits)

    def hiding(self, spans: Iterable[tuple[int, int]]) -> Reading:
        """This reading with these source spans left out too (each reads as a space)."""
        other = copy.copy(self)
        other._edits = merge([*self._edits, *((s, e, " ") for s, e in spans if s < e)])
        other._ends = [e for _, e, _ in other._edits]
        return other

    def raw(self, start: int, end: int) -> str:
        """``text[start:end]`` with markup left out, whitespace as in the source."""
        text, edits = self.text, self._edits
        first = bisect.bisect_right(self._ends, start)
        if first == len(edits) or edits[first][0] >= end:
            return text[start:end]
        out: list[str] = []
        pos = start
        for i in range(first, len(edits)):
            s, e, rep = edits[i]
            if s >= end:
                break
            if s > pos:
                out.append(text[pos:s])
            if rep and (s >= start and e <= end or rep == " "):  # a cut edit keeps no text
                out.append(rep)
            pos = max(pos, min(e, end))
        out.append(text[pos:end])
        return "".join(out)

    def read(self, start: int, end: int) -> str:
        """The span as it reads: markup left out, runs of spaces and blank lines collapsed."""
        return tidy(self.raw(start, end))


def tidy(text: str) -> str:
    """Collapse runs of spaces and of blank lines; strip the ends of lines and of the text."""
    text = _SPACES.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = "\n".join(line.strip(" ") for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def readable(text: str) -> str:
    """``text`` as a reader sees it (see the module docstring): for snippets and headings."""
    return tidy(unmarked(text))


def unmarked(text: str) -> str:
    """``text`` with its markup left out but its spacing as it was (a snippet flattens it)."""
    return Reading(text).raw(0, len(text)) if _MARKUP_CHAR.search(text) else text
