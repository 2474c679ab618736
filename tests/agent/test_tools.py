"""Each tool over a real index of the test vault."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_notes

from kenning import Index
from kenning.agent import TOOLS, Toolbox, ToolCall
from kenning.agent.tools import invalid
from kenning.answer.extractive import ExtractiveLLM

EXTRA = {
    "projects/retro-march.md": "---\ntags: [retro]\n---\n# March retro\n\n"
    "We reviewed [[db-choice]] for the billing project.\n",
    "cli/unzstd.md": "# unzstd\n\n> This command is an alias of `zstd --decompress`.\n"
    "> See also: `tar`, `gzip {{file}}`.\n",
    "cli/zstd.md": "# zstd\n\n> Compress or decompress files with Zstandard.\n\n"
    "- Decompress: `zstd -d path/to/file.zst`\n",
    "cli/tar.md": "# tar\n\n> Archiving utility.\n",
    "projects/db-choice.md": "# Database choice\n\n## Decision\n\nWe chose PostgreSQL 16 "
    "for billing.\n\n## Options\n\nSQLite was too small for concurrent writes.\n",
}


@pytest.fixture
def box(index: Index, tmp_path: Path) -> Toolbox:
    root = write_notes(tmp_path / "notes")
    write_notes(root, EXTRA)
    index.add([root])
    return Toolbox(index, ExtractiveLLM())


def test_schemas_are_json_schema_objects() -> None:
    for t in TOOLS:
        assert t.parameters["type"] == "object" and t.parameters["additionalProperties"] is False
        assert set(t.parameters["required"]) <= set(t.parameters["properties"])
    assert [t.name for t in TOOLS] == ["search", "read", "list", "links", "ask"]


def test_search_numbers_passages_once_per_run(box: Toolbox) -> None:
    first = box.run(ToolCall("search", {"query": "database decision billing"}))
    assert first.passages and first.text.startswith("[1] ")
    again = box.run(ToolCall("search", {"query": "PostgreSQL billing"}))
    shared = {p.chunk_id for p in first.passages} & {p.chunk_id for p in again.passages}
    assert shared
    before = {p.chunk_id: p.n for p in first.passages}
    for p in again.passages:  # a chunk seen before keeps its number
        if p.chunk_id in shared:
            assert before[p.chunk_id] == p.n
    assert len({p.n for p in box.passages.values()}) == len(box.passages)


def test_read_a_note_and_one_heading(box: Toolbox) -> None:
    whole = box.run(ToolCall("read", {"note": "db-choice"}))
    assert "PostgreSQL 16" in whole.text and "SQLite was too small" in whole.text
    part = box.run(ToolCall("read", {"note": "projects/db-choice.md", "heading": "options"}))
    assert "SQLite was too small" in part.text and "PostgreSQL 16" not in part.text
    # no such heading: the whole note, with the headings it has
    missing = box.run(ToolCall("read", {"note": "db-choice", "heading": "nope"}))
    assert not missing.error and "no heading 'nope'" in missing.text
    assert "Decision" in missing.text and "PostgreSQL 16" in missing.text
    nothing = box.run(ToolCall("read", {"note": "no-such-note"}))
    assert nothing.error and "not a note" in nothing.text


def test_read_names_the_notes_it_points_to(box: Toolbox) -> None:
    linked = box.run(ToolCall("read", {"note": "retro-march"})).text
    assert linked.endswith("names: projects/db-choice.md (read one with read)")
    # code spans name pages as commands ("an alias of `zstd --decompress`"); a span naming
    # no note (`gzip ...`) and the note itself (`zstd -d` in zstd.md) are left out
    named = box.run(ToolCall("read", {"note": "unzstd"})).text
    assert named.endswith("names: cli/zstd.md, cli/tar.md (read one with read)")
    assert "names:" not in box.run(ToolCall("read", {"note": "cli/zstd.md"})).text
    links = box.run(ToolCall("links", {"note": "unzstd"})).text
    assert "named in its code:\n- cli/zstd.md\n- cli/tar.md\n" in links


def test_list_by_folder_and_tag(box: Toolbox) -> None:
    folder = box.run(ToolCall("list", {"folder": "projects"}))
    assert "projects/retro-march.md" in folder.text and "ml/softmax.md" not in folder.text
    tagged = box.run(ToolCall("list", {"tag": "#ml"}))
    assert "ml/softmax.md" in tagged.text and "ml/attention.md" in tagged.text
    assert "bread" not in tagged.text
    assert box.run(ToolCall("list", {})).error
    assert "no note" in box.run(ToolCall("list", {"tag": "nothing-here"})).text


def test_links_both_ways(box: Toolbox) -> None:
    out = box.run(ToolCall("links", {"note": "retro-march"})).text
    assert "links to:\n- projects/db-choice.md" in out
    back = box.run(ToolCall("links", {"note": "db-choice"})).text
    assert "linked from:\n- projects/retro-march.md" in back


def test_ask_gives_a_checked_answer_with_its_passages(box: Toolbox) -> None:
    result = box.run(ToolCall("ask", {"question": "which database did we choose for billing?"}))
    assert "PostgreSQL" in result.text and result.passages
    shown = {p.chunk_id for p in box.passages.values()}
    assert all(p.chunk_id in shown for p in result.passages)


def test_invalid_reasons() -> None:
    assert invalid(ToolCall("search", {"query": "x"})) is None
    assert "no tool" in (invalid(ToolCall("grep", {})) or "")
    assert "must be a string" in (invalid(ToolCall("search", {"query": 3})) or "")
