"""Keyword ranking behind a ``KeywordIndex`` with one required method, ``search``.

Two backends, one registry (plugins: entry-point group ``kenning.keyword_indexes``):

``store``: the store's own keyword index (FTS5's ``bm25()`` in SQLite); nothing to load.

``memory``: in-memory BM25 for large indexes, the same ranking without FTS5's cost. FTS5
scores every chunk that holds any query word, which takes ~30 ms per query at 100k chunks.
``BM25Index`` keeps postings in numpy arrays built from the keyword text stored in the
database (tokenised like FTS5's ``porter unicode61 remove_diacritics``: letters and digits,
lower-cased, accents folded, Porter stems), scored with FTS5's formula (k1 = 1.2, b = 0.75,
IDF clamped at 1e-6), in about a millisecond. It is a cache: saved beside the database with
the generation it reflects, and rebuilt from the database whenever that changes.

``auto`` (in ``kenning.search``) uses ``store`` below ``THRESHOLD`` chunks, ``memory`` above.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import MissingExtra
from .registry import Registry
from .store.base import Scope, Store

keyword_indexes: Registry[KeywordIndex] = Registry("keyword index", "kenning.keyword_indexes")

#: above this many chunks, ``auto`` ranks keywords in memory instead of in the store
THRESHOLD = 20_000
_TOKEN = re.compile(r"[^\W_]+")
K1, B = 1.2, 0.75


def _fold(text: str) -> str:
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class BM25Index:
    """Postings by term: doc positions and term frequencies, plus document lengths."""

    def __init__(self) -> None:
        try:
            import Stemmer
        except ImportError as e:
            raise MissingExtra("PyStemmer", "large") from e
        self._stem = Stemmer.Stemmer("porter").stemWord
        self.ids = np.zeros(0, dtype=np.int64)
        self.vocab: dict[str, int] = {}
        self.indptr = np.zeros(1, dtype=np.int64)
        self.docs = np.zeros(0, dtype=np.int32)
        self.tf = np.zeros(0, dtype=np.float32)
        self.lengths = np.zeros(0, dtype=np.float32)
        self._norm = np.zeros(0, dtype=np.float64)

    def build(self, rows: Iterable[tuple[int, str]]) -> None:
        """Index (chunk id, keyword text) pairs."""
        cache: dict[str, int] = {}
        ids, lengths, parts = [], [], []
        for cid, body in rows:
            tokens = _TOKEN.findall(_fold(body))
            for t in set(tokens).difference(cache):
                cache[t] = self.vocab.setdefault(self._stem(t), len(self.vocab))
            parts.append(np.fromiter((cache[t] for t in tokens), np.int64, len(tokens)))
            ids.append(cid)
            lengths.append(len(tokens))
        n = len(ids)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.float32)
        terms = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        docs = np.repeat(np.arange(n, dtype=np.int64), self.lengths.astype(np.int64))
        keys, counts = np.unique(terms * max(n, 1) + docs, return_counts=True)
        post_terms = keys // max(n, 1)
        self.docs = (keys % max(n, 1)).astype(np.int32)
        self.tf = counts.astype(np.float32)
        self.indptr = np.searchsorted(post_terms, np.arange(len(self.vocab) + 1)).astype(np.int64)

    def search(
        self, words: list[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score); each word adds its terms, as an FTS5 OR query."""
        n = len(self.ids)
        if n == 0 or k <= 0:
            return []
        if len(self._norm) != n:  # the length part of BM25's denominator, per document
            avgdl = float(self.lengths.mean()) or 1.0
            self._norm = K1 * (1 - B + B * self.lengths.astype(np.float64) / avgdl)
        scores = np.zeros(n, dtype=np.float64)
        touched = False
        for word in words:
            for token in _TOKEN.findall(_fold(word)):
                t = self.vocab.get(self._stem(token))
                if t is None:
                    continue
                lo, hi = self.indptr[t], self.indptr[t + 1]
                docs, tf = self.docs[lo:hi], self.tf[lo:hi]
                df = hi - lo
                idf = max(float(np.log((n - df + 0.5) / (df + 0.5))), 1e-6)
                scores[docs] += idf * tf * (K1 + 1) / (tf + self._norm[docs])
                touched = True
        if not touched:
            return []
        cand = np.flatnonzero(scores)  # every matching chunk scores above zero
        if allowed is not None:
            cand = cand[np.isin(self.ids[cand], allowed)]
        if len(cand) == 0:
            return []
        k = min(k, len(cand))
        part = cand[np.argpartition(-scores[cand], k - 1)[:k]]
        order = part[np.lexsort((self.ids[part], -scores[part]))]
        return [(int(self.ids[i]), float(scores[i])) for i in order]

    def save(self, path: Path, generation: str) -> None:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        terms = np.array(sorted(self.vocab, key=self.vocab.__getitem__), dtype=object)
        np.savez(
            tmp,
            ids=self.ids,
            indptr=self.indptr,
            docs=self.docs,
            tf=self.tf,
            lengths=self.lengths,
            terms=json.dumps(terms.tolist()),
            generation=generation,
        )
        os.replace(tmp, path)

    def load(self, path: Path, generation: str) -> bool:
        """Load a saved index if it reflects ``generation``; False when it must be rebuilt."""
        try:
            with np.load(path) as data:
                if str(data["generation"]) != generation:
                    return False
                self.ids, self.indptr = data["ids"], data["indptr"]
                self.docs, self.tf, self.lengths = data["docs"], data["tf"], data["lengths"]
                terms = json.loads(str(data["terms"]))
        except (OSError, KeyError, ValueError):
            return False
        self.vocab = {t: i for i, t in enumerate(terms)}
        return True


class KeywordIndex(ABC):
    """BM25 over the keyword text of a store's chunks."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @abstractmethod
    def search(
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, score), best first; any term may match (an OR query)."""

    def refresh(self) -> None:  # noqa: B027 - optional: only cached backends need it
        """Bring any cache up to date with the store, so the next search is fast."""


@keyword_indexes.register("store")
class StoreKeywords(KeywordIndex):
    """The store ranks (FTS5 in SQLite) and applies the filters itself."""

    def search(
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        return self.store.keyword_search(terms, k, scope.filters if scope else None)


@keyword_indexes.register("memory")
class MemoryKeywords(KeywordIndex):
    """``BM25Index`` postings, saved beside the store file and rebuilt when it changes."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._bm25: BM25Index | None = None
        self._generation: str | None = None

    def refresh(self) -> None:
        self._index()

    def _index(self) -> BM25Index:
        gen = self.store.get_meta("generation") or "0"
        if self._bm25 is None or gen != self._generation:
            bm25 = BM25Index()
            side = Path(self.store.side_path + ".bm25.npz") if self.store.side_path else None
            if side is None or not side.exists() or not bm25.load(side, gen):
                bm25.build(self.store.keyword_rows())
                if side is not None:
                    bm25.save(side, gen)
            self._bm25, self._generation = bm25, gen
        return self._bm25

    def search(
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        allowed = scope.chunk_ids() if scope else None
        return self._index().search(terms, k, allowed)
