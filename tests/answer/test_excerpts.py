"""What a model with ``excerpt_sentences`` reads: the sentences around what matched."""

from __future__ import annotations

from collections.abc import Iterator

from kenning.answer.llms import LLM, Passage, Prompt
from kenning.answer.prompt import build_prompt, excerpts


class Reader(LLM):
    """A model that reads excerpts (as ``LocalLLM`` does); it never runs here."""

    id = "reader"

    def __init__(self, excerpt_sentences: int | None) -> None:
        super().__init__()
        self.excerpt_sentences = excerpt_sentences

    def stream(self, prompt: Prompt) -> Iterator[str]:
        yield ""


def passage(n: int, text: str) -> Passage:
    return Passage(n, n, f"notes/{n}.md", "", "", None, 0, len(text), text, 1.0)


FILLER = " ".join(f"Paragraph {i} of the guide is about the weather." for i in range(8))
FERRY = passage(
    1,
    f"{FILLER} The ferry to Cacilhas leaves every 20 minutes. Buy a Viva card first. {FILLER}",
)
TAR = passage(
    2,
    "# tar\n\n- Create an archive from files:\n\n`tar cf archive.tar a b`\n\n"
    "- Extract an archive into a directory:\n\n`tar xf archive.tar -C dir`\n\n"
    "- List the contents of an archive:\n\n`tar tf archive.tar`\n",
)
BREAD = passage(3, "Sourdough rises overnight. Bake it hot. Let it cool before cutting.")


def test_the_matching_sentence_and_the_one_after_it_are_kept_in_order() -> None:
    shown = excerpts([FERRY, BREAD], "How often does the ferry to Cacilhas leave?", 2)
    assert shown == {
        1: "…\nThe ferry to Cacilhas leaves every 20 minutes.\nBuy a Viva card first.\n…"
    }


def test_a_sentence_brings_the_command_it_introduces() -> None:
    shown = excerpts([TAR], "extract an archive into a directory", 1)
    assert shown[2].startswith(
        "…\n- Extract an archive into a directory:\n`tar xf archive.tar -C dir`"
    )
    assert "tar cf" not in shown[2]
    assert "tar tf" in shown[2]  # the sentence after it, with its command


def test_a_passage_kept_whole_is_its_own_text_and_the_first_is_always_shown() -> None:
    shown = excerpts([BREAD, FERRY], "How often does the ferry to Cacilhas leave?", 2)
    assert set(shown) == {1, 3} and shown[3].startswith("Sourdough rises overnight.")
    assert excerpts([BREAD], "ferry", 6) == {3: BREAD.text}


def test_build_prompt_shows_excerpts_and_leaves_out_passages_without_one() -> None:
    question = "How often does the ferry to Cacilhas leave?"
    prompt = build_prompt(question, [FERRY, TAR, BREAD], Reader(2))
    user = prompt.messages[-1].content
    assert "every 20 minutes" in user and "Paragraph 3" not in user and "tar xf" not in user
    assert [p.n for p in prompt.passages] == [1]  # the check reads the passages shown, whole
    whole = build_prompt(question, [FERRY, TAR, BREAD], Reader(None))
    assert FERRY.text in whole.messages[-1].content and len(whole.passages) == 3


def test_a_token_budget_keeps_the_best_sentences_that_fit() -> None:
    """With ``tokens``, the excerpt holds at most that many (here: words) between its
    sentences: one that would pass it gives way to a shorter one further down."""
    long = "The ferry to Cacilhas is crowded on " + " ".join(["busy"] * 30) + " mornings."
    text = f"{FILLER} {long} The ferry to Cacilhas leaves every 20 minutes. {FILLER}"
    ferry = passage(1, text)
    question = "Does the ferry to Cacilhas go every 20 minutes?"
    unbounded = excerpts([ferry], question, 3)[1]
    assert "busy busy" in unbounded and "every 20 minutes" in unbounded
    shown = excerpts([ferry], question, 3, tokens=20, count=lambda t: len(t.split()))[1]
    assert "every 20 minutes" in shown and "busy" not in shown
    assert sum(len(line.split()) for line in shown.split("\n") if line != "…") <= 20
    # the best sentence is kept even when it alone passes the budget
    assert "every 20 minutes" in excerpts([ferry], "leaves every 20 minutes", 1, tokens=1)[1]


def test_excerpts_name_each_passage_by_its_file_alone() -> None:
    deep = Passage(
        1,
        1,
        "/home/me/.cache/notes/travel/lisbon.md",
        "Ferries",
        "",
        None,
        0,
        len(FERRY.text),
        FERRY.text,
        1.0,
    )
    question = "How often does the ferry to Cacilhas leave?"
    user = build_prompt(question, [deep], Reader(2)).messages[-1].content
    assert "[1] lisbon.md (Ferries)\n" in user and "/home/me" not in user
    whole = build_prompt(question, [deep], Reader(None)).messages[-1].content
    assert "[1] /home/me/.cache/notes/travel/lisbon.md (Ferries)\n" in whole
