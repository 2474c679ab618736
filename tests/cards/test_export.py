"""The Anki package opens in Anki's own Python package (``anki``): its notes, fields and
deck; re-exporting after one note is edited changes exactly that note's cards, and
importing both packages into one collection leaves no duplicate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import write_notes
from test_cards import NOTES

from kenning import Index
from kenning.cards import cards_for
from kenning.cards.export import anki_fields, write_apkg

pytestmark = pytest.mark.slow  # the anki backend starts in a second or two


def _collection(path: Path) -> Any:
    from anki.collection import Collection

    path.parent.mkdir(parents=True, exist_ok=True)
    return Collection(str(path))


def _import(col: Any, package: Path) -> None:
    from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest

    options = ImportAnkiPackageOptions(with_scheduling=False)
    col.import_anki_package(ImportAnkiPackageRequest(package_path=str(package), options=options))


def _notes(col: Any) -> dict[str, tuple[str, list[str]]]:
    """guid -> (note type, fields) of every note in the collection."""
    out = {}
    for nid in col.find_notes("deck:*"):
        note = col.get_note(nid)
        out[note.guid] = (note.note_type()["name"], list(note.fields))
    return out


def test_apkg_opens_in_anki_and_updates_in_place(tmp_path: Path) -> None:
    vault = write_notes(tmp_path / "vault", NOTES)
    (vault / ".obsidian").mkdir()
    db = tmp_path / "idx" / "index.db"
    with Index.open(db, embedder="hash") as index:
        index.add([vault])
        first = cards_for(index)
        one = tmp_path / "one.apkg"
        assert write_apkg(first.cards, one, first.deck) == len(first.cards)
        curl = vault / "tools" / "curl.md"
        curl.write_text(curl.read_text().replace("4096 files", "4096 small files"))
        index.sync()
        second = cards_for(index)
    two = tmp_path / "two.apkg"
    write_apkg(second.cards, two, second.deck, timestamp=time.time() + 60)  # made later

    col = _collection(tmp_path / "a" / "collection.anki2")
    try:
        _import(col, one)
        notes = _notes(col)
        assert set(notes) == {c.id for c in first.cards}
        assert "vault" in [d.name for d in col.decks.all_names_and_ids()]
        assert col.decks.id_for_name("vault") is not None
        by_id = {c.id: c for c in first.cards}
        for guid, (kind, fields) in notes.items():
            card = by_id[guid]
            if card.kind == "cloze":
                assert kind == "kenning cloze" and len(fields) == 4
                assert f"{{{{c1::{card.answer}}}}}" in fields[0]
            else:
                assert kind == "kenning question" and len(fields) == 6
                assert fields[1] == card.answer.replace('"', "&quot;")
            assert fields[-1].startswith("obsidian://open?vault=vault&file=tools%2F")
            assert fields == anki_fields(card)
        _import(col, two)
        after = _notes(col)
    finally:
        col.close()
    changed = {g for g in notes if after[g] != notes[g]}
    assert changed and {by_id[g].path for g in changed} == {str(curl)}
    assert set(after) == set(notes)  # no duplicate: the edited card kept its GUID
    assert len(after) == len(second.cards)
    # a fresh collection holding only the second package has the same notes
    col = _collection(tmp_path / "b" / "collection.anki2")
    try:
        _import(col, two)
        assert _notes(col) == after
    finally:
        col.close()
