"""The multi-step questions `eval agent` builds from pages that point to each other the way
tldr-pages do ("See also" lines, aliases), on a small fixture in that style."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_notes

from kenning import Index
from kenning.agent.evaluate import build_questions, description

PAGES = {
    "common/sed.md": "# sed\n\n> Edit text in a scriptable manner.\n"
    "> See also: `awk`, `ed`.\n> More information: <https://manned.org/sed>.\n\n"
    "- Replace all matches:\n\n`sed 's/apple/mango/g' {{path/to/file}}`\n",
    "common/awk.md": "# awk\n\n> A versatile programming language for working on files.\n"
    "> More information: <https://github.com/onetrueawk/awk>.\n\n- Print a column:\n\n"
    "`awk '{print $5}' {{path/to/file}}`\n",
    "common/ed.md": "# ed\n\n> Change a file with the original text editor.\n\n"
    "- Start an interactive session:\n\n`ed`\n",
    "common/rbenv.md": "# rbenv\n\n> Manage Ruby versions.\n> See also: `asdf`.\n"
    "> More information: <https://github.com/rbenv/rbenv>.\n\n- Install a version:\n\n"
    "`rbenv install {{version}}`\n",
    "common/asdf.md": "# asdf\n\n> Manage versions of different packages.\n"
    "> More information: <https://asdf-vm.com>.\n\n- List all plugins:\n\n`asdf plugin list all`\n",
    "linux/gnuchmod.md": "# gnuchmod\n\n> This command is an alias of GNU `chmod`.\n\n"
    "- View documentation for the original command:\n\n`tldr chmod`\n",
    "common/chmod.md": "# chmod\n\n> Change the access permissions of a file or directory.\n"
    "> More information: <https://www.gnu.org/software/coreutils/chmod>.\n\n"
    "- Give the user the right to execute it:\n\n`chmod u+x {{path/to/file}}`\n",
    # two pages named tar: the alias cannot say which one it means, so no question
    "common/tar.md": "# tar\n\n> Archiving utility.\n\n- Create an archive:\n\n`tar cf a.tar f`\n",
    "linux/tar.md": "# tar\n\n> Archiving utility, GNU flavour.\n\n- List:\n\n`tar tf a.tar`\n",
    "osx/gtar.md": "# gtar\n\n> This command is an alias of GNU `tar`.\n\n`tldr tar`\n",
}


@pytest.fixture
def pages(tmp_path: Path) -> Index:
    root = write_notes(tmp_path / "pages", PAGES)
    index = Index.open(tmp_path / "idx" / "index.db", embedder="hash")
    index.add([root])
    yield index
    index.close()


def test_description_skips_pointers_and_sources() -> None:
    assert description(PAGES["common/rbenv.md"]) == "Manage Ruby versions."
    assert description(PAGES["linux/gnuchmod.md"]) == ""  # an alias line is no description


def test_questions_from_see_also_and_aliases(pages: Index) -> None:
    questions = build_questions(pages, 10)
    multi = {q.named.split("/pages/")[1]: q for q in questions if q.kind == "multi"}
    # sed names two commands, gtar's tar is ambiguous: only rbenv and gnuchmod make questions
    assert set(multi) == {"common/rbenv.md", "linux/gnuchmod.md"}
    see, alias = multi["common/rbenv.md"], multi["linux/gnuchmod.md"]
    assert see.via == "see" and see.answer_note.endswith("common/asdf.md")
    assert see.question == (
        'The page "rbenv" names one command under "See also". What does that command do?'
    )
    assert alias.via == "alias" and alias.answer_note.endswith("common/chmod.md")
    assert alias.question == '"gnuchmod" is an alias of another command. What does that command do?'
    # the gold is the rarest word of the target's description that the named page lacks
    assert see.gold == "different" and alias.gold == "access"
    for q in (see, alias):
        named, target = (PAGES[p.split("/pages/")[1]].lower() for p in (q.named, q.answer_note))
        assert q.gold in target and q.gold not in named and q.gold not in q.question.lower()
    controls = {q.named: q for q in questions if q.kind == "control"}
    assert controls[see.answer_note].question == 'What does the command "asdf" do?'
    assert controls[alias.answer_note].gold == "access"
    assert len(questions) == 4


def test_the_same_seed_gives_the_same_questions(pages: Index) -> None:
    first = build_questions(pages, 1, seed=3)
    assert first == build_questions(pages, 1, seed=3) and len(first) == 2


def test_an_answer_contains_the_gold_at_a_word_start() -> None:
    from kenning.agent.evaluate import contains

    assert contains("Pacman is the Arch Linux package manager.", "arch")
    assert not contains("It searches the packages.", "arch")
    assert contains("Compression of files [1].", "compress") and contains("v1.2 [1]", "1.2")
    assert not contains("version 11.2", "1.2")
