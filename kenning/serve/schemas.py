"""The JSON shapes of the HTTP API, as pydantic models: its OpenAPI schema is built from them.

The web page is written against these shapes and a test snapshots the schema, so a field
changes here on purpose or not at all. Responses allow extra fields (``Extensible``): the
library's dataclasses may grow, and what they add reaches clients without a change here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Extensible(BaseModel):
    model_config = ConfigDict(extra="allow")


class HitModel(Extensible):
    """A search hit: ``kenning.search.Hit`` plus its document's id."""

    chunk_id: int
    doc_id: int | None = Field(description="the source's id, for GET /api/documents/{doc_id}")
    score: float
    path: str
    title: str
    heading: str
    page: int | None
    start: int = Field(description="offset of the chunk in the document's text")
    end: int
    type: str
    text: str
    snippet: str
    bm25_rank: int | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    dense_score: float | None = None
    tags: list[str] = Field(
        default_factory=list, description="the note's tags: front matter and inline #tags"
    )
    open_url: str = Field(
        "", description="opens the passage in its app: obsidian://open in a vault, else file://"
    )
    matched_name: str | None = Field(
        None,
        description="the note's title, alias or file name that the query equals (the note "
        "was put first), else null",
    )


class SearchResponse(Extensible):
    query: str
    terms: list[str] = Field(description="the query's keyword terms, for highlighting")
    hits: list[HitModel]
    pending: int = Field(description="chunks still waiting for vectors (keyword-only so far)")
    mode: str


class FacetsResponse(Extensible):
    tags: list[str]
    types: list[str]
    folders: list[str] = Field(description="top-level folders under each root")
    counts: dict[str, dict[str, int]]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(None, ge=1, le=50, description="passages retrieved (default 5)")
    conversation_id: str | int | None = Field(
        None, description="continue this conversation; null starts a new one"
    )
    where: list[str] | None = Field(None, description="metadata conditions: tag=ml")
    path: list[str] | None = Field(None, description="globs on the path under its root")
    type: list[str] | None = Field(None, description="markdown, text, html or pdf")


class CitationCheckModel(Extensible):
    n: int
    similarity: float
    overlap: float
    best_sentence: list[int]


class SentenceModel(Extensible):
    text: str
    citations: list[int]
    status: str = Field(description="supported, unsupported or contradicted")
    support: float
    checks: list[CitationCheckModel] = []
    missing: list[str] = []
    removed: list[int] = []
    attributed: bool = False


class SourceModel(Extensible):
    n: int
    chunk_id: int
    doc_id: int | None
    path: str
    title: str
    heading: str
    page: int | None
    start: int
    end: int
    text: str
    score: float
    lines: list[int] | None = Field(description="first and last line in the file, if text")
    support: float
    open_url: str = Field(
        "", description="opens the passage in its app: obsidian://open in a vault, else file://"
    )


class ConflictSideModel(Extensible):
    n: int = Field(description="the version's citation number in the answer (0 in a report)")
    path: str
    text: str = Field(description="the note's sentence, as quoted")
    value: str = Field(description="the value it states, as the note writes it")
    start: int = Field(description="offset of the sentence in the file")
    end: int
    lines: list[int] | None = None
    date: str | None = Field(None, description="when this version was written, if known")
    date_source: str = Field("", description="text, front matter or file")


class ConflictModel(Extensible):
    """Two claims about the same subject that differ in one value."""

    kind: str = Field(description="number, date, name or yes/no")
    values: list[str] = Field(description="the two values, normalised, in the sides' order")
    sides: list[ConflictSideModel]
    confidence: float
    recent: int | None = Field(None, description="index in sides of the more recent version")
    recency: str = Field("", description="which version is more recent, and by which date")
    verified: list[bool] = Field([], description="each side's sentence passed the check")


class ConflictsResponse(Extensible):
    conflicts: list[ConflictModel]
    notes: int = Field(description="notes in the index")
    checked_notes: int = Field(description="new or changed notes checked by this request")
    compared: int = Field(description="pairs of claims compared by this request")
    total: int = Field(description="conflicts known in the whole index")


class AnswerResponse(Extensible):
    question: str
    text: str
    sentences: list[SentenceModel]
    sources: list[SourceModel]
    refused: bool
    reasoning: str | None = None
    notes: list[str] = []
    llm: str
    query: str
    timings: dict[str, float] = {}
    usage: dict[str, int] = {}
    conversation_id: str | None = None
    conflicts: list[ConflictModel] = Field(
        [], description="claims of the passages that disagree with what the answer says"
    )


class DocumentResponse(Extensible):
    doc_id: int
    path: str
    root: str
    title: str
    type: str
    text: str = Field(description="the loaded text that chunk offsets index into")
    metadata: dict[str, Any]
    changed: bool = Field(description="the file changed since it was indexed")


class LinkModel(Extensible):
    """A link between two notes: ``kenning.index.links.LinkRow``."""

    source: str = Field(description="the note the link is written in")
    kind: str = Field(description="wikilink, embed or markdown")
    target: str = Field(description="the target as written")
    heading: str
    alias: str | None
    path: str | None = Field(description="the indexed note the link names; null: unresolved")


class LinksResponse(Extensible):
    """A note's links: ``kenning links --json``."""

    path: str = Field(description="the note, as the index stores its path")
    outgoing: list[LinkModel]
    backlinks: list[LinkModel]
    unresolved: list[LinkModel] = Field(description="the outgoing links that name no note")


class StatusResponse(Extensible):
    index: str
    roots: list[str]
    files: int
    chunks: int
    embeddings: int
    size_bytes: int
    memory: dict[str, int] = Field(description="bytes a search process maps, by part")
    embedder: str
    dimension: int
    chunking: dict[str, Any]
    last_sync: str | None
    problems: list[dict[str, Any]]
    embedding: dict[str, Any] = Field(description="pending chunks and the embedder's progress")


class SyncReportResponse(Extensible):
    scanned: int
    unchanged: int
    added: int
    changed: int
    moved: int
    deleted: int
    chunks_indexed: int
    chunks_reused: int
    chunks_embedded: int
    chunks_pending: int
    embedding_busy: bool
    failed: list[list[str]]
    warnings: list[list[str]]
    skipped: list[list[str]]
    missing_roots: list[str]
    keyword_seconds: float
    seconds: float


class ConversationSummary(Extensible):
    id: str
    created_at: float
    title: str
    turns: int


class ConversationList(Extensible):
    conversations: list[ConversationSummary]


class Turn(Extensible):
    question: str
    query: str
    answer: str
    created_at: float
    details: dict[str, Any] = {}
    answer_json: AnswerResponse | None = Field(
        None, description="the answer as POST /api/ask returned it (turns asked over HTTP)"
    )


class ConversationResponse(Extensible):
    id: str
    created_at: float
    title: str
    turns: list[Turn]


class EvalRun(Extensible):
    id: str
    created_at: float
    dataset: str
    config_name: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    queries: int


class EvalRunList(Extensible):
    runs: list[EvalRun]
