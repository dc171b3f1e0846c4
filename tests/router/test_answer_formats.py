"""Answer formats as data: each picks the instruction, the extraction, agreement and grading."""

from __future__ import annotations

import pytest

from router.answer_formats import FORMATS, answer_format, check_format, gold
from router.answering import answer_messages
from router.anticipated import Anticipated
from router.errors import ConfigError
from router.ladder import LADDER, rung
from router.sleep import SleepBudget, vote
from router.sleep_parse import parse_pass


def test_no_format_is_the_number_format_and_its_instructions_are_the_ladders_own():
    number = answer_format(None)
    assert number is FORMATS["number"]
    for r in LADDER:
        assert number.instruction(r.effort) == r.instruction  # as measured before formats
    assert number.extra_tokens == 0


def test_an_unknown_format_names_the_known_ones():
    with pytest.raises(ConfigError, match="number, span, text"):
        answer_format("essay")
    assert check_format(None) is None
    assert check_format("span") == "span"


def test_each_format_has_its_own_answer_line():
    question = "What was revenue in 2019?"
    lines = {
        name: answer_messages("ctx", question, rung("steps"), fmt=fmt)[1]["content"]
        for name, fmt in FORMATS.items()
    }
    assert '"Answer: <number>"' in lines["number"]
    assert "\"Answer: \" followed by the answer alone" in lines["span"]
    assert "Answer: <number>" not in lines["span"]
    assert len(set(lines.values())) == 3


def test_number_extraction_agreement_and_grading():
    number = FORMATS["number"]
    assert number.extract("so 3 + 4 = 7.\nAnswer: $1,234.00", True) == "1234"
    assert number.extract("3 + 4 = 7, then", False) is None  # cut off: no guess
    assert number.agree("18", "18.0")
    assert number.grade("0.75", gold("3/4"))
    assert not number.grade(None, gold("3"))


def test_text_is_never_served_from_an_anticipated_answer():
    text = FORMATS["text"]
    assert not text.servable
    assert text.extract("  A long answer.  ", True) == "A long answer."
    assert text.grade("a LONG answer", gold("A long answer."))


def test_the_format_picks_the_sleep_prompt_unless_one_is_given():
    assert SleepBudget().prompt_for(FORMATS["number"]) == "solve"
    assert SleepBudget().prompt_for(FORMATS["span"]) == "document"
    assert SleepBudget(prompt="notes").prompt_for(FORMATS["span"]) == "notes"


def test_a_pass_reads_answers_as_the_format_does():
    raw = "NOTES:\n- Revenue 2019: 1,496.5 million\nQUESTIONS:\nQ: What is x?\nA: 7 apples\n"
    number = parse_pass(raw, "solve")
    assert [a.answer for a in number.anticipated] == ["7"]
    text = parse_pass(raw, "notes", FORMATS["text"])
    assert [a.answer for a in text.anticipated] == ["7 apples"]


def test_voting_counts_answers_by_the_formats_key():
    items = [Anticipated("q?", "7 apples"), Anticipated("q?", "7 Apples"), Anticipated("q?", "8")]
    (merged,) = vote(items, FORMATS["text"].vote_key)
    assert merged.answer == "7 apples" and merged.agreement == pytest.approx(2 / 3)


def test_span_answers_are_read_agreed_and_graded_with_their_scale():
    span = FORMATS["span"]
    stated = span.extract("Other fell by 12.6.\nAnswer: -12.6 million", True)
    assert stated is not None
    assert span.grade(stated, gold("-12.6", ["-12.6"], "million"))
    assert not span.grade(span.extract("Answer: -12.6", True), gold("-12.6", ["-12.6"], "million"))
    assert span.grade(span.extract("Answer: -22.22%", True), gold("-22.22", ["-22.22"], "percent"))
    assert span.agree(span.extract("Answer: 1,500 thousand", True) or "", "1.5 million")
    multi = gold("a; b", ["fixed-price type", "cost-plus type"])
    assert span.grade(span.extract("Answer: cost-plus type; fixed-price type", True), multi)
    assert span.vote_key("Fixed-price type") == span.vote_key("fixed-price type")


def test_a_span_context_learns_the_facts_of_its_table():
    from router.sleep import learned_context

    context = (
        "| | 2019 | 2018 |\n| --- | --- | --- |\n| Other | 44.1 | 56.7 |\n"
        "| Total sales | 1,496.5 | 1,202.9 |\n\nSales by contract type (in millions)."
    )
    learned = learned_context([], FORMATS["span"], context)
    answers = {a.question: a.answer for a in learned.anticipated}
    change = "What is the change in Other from 2018 to 2019?"
    assert FORMATS["span"].grade(answers[change], gold("-12.6", ["-12.6"], "million"))
    assert "change in Other from 2018 to 2019: -12.6 million" in learned.text
    assert learned_context([], FORMATS["number"], context).anticipated == ()
