"""The web page of ``kenning serve``: one HTML page, a little vanilla JavaScript and CSS.

``GET /`` is a static page (``static/index.html``); ``static/app.js`` fills it from the JSON
API under ``/api`` (search, facets, ask with streaming, conversations, status, sync,
evaluation runs), so the page shows exactly what the API returns. No Node build, no
third-party script. Every piece of user or document text reaches the page through
``textContent`` in the script, or through ``html.escape``/markdown-it (raw HTML off) here.

``GET /doc/{doc_id}?start=&end=`` renders a source note, Markdown as HTML, with the cited
span ``[start, end)`` (offsets into the text that chunk offsets index) wrapped in
``<mark class="cited">``, the first one ``id="cited"``. The span is marked with two
private-use characters inserted into the source before rendering, then each run of text
between them is wrapped on its own, so a span that crosses paragraphs, list items or a code
fence still yields well-formed HTML. The markers are nudged off block syntax (a heading's
``#``, a list bullet, a fence line) so that they never change how the note renders.
``?partial=1`` returns only the rendered article, which the page shows in its reader panel.

Links to other notes in a shown note (``[[note]]``, ``[[note#heading|alias]]``, ``![[embed]]``
and relative Markdown links ``[text](other.md)``) become links to ``/doc/{id}`` of the note
they name, resolved as ``kenning links`` resolves them (``kenning.index.links.Resolver``);
in the page's reader panel a click opens that note there. A link that names no indexed note
stays as written (a wikilink is shown with ``class="wikilink unresolved"``). A link to a
heading (``[[note#Heading]]``) points at it: a rendered note's headings carry ids
(``heading_id``), and the link's URL ends with ``#`` and the heading's id.
"""

from __future__ import annotations

import html
import re
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from markdown_it import MarkdownIt

from kenning.errors import NotFound
from kenning.index.links import Resolver
from kenning.text.links import Link
from kenning.text.loaders import split_front_matter

from .service import Service

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
#: the files under /static, by name (nothing else is served from the folder)
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "agent.js": "text/javascript; charset=utf-8",
    "quiz.js": "text/javascript; charset=utf-8",
    "quiz.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: no inline script, no third-party origin, no remote images: a note cannot phone home
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

START, END = "\ue000", "\ue001"
_MARKERS = {START: START, END: END, "%EE%80%80": START, "%EE%80%81": END}
_MARKER_RE = re.compile("|".join(map(re.escape, _MARKERS)))
#: block syntax at the start of a line (a heading's #, a bullet, a quote, a fence line, a
#: table row's pipe): a marker placed before it would break it
_BLOCK_PREFIX = re.compile(
    r"(?:\s*(?:`{3,}|~{3,})[^\n]*\n|\s*(?:[-*_][ \t]*){3,}\n|\s*=+[ \t]*\n"
    r"|[ \t]*(?:#{1,6}|[-*+]|\d{1,9}[.)]|>)[ \t]+|[ \t]*\|[ \t]*|\s+)+"
)
#: a line of block syntax only (a fence, a thematic break, a setext underline)
_SYNTAX_LINE = re.compile(r"[ \t]*(?:(?:`{3,}|~{3,})[^\n]*|(?:[-*_][ \t]*){3,}|=+[ \t]*)")
#: emphasis delimiters: a marker between them and their word would undo the emphasis
_DELIMS = "*_~"
_PIECES = re.compile(r"(<[^>]*>)|([^<]+)")
_ALIGN = re.compile(r'style="text-align:(left|right|center)"')

_md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

