"""Filtered search on both stores: the SQL that path globs compile to selects what the
reference ``Filters.matches`` does (looked up by prefix, with wildcards expanded through the
path index), and a filtered search returns the exact filtered top k whichever way the
planner takes: an exact scan of the allowed chunks when the filter is selective, the HNSW
graph (in memory on SQLite, pgvector's iterative scan on PostgreSQL) when it is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import postgres_url
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import kenning.search.searcher as searcher
import kenning.search.vectors as vectors
import kenning.store.sqlfilters as sqlfilters
from kenning import Filters, Index
from kenning.store import SourceRow, Store, open_store
from kenning.store.base import Scope
from kenning.store.postgres import PostgresStore
from kenning.text.chunking import Chunk

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
#: roots of the generated sources: folders (one written with its trailing "/") and a file
ROOTS = ["/v", "/w/x", "/f/one.md"]
SEGMENTS = ["a", "b", "ab", "a.md", "b.txt", "c?d", "[x]"]
GLOB_PARTS = ["a", "b", "*", "**", "?", "a*", "*.md", "?b", "x", "v", "[x]", "one.md"]


def _location(backend: str, tmp: Path) -> str:
    return str(tmp / "store.db") if backend == "sqlite" else postgres_url()


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = open_store(_location(request.param, tmp_path_factory.mktemp("globs")))
    yield s
    s.close()


relpaths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)
sources = st.lists(
    st.tuples(st.sampled_from(ROOTS[:2]), relpaths), min_size=1, max_size=12, unique=True
)
# a relative glob starts with a literal folder: one led by a wildcard could also match the
# root's name before the path (``Filters.matches`` tries ``v/a.md`` for ``/v/a.md``), which
# only ``Filters.for_roots`` turns into a glob stores see, and only for a literal name
globs = st.one_of(
    st.tuples(
        st.sampled_from([p for p in GLOB_PARTS if "*" not in p and "?" not in p]),
        st.lists(st.sampled_from(GLOB_PARTS), max_size=3),
    ).map(lambda t: "/".join([t[0], *t[1]])),
    st.lists(st.sampled_from(GLOB_PARTS), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=sources, patterns=st.lists(globs, min_size=1, max_size=2), expand=st.booleans())
@example(files=[("/v", "a/ab"), ("/v", "b/a.md")], patterns=["?/**"], expand=True)
@example(files=[("/v", "a/ab/b"), ("/w/x", "a/b")], patterns=["*/b"], expand=True)
@example(files=[("/v", "a")], patterns=["one.md"], expand=False)
@example(files=[("/v", "[x]/a")], patterns=["v/[x]/*"], expand=True)
@example(files=[("/v", "c?d/a")], patterns=["c?d/*", "/v/?/**"], expand=True)
def test_path_globs_in_sql_select_what_the_reference_does(
    store: Store, files: list, patterns: list[str], expand: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # expand: every wildcard after a prefix is walked through the path index
    monkeypatch.setattr(sqlfilters, "EXPAND_ABOVE", 0 if expand else 10**9)
    store.reset()
    rows = [
        (SourceRow(0, f"{root}/{rel}", root, 1, 1, f"h{i}", "markdown", "ok", None, "T", {}),
         [Chunk(0, 1, "x", "", None)])
        for i, (root, rel) in enumerate(files)
    ]  # fmt: skip
    rows.append(
        (SourceRow(0, ROOTS[2], ROOTS[2], 1, 1, "hf", "markdown", "ok", None, "T", {}),
         [Chunk(0, 1, "x", "", None)])
    )  # fmt: skip
    store.write_sources(rows, {})
    filters = Filters.parse(paths=patterns)
    expected = {r.path for r in store.sources().values() if filters.matches(r)}
    # as Index.search sends them: a glob led by a root's name also as the absolute glob
    sent = filters.for_roots(ROOTS)
    got = {r.path for r in store.chunks(store.chunk_ids(sent).tolist()).values()}
    assert got == expected


def test_a_selective_glob_reads_only_its_range_of_the_path_index(tmp_path: Path) -> None:
    """The SQLite plan of a folder glob searches the path index, it does not scan sources."""
    s = open_store(str(tmp_path / "s.db"))
    row = SourceRow(0, "/v/a/n.md", "/v", 1, 1, "h", "markdown", "ok", None, "T", {})
    s.write_sources([(row, [Chunk(0, 1, "x", "", None)])], {})
    where, args = s.filter_where(Filters.parse(paths=["a/**"]))  # type: ignore[attr-defined]
    plan = " | ".join(
        r[3]
        for r in s.db.execute(  # type: ignore[attr-defined]
            "EXPLAIN QUERY PLAN SELECT c.id FROM chunks c WHERE c.source_id IN "
            f"(SELECT s.id FROM sources s WHERE {where})",
            args,
        )
    )
    assert "USING INDEX sqlite_autoindex_sources_1 (path>? AND path<?)" in plan
    assert "SCAN s" not in plan
    s.close()


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _notes(root: Path, n: int = 150) -> Path:
    """``n`` notes of random words, a third in each of the folders a/, b/ and c/."""
    rng = np.random.default_rng(11)
    for i in range(n):
        folder = root / "abc"[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"n{i}.md").write_text(f"# note {i}\n\n{' '.join(rng.choice(WORDS, 12))} {i}\n")
    return root


@pytest.fixture(scope="module", params=BACKENDS)
def indexes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Index, Index]]:
    """The same notes searched as ``auto`` does (SQLite: forced onto its HNSW graph), and
    with exact vectors (the reference)."""
    tmp = tmp_path_factory.mktemp("planner")
    location = _location(request.param, tmp)
    root = _notes(tmp / "notes")
    vector_index = "hnsw" if request.param == "sqlite" else "auto"
    with Index.open(location, embedder="hash", vector_index=vector_index) as index:
        index.add([root])
        with Index.open(location, embedder="hash", vector_index="exact") as exact:
            yield index, exact


FILTERS = {
    "selective": ["a/n3.md", "b/n7.md", "c/n11.md"],  # 3 notes: an exact scan
    "unselective": ["a/**", "b/**"],  # 100 of 150: the graph
}


@pytest.mark.parametrize("kind", sorted(FILTERS))
def test_filtered_results_equal_the_exact_filtered_top_k(
    indexes: tuple[Index, Index], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, exact = indexes
    store = index.store
    # the planner's thresholds, scaled down to 150 notes: above 20 allowed chunks, the graph
    monkeypatch.setattr(vectors, "EXACT_ROWS", 20)
    if isinstance(store, PostgresStore):
        monkeypatch.setattr(store, "exact_below", 20)
    filters = Filters.parse(paths=FILTERS[kind])
    allowed = set(store.chunk_ids(filters.for_roots(store.roots())).tolist())
    assert len(allowed) == (3 if kind == "selective" else 100)
    for query in ("alpha beta", "gamma delta kappa", "zeta", "theta iota mu lambda"):
        for k in (1, 5, 10):
            for mode in ("dense", "hybrid"):
                got = index.search(query, k=k, filters=filters, mode=mode)
                want = exact.search(query, k=k, filters=filters, mode=mode)
                assert _ranked(got) == _ranked(want), (query, k, mode)
                assert {h.chunk_id for h in got} <= allowed
                assert len(got) == min(k, len(allowed))


def _ranked(hits: list) -> list[tuple[float, int | None]]:
    """Scores best first, each with its chunk, but chunks that tie with the last score are
    left out (which of them make the top k is arbitrary); tied chunks in id order."""
    last = round(hits[-1].score, 5)
    return sorted(
        (-round(h.score, 5), h.chunk_id if round(h.score, 5) != last else None) for h in hits
    )


@pytest.mark.parametrize("oversample", [3.0, 0.3], ids=["candidates", "too-few-listed"])
def test_a_broad_filter_tested_on_candidates_ranks_as_listing_it(
    indexes: tuple[Index, Index], oversample: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter that allows many chunks is not listed: both rankings go wider without it
    and keep the candidates it allows. The result is the listed search's whenever enough
    are kept; with too few (a small oversampling here) the search lists them after all."""
    index, exact = indexes
    # 100 of 150, as Index.search sends it
    filters = Filters.parse(paths=FILTERS["unselective"]).for_roots(exact.store.roots())
    listed: list[int] = []
    original = Scope.chunk_ids

    def chunk_ids(self: Scope) -> np.ndarray:
        listed.append(1)
        return original(self)

    for query in ("alpha beta", "gamma delta kappa", "zeta", "theta iota mu lambda"):
        for mode in ("dense", "hybrid", "bm25"):
            # the reference: the same search, listing the filter's chunks
            want = exact.searcher.search(query, k=10, filters=filters, mode=mode, depth=20)
            with monkeypatch.context() as m:
                m.setattr(searcher, "BROAD", 20)
                m.setattr(searcher, "OVERSAMPLE", oversample)
                m.setattr(Scope, "chunk_ids", chunk_ids)
                listed.clear()
                got = exact.searcher.search(query, k=10, filters=filters, mode=mode, depth=20)
            assert _ranked(got) == _ranked(want), (query, mode)
            # ranking 20 deep wants 20 * 3 / (100/150) = 90 candidates, then 20 allowed
            assert bool(listed) == (oversample < 1), (query, mode)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_filters_share_is_estimated_from_a_sample(backend: str, tmp_path: Path) -> None:
    s = open_store(_location(backend, tmp_path))
    s.reset()
    rows = [
        (SourceRow(0, f"/v/{'ab'[i % 2]}/{i}.md", "/v", 1, 1, f"h{i}", "markdown", "ok", None,
                   "T", {}), [Chunk(0, 1, "x", "", None)])
        for i in range(3000)
    ]  # fmt: skip
    s.write_sources(rows, {})
    s.add_root("/v")
    filters = Filters.parse(paths=["a/**"]).for_roots(s.roots())
    assert s.filter_share(filters) == pytest.approx(0.5, abs=0.06)
    ids = s.chunk_ids()
    among = s.chunks_among(ids[::3].tolist(), filters)
    assert set(among.tolist()) == set(ids[::3].tolist()) & set(s.chunk_ids(filters).tolist())
    s.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_compiled_filter_is_kept_until_the_sources_change(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A glob's folders are looked up once per state of the index: a folder written
    since is found by the next search with the same filter."""
    monkeypatch.setattr(sqlfilters, "EXPAND_ABOVE", 0)  # walk the folders even for a few
    s = open_store(_location(backend, tmp_path))
    s.reset()

    def write(path: str) -> None:
        row = SourceRow(0, path, "/v", 1, 1, path, "markdown", "ok", None, "T", {})
        s.write_sources([(row, [Chunk(0, 1, "x", "", None)])], {})

    write("/v/a/1.md")
    filters = Filters.parse(paths=["/v/?/**"])
    probes: list[str] = []
    original = s._glob_ways  # type: ignore[attr-defined]
    monkeypatch.setattr(s, "_glob_ways", lambda *a: probes.append("x") or original(*a))
    assert len(s.chunk_ids(filters)) == 1
    assert len(s.chunk_ids(Filters.parse(paths=["/v/?/**"]))) == 1  # the same filter again
    assert len(probes) == 1
    write("/v/b/2.md")
    assert len(s.chunk_ids(Filters.parse(paths=["/v/?/**"]))) == 2
    assert len(probes) == 2
    s.close()
