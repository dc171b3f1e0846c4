"""The TAT-QA metric on cases built by hand: each answer type, scales, signs, spans."""

from __future__ import annotations

import pytest

from router.span_metric import SpanScore, answer_string, normalize, read_number, score

CONTRACTS = ("fixed-price type", "cost-plus type", "time-and-material type")
MULTI = "multi-span"
PROFIT = ("our allowable incurred costs plus a profit",)

# (prediction, gold spans, gold scale, answer type, em, f1)
CASES = [
    # arithmetic: the scale is part of the number
    ("-12.6 million", ("-12.6",), "million", "arithmetic", 1.0, 1.0),
    ("(12.6) million", ("-12.6",), "million", "arithmetic", 1.0, 1.0),
    ("-12.6", ("-12.6",), "million", "arithmetic", 0.0, 0.0),  # scale missing
    ("-12.6 thousand", ("-12.6",), "million", "arithmetic", 0.0, 0.0),  # scale wrong
    ("-12,600 thousand", ("-12.6",), "million", "arithmetic", 1.0, 1.0),  # same quantity
    ("-22.22%", ("-22.22",), "percent", "arithmetic", 1.0, 1.0),
    ("-22.22 percent", ("-22.22",), "percent", "arithmetic", 1.0, 1.0),
    ("-22.2222%", ("-22.22",), "percent", "arithmetic", 1.0, 1.0),  # rounded to 2 places
    ("-22.2%", ("-22.22",), "percent", "arithmetic", 0.0, 0.0),
    ("22.22%", ("-22.22",), "percent", "arithmetic", 0.0, 0.0),  # sign
    ("-0.2222", ("-22.22",), "percent", "arithmetic", 1.0, 1.0),  # a lone fraction
    ("-22.22", ("-22.22",), "percent", "arithmetic", 0.0, 0.0),  # percent not said
    ("0.05", ("0.048",), "", "arithmetic", 1.0, 1.0),  # both round to 0.05
    ("1,226,114", ("1226114",), "", "arithmetic", 1.0, 1.0),  # thousands separators
    ("fiscal 2019", ("2019",), "", "arithmetic", 0.0, 0.0),  # F1 = EM
    ("-298 million", ("\u2212298",), "million", "span", 1.0, 1.0),  # U+2212 minus in gold
    # span: a number with its scale
    ("1,496.5 million", ("$1,496.5",), "million", "span", 1.0, 1.0),
    ("$1496.5 million", ("$1,496.5",), "million", "span", 1.0, 1.0),
    ("1496500000", ("$1,496.5",), "million", "span", 1.0, 1.0),
    ("1.4965 billion", ("$1,496.5",), "million", "span", 0.0, 0.0),  # 1.50 billion: rounded first
    ("$1.5m", ("1.5",), "million", "span", 1.0, 1.0),
    ("3 million", ("$3.0 million",), "million", "span", 1.0, 1.0),  # not scaled twice
    ("4%", ("4.00%",), "", "span", 1.0, 1.0),
    ("26.8 per cent", ("26.8%",), "", "span", 1.0, 1.0),
    ("26.8 percent", ("26.8",), "percent", "span", 1.0, 1.0),
    # span: years and text
    ("2019", ("2019",), "", "span", 1.0, 1.0),
    ("2019.", ("2019",), "", "span", 1.0, 1.0),
    ("2018", ("2019",), "", "span", 0.0, 0.0),
    ("The Fixed-Price Type.", ("fixed-price type",), "", "span", 1.0, 1.0),
    (
        "allowable incurred costs",
        ("our allowable incurred costs plus a profit",),
        "",
        "span",
        0.0,
        0.67,
    ),
    # multi-span: a bag, order free
    (
        "cost-plus type; time-and-material type; fixed-price type",
        CONTRACTS,
        "",
        "multi-span",
        1.0,
        1.0,
    ),
    (
        "fixed-price type\ncost-plus type\ntime-and-material type",
        CONTRACTS,
        "",
        "multi-span",
        1.0,
        1.0,
    ),
    (
        "fixed-price type, cost-plus type and time-and-material type",
        CONTRACTS,
        "",
        "multi-span",
        1.0,
        1.0,
    ),
    ("fixed-price type", CONTRACTS, "", MULTI, 0.0, 0.67),  # 2 of 4 distinct tokens
    ("fixed-price type; cost-plus type; lump-sum type", CONTRACTS, "", MULTI, 0.0, 0.75),
    ("5,678 thousand; 1,234 thousand", ("1,234", "5,678"), "thousand", MULTI, 1.0, 1.0),
    ("1,234; 5,678 thousand", ("1,234", "5,678"), "thousand", MULTI, 1.0, 1.0),
    ("1,234; 5,678", ("1,234", "5,678"), "thousand", MULTI, 0.0, 0.0),
    # count
    ("3", ("3",), "", "count", 1.0, 1.0),
    ("three", ("3",), "", "count", 0.0, 0.0),
]


