"""The keyword tokeniser every BM25 ranking shares, so their scores agree.

Tokens are runs of letters and digits, lower-cased, accents folded, then Porter-stemmed: what
SQLite's FTS5 tokenizer ``porter unicode61 remove_diacritics 2`` does, closely enough that the
in-memory BM25 and PostgreSQL's ranking reproduce FTS5's nDCG on SciFact.
"""

from __future__ import annotations

import re
import unicodedata

from kenning.errors import MissingExtra

TOKEN = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower-cased, with accents taken off (é -> e)."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class Tokenizer:
    """Text to stemmed terms, with a cache of stems (vocabularies repeat)."""

    def __init__(self, extra: str = "large") -> None:
        try:
            import Stemmer
        except ImportError as e:
            raise MissingExtra("PyStemmer", extra) from e
        self.stem = Stemmer.Stemmer("porter").stemWord
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        cache, stem = self._cache, self.stem
        out = []
        for t in TOKEN.findall(fold(text)):
            s = cache.get(t)
            if s is None:
                s = cache[t] = stem(t)
            out.append(s)
        return out
