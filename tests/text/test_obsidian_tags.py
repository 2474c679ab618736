"""Inline ``#tags`` and Dataview inline fields are read into a note's metadata
(``kenning.text.inline``), merged with front matter, and filter searches in every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from kenning.filters import Filters
from kenning.index import Index
from kenning.text.inline import field_key
from kenning.text.loaders import load

NOTE = """---
tags: [tools, "#Shortcuts"]
status: draft
---
# Keyboard #heading-tag

Moving around with #area/sub and #area, but #123 is an issue number and #y1984 a tag.
C#sharp is no tag, nor is the anchor in http://example.org/#anchor or https://x.io/a#frag,
nor [a link](other.md#heading), [[other#part]], [[#local]] or [[other|#alias]].
Inline `#notcode` and `status:: inline` stay code. (priority:: high) and [due:: 2025-01-01].
<span style="color: #ffffff">coloured</span> <!-- #commented -->

```bash
# a shell comment
echo #fenced
fenced:: no
```

~~~
#tilde-fenced
~~~

Status:: final
**Time Played**:: 3h
- rating:: 4
> quoted:: yes
Use std::vector here, and Foo::bar() too.
Tags:: extra
#Area/Sub/ again, #tools again
"""


def test_inline_tags_merge_with_front_matter_and_skip_code_urls_and_links() -> None:
    doc = load(Path("n.md"), NOTE.encode())
    tags = doc.metadata["tags"]
    assert tags[:2] == ["tools", "Shortcuts"]  # front matter first, '#' dropped
    assert set(tags) == {
        "tools",
        "Shortcuts",
        "heading-tag",
        "area/sub",
        "area",
        "y1984",
        "extra",
    }
    assert len(tags) == len({t.lower() for t in tags})  # #Area/Sub/ is area/sub again


def test_dataview_fields_are_metadata_and_front_matter_wins() -> None:
    meta = load(Path("n.md"), NOTE.encode()).metadata
    assert meta["status"] == "draft"  # front matter beats "Status:: final"
    assert meta["priority"] == "high" and meta["due"] == "2025-01-01"
    assert meta["time-played"] == "3h" and meta["rating"] == "4" and meta["quoted"] == "yes"
    assert "fenced" not in meta and "std" not in meta and "use-std" not in meta
    assert not any(k.startswith("foo") for k in meta)


def test_repeated_field_becomes_a_list_and_keys_are_sanitised() -> None:
    meta = load(Path("r.md"), b"author:: Ann\nsome text [Author:: Bob]\n").metadata
    assert meta == {"author": ["Ann", "Bob"]}
    assert field_key("**Time Played**") == "time-played" and field_key("_Due_") == "due"


def test_a_note_without_front_matter_gets_tags_and_a_note_without_any_gets_none() -> None:
    assert load(Path("a.md"), b"just #one tag\n").metadata == {"tags": ["one"]}
    assert load(Path("b.md"), b"# Heading\n\nissue #42, see `#x`\n").metadata == {}


VAULT = {
    "exact.md": "# Exact\n\nTagged #area/sub in the body.\n",
    "child.md": "# Child\n\nTagged #area/sub/deeper only.\n",
    "parent.md": "# Parent\n\nTagged #area only.\n",
    "front.md": "---\ntags: area/sub\n---\n# Front\n\nTagged in front matter.\n",
    "coded.md": "# Coded\n\nOnly `#area/sub` in code and http://x.org/#area/sub.\n\n"
    "```\n#area/sub\n```\n",
    "linked.md": "# Linked\n\nSee [there](exact.md#area/sub) and [[exact#area/sub]].\n",
    "field.md": "# Field\n\nproject:: Kenning\nA line with [owner:: Ann].\n",
    "lookalike.md": "# Lookalike\n\nTagged #area/subway and #AREA2.\n",
}


def vault(root: Path) -> Path:
    root.mkdir()
    for name, text in VAULT.items():
        (root / name).write_text(text)
    return root


def names(index: Index, query: str, where: list[str]) -> set[str]:
    hits = index.search(query, k=20, filters=Filters.parse(where), mode="bm25")
    return {Path(h.path).name for h in hits}


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_tag_filter_selects_exactly_the_notes_with_that_tag(tmp_path: Path, store: str) -> None:
    """``tag=area/sub`` selects the notes tagged ``area/sub`` or a child of it (as
    Obsidian's tag search does), never its parent, a look-alike (``area/subway``) nor a tag
    in code or a link, the same in SQL as in the reference ``Filters.matches``."""
    if store == "postgres":
        from conftest import postgres_url

        location = postgres_url()
    else:
        location = str(tmp_path / "i.db")
    root = vault(tmp_path / "vault")
    with Index.open(location, embedder="hash") as index:
        index.add([root])
        query = "tagged coded linked field exact child parent front lookalike"
        sub = {"exact.md", "child.md", "front.md"}
        cases = {
            "tag=area/sub": sub,
            "tag=AREA/SUB": sub,
            "tag=area/sub/": {"child.md"},  # a trailing slash: the children only
            "tag=area/sub/deeper": {"child.md"},
            "tag=area": sub | {"parent.md", "lookalike.md"},
            "tag=area/su": set(),
            "tag!=area/sub": set(VAULT) - sub,
            "project=kenning": {"field.md"},
            "owner=Ann": {"field.md"},
        }
        rows = index.store.sources().values()
        for where, expected in cases.items():
            assert names(index, query, [where]) == expected, where
            reference = Filters.parse([where])
            assert {Path(r.path).name for r in rows if reference.matches(r)} == expected
        hit = index.search("tagged body", k=1, mode="bm25")[0]
        assert Path(hit.path).name == "exact.md" and hit.tags == ["area/sub"]
