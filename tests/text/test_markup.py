"""What markup reads as (``readable``): the text that is indexed and shown in snippets, with
HTML, comments, link targets and Obsidian syntax left out and code kept as written; and a
reading of any span of a document agrees with the reading of the whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kenning.text.loaders import load
from kenning.text.markup import readable

#: the footer a GitHub-publishing template writes into every note of a vault
FOOTER = (
    '\n\nThis note in GitHub <span class="git-footer">'
    "[Edit In GitHub](https://github.dev/kenning-user/vault/blob/main/a%20b.md)</span>\n"
)


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        (FOOTER, "This note in GitHub Edit In GitHub"),
        ("[[target|alias]], [[Note#Part]], [[#Part]], [[Plain]]", "alias, Note, Part, Plain"),
        ("![cat](cat.png) ![[photo.jpg]] ![[Other note]]", "cat Other note"),
        ("[wiki](https://en.wikipedia.org/wiki/Foo_(bar)) end", "wiki end"),
        (
            "see https://www.gnu.org/software/tar/ and <https://manned.org/tar>",
            "see gnu.org and manned.org",
        ),
        ("a <!-- one\n\ntwo --> b %% three\nfour %% c", "a b c"),
        ("`<div>` and `[x](https://y)` stay", "`<div>` and `[x](https://y)` stay"),
        ("```html\n<b>[x](y)</b>\n```", "```html\n<b>[x](y)</b>\n```"),
        ("> [!note] Title\nbody ^abc123", "Title\nbody"),
        ("fish &amp; chips&nbsp;today", "fish & chips today"),
        ("x < y and z > w", "x < y and z > w"),
    ],
)
def test_readable_leaves_out_markup_and_keeps_code(source: str, reads: str) -> None:
    assert readable(source) == reads


def test_a_reading_of_any_span_matches_the_whole_reading() -> None:
    """Markup is located once per document, so a chunk that holds half a comment or half a
    fence reads as that part of the whole."""
    text = "one <!-- two\n\nthree --> four\n\n```\n<b>x</b>\n\n<i>y</i>\n```\nfive <b>six</b>"
    doc = load(Path("n.md"), text.encode())
    middle = text.index("three")
    assert doc.reading.read(middle, len(text)) == "four\n\n```\n<b>x</b>\n\n<i>y</i>\n```\nfive six"
    fence_half = text.index("<i>")
    assert doc.reading.read(fence_half, len(text)).startswith("<i>y</i>")