#: a wikilink or embed as it reads in rendered HTML (text, escaped): ``![[target#heading|alias]]``;
#: one that a cited-span marker falls inside is left as it is
_WIKI = re.compile(
    r"(?P<embed>!?)\[\[(?P<target>[^\[\]\n|#\ue000\ue001]*)(?:#(?P<heading>[^\[\]\n|\ue000\ue001]*))?"
    r"(?:\|(?P<alias>[^\[\]\n\ue000\ue001]*))?\]\]"
)
_HREF = re.compile(r'<a href="(?P<href>[^"]*)"')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
#: the elements whose text is not scanned for wikilinks: code, and links already
_NO_LINKS = ("code", "pre", "a")
#: resolves a link written in the shown note to the ``doc_id`` of the note it names
LinkTarget = Callable[[Link], int | None]
_HEADING_TAG = re.compile(r"<h([1-6])>(.*?)</h\1>", re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")
_NOT_SLUG = re.compile(r"[^\w]+")


def heading_id(heading: str) -> str:
    """The id a rendered heading carries, from its text: ``h-`` and its words, lower case,
    joined by dashes (``Sessions & windows`` -> ``h-sessions-windows``)."""
    return "h-" + _NOT_SLUG.sub("-", heading.casefold()).strip("-")


def _heading_ids(rendered: str) -> str:
    """Rendered HTML with an id on each heading (``-2``, ``-3`` on repeats)."""
    seen: dict[str, int] = {}

    def add(m: re.Match[str]) -> str:
        text = html.unescape(_MARKER_RE.sub("", _TAGS.sub("", m[2])))
        ident = heading_id(text)
        seen[ident] = seen.get(ident, 0) + 1
        if seen[ident] > 1:
            ident += f"-{seen[ident]}"
        return f'<h{m[1]} id="{html.escape(ident)}">{m[2]}</h{m[1]}>'

    return _HEADING_TAG.sub(add, rendered)


def _doc_href(doc_id: int, heading: str) -> str:
    return f"/doc/{doc_id}" + (f"#{html.escape(heading_id(heading))}" if heading else "")


@router.get("/")
def page() -> FileResponse:
    """The single page: search, ask, status and evaluations."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, "not found")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=HEADERS)


@router.get("/doc/{doc_id}")
def document_page(
    request: Request,
    doc_id: str,
    start: int | None = Query(None, ge=0),
    end: int | None = Query(None, ge=0),
    partial: bool = False,
) -> Response:
    """A source note rendered, with ``[start, end)`` marked and scrolled to (``#cited``)."""
    try:
        doc = load_document(request, doc_id)
    except NotFound as e:
        if partial:
            raise
        body = f'<p class="error">{html.escape(str(e))}</p>'
        return HTMLResponse(_page("Not found", body), 404, headers=HEADERS)
    article = render_document(doc, start, end, note_links(request, str(doc.get("path") or "")))
    if partial:
        return HTMLResponse(article, headers=HEADERS)
    title = str(doc.get("title") or doc.get("path") or doc_id)
    return HTMLResponse(_page(title, article), headers=HEADERS)


def _page(title: str, content: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · kenning</title>
<link rel="stylesheet" href="/static/app.css"><link rel="icon" href="/static/favicon.svg">
</head><body class="doc-page">
<a class="skip" href="#cited">Skip to the cited passage</a>
<header class="top"><a class="brand" href="/">kenning</a></header>
<main id="main" class="reader-page">{content}</main>
</body></html>"""


def load_document(request: Request, doc_id: str) -> dict[str, Any]:
    """The document as ``GET /api/documents/{doc_id}`` returns it (the same library call,
    ``Service.document``: only indexed sources, looked up by id)."""
    service: Service = request.app.state.service
    return service.document(doc_id)


_resolvers: dict[int, tuple[str, Resolver, dict[str, int]]] = {}
_resolvers_lock = threading.Lock()


def note_links(request: Request, path: str) -> LinkTarget:
    """How the links of the note at ``path`` resolve to ``doc_id``s, against the sources the
    index holds (kept until the index's generation moves on)."""
    service: Service = request.app.state.service
    with service.pool.borrow() as index:
        store = index.store
        generation = str(store.get_meta("generation"))
        with _resolvers_lock:
            kept = _resolvers.get(id(service))
        if kept is None or kept[0] != generation:
            sources = store.sources()
            ids = {p: row.id for p, row in sources.items() if row.status != "failed"}
            kept = (generation, Resolver(sources), ids)
            with _resolvers_lock:
                _resolvers[id(service)] = kept
    _, resolver, ids = kept

    def target(link: Link) -> int | None:
        found = resolver.resolve(path, link)
        return None if found is None else ids.get(found)

    return target


def render_document(
    doc: dict[str, Any], start: int | None, end: int | None, links: LinkTarget | None = None
) -> str:
    """The ``<article>`` for a document: a header (title, path, type) and its text, Markdown
    rendered as HTML (its links to notes made links to their pages, by ``links``) and other
    types as preformatted text, with the span marked."""
    text = str(doc.get("text") or "")
    span = None
    if start is not None and end is not None and 0 <= start < end <= len(text):
        span = (start, end)
    if doc.get("type") == "markdown":
        body = render_markdown(text, span, links)
    else:
        body = render_plain(text, span)
    title = html.escape(str(doc.get("title") or ""))
    path = html.escape(_shown_path(str(doc.get("path") or ""), doc.get("root")))
    kind = html.escape(str(doc.get("type") or ""))
    where = ""
    if span:
        first = text.count("\n", 0, span[0]) + 1
        last = first + text.count("\n", span[0], span[1])
        where = f'<p class="doc-lines">cited: lines {first}–{last}</p>'
    if doc.get("changed"):
        where += (
            '<p class="doc-lines error">This file changed since it was indexed: the marked '
            "passage may be off until the next sync.</p>"
        )
    return (
        f'<article class="doc" aria-labelledby="doc-title">'
        f'<header class="doc-head"><h2 id="doc-title" tabindex="-1">{title}</h2>'
        f'<p class="doc-path"><code>{path}</code> <span class="tag">{kind}</span></p>'
        f"{where}</header>"
        f'<div class="doc-body">{body}</div></article>'
    )


def _shown_path(path: str, root: Any) -> str:
    """The path under its root's parent (``til/git/x.md``), as the command line shows it."""
    if not root:
        return path
    try:
        return str(Path(path).relative_to(Path(str(root)).parent))
    except ValueError:
        return path


def render_markdown(
    text: str, span: tuple[int, int] | None = None, links: LinkTarget | None = None
) -> str:
    """Markdown as HTML (raw HTML escaped, unsafe link schemes refused by markdown-it), with
    ``span`` marked; front matter is shown as preformatted text above the note. With
    ``links``, links to notes open the note they name (``link_notes``)."""
    text = _clean(text)
    _, body, _ = split_front_matter(text)
    out = ""
    if body:
        head = _insert_markers(text[:body], _clip(span, 0, body), markdown=False)
        out = f'<pre class="front-matter">{_mark(html.escape(head, quote=False))}</pre>'
    marked = _insert_markers(text[body:], _clip(span, body, len(text)), markdown=True)
    # a table's column alignment as a class: the page's CSP allows no inline style
    rendered = _ALIGN.sub(r'class="align-\1"', _md.render(marked))
    rendered = _heading_ids(rendered)
    if links is not None:
        rendered = link_notes(rendered, links)
    return out + _mark(rendered)


def link_notes(rendered: str, links: LinkTarget) -> str:
    """Rendered HTML with its wikilinks and embeds (in text, not in code) made links to the
    page of the note each names, and its relative links to a note (``other.md``) pointed at
    that note's page; links that name no indexed note stay as written."""
    out: list[str] = []
    closed: list[str] = []  # the open elements among _NO_LINKS
    for m in _PIECES.finditer(rendered):
        tag, run = m.group(1), m.group(2)
        if tag is not None:
            name = tag[1:].split(None, 1)[0].rstrip(">/").lower() if len(tag) > 2 else ""
            if name.lstrip("/") in _NO_LINKS:
                if name.startswith("/"):
                    if closed and closed[-1] == name[1:]:
                        closed.pop()
                else:
                    closed.append(name)
                    if name == "a":
                        tag = _note_href(tag, links)
            out.append(tag)
        elif closed:
            out.append(run)
        else:
            out.append(_WIKI.sub(lambda w: _wikilink(w, links), run))
    return "".join(out)


def _wikilink(m: re.Match[str], links: LinkTarget) -> str:
    target = html.unescape(m["target"]).strip()
    heading = html.unescape(m["heading"] or "").strip()
    alias = html.unescape(m["alias"]).strip() if m["alias"] is not None else None
    if not target:  # [[#heading]]: this note
        return m.group(0)
    kind = "embed" if m["embed"] else "wikilink"
    shown = alias or (f"{target} › {heading}" if heading else target)
    label = html.escape(shown, quote=False)
    doc_id = links(Link(kind, target, heading, alias))
    if doc_id is None:
        return f'<span class="wikilink unresolved" title="No indexed note">{label}</span>'
    return f'<a class="open-doc wikilink {kind}" href="{_doc_href(doc_id, heading)}">{label}</a>'


def _note_href(tag: str, links: LinkTarget) -> str:
    """An ``<a href>`` tag pointed at the page of the note its relative href names."""
    m = _HREF.match(tag)
    if m is None:
        return tag
    href = html.unescape(m["href"])
    if not href or href.startswith("#") or _SCHEME.match(href):
        return tag
    path, _, heading = href.partition("#")
    link = Link("markdown", urllib.parse.unquote(path), urllib.parse.unquote(heading))
    doc_id = links(link)
    if doc_id is None:
        return tag
    href = _doc_href(doc_id, link.heading)
    return f'<a class="open-doc note-link" href="{href}"' + tag[m.end() :]


def render_plain(text: str, span: tuple[int, int] | None = None) -> str:
    """Plain text (text, HTML's extracted text, PDF pages) as preformatted text."""
    marked = _insert_markers(_clean(text), span, markdown=False)
    return f'<pre class="plain">{_mark(html.escape(marked, quote=False))}</pre>'


def _clean(text: str) -> str:
    """The text with any marker characters of its own replaced (offsets unchanged)."""
    return text.replace(START, "\ufffd").replace(END, "\ufffd")


def _clip(span: tuple[int, int] | None, lo: int, hi: int) -> tuple[int, int] | None:
    """``span`` within ``[lo, hi)``, relative to ``lo``; None when they do not overlap."""
    if span is None or span[1] <= lo or span[0] >= hi:
        return None
    return max(span[0], lo) - lo, min(span[1], hi) - lo


def _insert_markers(text: str, span: tuple[int, int] | None, markdown: bool) -> str:
    if span is None:
        return text
    start, end = span
    # Whitespace at either edge is not worth marking, and a marker at a line start would
    # sit before that line's block syntax.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if markdown:
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].strip():
            m = _BLOCK_PREFIX.match(text, line_start)
            if m and m.end() > start:
                start = min(m.end(), end)
        # A fence or a thematic break takes nothing after it on its line: end before it.
        while end > start:
            line_start = text.rfind("\n", 0, end) + 1
            if not _SYNTAX_LINE.fullmatch(text, line_start, end):
                break
            end = max(start, line_start - 1)
            while end > start and text[end - 1].isspace():
                end -= 1
        # Emphasis delimiters stay beside their words; a table row's last pipe ends it.
        while start < end and text[start] in _DELIMS:
            start += 1
        while end > start and text[end - 1] in _DELIMS + "|":
            end -= 1
            while end > start and text[end - 1] in " \t":
                end -= 1
    if end <= start:
        return text
    return text[:start] + START + text[start:end] + END + text[end:]


def _mark(rendered: str) -> str:
    """Replace the markers in rendered HTML by ``<mark>`` around each run of text between
    them; a marker that ended up inside a tag (a link's URL, a fence's language) is dropped
    there and still opens or closes the span."""
    if START not in rendered and "%EE%80%80" not in rendered:
        return rendered
    out: list[str] = []
    inside, first = False, True
    for m in _PIECES.finditer(rendered):
        tag, run = m.group(1), m.group(2)
        if tag is not None:
            for marker in _MARKER_RE.findall(tag):
                inside = _MARKERS[marker] == START
            out.append(_MARKER_RE.sub("", tag))
            continue
        for i, part in enumerate(re.split(f"([{START}{END}])", run)):
            if i % 2:
                inside = part == START
            elif inside and part.strip():
                ident = ' id="cited"' if first else ""
                first = False
                out.append(f'<mark class="cited"{ident}>{part}</mark>')
            else:
                out.append(part)
    return "".join(out)
