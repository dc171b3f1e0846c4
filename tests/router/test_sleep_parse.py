"""Reading a sleep pass's text (`router.sleep_parse`): free passes in the notes-and-questions
layout, repaired where possible, and re-asked passes read by their numbers."""

from __future__ import annotations

from router.answer_formats import answer_format
from router.anticipated import Anticipated
from router.sleep_parse import parse_pass, parse_reasked

NUMBER = answer_format("number")
SPAN = answer_format("span")
ASKED = ("How many eggs are left each day?", "How much does Janet earn each day?")

MESSY = """Sure! Here are my notes.
**Notes:**
* The ducks lay 16 eggs per day.
1. How many eggs are left for sale?
**A:** 9
Question 2: What does she earn per week?
Answer: The answer is \\boxed{126}.
Q3: Why do ducks lay eggs?
A: because they are ducks
Q: How many muffins?
"""


def test_parse_clean_output() -> None:
    raw = (
        "NOTES:\n- Eggs laid per day: 16\nQUESTIONS:\nQ: How many eggs are sold?\n"
        "Work: 16 - 7 = 9\nA: 9 eggs\nQ: What does she earn?\nA: $18"
    )
    parsed = parse_pass(raw)
    assert parsed.notes == ("Eggs laid per day: 16",)
    assert [(a.question, a.answer) for a in parsed.anticipated] == [
        ("How many eggs are sold?", "9"),
        ("What does she earn?", "18"),
    ]
    assert parsed.rejected == 0


def test_parse_repairs_markdown_and_numbering_and_rejects_non_numeric() -> None:
    parsed = parse_pass(MESSY)
    assert [(a.question, a.answer) for a in parsed.anticipated] == [
        ("How many eggs are left for sale?", "9"),
        ("What does she earn per week?", "126"),
    ]
    assert "The ducks lay 16 eggs per day." in parsed.notes
    assert parsed.rejected == 2  # no numeric answer; question without an answer


def test_parse_garbage_never_raises() -> None:
    for raw in ["", "\x00\x01", "A: 5", "Q:", "NOTES:\nQUESTIONS:\n", "Q: x\nQ: y\nA: 3"]:
        parsed = parse_pass(raw)
        assert all(a.answer for a in parsed.anticipated)
    assert parse_pass("").empty


def test_answers_are_read_by_number_under_the_questions_own_wording() -> None:
    raw = (
        "Q1: How many eggs remain per day?\nWork: 16 - 3 - 4 = 9\nA1: 9 eggs\n"
        "Q2: What does Janet make?\nWork: 9 * 2\nA2: $18"
    )
    parsed = parse_reasked(raw, ASKED, NUMBER)
    assert parsed.anticipated == (Anticipated(ASKED[0], "9"), Anticipated(ASKED[1], "18"))
    assert parsed.notes == () and parsed.rejected == 0


def test_an_unnumbered_answer_answers_the_question_last_named() -> None:
    parsed = parse_reasked("Q2: earn?\nWork: 9 * 2\nA: 18\nQ1: left?\nAnswer: 9", ASKED, NUMBER)
    assert {a.question: a.answer for a in parsed.anticipated} == {ASKED[0]: "9", ASKED[1]: "18"}


def test_a_question_without_a_readable_answer_counts_as_rejected() -> None:
    parsed = parse_reasked("Q1: left?\nA1: not stated\nQ2: earn?\nA2: 18", ASKED, NUMBER)
    assert parsed.anticipated == (Anticipated(ASKED[1], "18"),) and parsed.rejected == 1
    assert parse_reasked("", ASKED, NUMBER).rejected == 2


def test_answers_to_numbers_nobody_asked_and_second_answers_are_ignored() -> None:
    parsed = parse_reasked("A1: 9\nA1: 10\nA3: 7\nA0: 5", ASKED, NUMBER)
    assert parsed.anticipated == (Anticipated(ASKED[0], "9"),) and parsed.rejected == 1


def test_a_span_context_reads_its_answers_as_spans() -> None:
    asked = ("Who audits the company?",)
    parsed = parse_reasked("Q1: Who audits the company?\nA1: Ernst & Young LLP", asked, SPAN)
    assert parsed.anticipated == (Anticipated(asked[0], SPAN.extract("Ernst & Young LLP", True)),)
