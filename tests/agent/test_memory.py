"""Memory: "remember that ..." writes a Markdown note that later runs find; deleting it forgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kenning import Index
from kenning.agent import Agent, Memory
from kenning.agent.memory import NAME

QUESTION = "when is my thesis deadline?"


@pytest.fixture
def vault(index: Index, notes: Path) -> Index:
    index.add([notes])
    return index


def test_fact_is_read_from_remember_requests() -> None:
    assert Memory.fact("remember that my thesis deadline is 3 March") == (
        "My thesis deadline is 3 March"
    )
    assert Memory.fact("Please remember: the wifi password is on the fridge.") == (
        "The wifi password is on the fridge"
    )
    assert Memory.fact("what do you remember?") is None
    assert Memory.fact("how do I remember names?") is None


def test_remember_then_a_new_run_uses_it_then_deleting_forgets(vault: Index) -> None:
    memory = Memory(vault)
    assert memory.path == Path(vault.location).resolve().parent / NAME
    told = Agent(vault, memory=memory).run("remember that my thesis deadline is 3 March")
    assert told.remembered == str(memory.path) and told.steps == []
    note = memory.path.read_text()
    assert note.startswith("# Memory") and "- My thesis deadline is 3 March." in note

    # a new agent (a new conversation) finds it with its ordinary tools
    later = Agent(vault, memory=Memory(vault)).run(QUESTION)
    assert "3 March" in later.answer.text
    assert any(s.path == str(memory.path) for s in later.answer.sources)

    memory.path.unlink()
    forgot = Agent(vault, memory=Memory(vault)).run(QUESTION)
    assert "3 March" not in forgot.answer.text
    assert all(s.path != str(memory.path) for s in forgot.answer.sources)
    assert str(memory.path) not in vault.store.roots()


def test_memory_in_a_folder_of_the_vault_and_edits(vault: Index, notes: Path) -> None:
    memory = Memory(vault, notes / "memory")
    Agent(vault, memory=memory).run("remember that the boiler is serviced in May")
    assert memory.path == (notes / "memory" / NAME).resolve()
    assert str(memory.path) not in vault.store.roots()  # indexed under the vault's root
    assert str(memory.path) in vault.store.sources()
    # an edit by hand is what is remembered next time
    memory.path.write_text(memory.path.read_text().replace("May", "September"))
    run = Agent(vault, memory=Memory(vault, notes / "memory")).run("when is the boiler serviced?")
    assert "September" in run.answer.text and "May" not in run.answer.text
