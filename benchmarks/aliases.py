"""Does a query equal to a note's alias find that note first? On a real vault of thousands of
notes, per search mode (issue 32, acceptance 2).

    python benchmarks/aliases.py ../shared/data/notes-tldr-pages-en            # 200 aliases
    python benchmarks/aliases.py ../shared/data/notes-tldr-pages-en --sample 50 --embedder hash
    python benchmarks/aliases.py ../shared/data/notes-tldr-pages-en --without common  # 2,812 pages

The vault is tldr-pages (7,425 Markdown pages of command-line documentation), unpacked into
a temporary folder. It has no aliases, so some are added, derived from the page itself: a
tldr page opens with ``# command`` and a one-line description (``> Terminal multiplexer.``),
which is what a person would alias the note by ("terminal multiplexer" for ``tmux``). The
alias is that line without its full stop, where it reads as a name: at most ``MAX_WORDS``
words and no code (backticks). Pages whose description is an alias notice ("This command is
an alias of ...") have none; a description that several pages share, or that is
another page's title or file name, names no one note, so those pages are not sampled. From
the rest, ``--sample`` pages are drawn (``--seed``) and get ``aliases: [...]`` front matter.

Each alias is then searched as a query, in every mode, and counted when the note is the
first hit. Two readings of each vault:

- ``default``: what ``kenning search`` does: a query that is exactly one of a note's names
  puts the note first (``Hit.matched_name``);
- ``ranking only``: that promotion turned off, so only the ranking counts (the alias is
  indexed with the note's first chunk: keyword and meaning side).

And two vaults: ``as written`` (the description is still in the page's body as well) and
``front matter only`` (the sampled pages' description line removed from the body, so the
alias is the only place its words are: what the names indexing alone gives).

The index lives under ``$KENNING_CACHE/bench/aliases`` and is reused by a rerun (only
changed pages are re-read, and only chunks never embedded before are embedded).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kenning import Index
from kenning.config import cache_dir
from kenning.search.names import NoteNames
from kenning.text.names import name_key

MODES = ("bm25", "dense", "hybrid")
#: a description longer than this is a sentence, not a name a person would alias a note by
MAX_WORDS = 6
_DESCRIPTION = re.compile(r"^> (?P<text>.+?)\.?[ \t]*$", re.MULTILINE)


def description(text: str) -> str | None:
    """A tldr page's first description line, without its full stop (None: none usable)."""
    m = _DESCRIPTION.search(text)
    if m is None:
        return None
    line = m["text"].strip()
    if line.lower().startswith(("this command is an alias", "more information", "see also")):
        return None
    return line if len(line.split()) <= MAX_WORDS and "`" not in line else None


def pages(root: Path) -> dict[Path, str]:
    return {p: p.read_text() for p in sorted(root.rglob("*.md"))}


def sample(texts: dict[Path, str], n: int, seed: int) -> dict[Path, str]:
    """``n`` pages (path -> alias) whose description names only them."""
    described = {p: d for p, t in texts.items() if (d := description(t))}
    counts: dict[str, int] = {}
    for d in described.values():
        counts[name_key(d)] = counts.get(name_key(d), 0) + 1
    names = {name_key(p.stem) for p in texts}
    names |= {name_key(t.split("\n", 1)[0].lstrip("# ")) for t in texts.values()}
    unique = [p for p, d in described.items() if counts[name_key(d)] == 1]
    candidates = [p for p in unique if name_key(described[p]) not in names]
    print(
        f"# {len(texts)} pages; {len(described)} with a short description (<= {MAX_WORDS} "
        f"words, no code); {len(unique)} unique; "
        f"{len(candidates)} also no other page's title or file name; sampling {n}"
    )
    chosen = random.Random(seed).sample(candidates, n)
    return {p: described[p] for p in sorted(chosen)}


def with_alias(text: str, alias: str, keep_description: bool) -> str:
    if not keep_description:
        text = text.replace(f"> {alias}.\n", "", 1).replace(f"> {alias}\n", "", 1)
    return f"---\naliases: [{json.dumps(alias)}]\n---\n{text}"


@contextmanager
def promotion(on: bool) -> Iterator[None]:
    """Search with the exact-name promotion (the default) or with the ranking alone."""
    if on:
        yield
        return
    original = NoteNames.matching
    NoteNames.matching = lambda self, query: []  # type: ignore[method-assign]
    try:
        yield
    finally:
        NoteNames.matching = original  # type: ignore[method-assign]


def measure(index: Index, aliases: dict[Path, str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(reading, mode) -> (aliases whose note is the first hit, aliases whose note is in the
    top 10)."""
    out = {}
    for reading, on in (("default", True), ("ranking only", False)):
        with promotion(on):
            for mode in MODES:
                first = top10 = 0
                for path, alias in aliases.items():
                    hits = index.search(alias, k=10, mode=mode)
                    found = [h.path for h in hits]
                    first += bool(found) and found[0] == str(path)
                    top10 += str(path) in found
                out[(reading, mode)] = (first, top10)
    return out


def report(vault: str, results: dict[tuple[str, str], tuple[int, int]], n: int) -> None:
    print(f"\n## {vault}: {n} aliases, share whose note is the first hit (top 10)")
    print(f"{'reading':<14}" + "".join(f"{m:>18}" for m in MODES))
    for reading in ("default", "ranking only"):
        cells = []
        for mode in MODES:
            first, top10 = results[(reading, mode)]
            cells.append(f"{100 * first / n:6.1f}% ({100 * top10 / n:5.1f}%)")
        print(f"{reading:<14}" + "".join(f"{c:>18}" for c in cells), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dataset", type=Path, help="the notes-tldr-pages-en folder")
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--seed", type=int, default=32)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="PLATFORM",
        help="leave a platform folder out of the vault (common: 4,612 of the 7,425 pages)",
    )
    args = ap.parse_args()
    work = cache_dir() / "bench" / "aliases"
    vault = work / "tldr-pages-en"
    shutil.rmtree(vault, ignore_errors=True)  # fresh pages; the index (by hash) is kept
    with tarfile.open(args.dataset / "tldr-pages-en-md.tar.gz") as tar:
        tar.extractall(work, filter="data")
    root = vault.resolve()
    for platform in args.without:
        shutil.rmtree(root / "pages" / platform)
    originals = pages(root)
    aliases = sample(originals, args.sample, args.seed)
    for example in list(aliases.items())[:5]:
        print(f"#   {example[0].relative_to(root)}: alias {example[1]!r}")
    db = work / f"index-{args.embedder}.db"
    for name, keep in (("as written", True), ("front matter only", False)):
        for path, alias in aliases.items():
            path.write_text(with_alias(originals[path], alias, keep))
        t0 = time.perf_counter()
        with Index.open(db, embedder=args.embedder) as index:
            rep = index.add([root])
            took = time.perf_counter() - t0
            print(
                f"\n# {name}: indexed in {took:.0f}s ({rep.added} added, {rep.changed} changed, "
                f"{rep.chunks_embedded} chunks embedded)",
                flush=True,
            )
            t0 = time.perf_counter()
            results = measure(index, aliases)
            queries = len(aliases) * len(MODES) * 2
            print(f"# {queries} queries in {time.perf_counter() - t0:.0f}s")
        report(name, results, len(aliases))


if __name__ == "__main__":
    main()
