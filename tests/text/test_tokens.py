"""The one tokenizer (``kenning.text.tokens``): what it makes of text, and that the modules
which tokenize use it instead of keeping copies of their own."""

from __future__ import annotations

import importlib.util
import io
import keyword
import tokenize
from pathlib import Path

from kenning.text.tokens import (
    STOPWORDS,
    Tokenizer,
    fold,
    folded_tokens,
    prefix_stem,
    query_terms,
)

#: every module that turns text into terms (by module name: a module that becomes a package
#: is still found, as its ``__init__``)
TOKENIZING = [
    "kenning.text.tokens",
    "kenning.search.keywords",
    "kenning.search.searcher",
    "kenning.search.rerankers",
    "kenning.store.postgres.bm25",
    "kenning.store.postgres",
]


def test_folding_and_tokens_follow_fts5_unicode61() -> None:
    assert fold("Crème BRÛLÉE") == "creme brulee"
    assert folded_tokens("Naïve_Bayes, k-NN & GPT-4o!") == [
        "naive",
        "bayes",
        "k",
        "nn",
        "gpt",
        "4o",
    ]


def test_query_terms_drop_stopwords_unless_nothing_is_left() -> None:
    assert query_terms("How do I undo the last Commit? the commit") == ["undo", "last", "commit"]
    assert query_terms("the of") == ["the", "of"]  # all stopwords: kept rather than nothing
    assert {"the", "and", "yourselves"} <= STOPWORDS


def test_the_prefix_stem_keeps_four_letters() -> None:
    assert prefix_stem("commits") == "commi"
    assert prefix_stem("rebase") == "reba"
    assert prefix_stem("git") == "git"


def test_the_porter_tokenizer_stems_folded_tokens() -> None:
    assert Tokenizer()("Running RUNS ran, café") == ["run", "run", "ran", "cafe"]


def _shapes(path: Path) -> list[tuple[int, str]]:
    """(line number, shape) per line of code: names, strings and numbers as placeholders,
    keywords and operators as they are, so that a copy with other names has the same shape
    (comments, blank lines, docstring lines and imports left out)."""
    lines: dict[int, list[str]] = {}
    for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if t.type == tokenize.NAME:
            shape = t.string if keyword.iskeyword(t.string) else "N"
        elif t.type in (tokenize.STRING, tokenize.NUMBER, tokenize.OP):
            shape = {tokenize.STRING: "S", tokenize.NUMBER: "0"}.get(t.type, t.string)
        else:
            continue
        lines.setdefault(t.start[0], []).append(shape)
    # imports left out too: any two modules share runs of ``from N . N import N``
    return [
        (n, " ".join(s))
        for n, s in sorted(lines.items())
        if s != ["S"] and s[0] not in ("from", "import")
    ]


def test_no_run_of_six_lines_is_repeated_between_tokenizing_modules() -> None:
    """The same six lines, or the same shape with other names (as ``keywords._fold`` once
    copied ``tokens.fold``), appear in one tokenizing module only."""
    seen: dict[tuple[str, ...], str] = {}
    repeated = []
    for name in TOKENIZING:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, f"{name} is gone: update TOKENIZING"
        shapes = _shapes(Path(spec.origin))
        for i in range(len(shapes) - 5):
            run = tuple(s for _, s in shapes[i : i + 6])
            where = seen.setdefault(run, f"{name}:{shapes[i][0]}")
            if not where.startswith(name + ":"):
                repeated.append(f"{where} and {name}:{shapes[i][0]}")
    assert not repeated, "\n".join(repeated)
