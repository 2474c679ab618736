"""The one tokenizer: folding, the token pattern, stopwords, query terms and stems.

Keyword tokens are runs of letters and digits, lower-cased, accents folded, then
Porter-stemmed: what SQLite's FTS5 tokenizer ``porter unicode61 remove_diacritics 2`` does,
closely enough that the in-memory BM25 and PostgreSQL's ranking reproduce FTS5's nDCG on
SciFact. ``query_terms`` are a query's words for snippets and highlights, which match words by
``prefix_stem``, a crude stem that needs no stemmer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from kenning.errors import MissingExtra

#: FTS5's unicode61 tokens: letters and digits (an underscore separates, as in FTS5)
TOKEN = re.compile(r"[^\W_]+")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)


def fold(text: str) -> str:
    """Lower-cased, with accents taken off (é -> e)."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def folded_tokens(text: str) -> list[str]:
    """The tokens of ``text``, folded, not stemmed."""
    return TOKEN.findall(fold(text))


def query_terms(query: str) -> list[str]:
    """Keyword terms of a query: lower-cased words minus English stopwords, deduplicated."""
    found = [w.lower() for w in TOKEN.findall(query)]
    terms = [w for w in found if w not in STOPWORDS] or found
    return list(dict.fromkeys(terms))


def prefix_stem(word: str) -> str:
    """A crude stem: the word less its last two letters, keeping at least four."""
    return word[: max(4, len(word) - 2)]


def porter(extra: str = "large") -> Callable[[str], str]:
    """PyStemmer's Porter stemmer (the one FTS5 uses), or ``MissingExtra`` naming ``extra``."""
    try:
        import Stemmer
    except ImportError as e:
        raise MissingExtra("PyStemmer", extra) from e
    stem: Callable[[str], str] = Stemmer.Stemmer("porter").stemWord
    return stem


class Tokenizer:
    """Text to stemmed terms, with a cache of stems (vocabularies repeat)."""

    def __init__(self, extra: str = "large") -> None:
        self.stem = porter(extra)
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        cache, stem = self._cache, self.stem
        out = []
        for t in folded_tokens(text):
            s = cache.get(t)
            if s is None:
                s = cache[t] = stem(t)
            out.append(s)
        return out
