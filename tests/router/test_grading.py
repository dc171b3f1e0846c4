"""Answer extraction and grading on outputs shaped like what small models write."""

from __future__ import annotations

import pytest

from router.grading import (
    answers_match,
    canonical_number,
    extract_answer,
    gsm8k_gold,
    normalize_number,
)

EXTRACTION_CASES: list[tuple[str, str | None]] = [
    # \boxed{} wins over everything else, the last box over earlier ones.
    ("Janet sells 9 eggs and makes 9 * 2 = 18 dollars.\n\n\\boxed{18}", "18"),
    ("The final answer is $\\boxed{5}$. I hope it is correct.", "5"),
    ("\\boxed{18} I hope 5 is right", "18"),
    ("First \\boxed{3}, no wait, \\boxed{4}.", "4"),
    ("So the total is \\boxed{\\$1,080}.", "1080"),
    ("\\boxed{18 \\text{ dollars}}", "18"),
    ("\\boxed{70{,}000}", "70000"),
    ("\\boxed{x = 6}", "6"),
    ("\\boxed{3/4}", "0.75"),
    ("She ate $\\boxed{\\dfrac{1}{2}}$ of it", "0.5"),
    ("\\boxed{-3}", "-3"),
    # Answer lines: the last one, its first sentence, its final "= X".
    ("Step 1: 16 - 3 - 4 = 9\nStep 2: 9 * 2 = 18\nAnswer: 18", "18"),
    ("**Final Answer:** $1,234.00", "1234"),
    ("**Answer:** 42 apples", "42"),
    ("The answer is 1,234.", "1234"),
    ("The answer is 7. Check: 7 * 2 = 14 eggs, correct.", "7"),
    ("Answer: 9 * 2 = 18 dollars", "18"),
    ("Answer: 18 (because x=3)", "18"),
    ("Answer: 3/4", "0.75"),
    ("The answer is $\\frac{3}{4}$", "0.75"),
    ("Answer:\n42", "42"),
    ("The final answer is:\n\n**$1,080**", "1080"),
    ("Therefore, the answer is 18.0", "18"),
    ("Final answer: \\$\\text{18}", "18"),
    ("The answer is 25%.", "25"),
    ("The answer is .5", "0.5"),
    ("The answer is -$5", "-5"),
    ("Answer is $2,125.50", "2125.5"),
    ("Answer: 1,000,000", "1000000"),
    ("I computed 20 first.\nThe answer is 12, and 5 was a typo.", "12"),
    # GSM8K gold marker.
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
    ("#### 1,600", "1600"),
    # Fallback: the last number; "answered" is not an answer line.
    ("He answered 3 questions and scored 90", "90"),
    ("She sells 16-3-4 = 9 eggs", "9"),
    ("The temperature dropped to -12 degrees.", "-12"),
    ("The change is \u22127 degrees", "-7"),
    ("It costs 12 dollars", "12"),
    ("She ate 3/4 of the pie", "4"),  # fractions only count inside a box or answer line
    ("So Josh made a profit of **$70,000**.", "70000"),
    ("x = 5.50", "5.5"),
    ("$0.70", "0.7"),
    ("She has 1,234.50 dollars", "1234.5"),
    ("items: 1,2,3", "3"),
    ("No numbers here", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), EXTRACTION_CASES)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_reads_a_real_chain_of_thought() -> None:
    text = (
        "Let's think step by step.\n"
        "1. Janet's ducks lay 16 eggs per day.\n"
        "2. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs remain.\n"
        "3. She sells each for $2, so 9 x $2 = $18.\n\n"
        "**Final Answer:** She makes **$18** every day.\n"
        "Note: that is 126 per week."
    )
    assert extract_answer(text) == "18"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("18.00", 18.0),
        ("1,234", 1234.0),
        ("$5", 5.0),
        ("25%", 25.0),
        ("5 apples", 5.0),
        ("3/4", 0.75),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("\\frac{1}{4}", 0.25),
        ("**42**", 42.0),
        ("abc", None),
        ("", None),
        ("1/0", None),
    ],
)
def test_normalize_number(text: str, value: float | None) -> None:
    assert normalize_number(text) == value


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("70,000.00", "70000"), ("2,125", "2125"), ("-0.50", "-0.5"), ("1/3", "0.333333333333")],
)
def test_canonical_number(text: str, canonical: str) -> None:
    assert canonical_number(text) == canonical


@pytest.mark.parametrize(
    ("predicted", "gold", "match"),
    [
        ("18.00", "18", True),
        ("1,234", "1234", True),
        ("$18", "18", True),
        ("0.5", "1/2", True),
        ("0.3333333", "1/3", True),
        ("17", "18", False),
        ("18.5", "18", False),
        ("-18", "18", False),
        (None, "18", False),
        ("eighteen", "18", False),
        ("Paris", "paris", True),
    ],
)
def test_answers_match(predicted: str | None, gold: str, match: bool) -> None:
    assert answers_match(predicted, gold) is match


def test_answers_match_honours_tolerance() -> None:
    assert answers_match("100.4", "100", rel_tol=0.01)
    assert not answers_match("100.4", "100")


def test_gsm8k_gold() -> None:
    assert gsm8k_gold("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18") == "18"
    assert gsm8k_gold("...\n#### 1,450,000") == "1,450,000"
    with pytest.raises(ValueError):
        gsm8k_gold("no marker here")


def test_truncated_text_has_no_last_number_guess() -> None:
    cut = "First, 16 - 3 = 13 eggs. Then 13 - 4 = 9 eggs. So she earns 9 *"
    assert extract_answer(cut) == "9"
    assert extract_answer(cut, fallback=False) is None
    assert extract_answer("Work... Answer: 18", fallback=False) == "18"
