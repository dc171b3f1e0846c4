"""Reading markdown tables: financial number cells, column years and groups, the scale."""

from __future__ import annotations

from fractions import Fraction

import pytest

from router.table_parse import column_year, find_scale, numeric_rows, parse_cell, parse_tables


@pytest.mark.parametrize(
    ("cell", "value", "text", "percent"),
    [
        ("$  1,452.4", Fraction("1452.4"), "1,452.4", False),
        ("(12.3)", Fraction("-12.3"), "-12.3", False),
        ("$(1,234)", Fraction(-1234), "-1,234", False),
        ("(123 )", Fraction(-123), "-123", False),
        ("-", Fraction(0), "0", False),
        ("\u2014", Fraction(0), "0", False),
        ("4.00%", Fraction(4), "4.00", True),
        ("(9.4%)", Fraction("-9.4"), "-9.4", True),
        ("\u2212298", Fraction(-298), "-298", False),
        ("\u20ac 12", Fraction(12), "12", False),
        (".5", Fraction(1, 2), "0.5", False),
    ],
)
def test_number_cells(cell: str, value: Fraction, text: str, percent: bool) -> None:
    parsed = parse_cell(cell)
    assert parsed is not None
    assert (parsed.value, parsed.text, parsed.percent) == (value, text, percent)


@pytest.mark.parametrize("cell", ["", "n/a", "12 (1)", "1,23", "2.5x", "Total", "(12"])
def test_text_cells(cell: str) -> None:
    assert parse_cell(cell) is None


@pytest.mark.parametrize(
    ("header", "year"),
    [
        ("2019", 2019),
        ("Years Ended September 30, 2018", 2018),
        ("2 0 1 8", 2018),
        ("FY19", 2019),
        ("2019 vs 2018", None),  # a comparison, not a year's column
        ("% Change 2018 to 2019", None),
        ("Level 1", None),
    ],
)
def test_column_year(header: str, year: int | None) -> None:
    assert column_year(header) == year


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("The table below presents sales (in millions):", "million"),
        ("(Dollars in thousands, except per share data)", "thousand"),
        ("All figures in USD \u2018000", "thousand"),
        ("2019 $'000", "thousand"),
        ("Revenue \u20acm", "million"),
        ("amounts in US$ billions", "billion"),
        ("We sold 5 million units.", ""),  # a number in prose is not the table's scale
        ("Nothing here.", ""),
    ],
)
def test_scale_in_prose(text: str, scale: str) -> None:
    assert find_scale(text) == scale


@pytest.mark.parametrize(
    ("header", "scale"),
    [
        ("2019 RMB\u2019Million", "million"),
        ("$ million", "million"),
        ("Number (1,000)", "thousand"),
    ],
)
def test_scale_in_a_header(header: str, scale: str) -> None:
    assert find_scale(header, header=True) == scale


def test_tables_rows_and_escaped_pipes() -> None:
    text = (
        "Intro | not a table\n\n"
        "| Item \\| kind | 2019 | 2018 |\n| :-- | --: | --- |\n"
        "| Cash | 130 | 91 |\n| Assets: | | |\n| Only text | a | b |\n| Nil | - | - |\n"
        "\nAfter.\n\n| a | b |\n|---|---|\n| c | d |"
    )
    first, second = parse_tables(text)
    assert first.header == ("Item | kind", "2019", "2018")
    assert [c.year for c in first.columns] == [2019, 2018]
    assert [row.label for row in numeric_rows(first)] == ["Cash"]  # text and nil rows are not
    assert second.header == ("a", "b")
