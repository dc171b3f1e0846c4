"""Span answers: finding the stated answer, agreement between two, the stored spelling."""

from __future__ import annotations

import pytest

from router.span_metric import score
from router.spans import canonical_span, extract_span, span_key, spans_agree


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sales rose.\nAnswer: $1,496.5 million", "$1,496.5 million"),
        ("**Answer:** 26.47%.", "26.47%"),
        ("**Answer**: `2019`", "2019"),
        ('Answer: "fixed-price type"', "fixed-price type"),
        ("Final answer: (12.6) million", "(12.6) million"),
        ("The answer is: 3", "3"),
        ("Answer: 5\nChecking again.\nAnswer: 7", "7"),  # the last one
        ("Answer: \\boxed{2019}", "2019"),
        (
            "Answer:\n- fixed-price type\n- cost-plus type\n\nDone.",
            "fixed-price type; cost-plus type",
        ),
        ("Answer:\n\n1. 2019\n2. 2018", "2019; 2018"),
        ("Answer:\n**2019**", "2019"),
        ("There are 6 highlighted periods in the table. Answer: 6", "6"),
        ("Step 5: The answer is: 77,131 million", "77,131 million"),
    ],
)
def test_extract_span_reads_the_last_answer_line(text: str, expected: str) -> None:
    assert extract_span(text) == expected
    assert extract_span(text, fallback=False) == expected


def test_without_an_answer_line_the_fallback_is_the_last_line() -> None:
    text = "Total sales were highest in\n\n**2019.**\n"
    assert extract_span(text) == "2019"
    assert extract_span(text, fallback=False) is None


def test_an_amount_stated_as_the_last_sentence_is_the_answer() -> None:
    assert extract_span("Adding them:\nThe sum of leases from 2020 to 2024 is 170 million.") == (
        "170 million"
    )
    assert extract_span("The change was -12.6%") == "-12.6%"
    # words are kept whole: only an amount is cut out of a sentence
    text = "The table represents the maturities of lease liabilities."
    assert extract_span(text) == text[:-1]
    assert extract_span("The sum is 170 million.", fallback=False) is None


@pytest.mark.parametrize("text", ["", "  \n\n", "Answer:", "Answer: **  **"])
def test_nothing_stated_is_none(text: str) -> None:
    assert extract_span(text) is None


def test_an_answer_word_inside_a_sentence_is_not_an_answer_line() -> None:
    assert extract_span("The answer depends on 2018.\nSo 2019", fallback=False) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1,496.5 million", "$1496.5 million"),
        ("1,496.5 million", "1496.50 million"),
        ("26.47%", "26.47 percent"),
        ("(12.6) million", "-12.6 million"),
        ("fixed-price type; cost-plus type", "Cost-plus type; the fixed-price type."),
        ("2019", "2019."),
        ("1,500 thousand", "1.5 million"),  # one quantity, as the metric sees it
    ],
)
def test_agreeing_answers(a: str, b: str) -> None:
    assert spans_agree(a, b)
    assert spans_agree(b, a)
    assert span_key(a) == span_key(b)  # one vote


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("12.6 million", "12.6"),  # scale said once, not the other time
        ("12.6 million", "12.6 thousand"),
        ("26.47%", "26.47"),
        ("2019", "2018"),
        ("fixed-price type", "fixed-price type; cost-plus type"),  # a bag, not a subset
        ("-12.6", "12.6"),
        ("", ""),  # nothing agrees with nothing
    ],
)
def test_disagreeing_answers(a: str, b: str) -> None:
    assert not spans_agree(a, b)
    assert span_key(a) != span_key(b) or not span_key(a)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,496.5 million", "1496.5 million"),
        ("(12.6)", "-12.6"),
        ("26.470%", "26.47%"),
        ("26.47 percent", "26.47%"),
        ("1.5m", "1.5 million"),
        ("2019; 2017; 2018", "2017; 2018; 2019"),
        ("  cost-plus   type; fixed-price type. ", "cost-plus type; fixed-price type"),
        ("1,234; 5,678 thousand", "1234 thousand; 5678 thousand"),
    ],
)
def test_canonical_span_is_one_spelling(text: str, expected: str) -> None:
    assert canonical_span(text) == expected
    assert canonical_span(expected) == expected  # idempotent
    assert spans_agree(canonical_span(text), text)


@pytest.mark.parametrize(
    ("stated", "gold", "scale"),
    [
        ("$(1,421) million", ("-1,421",), "million"),
        ("fixed-price type, cost-plus type", ("cost-plus type", "fixed-price type"), ""),
        ("-22.22%", ("-22.22",), "percent"),
    ],
)
def test_the_canonical_spelling_scores_as_the_stated_answer(
    stated: str, gold: tuple[str, ...], scale: str
) -> None:
    assert score(canonical_span(stated), gold, scale) == score(stated, gold, scale)
