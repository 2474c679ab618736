"""Keyword ranking behind a ``KeywordIndex`` with one required method, ``search``.

Two backends, one registry (plugins: entry-point group ``kenning.keyword_indexes``):

``store``: the store's own keyword index (FTS5's ``bm25()`` in SQLite); nothing to load.

``memory``: in-memory BM25 for all but small indexes, the same ranking without FTS5's cost.
FTS5 scores every chunk that holds any query word: ~30 ms per query at 100k chunks, and
already ~15 ms at SciFact's 12k (the in-memory index: ~1-2 ms).
``BM25Index`` keeps postings in numpy arrays built from the keyword text stored in the
database (tokenised like FTS5's ``porter unicode61 remove_diacritics``: letters and digits,
lower-cased, accents folded, Porter stems), scored with FTS5's formula (k1 = 1.2, b = 0.75,
IDF clamped at 1e-6), in about a millisecond. It is a cache: saved beside the database with
the position of the store's change log it reflects, and brought up to date in place from the
changes logged since (``Store.changes_since``): deleted chunks are masked, added ones go into
a small overlay, and the statistics (chunk count, average length, document frequencies) are
those of the chunks that remain, so it ranks as a fresh build would. It is rebuilt only when
the changes it needs were compacted out of the log. The saved file is flat arrays,
memory-mapped on load (loaded lazily, at the first keyword search, and shared: by the
searchers of a process, and through the page cache by every process).

``auto`` (in ``kenning.search``) uses ``store`` below ``THRESHOLD`` chunks, ``memory`` above.
"""

from __future__ import annotations

import os
import threading
import weakref
import zipfile
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from kenning.registry import Registry
from kenning.store.base import Scope, Store
from kenning.text.tokens import folded_tokens, porter

from .changelog import apply_log

#: best-first (chunk id, BM25 score) pairs
Ranking = list[tuple[int, float]]

keyword_indexes: Registry[KeywordIndex] = Registry("keyword index", "kenning.keyword_indexes")

#: above this many chunks, ``auto`` ranks keywords in memory instead of in the store
THRESHOLD = 5_000
#: the same for a store that ranks BM25 itself in SQL (PostgreSQL): it keeps doing so up to
#: here, since each process builds its in-memory copy from the database once (minutes at 1M
#: chunks; then changes are applied in place, and a cache file spares the next process), but
#: its SQL ranking grows with the collection (hybrid p50 45.7 ms at 100k chunks; at 1M most
#: of 456 ms)
SERVER_THRESHOLD = 200_000
K1, B = 1.2, 0.75


