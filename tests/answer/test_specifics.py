"""Near misses: the extractive answerer declines when no passage holds the question's
year, version, number or name, and says what the notes mention instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from kenning import Index
from kenning.answer import ask, get_llm
from kenning.answer.llms import Passage, Prompt
from kenning.answer.prompt import REFUSAL
from kenning.answer.specifics import NAME, NUMBER, YEAR, Specific, holds, near_miss, specifics
from tests.conftest import write_notes

FINAL = "The 2016 final was won by Portugal, who beat France 1-0 in Paris after extra time."
RAILS = "Upgrade an app to Rails 5.2 with bundle update rails, then run the new migrations."


def passage(n: int, text: str) -> Passage:
    return Passage(n, n, f"notes/{n}.md", "", "", None, 0, len(text), text, 1.0)


def answer_text(question: str, *texts: str) -> str:
    llm = get_llm("extractive")
    ps = [passage(n, t) for n, t in enumerate(texts, 1)]
    return "".join(llm.stream(Prompt(question, ps, [])))


def test_specifics_are_the_questions_years_numbers_and_names() -> None:
    found = specifics("Who won the 2021 final in Rails 7.1 and Django?")
    assert {(s.text, s.kind) for s in found} == {
        ("2021", YEAR),
        ("7.1", NUMBER),
        ("rails", NAME),
        ("django", NAME),
    }
    assert next(s for s in found if s.kind == NAME and s.text == "django").shown == "Django"
    assert specifics("How Do I Use It With The Other?") == []  # title case of small words


@pytest.mark.parametrize(
    ("text", "specific", "held"),
    [
        ("Set up PostgreSQL first.", Specific("postgres", NAME), True),  # inside a longer word
        ("Upgrade to Rails 5.2 today.", Specific("5", NUMBER), True),  # a refinement
        ("Upgrade to Rails 5.", Specific("5.2", NUMBER), True),  # and the reverse
        ("Upgrade to Rails 15.2.", Specific("5.2", NUMBER), False),
        ("The 2016 final.", Specific("2016", YEAR), True),
        ("On 2016-07-10 it ended.", Specific("2016", YEAR), True),  # a date in that year
        ("In 20161 entries.", Specific("2016", YEAR), False),
        ("The 2016 final.", Specific("2021", YEAR), False),
    ],
)
def test_holds_is_lenient_on_writing_not_on_values(
    text: str, specific: Specific, held: bool
) -> None:
    assert holds(text, specific) is held


def test_a_question_about_another_year_is_declined_with_the_year_the_notes_have() -> None:
    text = answer_text("Who won the 2021 final?", FINAL, RAILS)
    assert text == f"{REFUSAL} They mention the 2016 final [1], not 2021."


def test_another_version_and_another_name_are_declined_too() -> None:
    assert answer_text("How do I upgrade to Rails 7.1?", FINAL, RAILS) == (
        f"{REFUSAL} They mention 5.2 [2], not 7.1."
    )
    assert answer_text("Did Spain win the 2016 final?", FINAL, RAILS) == (
        f"{REFUSAL} They mention Portugal [1], not Spain."
    )


def test_the_questions_own_specifics_are_answered() -> None:
    assert answer_text("Who won the 2016 final?", FINAL, RAILS).startswith(FINAL)
    assert answer_text("How do I upgrade to Rails 5?", FINAL, RAILS).startswith(RAILS)
    assert answer_text("who won the final?", FINAL, RAILS).startswith(FINAL)  # no specifics


def test_nothing_of_the_same_kind_says_so() -> None:
    miss = near_miss("What changed in 1999?", [passage(1, RAILS)])
    assert miss is not None and miss.instead is None
    assert miss.explain(REFUSAL) == f"{REFUSAL} The closest passages do not mention 1999."


def test_the_check_can_be_turned_off() -> None:
    llm = get_llm("extractive", specifics=False)
    assert llm.config()["specifics"] is False
    text = "".join(llm.stream(Prompt("Who won the 2021 final?", [passage(1, FINAL)], [])))
    assert text.startswith(FINAL)


def test_ask_marks_a_near_miss_refused_and_keeps_the_explanation(
    index: Index, tmp_path: Path
) -> None:
    notes = write_notes(
        tmp_path / "sport",
        {
            "final.md": f"# The final\n\n{FINAL}\n",
            "rails.md": f"# Upgrading Rails\n\n{RAILS}\n",
        },
    )
    index.add([notes])
    refused = ask(index, "Who won the 2021 final?")
    assert refused.refused and refused.sentences == []
    assert refused.text == f"{REFUSAL} They mention the 2016 final [1], not 2021."
    assert refused.sources[0].path.endswith("final.md")
    answered = ask(index, "Who won the 2016 final?")
    assert not answered.refused and "Portugal" in answered.text
