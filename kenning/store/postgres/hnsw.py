"""pgvector's HNSW index as the PostgreSQL store uses it: its build and search settings, and
which searches the server's pgvector can do.

Three settings, each from the store URL's query (``?hnsw_ef_search=400``), else
``[postgres]`` in kenning.toml, else the measured defaults below:

- ``hnsw_m`` and ``hnsw_ef_construction``: the graph's links per node and build breadth,
  used when the index is built (a new index, ``kenning migrate``, a change of model);
- ``hnsw_ef_search``: the search breadth, per query (``SET LOCAL hnsw.ef_search``).

The URL keeps them (so another process that opens the same address gets the same ones) and
libpq never sees them. Filtered searches use pgvector's iterative index scans (0.8.0 and
later) when the filter leaves many chunks, and an exact scan of the allowed chunks otherwise
or on an older pgvector (``plan``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kenning.errors import ConfigError

#: measured (docs/benchmarks.md, "PostgreSQL 18: HNSW settings and filtered queries"): at
#: 100k chunks 24 / 128 found 0.995 of the exact top 10 searching 200 candidates, but at 1M
#: two builds of it found 0.955 and 0.923 even at pgvector's widest breadth, 1,000; 32 / 256
#: found 0.989 there (0.961 at 400), for about twice the build time (643 s at 1M)
M = 32
EF_CONSTRUCTION = 256
EF_SEARCH = 1_000
#: a filter that leaves at most this many chunks is searched exactly (measured, same page:
#: at 100k, the walk found 0.91 of the exact top 10 for 100 allowed chunks, 0.98 for 1,000;
#: at 1M, the exact scan of 10,000 allowed chunks took 57 ms and the walk 133). A broader
#: filter is tested on the unfiltered ranking's candidates (``kenning.search.searcher``)
EXACT_BELOW = 20_000
#: iterative scans: at most this many index tuples per filtered query (pgvector's default)
MAX_SCAN_TUPLES = 20_000
#: pgvector's bounds
_RANGES = {"hnsw_m": (2, 100), "hnsw_ef_construction": (4, 1000), "hnsw_ef_search": (1, 1000)}


@dataclass(frozen=True)
class HNSWSettings:
    """The settings a store runs with."""

    hnsw_m: int = M
    hnsw_ef_construction: int = EF_CONSTRUCTION
    hnsw_ef_search: int = EF_SEARCH

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer from {low} to {high}, not {value!r}")
        if self.hnsw_ef_construction < 2 * self.hnsw_m:
            raise ConfigError(
                f"hnsw_ef_construction ({self.hnsw_ef_construction}) must be at least twice "
                f"hnsw_m ({self.hnsw_m}), as pgvector requires"
            )

    def ef_search(self, k: int) -> int:
        """The breadth for a query that wants ``k`` results (never fewer than ``k``)."""
        return max(self.hnsw_ef_search, min(k, 1000))

    def build_memory_mb(self, rows: int, dim: int) -> int:
        """``maintenance_work_mem`` for building the graph: enough to hold it whole (pgvector
        builds far slower once it does not fit), at least 2 GB and at most 8 GB. Per row:
        the vector, twice ``m`` neighbour links of layer 0 and pgvector's element header."""
        need = rows * (4 * dim + 2 * self.hnsw_m * 8 + 96) * 1.3 / 2**20
        return int(min(max(need, 2048), 8192))

    def build_options(self) -> str:
        return f"WITH (m = {self.hnsw_m}, ef_construction = {self.hnsw_ef_construction})"


def split_url(url: str, configured: dict[str, Any]) -> tuple[str, HNSWSettings]:
    """The URL libpq is given (without kenning's keys), and the settings: the URL's query
    over ``configured`` (kenning.toml's ``[postgres]``) over the defaults."""
    parts = urlsplit(url)
    names = {f.name for f in fields(HNSWSettings)}
    ours: dict[str, Any] = dict(configured)
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in names:
            try:
                ours[key] = int(value)
            except ValueError:
                message = f"{key} in the store URL must be an integer, not {value!r}"
                raise ConfigError(message) from None
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), HNSWSettings(**ours)


def version(db: Any) -> tuple[int, ...]:
    """The pgvector version installed in ``db``'s database, as numbers (0.8.0 -> (0, 8, 0))."""
    row = db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        return ()
    return tuple(int(p) for p in row[0].split(".") if p.isdigit())


def iterative(pgvector: tuple[int, ...]) -> bool:
    """Whether this pgvector can go on walking the graph until a filter is satisfied
    (``hnsw.iterative_scan``, pgvector 0.8.0)."""
    return pgvector >= (0, 8, 0)
