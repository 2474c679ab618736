"""``cards_for``: the one call behind `kenning cards`, the server's cards and the quiz.

It picks notes from an index (paths, a tag, a folder or a search), makes their cards
(``make.make_cards``: the extractive rules, or an LLM backend with ``llm``), and stores them
in the index (``deck.CardStore``) so that their ids, and the reviews behind them, stay put
when the notes change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kenning.answer.citations import Thresholds
from kenning.answer.llms import LLM
from kenning.errors import NotFound
from kenning.filters import Filters

from .card import Card
from .deck import CardStore, Changes
from .make import Made, make_cards, notes_at
from .rules import candidates
from .writer import LLMWriter

#: notes a ``--query`` selection takes (the notes of the top hits)
QUERY_HITS = 20
_TYPES = ("markdown", "text")


@dataclass
class Selection:
    """Which notes to make cards from; empty means every note of the index."""

    paths: list[str] = field(default_factory=list)
    tag: str | None = None
    folder: str | None = None
    query: str | None = None


@dataclass
class Result:
    cards: list[Card]
    deck: str
    made: Made
    changes: Changes


def choose(index: Any, selection: Selection) -> tuple[list[str], str]:
    """(the chosen notes' paths, a deck name: the folder, tag or search they came from)."""
    rows = [r for r in index.store.sources().values() if r.type in _TYPES and r.status != "failed"]
    roots = index.store.roots()
    deck = Path(roots[0]).name if len(roots) == 1 else "kenning"
    if selection.paths:
        wanted = [Path(p).expanduser().resolve() for p in selection.paths]
        rows = [r for r in rows if any(_under(Path(r.path), w) for w in wanted)]
        if not rows:
            raise NotFound(
                f"no indexed note under {', '.join(selection.paths)}; `kenning add` it first"
            )
        common = Path(os.path.commonpath([str(w) for w in wanted]))
        deck = common.name if common.is_dir() else common.parent.name
    if selection.tag:
        tagged = Filters.parse(where=[f"tag={selection.tag}"])
        rows = [r for r in rows if tagged.matches(r)]
        deck = selection.tag
    if selection.folder:
        inside = Filters.parse(paths=[selection.folder.strip("/") + "/**"])
        rows = [r for r in rows if inside.matches(r)]
        deck = Path(selection.folder.rstrip("/")).name
    if selection.query:
        hits = index.search(selection.query, k=QUERY_HITS)
        found = {h.path for h in hits}
        rows = [r for r in rows if r.path in found]
        deck = selection.query
    if not rows:
        raise NotFound("no notes match; check the --tag, --folder or --query given")
    return sorted(r.path for r in rows), deck


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def cards_for(
    index: Any,
    selection: Selection | None = None,
    llm: LLM | None = None,
    thresholds: Thresholds | None = None,
    save: bool = True,
) -> Result:
    """Make (and, with ``save``, store) the cards of the notes ``selection`` picks."""
    paths, deck = choose(index, selection or Selection())
    writer = LLMWriter(llm) if llm is not None else None
    try:
        made = make_cards(notes_at(paths), writer or candidates, thresholds)
    finally:
        if writer is not None:
            writer.close()
    changes = Changes(added=[c.id for c in made.cards])
    if save:
        with CardStore(index.store.address, create=True) as store:
            known = set(index.store.sources())
            gone = {c.path for c in store.cards() if c.path not in known}
            changes = store.update(made.cards, set(paths) | gone)
    return Result(made.cards, deck, made, changes)
