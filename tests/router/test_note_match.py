"""Which learned lines a query's prompt carries (router.note_match, answering.notes_for)."""

from __future__ import annotations

from router.answer_formats import answer_format
from router.answering import answer_messages, notes_for
from router.ladder import rung
from router.note_match import LONGEST, TITLE, matched_notes, note_lines, ranked
from router.sleep import LearnedContext, learned_context

REPORT = (
    "| | 2019 | 2018 | 2017 |\n| --- | --- | --- | --- |\n"
    "| Revenue | 120.0 | 100.0 | 80.0 |\n| Other | 44.1 | 56.7 | 50.0 |\n"
    "| Total | 164.1 | 156.7 | 130.0 |\n\n(in millions)\n\nRevenue grew on new contracts."
)
LEARNED = """Notes:
- Revenue grew because of new contracts.
- Q: Why did revenue grow? A: new contracts

Computed from the table:
- change in Other from 2018 to 2019: -12.6 million
- change in Revenue from 2018 to 2019: 20 million
- change in Other from 2017 to 2018: 6.7 million
- average Other for 2018 and 2019: 50.4 million

The notes were worked out in advance."""


def test_the_line_naming_the_row_and_years_asked_comes_first() -> None:
    best = ranked("What was the change in Other from 2018 to 2019?", note_lines(LEARNED))
    assert best[0][1] == "change in Other from 2018 to 2019: -12.6 million"
    # "change", "Other" and "2019" are each in 3 of the 6 lines: equal scores keep the
    # learned context's order, whatever the hash seed.
    assert [line for _, line in best[1:3]] == [
        "change in Revenue from 2018 to 2019: 20 million",
        "change in Other from 2017 to 2018: 6.7 million",
    ]


def test_a_rare_word_outweighs_a_common_one() -> None:
    """"Revenue" is in two lines, "change" in three: the revenue line wins."""
    best = ranked("How much did revenue change?", note_lines(LEARNED))
    assert best[0][1].startswith("change in Revenue")


def test_only_stating_lines_are_candidates_and_runaways_are_dropped() -> None:
    runaway = "- " + "metres " * (LONGEST // 7 + 1)
    lines = note_lines(f"{LEARNED}\n{runaway}")
    assert "Notes:" not in lines and not any(line.startswith("metres") for line in lines)
    assert "Q: Why did revenue grow? A: new contracts" in lines
    assert len(lines) == 6


def test_matched_notes_are_few_and_titled_or_nothing() -> None:
    notes = matched_notes("What is the average Other for 2018 and 2019?", LEARNED, lines=2)
    assert notes.splitlines()[0] == TITLE
    assert notes.splitlines()[1] == "- average Other for 2018 and 2019: 50.4 million"
    assert len(notes.splitlines()) == 3
    assert matched_notes("Who audits the company?", LEARNED) == ""


def test_the_span_format_carries_matched_lines_and_numbers_carry_all() -> None:
    question = "What was the change in Other from 2018 to 2019?"
    span = notes_for(LEARNED, question, answer_format("span"))
    assert "-12.6 million" in span and "new contracts" not in span
    assert notes_for(LEARNED, question, answer_format("number")) == LEARNED
    assert notes_for("", question, answer_format("span")) == ""


def test_a_span_prompt_grows_by_its_matched_lines_not_the_whole_table() -> None:
    """Every fact of the table is kept in the learned context; a prompt reads four."""
    learned = learned_context([], answer_format("span"), REPORT)
    assert len(note_lines(learned.text)) > 10
    question = "What was the change in Other from 2018 to 2019?"
    raw = answer_messages(REPORT, question, rung(0), None, answer_format("span"))
    enriched = answer_messages(REPORT, question, rung(0), learned, answer_format("span"))
    added = enriched[1]["content"].replace(raw[1]["content"].split("Question:")[0], "")
    assert "change in Other from 2018 to 2019: -12.6 million" in added
    assert added.count("\n- ") == 4
    assert enriched[1]["content"].startswith(raw[1]["content"].split("Question:")[0])


def test_a_query_nothing_matches_is_asked_on_the_text_alone() -> None:
    learned = LearnedContext(text=LEARNED, anticipated=(), passes=1)
    question = "Who audits the company?"
    fmt = answer_format("span")
    assert answer_messages(REPORT, question, rung(0), learned, fmt) == answer_messages(
        REPORT, question, rung(0), None, fmt
    )