class BM25Index:
    """Postings by term: doc positions and term frequencies, plus document lengths.

    Terms are kept sorted, as one UTF-8 blob and its offsets (a term's id is its rank), so a
    saved index is nothing but flat arrays: ``load`` memory-maps them from the uncompressed
    ``.npz`` instead of parsing a vocabulary into a dict of a million Python strings.
    """

    #: tokens per build batch: bounds the build's temporaries (~100 MB), not the index
    BATCH_TOKENS = 4_000_000

    def __init__(self) -> None:
        self._stem = porter()
        self.ids = np.zeros(0, dtype=np.int64)
        self.blob = np.zeros(0, dtype=np.uint8)  # the sorted terms, UTF-8, end to end
        self.offsets = np.zeros(1, dtype=np.int64)  # term i is blob[offsets[i]:offsets[i + 1]]
        self.indptr = np.zeros(1, dtype=np.int64)
        self.docs = np.zeros(0, dtype=np.int32)
        self.tf = np.zeros(0, dtype=np.uint16)
        self.lengths = np.zeros(0, dtype=np.float32)
        self.bound = np.zeros(0, dtype=np.float32)  # per term: see ``_bounds``
        self._norm = np.zeros(0, dtype=np.float64)
        #: the changes applied on top of the arrays above (None: none)
        self.delta: Delta | None = None
        #: the position of the store's change log this index reflects (``stamp`` as saved)
        self.seq = 0
        self.stamp = ""
        self._lock = threading.RLock()

    @property
    def terms(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays a search reads (memory-mapped after ``load``)."""
        arrays = (self.ids, self.blob, self.offsets, self.indptr, self.docs, self.tf)
        return sum(a.nbytes for a in arrays) + self.lengths.nbytes + 8 * len(self.ids)

    def build(self, rows: Iterable[tuple[int, str]]) -> None:
        """Index (chunk id, keyword text) pairs, streaming: the texts are never all held.

        Tokens are counted per batch of documents into (term, doc, tf) postings; once every
        term is known, each batch's postings are placed straight into the final arrays.
        """
        cache: dict[str, int] = {}  # token -> provisional term id
        stems: dict[str, int] = {}  # stem -> provisional term id
        ids: list[int] = []
        lengths: list[int] = []
        batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        tokens_buf: list[int] = []
        first = 0  # position of the batch's first document

        def flush() -> None:
            nonlocal first, tokens_buf
            n = len(ids) - first
            if n == 0:
                return
            terms = np.asarray(tokens_buf, dtype=np.int64)
            docs = np.repeat(np.arange(n, dtype=np.int64), lengths[first:])
            keys, counts = np.unique(terms * n + docs, return_counts=True)
            batches.append(
                (
                    (keys // n).astype(np.int32),
                    (keys % n + first).astype(np.int32),
                    np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16),
                )
            )
            first, tokens_buf = len(ids), []

        for cid, body in rows:
            tokens = folded_tokens(body)
            for t in set(tokens).difference(cache):
                cache[t] = stems.setdefault(self._stem(t), len(stems))
            tokens_buf.extend(cache[t] for t in tokens)
            ids.append(cid)
            lengths.append(len(tokens))
            if len(tokens_buf) >= self.BATCH_TOKENS:
                flush()
        flush()
        del cache
        # Term ids become ranks in sorted order, so a search finds a term by bisection.
        words = sorted(stems, key=lambda w: w.encode())
        rank = np.empty(len(stems), dtype=np.int32)
        rank[np.fromiter((stems[w] for w in words), np.int64, len(words))] = np.arange(len(words))
        encoded = [w.encode() for w in words]
        del stems, words
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in encoded], out=self.offsets[1:])
        del encoded
        df = np.zeros(len(rank), dtype=np.int64)
        for terms, _, _ in batches:
            df += np.bincount(rank[terms], minlength=len(rank))
        self.indptr = np.zeros(len(rank) + 1, dtype=np.int64)
        np.cumsum(df, out=self.indptr[1:])
        self.docs = np.empty(int(self.indptr[-1]), dtype=np.int32)
        self.tf = np.empty(int(self.indptr[-1]), dtype=np.uint16)
        cursor = self.indptr[:-1].copy()
        while batches:  # in document order, so each term's docs come out ascending
            terms, docs, tf = batches.pop(0)
            t = rank[terms]
            order = np.lexsort((docs, t))
            t, docs, tf = t[order], docs[order], tf[order]
            uniq, start, counts = np.unique(t, return_index=True, return_counts=True)
            pos = cursor[t] + (np.arange(len(t)) - np.repeat(start, counts))
            self.docs[pos], self.tf[pos] = docs, tf
            cursor[uniq] += counts
        self.ids = np.asarray(ids, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.float32)
        self._norm = np.zeros(0, dtype=np.float64)
        self.bound = self._bounds()
        self.delta = None

    def _term(self, word: str) -> int | None:
        """The id of a term (a stem), by bisection over the sorted blob."""
        key = word.encode()
        blob: memoryview = memoryview(self.blob)  # type: ignore[arg-type]
        offsets = self.offsets
        lo, hi = 0, len(offsets) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if bytes(blob[offsets[mid] : offsets[mid + 1]]) < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(offsets) - 1 and blob[offsets[lo] : offsets[lo + 1]] == key:
            return lo
        return None

    def _doc_norm(self) -> np.ndarray:
        """The length part of BM25's denominator, per document."""
        if len(self._norm) != len(self.ids):
            avgdl = float(np.mean(self.lengths)) if len(self.lengths) else 1.0
            self._norm = K1 * (1 - B + B * np.asarray(self.lengths, np.float64) / (avgdl or 1.0))
        return self._norm

    def _bounds(self) -> np.ndarray:
        """Per term, the largest ``tf * (k1 + 1) / (tf + norm)`` of its postings (a little
        over: float32), so ``idf`` times it bounds what the term adds to any document."""
        norm = self._doc_norm()
        bound = np.zeros(self.terms, dtype=np.float32)
        step = 1 << 22  # postings at a time: bounds the temporaries
        for lo in range(0, self.terms, 4096):
            hi = min(lo + 4096, self.terms)
            a, b = int(self.indptr[lo]), int(self.indptr[hi])
            if a == b:
                continue
            w = np.empty(b - a, dtype=np.float64)
            for x in range(a, b, step):
                tf = self.tf[x : min(x + step, b)].astype(np.float64)
                w[x - a : x - a + len(tf)] = tf * (K1 + 1) / (tf + norm[self.docs[x : x + len(tf)]])
            starts = self.indptr[lo:hi] - a
            nonempty = self.indptr[lo + 1 : hi + 1] > self.indptr[lo:hi]
            bound[lo:hi][nonempty] = np.maximum.reduceat(w, starts[nonempty])
        return bound * np.float32(1 + 1e-5)

    def search(
        self, words: list[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score); each word adds its terms, as an FTS5 OR query.

        Exact, with MaxScore pruning: terms are scored rarest-first (by the most they can
        add); once the k-th best score so far beats all that the remaining terms could add,
        no document they alone match can reach the top k, so the remaining (common, long)
        posting lists are only looked up for the candidates that still could, instead of
        being scanned: at 1M chunks that is most of the work of a query.

        With changes applied (``delta``), the added chunks' postings follow the built ones
        (their positions come after), deleted chunks never become candidates, and the
        statistics are those of the live chunks; the built bounds are scaled by how much the
        average length grew (a term's most can only grow that much), so pruning stays exact.
        """
        d = self.delta
        n = len(self.ids) if d is None else d.live
        if n == 0 or k <= 0:
            return []
        norm = self._doc_norm() if d is None else d.norm
        ids = self.ids if d is None else d.ids
        # (most it adds, idf, built term, overlay term)
        entries: list[tuple[float, float, int, int]] = []
        for word in words:
            for token in folded_tokens(word):
                stem = self._stem(token)
                t, u = self._term(stem), (d.term(stem) if d is not None else None)
                df, most = 0, 0.0
                if t is not None:
                    df += int(self.indptr[t + 1] - self.indptr[t])
                    most = float(self.bound[t])
                    if d is not None:
                        df -= d.dead_df(self, t)
                        most *= d.scale
                if u is not None and d is not None:
                    df += int(d.indptr[u + 1] - d.indptr[u])
                    most = max(most, float(d.bound[u]))
                if df <= 0:
                    continue
                idf = max(float(np.log((n - df + 0.5) / (df + 0.5))), 1e-6)
                entries.append((idf * most, idf, -1 if t is None else t, -1 if u is None else u))
        if not entries:
            return []
        entries.sort(key=lambda e: -e[0])
        after = [sum(e[0] for e in entries[i + 1 :]) for i in range(len(entries))]
        scores = np.zeros(len(ids), dtype=np.float64)
        matched = np.zeros(len(ids), dtype=bool)  # (a mask: np.union1d costs ~10 ms a term at 1M)
        done, theta, seen = len(entries), 0.0, 0.0

        def postings(t: int, u: int) -> tuple[np.ndarray, np.ndarray]:
            """A term's (positions ascending, tf), built then added."""
            if u < 0:
                return self.docs[self.indptr[t] : self.indptr[t + 1]], self.tf[
                    self.indptr[t] : self.indptr[t + 1]
                ]
            assert d is not None
            docs, tf = d.docs[d.indptr[u] : d.indptr[u + 1]], d.tf[d.indptr[u] : d.indptr[u + 1]]
            if t < 0:
                return docs, tf
            lo, hi = self.indptr[t], self.indptr[t + 1]
            return np.concatenate([self.docs[lo:hi], docs]), np.concatenate([self.tf[lo:hi], tf])

        def pool(c: np.ndarray) -> np.ndarray:
            if d is not None and d.dead_count:
                c = c[d.alive[c]]
            return c if allowed is None else c[np.isin(ids[c], allowed)]

        for i, (most, idf, t, u) in enumerate(entries):
            docs, tf = postings(t, u)
            tf = tf.astype(np.float64)
            scores[docs] += idf * tf * (K1 + 1) / (tf + norm[docs])
            matched[docs] = True
            seen += most
            if i + 1 < len(entries) and seen > after[i]:  # else the k-th cannot beat it yet
                p = pool(np.flatnonzero(matched))
                if len(p) >= k:
                    theta = float(-np.partition(-scores[p], k - 1)[k - 1])
                    if theta > after[i]:  # no document unseen so far can reach the top k
                        done = i + 1
                        break
        cand = pool(np.flatnonzero(matched))
        if done < len(entries):
            cand = cand[scores[cand] + after[done - 1] >= theta]  # those that still could
            for _, idf, t, u in entries[done:]:
                docs, tfs = postings(t, u)
                pos = np.searchsorted(docs, cand)
                hit = pos < len(docs)
                hit[hit] = docs[pos[hit]] == cand[hit]
                dd, tf = cand[hit], tfs[pos[hit]].astype(np.float64)
                scores[dd] += idf * tf * (K1 + 1) / (tf + norm[dd])
        if len(cand) == 0:
            return []
        k = min(k, len(cand))
        kth = np.partition(-scores[cand], k - 1)[k - 1]
        part = cand[-scores[cand] <= kth]  # ties at the k-th place too: the lower ids win
        order = part[np.lexsort((ids[part], -scores[part]))][:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def apply(self, touched: Sequence[int], rows: Iterable[tuple[int, str]]) -> None:
        """Bring the index to the store's state for the chunks ``touched``: ``rows`` are the
        (chunk id, keyword text) of those that exist; the others are deleted. A chunk's text
        never changes under its id (an edit makes new chunks), so one that is already here
        stays as it is. Never changes what a search in progress reads: a new ``delta``."""
        with self._lock:
            old = self.delta
            dead = old.dead.copy() if old is not None else np.zeros(len(self.ids), dtype=bool)
            added = dict(old.added) if old is not None else {}
            vocab = dict(old.vocab) if old is not None else {}
            present = dict(rows)
            n = len(self.ids)

            def built(cid: int) -> int:
                pos = int(np.searchsorted(self.ids, cid))
                return pos if pos < n and self.ids[pos] == cid else -1

            for cid in touched:
                if cid in present:
                    continue
                added.pop(cid, None)
                pos = built(cid)
                if pos >= 0:
                    dead[pos] = True
            stem_of: dict[str, int] = {}  # token -> overlay term
            for cid, body in present.items():
                pos = built(cid)
                if cid in added or (pos >= 0 and not dead[pos]):
                    continue
                tokens = folded_tokens(body)
                for tok in set(tokens).difference(stem_of):
                    stem_of[tok] = vocab.setdefault(self._stem(tok), len(vocab))
                counts = Counter(stem_of[tok] for tok in tokens)
                terms = np.fromiter(counts.keys(), dtype=np.int32, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
                tf16 = np.minimum(tf, np.iinfo(np.uint16).max).astype(np.uint16)
                added[cid] = (terms, tf16, len(tokens))
            self.delta = Delta(self, dead, added, vocab)

    _ARRAYS = ("ids", "blob", "offsets", "indptr", "docs", "tf", "lengths", "bound")

    def save(self, path: Path, generation: str) -> None:
        """An uncompressed ``.npz`` (a zip of ``.npy`` files), which ``load`` maps; the
        built arrays only (``generation``: the state of the store they reflect)."""
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        arrays = {name: getattr(self, name) for name in self._ARRAYS}
        np.savez(tmp, generation=np.array(generation), format=np.array(FORMAT), **arrays)
        os.replace(tmp, path)

    def load(self, path: Path, generation: str | None = None) -> bool:
        """Map a saved index if it reflects ``generation`` (None: whatever it reflects, then
        in ``stamp``); False when it must be rebuilt."""
        try:
            members = _map_npz(path)
            if str(members["format"][()]) != FORMAT:
                return False
            stamp = str(members["generation"][()])
            if generation is not None and stamp != generation:
                return False
            loaded = {name: members[name] for name in self._ARRAYS}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return False
        for name, array in loaded.items():  # plain arrays over the maps: no memmap overhead
            setattr(self, name, np.asarray(array))
        self._norm = np.zeros(0, dtype=np.float64)
        self.delta, self.stamp = None, stamp
        return True


class Delta:
    """Changes applied on top of a ``BM25Index``'s built arrays, never changed once made.

    ``dead``: built positions deleted; ``added``: chunk id -> (overlay term ids, their tf,
    length) of chunks added since, whose positions follow the built ones in chunk id order;
    ``vocab``: stem -> overlay term id. The rest is derived here, once per apply: the added
    postings by term (CSR, positions ascending), the live statistics and BM25 norms.
    """

    def __init__(
        self,
        base: BM25Index,
        dead: np.ndarray,
        added: dict[int, tuple[np.ndarray, np.ndarray, int]],
        vocab: dict[str, int],
    ) -> None:
        self.dead, self.added, self.vocab = dead, added, vocab
        n, order = len(base.ids), sorted(added)
        self.dead_count = int(np.count_nonzero(dead))
        self.live = n - self.dead_count + len(order)
        xlen = np.array([added[c][2] for c in order], dtype=np.float64)
        self.ids = np.concatenate([base.ids, np.array(order, dtype=np.int64)])
        self.alive = np.concatenate([~dead, np.ones(len(order), dtype=bool)])
        built_len = np.asarray(base.lengths, dtype=np.float64)
        total = float(built_len.sum() - built_len[dead].sum() + xlen.sum())
        avgdl = total / self.live if self.live else 1.0
        base_avgdl = float(np.mean(base.lengths)) if len(base.lengths) else avgdl
        #: how much more a built term may add now than its built bound says (see ``search``)
        self.scale = max(1.0, avgdl / base_avgdl) if base_avgdl > 0 else 1.0
        self.norm = K1 * (1 - B + B * np.concatenate([built_len, xlen]) / (avgdl or 1.0))
        terms = [added[c][0] for c in order]
        tfs = [added[c][1] for c in order]
        t = np.concatenate(terms) if terms else np.zeros(0, dtype=np.int32)
        tf = np.concatenate(tfs) if tfs else np.zeros(0, dtype=np.uint16)
        pos = n + np.repeat(np.arange(len(order), dtype=np.int64), [len(x) for x in terms])
        by = np.lexsort((pos, t))
        t, self.docs, self.tf = t[by], pos[by], tf[by]
        self.indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(t, minlength=len(vocab)), out=self.indptr[1:])
        w = self.tf.astype(np.float64)
        w = w * (K1 + 1) / (w + self.norm[self.docs]) if len(w) else w
        self.bound = np.zeros(len(vocab), dtype=np.float64)
        has = self.indptr[1:] > self.indptr[:-1]
        if has.any():
            self.bound[has] = np.maximum.reduceat(w, self.indptr[:-1][has])
        self._dead_df: dict[int, int] = {}

    def term(self, stem: str) -> int | None:
        """The overlay term of a stem, when some added chunk holds it."""
        u = self.vocab.get(stem)
        return u if u is not None and self.indptr[u + 1] > self.indptr[u] else None

    def dead_df(self, base: BM25Index, t: int) -> int:
        """How many of a built term's chunks were deleted (counted once per term)."""
        if not self.dead_count:
            return 0
        if t not in self._dead_df:
            docs = base.docs[base.indptr[t] : base.indptr[t + 1]]
            self._dead_df[t] = int(np.count_nonzero(self.dead[docs]))
        return self._dead_df[t]


#: the saved layout of ``BM25Index``; an older file is rebuilt (4: the stamp is the change
#: log's position, no longer the generation counter)
FORMAT = "bm25/4"


def _map_npz(path: Path) -> dict[str, np.ndarray]:
    """Every member of an uncompressed ``.npz``, as read-only memory maps into the file."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                raise ValueError(f"{path}: {info.filename} is not a stored .npy")
            f.seek(info.header_offset)
            local = f.read(30)  # the local file header: its name and extra field lengths
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{path}: damaged")
            skip = int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            f.seek(info.header_offset + 30 + skip)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject or fortran:
                raise ValueError(f"{path}: {info.filename} holds objects")
            name = info.filename[: -len(".npy")]
            if int(np.prod(shape)) == 0 or dtype.kind == "U":
                with z.open(info) as member:
                    out[name] = np.lib.format.read_array(member)
            else:
                out[name] = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape)
    return out


def memory_estimate(chunks: int, postings_per_chunk: float = 75.0) -> dict[str, int]:
    """Bytes the in-memory BM25 of ``chunks`` chunks needs: the postings (6 bytes each:
    doc and term frequency; ~75 distinct terms per 200-word chunk), ids, lengths and the
    per-query score array, and the vocabulary (grows slower than the chunks; ~10 bytes per
    term, ~sqrt-ish growth bounded by 2 terms per chunk). Memory-mapped from the saved
    ``.bm25.npz``; the pages a query touches stay resident."""
    postings = int(chunks * postings_per_chunk) * 6
    per_chunk = chunks * (8 + 4 + 8 + 8)  # ids, lengths, BM25 norm, scores of a query
    terms = min(2 * chunks, int(40 * chunks**0.75))  # vocabulary growth (Heaps' law)
    vocab = terms * (10 + 8 + 8)  # blob, offsets, indptr
    return {"keywords": postings + per_chunk + vocab}


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
        return self.store.keyword_search(terms, k, scope)


#: loaded indexes by saved file, shared by every searcher of this process while any holds
#: one (the pages themselves are shared between processes by the memory maps)
_shared: weakref.WeakValueDictionary[str, BM25Index] = weakref.WeakValueDictionary()


def catch_up(bm25: BM25Index, store: Store) -> bool:
    """Apply to ``bm25`` the changes the store logged since its ``seq``; False when they were
    compacted away: the index must be rebuilt."""
    return apply_log(
        bm25, store, lambda touched: bm25.apply(touched, store.keyword_rows_for(touched))
    )


@keyword_indexes.register("memory")
class MemoryKeywords(KeywordIndex):
    """``BM25Index`` postings, saved beside the store file (or, for a server database, in
    the user's cache folder: ``Store.cache_prefix``), updated in place from the store's
    change log, and rebuilt only when the log no longer holds the changes it needs."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._bm25: BM25Index | None = None

    def refresh(self) -> None:
        self._index()

    def _side(self) -> Path | None:
        prefix = self.store.cache_prefix()
        return Path(prefix + ".bm25.npz") if prefix else None

    def _index(self) -> BM25Index:
        bm25, side = self._bm25, None
        if bm25 is None:
            side = self._side()
            bm25 = _shared.get(str(side)) if side is not None else None
            if bm25 is None and side is not None and side.exists():
                loaded = BM25Index()
                if loaded.load(side) and loaded.stamp.isdigit():
                    loaded.seq, bm25 = int(loaded.stamp), loaded
                    _shared[str(side)] = bm25
        if bm25 is None or not catch_up(bm25, self.store):
            side = side or self._side()
            other = _shared.get(str(side)) if side is not None else None
            if other is not None and other is not bm25 and catch_up(other, self.store):
                bm25 = other  # another searcher of this process has rebuilt it already
            else:
                bm25 = self._build(side)
        self._bm25 = bm25
        return bm25

    def _build(self, side: Path | None) -> BM25Index:
        """From every chunk, at the log's position read in the same snapshot."""
        bm25 = BM25Index()
        with self.store.snapshot():
            seq = self.store.change_position()
            bm25.build(self.store.keyword_rows())
        if side is not None:
            bm25.save(side, str(seq))
            bm25.load(side, str(seq))  # map the file: the built arrays can go
            _shared[str(side)] = bm25
        bm25.seq = seq
        return bm25

    def search(
        self, terms: list[str], k: int, scope: Scope | None = None
    ) -> list[tuple[int, float]]:
        return self.prepared(scope)(terms, k)

    def prepared(self, scope: Scope | None = None) -> Callable[[list[str], int], Ranking]:
        """The ranking as a function that touches no database: every store read (the
        generation, the filter's chunk ids) happens here, so the search itself can run on
        another thread while this one embeds the query."""
        allowed = scope.chunk_ids() if scope else None
        index = self._index()
        return lambda terms, k: index.search(terms, k, allowed)