@pytest.mark.parametrize(("prediction", "gold", "scale", "kind", "em", "f1"), CASES)
def test_score(prediction: str, gold: tuple[str, ...], scale: str, kind: str, em: float, f1: float):
    assert score(prediction, gold, scale, answer_type=kind) == SpanScore(em, f1)


def test_there_are_at_least_25_cases_over_every_answer_type() -> None:
    assert len(CASES) >= 25
    assert {case[3] for case in CASES} == {"arithmetic", "span", "multi-span", "count"}


@pytest.mark.parametrize("prediction", [None, "", "  \n ", "; ;"])
def test_no_answer_scores_nothing(prediction: str | None) -> None:
    assert score(prediction, ("2019",), "") == SpanScore(0.0, 0.0)


def test_no_gold_scores_nothing() -> None:
    assert score("2019", (), "") == SpanScore(0.0, 0.0)


def test_text_f1_is_partial_where_arithmetic_f1_is_not() -> None:
    assert score("fiscal 2019", ("2019",), "") == SpanScore(0.0, 0.67)
    assert score("fiscal 2019", ("2019",), "", answer_type="count") == SpanScore(0.0, 0.0)


def test_a_gold_span_holding_a_semicolon_still_matches_itself() -> None:
    gold = ("Tax fees; tax consultations",)
    assert score("Tax fees; tax consultations", gold, "").em == 1.0


@pytest.mark.parametrize(
    ("span", "value", "scale"),
    [
        ("$ 1,452.4", "1452.4", ""),
        ("(12.3)", "-12.3", ""),
        ("(12.3%)", "-12.3", "percent"),
        ("-5 million dollars", "-5", "million"),
        ("2 billion", "2", "billion"),
        ("12 months", None, ""),
        ("fixed-price type", None, ""),
        ("1,452 million (2019)", "1452", "million"),  # a later bracket is not a sign
    ],
)
def test_read_number(span: str, value: str | None, scale: str) -> None:
    number = read_number(span)
    if value is None:
        assert number is None
    else:
        assert number is not None
        assert (str(number.value), number.scale) == (value, scale)


def test_answer_string_sorts_spans_and_appends_the_scale_to_text() -> None:
    assert answer_string(["b thing", "a thing"], "") == answer_string(["a thing", "b thing"], "")
    assert answer_string(["growth"], "million") == "growth million"
    assert answer_string(["$1,496.5"], "million") == "1496500000"


def test_normalize_drops_articles_and_punctuation_but_not_numbers() -> None:
    assert normalize("The cost-plus type, a (12) loss") == "costplus type -12 loss"


def test_a_runaway_number_is_text_not_a_crash() -> None:
    digits = "9" * 60
    assert score(digits, (digits,), "") == SpanScore(1.0, 1.0)
    assert score(f"{digits}.5 million", ("12",), "million").em == 0.0
