"""The sleep-time program runner: exact arithmetic, nothing executed, nothing crashes it."""

from __future__ import annotations

from fractions import Fraction

import pytest

from router.program import NotArithmetic, evaluate, run_program

JANET = """```python
eggs_laid = 16  # How many eggs do the ducks lay per day?
eggs_sold = eggs_laid - 3 - 4  # How many eggs does Janet sell each day?
money = eggs_sold * 2  # How much does she make at the market every day?
share = money / 3
```"""


def test_values_follow_earlier_names_and_comments_become_questions() -> None:
    program = run_program(JANET)
    assert [(s.name, s.answer) for s in program.steps] == [
        ("eggs_laid", "16"),
        ("eggs_sold", "9"),
        ("money", "18"),
        ("share", "6"),
    ]
    assert program.steps[1].question == "How many eggs does Janet sell each day?"
    assert program.steps[3].question == "share"  # no comment: the name in words
    assert program.skipped == 0


def test_arithmetic_is_exact() -> None:
    assert evaluate("0.1 + 0.2", {}) == Fraction(3, 10)
    assert evaluate("7 / 2", {}) == Fraction(7, 2)
    assert run_program("x = 10 / 4").steps[0].answer == "2.5"
    assert run_program("x = 1 / 3").steps[0].answer == "0.333333"
    assert evaluate("round(2.346, 2) + abs(-1) + max(1, 4) + sum(1, 2) + 2 ** 3", {}) == (
        Fraction("2.35") + 1 + 4 + 3 + 8
    )


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd').read()",
        "(1).__class__",
        "[1, 2]",
        "'text'",
        "2 ** 1000",
        "10 ** 20",
        "lambda: 1",
        "undefined + 1",
        "x if 1 else 2",
        "1e400",
    ],
)
def test_anything_but_arithmetic_is_refused(expression: str) -> None:
    with pytest.raises((NotArithmetic, SyntaxError, ValueError)):
        evaluate(expression, {})


def test_bad_lines_are_skipped_and_counted_not_fatal() -> None:
    text = "a = 5\nb = a / 0\nc = os.system('x')\nd = a * 2  # twice?\nprint(d)\nif a == 5:\n"
    program = run_program(text)
    assert [(s.name, s.answer) for s in program.steps] == [("a", "5"), ("d", "10")]
    assert program.skipped == 2


def test_comparisons_and_prose_are_not_assignments() -> None:
    assert run_program("x == 5\nThe answer = 5 apples\ny = 3 # ok").steps[0].name == "y"
