"""Cards written by an LLM: reading its reply, finding its answers in the note, the grammar
the local model writes under, and (on the packaged 0.5B) what comes out of it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kenning.answer.llms import LLM, Prompt
from kenning.answer.sentences import split
from kenning.cards import make_cards
from kenning.cards.grammar import cards_grammar
from kenning.cards.make import supported
from kenning.cards.rules import Note
from kenning.cards.writer import LLMWriter, key_phrases, locate, pairs

VIM = """# Get The pid Of The Session

Your current Vim session is a process running on your machine. That means
that this session is tied to a particular process id, _pid_.

Want to know what the pid is? Run `:echo getpid()` in the session.

See `:h getpid()` for more details.
"""
GIT = """# Check If A File Has Changed

Run `git diff --quiet README.md` in a script to exit with 1 when the file changed.
The flag was added to Git in 2007 by Junio Hamano.
"""


def _note(text: str, path: str = "notes/vim.md") -> Note:
    return Note(path, text.splitlines()[0].lstrip("# "), text, text.index("\n\n") + 2)


def _locate(answer: str, text: str = VIM, question: str = "What?") -> tuple[str, str] | None:
    note = _note(text)
    spans = [s for s in split(text, min_words=2) if s.start >= note.body_start]
    found = locate(answer, question, note, spans)
    return (found.answer, found.span.text) if found else None


def test_pairs_reads_json_in_either_order_and_the_older_line_forms() -> None:
    reply = (
        '[{"answer": "git diff --quiet", "question": "Which flag?"}, '
        '{"question": "Say \\"hi\\"?", "answer": "${HOME}"}, {"question": "cut'
    )
    assert list(pairs(reply)) == [("Which flag?", "git diff --quiet"), ('Say "hi"?', "${HOME}")]
    lines = "Q: What is it? A: 611\n1. Q: Who?\n\nA: Grace Hopper\nQ: Why? | A: because\n"
    assert list(pairs(lines)) == [("What is it?", "611"), ("Who?", "Grace Hopper"),
                                  ("Why?", "because")]  # fmt: skip
    assert list(pairs("no cards here")) == []


def test_locate_finds_the_notes_own_words_for_the_answer() -> None:
    # the same words in order, whatever the markup around them: the note's text is the answer
    assert _locate("echo getpid()") == (":echo getpid()", "Run `:echo getpid()` in the session.")
    assert _locate("pid", question="What is a process id called?") == (
        "pid",
        "That means\nthat this session is tied to a particular process id, _pid_.",
    )
    # by content words (the citation check's stems), the shortest stretch that holds them
    assert _locate("running process") == (
        "process running",
        "Your current Vim session is a process running on your machine.",
    )
    assert _locate("sessions") == (
        "session",
        "Your current Vim session is a process running on your machine.",
    )
    # a line break inside the note's phrase is a space in the answer
    assert _locate("That means that") == (
        "That means that",
        "That means\nthat this session is tied to a particular process id, _pid_.",
    )
    # not in the note, or its words too far apart: nothing to cite
    assert _locate("Grace Hopper") is None
    assert _locate("current session machine") is None


def test_locate_prefers_the_sentence_the_question_is_about() -> None:
    text = "# T\n\nThe `pid` names a process here.\n\nAsk Vim for its own pid with getpid.\n"
    found = locate("pid", "How does Vim report its own?", _note(text), split(text, 2))
    assert found is not None and found.span.text.startswith("Ask Vim")


def test_the_grammar_holds_answers_to_the_key_phrases_written_as_json() -> None:
    grammar = cards_grammar(['say "hi"', "\\df", "git log"], most=5, least=2)
    assert 'answer ::= "say \\\\\\"hi\\\\\\"" | "\\\\\\\\df" | "git log"' in grammar
    assert '("," " "? card){1,4}' in grammar
    free = cards_grammar([], most=3, words=8)
    assert 'answer ::= word (" " word){0,7}' in free and "{0,2}" in free


def test_key_phrases_are_the_rules_answers_verified_once_each() -> None:
    phrases = key_phrases(_note(GIT, "notes/git.md"))
    assert "git diff --quiet README.md" in phrases and "2007" in phrases
    assert len(phrases) == len({p.lower() for p in phrases})
    assert all(supported(p, GIT) for p in phrases)


class JsonLLM(LLM):
    """Replies as a model asked for JSON does: a paraphrase that locate maps to the note's
    words, a card in them, a repeated question, an answer not in the note, a question that
    does not lead to its answer's sentence, and a leak."""

    id = "scripted-json"

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[Prompt] = []

    def stream(self, prompt: Prompt) -> Iterator[str]:
        self.prompts.append(prompt)
        cards = [
            {"question": "What do you run in the session to print the pid?",
             "answer": "echo getpid()"},
            {"question": "What is a particular process id of a session called?", "answer": "pid"},
            {"question": "What is a particular process id of a session called?",
             "answer": "process"},
            {"question": "Who wrote Vim?", "answer": "Bram Moolenaar"},
            {"question": "Which Vim command prints the session's process id?",
             "answer": "echo getpid()"},
            {"question": "What does `:h getpid()` show?", "answer": ":h getpid()"},
        ]  # fmt: skip
        yield json.dumps(cards)


def test_llm_cards_cite_the_notes_words_and_are_checked() -> None:
    llm = JsonLLM()
    writer = LLMWriter(llm)
    made = make_cards([_note(VIM)], writer, choices=False)
    user = llm.prompts[0].messages[1].content
    assert "Key phrases: " in user and ":echo getpid()" in user
    got = {(c.question, c.answer) for c in made.cards}
    assert got == {
        ("What do you run in the session to print the pid?", ":echo getpid()"),
        ("What is a particular process id of a session called?", "pid"),
    }
    assert writer.counts == {
        "read": 6, "repeated": 1, "not_found": 1, "unanswerable": 1, "cards": 3
    }  # fmt: skip
    assert made.proposed == 3 and made.unverified == 1  # the leak, dropped by make_cards
    for c in made.cards:
        assert VIM[c.start : c.end] == c.source and supported(c.answer, c.source)
    # without the round trip, the question that does not lead to its sentence is proposed
    # too (and merged: the same answer from the same sentence is the same card)
    loose = make_cards([_note(VIM)], LLMWriter(JsonLLM(), round_trip=False), choices=False)
    assert loose.proposed == 4 and loose.merged == 1


@pytest.mark.real_model
def test_the_local_model_writes_parseable_cards_from_the_key_phrases() -> None:
    from kenning.answer.local import LocalLLM

    llm = LocalLLM(model="qwen2.5-coder-0.5b")
    writer = LLMWriter(llm, per_note=1)
    note = _note(GIT, "notes/git.md")
    made = make_cards([note], writer, choices=False)
    assert writer.last is not None
    reply = json.loads(writer.last.text)  # the grammar: always a JSON list
    phrases = key_phrases(note)
    assert len(reply) == 1
    assert all(card["answer"] in phrases and card["question"].endswith("?") for card in reply)
    for c in made.cards:
        assert c.answer in phrases and supported(c.answer, c.source)
    writer.close()
