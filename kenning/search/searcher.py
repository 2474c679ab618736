"""Hybrid search: a BM25 ranking and a dense ranking, fused into one list of ``Hit``s.

``Searcher`` runs the steps over one store: keyword ranking (a ``KeywordIndex``), dense
ranking (the embedder and a ``VectorIndex``), fusion, and joining the winners with their
text. Filters narrow both rankings through a ``Scope`` that the store computes in SQL.

Two fusions are offered. ``weighted`` (the default) min-max normalises each ranking's
scores over its candidates and mixes them, ``alpha * dense + (1 - alpha) * bm25``;
``rrf`` is reciprocal rank fusion. The default weight was chosen on SciFact *train*
queries and reported on *test* (see ``benchmarks/beir.py`` and the README).

``kenning tune`` can record a tuning in the index (``kenning.tuning``): a fusion weight fitted
on the user's own notes becomes the default ``alpha``, a query adapter transforms each query
vector, and ``rerank=True`` re-orders the top candidates with the trained reranker.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from kenning.config import usable_cores
from kenning.embedders import Embedder
from kenning.errors import ConfigError
from kenning.filters import Filters
from kenning.ingest.embedding import ensure_embedder
from kenning.store.base import Scope, Store
from kenning.text.markup import unmarked
from kenning.text.tokens import prefix_stem, query_terms

from .keywords import SERVER_THRESHOLD, KeywordIndex, MemoryKeywords, keyword_indexes
from .keywords import THRESHOLD as KEYWORD_THRESHOLD
from .keywords import memory_estimate as keyword_memory
from .names import NoteNames, note_chunks
from .rerankers import DEPTH as RERANK_DEPTH
from .rerankers import RerankCandidate, Reranker, get_reranker
from .tuned import META_KEY as TUNING_KEY
from .tuned import Tuning, TuningCache
from .uris import open_url
from .vectors import HNSW_THRESHOLD, VectorIndex, make_vector_index, vector_indexes
from .vectors import memory_estimate as vector_memory

MODES = ("hybrid", "bm25", "dense")
FUSIONS = ("weighted", "rrf")

#: default dense weight of the ``weighted`` fusion (chosen on SciFact train queries)
ALPHA = 0.45
RRF_K = 60
#: candidates taken from each ranking before fusion
DEPTH = 100
#: a filter that allows more chunks than this is tested on a wider ranking's candidates
#: (``OVERSAMPLE`` times the share it needs, at most ``MOST_CANDIDATES``) instead of listed
BROAD = 20_000
OVERSAMPLE = 2
MOST_CANDIDATES = 10_000


@dataclass
class Hit:
    """One search result: a chunk, where it comes from, and how it scored."""

    chunk_id: int
    score: float
    path: str
    title: str
    heading: str
    page: int | None
    start: int
    end: int
    type: str
    text: str
    snippet: str
    bm25_rank: int | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    dense_score: float | None = None
    tags: list[str] = field(default_factory=list)  # the note's tags: front matter and inline
    #: opens the chunk in its app: ``obsidian://open?...`` in a vault, else ``file://...#L12``
    open_url: str = ""
    #: the note's name (title, alias or file name) that the query equals: the note was put first
    matched_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {i: (s - lo) / span if span > 0 else 1.0 for i, s in scores.items()}


def fuse(
    bm25: list[tuple[int, float]],
    dense: list[tuple[int, float]],
    fusion: str = "weighted",
    alpha: float = ALPHA,
) -> list[tuple[int, float]]:
    """Fuse two best-first (id, score) rankings into one, best first."""
    if fusion == "rrf":
        fused: dict[int, float] = {}
        for ranking in (bm25, dense):
            for rank, (cid, _) in enumerate(ranking, 1):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank)
    elif fusion == "weighted":
        b, d = _minmax(dict(bm25)), _minmax(dict(dense))
        fused = {
            cid: alpha * d.get(cid, 0.0) + (1 - alpha) * b.get(cid, 0.0)
            for cid in b.keys() | d.keys()
        }
    else:
        raise ConfigError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def snippet(text: str, terms: list[str], width: int = 220) -> str:
    """The window of ``text`` with the most query-term matches, on one line, as it reads
    (``markup.unmarked``, the reading that is indexed: HTML tags, comments and link targets
    left out; the hit's offsets still locate the source)."""
    flat = " ".join(unmarked(text).split())
    if len(flat) <= width or not terms:
        return flat[:width] + ("…" if len(flat) > width else "")
    hits = [start for start, _ in _matches(flat, _stems(terms))]
    if not hits:
        return flat[:width] + "…"
    # the first match whose window (a third before it, two thirds after) holds the most matches
    best = max(
        hits,
        key=lambda p: bisect_left(hits, p + width * 2 // 3) - bisect_left(hits, p - width // 3),
    )
    start = max(0, best - width // 3)
    start = flat.rfind(" ", 0, start) + 1 if start else 0
    piece = flat[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


def highlight_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Character spans in ``text`` of words that match a query term (by a crude stem)."""
    stems = _stems(terms)
    if not stems:
        return []
    return _matches(text, stems)


def _stems(terms: list[str]) -> tuple[str, ...]:
    return tuple(sorted({prefix_stem(t).lower() for t in terms if t}))


def _matches(text: str, stems: tuple[str, ...]) -> list[tuple[int, int]]:
    """The spans of the words in ``text`` that start with one of ``stems``. Matched in the
    lower-cased text where lower-casing keeps every offset (nearly always): Python's ``re``
    runs an alternation of stems about twice as fast without IGNORECASE."""
    lower = text.lower()
    if len(lower) == len(text):
        return [m.span() for m in _stem_pattern(stems, True).finditer(lower)]
    return [m.span() for m in _stem_pattern(stems, False).finditer(text)]


@lru_cache(maxsize=64)
def _stem_pattern(stems: tuple[str, ...], lower: bool = False) -> re.Pattern[str]:
    """Whole words (``\\w+`` runs) that start with one of ``stems`` (lower case), in a text
    that is all lower case (``lower``) or in any case: one regex scan per text instead of a
    Python test per word (snippets are made for every hit)."""
    alternatives = "|".join(re.escape(s) for s in sorted(stems, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\w*", 0 if lower else re.IGNORECASE)


@lru_cache(maxsize=1)
def _workers() -> ThreadPoolExecutor:
    """Threads that rank BM25 beside the query embedding, shared by every searcher."""
    return ThreadPoolExecutor(max_workers=usable_cores(), thread_name_prefix="kenning-bm25")


def check_mode(mode: str, fusion: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}; choose one of: {', '.join(MODES)}")
    if fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")


def ranks(ranking: list[tuple[int, float]]) -> dict[int, tuple[int, float]]:
    return {cid: (rank, score) for rank, (cid, score) in enumerate(ranking, 1)}


def memory_needed(chunks: int, dim: int) -> dict[str, int]:
    """Bytes that ``auto`` search over an index of ``chunks`` chunks of ``dim``-d vectors
    maps into memory, by part, and ``total``: ``vectors`` (float32; its pages stay on disk
    until a search reads them), ``graph`` (HNSW, ``HNSW_THRESHOLD`` chunks up), ``keywords``
    (in-memory BM25, ``KEYWORD_THRESHOLD`` up). What ``kenning status`` shows; no index needs
    to be open."""
    parts = vector_memory(chunks, dim)
    parts["keywords"] = keyword_memory(chunks)["keywords"] if chunks >= KEYWORD_THRESHOLD else 0
    parts["total"] = sum(parts.values())
    return parts


class Searcher:
    """The search steps over one store, with the caches they keep between queries.

    ``vector_index`` and ``keyword_index`` are registry ids, or ``auto``: exact vectors and
    the store's keyword index for small indexes, in-memory BM25 from 5k chunks and HNSW from
    20k; a store that searches itself (PostgreSQL) ranks vectors itself and BM25 itself up
    to 200k chunks, in memory above.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        vector_index: str = "auto",
        keyword_index: str = "auto",
    ) -> None:
        # An unknown id fails now, listing the valid ones, not at the first search.
        if keyword_index != "auto":
            keyword_indexes.get(keyword_index)
        if vector_index != "auto":
            vector_indexes.get(vector_index)
        self.store, self.embedder = store, embedder
        self.vector_index, self.keyword_index = vector_index, keyword_index
        self._vindex: VectorIndex | None = None
        self._vgen: str | None = None
        self._kindexes: dict[str, KeywordIndex] = {}
        self._count: tuple[str | None, int] = ("", 0)  # (generation, chunks)
        self._model_checked: str | None = ""  # the vectors generation the model was checked at
        self._tunings = TuningCache(embedder.id)
        self._names = NoteNames(store)
        self._reranker: tuple[Tuning, Reranker] | None = None
        #: seconds the last search spent reranking (None when it did not rerank)
        self.rerank_seconds: float | None = None
        #: candidates the last reranking search re-ordered
        self.reranked = 0

    def tuning(self) -> Tuning | None:
        """The tuning ``kenning tune`` recorded for this embedder, if any."""
        return self._tunings.get(self.store.get_meta(TUNING_KEY))

    @staticmethod
    def alpha(tuning: Tuning | None) -> float:
        """The fusion weight a search without one uses: ``tuning``'s (``self.tuning()``),
        else the packaged ``ALPHA``."""
        return tuning.alpha if tuning is not None and tuning.alpha is not None else ALPHA

    @staticmethod
    def rerank_depth(tuning: Tuning | None) -> int:
        """Candidates the trained reranker re-orders: the depth ``kenning tune`` chose on
        its held-out pairs, else the packaged ``rerankers.DEPTH``."""
        spec = tuning.reranker if tuning is not None else None
        return int(spec.get("depth", RERANK_DEPTH)) if spec else RERANK_DEPTH

    def reranker(self) -> Reranker:
        """The reranker trained for this index by ``kenning tune``."""
        tuning = self.tuning()
        if tuning is None or tuning.reranker is None:
            raise ConfigError(
                "this index has no trained reranker: run `kenning tune`, which trains one and "
                "keeps it when it beats plain search on your notes"
            )
        if self._reranker is None or self._reranker[0] is not tuning:
            spec = tuning.reranker
            self._reranker = (tuning, get_reranker(spec["name"], **spec.get("args", {})))
        return self._reranker[1]

    def _check_model(self) -> None:
        """Whenever a store that ranks vectors itself has new ones, make sure they are
        still this embedder's (``vectors()`` checks the vectors a searcher holds)."""
        gen = self.store.get_meta("vectors_generation")
        if gen != self._model_checked:
            ensure_embedder(self.store, self.embedder)
            self._model_checked = gen

    def _chunk_count(self) -> int:
        gen = self.store.get_meta("generation")
        if self._count[0] != gen:
            self._count = (gen, self.store.chunk_count())
        return self._count[1]

    def keywords(self) -> KeywordIndex:
        name = self.keyword_index
        if name == "auto":
            server = self.store.searches_itself
            big = self._chunk_count() >= (SERVER_THRESHOLD if server else KEYWORD_THRESHOLD)
            name = "memory" if big else "store"
        if name not in self._kindexes:
            self._kindexes[name] = keyword_indexes.get(name)(self.store)
        return self._kindexes[name]

    def vectors(self) -> VectorIndex:
        # Vectors change with the chunks and, while embedding catches up, on their own: both
        # are in the store's change log, applied in place; only a compacted log rebuilds.
        gen = self.store.get_meta("vectors_generation")
        if gen != self._vgen:
            ensure_embedder(self.store, self.embedder)  # still this embedder's vectors?
            self._vgen = gen
        if self._vindex is None or not self._vindex.catch_up(self.store):
            with self.store.snapshot():  # the log's position and the vectors it describes
                seq = self.store.change_position()
                ids, matrix = self.store.vectors()
            side = Path(self.store.side_path + ".hnsw") if self.store.side_path else None
            vindex = make_vector_index(self.vector_index, len(ids), side, self.embedder.id)
            vindex.build(ids, matrix)
            vindex.seq = seq
            self._vindex = vindex
        return self._vindex

    def _store_vectors(self) -> bool:
        """Whether the store ranks vectors itself (``auto`` on a server database)."""
        return self.vector_index == "auto" and self.store.searches_itself

    def warm(self) -> None:
        """After a sync: bring the large-index caches up to date, so the next query is fast."""
        self.keywords().refresh()
        if self._store_vectors():
            return
        if self.vector_index == "hnsw" or (
            self.vector_index == "auto" and self._chunk_count() >= HNSW_THRESHOLD
        ):
            self.vectors()

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        fusion: str = "weighted",
        alpha: float | None = None,
        depth: int = DEPTH,
        rerank: bool = False,
    ) -> list[Hit]:
        """Top-``k`` chunks for ``query``, fusing keyword and meaning (``mode='hybrid'``).

        ``alpha`` defaults to the tuned weight, else ``ALPHA``; ``rerank`` re-orders the top
        ``max(k, depth tune chose)`` with the trained reranker (its time in
        ``rerank_seconds``, how many it re-ordered in ``reranked``).
        The rankings and the chunk texts come from one snapshot of the store."""
        with self.store.snapshot():
            return self._search(query, k, filters, mode, fusion, alpha, depth, rerank)

    def _search(
        self,
        query: str,
        k: int,
        filters: Filters | None,
        mode: str,
        fusion: str,
        alpha: float | None,
        depth: int,
        rerank: bool = False,
    ) -> list[Hit]:
        check_mode(mode, fusion)
        tuning = self.tuning()
        if alpha is None:
            alpha = self.alpha(tuning)
        reranker = self.reranker() if rerank else None
        self.rerank_seconds, self.reranked = None, 0
        if mode != "hybrid":  # one ranking alone must be deep enough for k results
            depth = max(depth, k)
        scope = Scope(self.store, filters) if filters else None
        terms = query_terms(query)
        keywords = self.keywords() if mode in ("hybrid", "bm25") else None
        wide = self._wide(scope, depth) if scope is not None else 0
        qvec = None
        if scope is not None and wide:
            # a broad filter: rank without it, wider, and keep the candidates it allows
            bm25, dense, qvec = self._rank(query, terms, mode, keywords, tuning, wide)
            kept = set(scope.among([cid for cid, _ in bm25 + dense]).tolist())
            full = len(bm25) == wide  # more chunks hold a query word than were ranked
            bm25 = [r for r in bm25 if r[0] in kept][:depth]
            dense = [r for r in dense if r[0] in kept][:depth]
            if (mode != "bm25" and len(dense) < depth) or (full and len(bm25) < depth):
                wide = 0  # too few allowed among the candidates: list them after all
        if scope is None:
            bm25, dense, _ = self._rank(query, terms, mode, keywords, tuning, depth)
        elif not wide:
            if len(scope.chunk_ids()) == 0:
                return []
            bm25, dense, _ = self._rank(query, terms, mode, keywords, tuning, depth, scope, qvec)
        fused = fuse(bm25, dense, fusion, alpha) if mode == "hybrid" else (bm25 or dense)
        named = self._named(query, fused, scope)
        if reranker is None:
            return self._first(
                named, self._hits(fused[:k], bm25, dense, terms), k, bm25, dense, terms
            )
        hits = self._hits(fused[: max(k, self.rerank_depth(tuning))], bm25, dense, terms)
        self.reranked = len(hits)
        passages = [RerankCandidate(h.text, h.title, h.heading, h.score) for h in hits]
        order, scores, self.rerank_seconds = reranker.rerank(query, passages)
        for i in order:
            hits[i].score = float(scores[i])
        return self._first(named, [hits[i] for i in order], k, bm25, dense, terms)

    def _wide(self, scope: Scope, depth: int) -> int:
        """The planner of a filtered search: how many candidates to rank without the filter
        before testing them against it (so that ``depth`` allowed ones are expected
        ``OVERSAMPLE`` times over), or 0 to list the allowed chunks and rank among them.
        Listing costs microseconds a chunk, so only a filter that allows more than
        ``BROAD`` chunks is tested on candidates, and only when ``MOST_CANDIDATES`` do."""
        total = self._chunk_count()
        share = scope.share()
        if share * total <= BROAD:
            return 0
        want = int(np.ceil(depth * OVERSAMPLE / share))
        return want if want <= MOST_CANDIDATES else 0

    def _rank(
        self,
        query: str,
        terms: list[str],
        mode: str,
        keywords: KeywordIndex | None,
        tuning: Tuning | None,
        depth: int,
        scope: Scope | None = None,
        qvec: np.ndarray | None = None,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], np.ndarray | None]:
        """The keyword and dense rankings, ``depth`` deep, among the chunks ``scope``
        allows; and the query vector (``qvec``: one embedded already)."""
        bm25: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        ranking: Future[list[tuple[int, float]]] | None = None
        if mode == "hybrid" and isinstance(keywords, MemoryKeywords):
            # in-memory BM25 needs no database, so it runs while the query embeds (ONNX
            # releases the GIL): about 0.6 ms of an 11 ms SciFact query (README)
            ranking = _workers().submit(keywords.prepared(scope), terms, depth)
        elif keywords is not None:
            bm25 = keywords.search(terms, depth, scope)
        if mode in ("hybrid", "dense"):
            vindex = None if self._store_vectors() else self.vectors()  # checks the model
            if vindex is None:
                self._check_model()
            if qvec is None:
                qvec = self.embedder.embed_query(query)
                if tuning and tuning.adapter:
                    qvec = tuning.adapter.apply(qvec)
            if vindex is None:
                dense = self.store.vector_search(qvec, depth, scope)
            else:
                dense = vindex.search(qvec, depth, scope.chunk_ids() if scope else None)
        if ranking is not None:
            bm25 = ranking.result()
        return bm25, dense, qvec

    def _named(
        self, query: str, fused: list[tuple[int, float]], scope: Scope | None
    ) -> list[tuple[int, str]]:
        """(chunk id, name) for each note that ``query`` names and the filters allow: its
        best-ranked chunk in ``fused``, else its first chunk; best-ranked notes first."""
        notes = self._names.matching(query)
        if not notes:
            return []
        rank = {cid: i for i, (cid, _) in enumerate(fused)}
        found = []
        for path, name in notes:
            ids = note_chunks(self.store, path)
            if scope is not None:
                ids = scope.among(ids.tolist())
            if len(ids) == 0:
                continue
            ranked = [int(c) for c in ids if int(c) in rank]
            best = min(ranked, key=rank.__getitem__) if ranked else int(ids.min())
            found.append((rank.get(best, len(rank)), best, name))
        return [(cid, name) for _, cid, name in sorted(found)]

    def _first(
        self,
        named: list[tuple[int, str]],
        hits: list[Hit],
        k: int,
        bm25: list[tuple[int, float]],
        dense: list[tuple[int, float]],
        terms: list[str],
    ) -> list[Hit]:
        """``hits`` with the chunks of the notes the query names put first, ``k`` in all."""
        if not named:
            return hits[:k]
        by_id = {h.chunk_id: h for h in hits}
        missing = [(cid, 0.0) for cid, _ in named if cid not in by_id]
        by_id.update({h.chunk_id: h for h in self._hits(missing, bm25, dense, terms)})
        first = []
        for cid, name in named:
            if cid in by_id:
                by_id[cid].matched_name = name
                first.append(by_id[cid])
        chosen = {h.chunk_id for h in first}
        return (first + [h for h in hits if h.chunk_id not in chosen])[:k]

    def _hits(
        self,
        top: list[tuple[int, float]],
        bm25: list[tuple[int, float]],
        dense: list[tuple[int, float]],
        terms: list[str],
    ) -> list[Hit]:
        """Join the winning chunk ids with their text and source, and say how each ranked."""
        rows = self.store.chunks([cid for cid, _ in top])
        b_ranks, d_ranks = ranks(bm25), ranks(dense)
        hits = []
        for cid, score in top:
            row = rows.get(cid)
            if row is None:  # deleted by a concurrent sync since the vectors were loaded
                continue
            b, d = b_ranks.get(cid), d_ranks.get(cid)
            hits.append(
                Hit(
                    chunk_id=cid,
                    score=score,
                    path=row.path,
                    title=row.title,
                    heading=row.heading,
                    page=row.page,
                    start=row.start,
                    end=row.end,
                    type=row.type,
                    text=row.text,
                    snippet=snippet(row.text, terms),
                    bm25_rank=b[0] if b else None,
                    dense_rank=d[0] if d else None,
                    bm25_score=b[1] if b else None,
                    dense_score=d[1] if d else None,
                    tags=row.tags,
                    open_url=open_url(
                        row.path, row.type, row.heading, row.page, row.start, row.text
                    ),
                )
            )
        return hits
