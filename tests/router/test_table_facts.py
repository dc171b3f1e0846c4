"""Table facts: exact derived quantities from markdown tables, phrased and rounded as TAT-QA's."""

from __future__ import annotations

from fractions import Fraction

import pytest

from router.program import run_program
from router.table_facts import TableFact, answer_text, table_facts
from training.datasets.tatqa import load_tatqa

SALES = """Net sales by segment (in thousands):

|  | 2019 | 2018 | 2017 |
| --- | --- | --- | --- |
| Products | $ 1,200 | $ 1,000 | 800 |
| Services | (50) | 25.5 | - |
| Total | 1,150 | 1,025.5 | 800 |
| Gross margin | 40.0% | 35.5% | 30% |

Sales were strong in 2019."""


def by_question(context: str) -> dict[str, TableFact]:
    return {f.question: f for f in table_facts(context)}


@pytest.mark.parametrize(
    ("question", "answer", "scale", "program"),
    [
        ("What is the change in Products from 2018 to 2019?", "200", "thousand", "1,200 - 1,000"),
        ("What is the change in Products from 2017 to 2019?", "400", "thousand", "1,200 - 800"),
        ("What is the change in Services from 2018 to 2019?", "-75.5", "thousand", "-50 - 25.5"),
        ("What is the change in Services from 2017 to 2018?", "25.5", "thousand", "25.5 - 0"),
        (
            "What is the percentage change in Products from 2018 to 2019?",
            "20", "percent", "(1,200 - 1,000) / 1,000 * 100",
        ),
        (
            "What is the percentage change in Services from 2018 to 2019?",
            "-296.08", "percent", "(-50 - 25.5) / 25.5 * 100",
        ),
        (
            "What is the average Services for 2018 and 2019?",
            "-12.25", "thousand", "(-50 + 25.5) / 2",
        ),
        (
            "What is the average Products from 2017 to 2019?",
            "1000", "thousand", "(1,200 + 1,000 + 800) / 3",
        ),
        (
            "What is the average Gross margin from 2017 to 2019?",
            "35.17", "percent", "(40.0 + 35.5 + 30) / 3",
        ),
        ("What is the change in Gross margin from 2018 to 2019?", "4.5", "percent", "40.0 - 35.5"),
        (
            "What is Products as a percentage of Total in 2019?",
            "104.35", "percent", "1,200 / 1,150 * 100",
        ),
        (
            "What is Services as a percentage of Total in 2018?",
            "2.49", "percent", "25.5 / 1,025.5 * 100",
        ),
        ("What is the total Products in 2018 and 2019?", "2200", "thousand", "1,200 + 1,000"),
        ("What is the sum of Total in 2018 and 2019?", "2175.5", "thousand", "1,150 + 1,025.5"),
    ],
)  # fmt: skip
def test_derived_quantities_are_exact_and_rounded_as_tatqa(
    question: str, answer: str, scale: str, program: str
) -> None:
    assert by_question(SALES)[question] == TableFact(question, answer, scale, program)


def test_what_cannot_be_computed_is_not_stated() -> None:
    facts = by_question(SALES)
    assert "What is the percentage change in Services from 2017 to 2018?" not in facts  # / 0
    assert not any("total Gross margin" in q for q in facts)  # rates do not add up
    assert not any("Gross margin as a percentage" in q for q in facts)


def test_the_latest_change_comes_first_and_limit_keeps_the_head() -> None:
    facts = table_facts(SALES)
    assert facts[0].question == "What is the change in Products from 2018 to 2019?"
    assert {f.question for f in facts[:4]} == {
        f"What is the change in {row} from 2018 to 2019?"
        for row in ("Products", "Services", "Total", "Gross margin")
    }
    assert table_facts(SALES, limit=3) == facts[:3]
    assert len(facts) == len({f.question for f in facts})


def test_columns_without_years_go_left_to_right() -> None:
    text = "| Price | First quarter | Second quarter |\n|---|---|---|\n| High | 14.96 | 11.44 |"
    facts = by_question(text)
    fact = facts["What is the change in High from First quarter to Second quarter?"]
    assert (fact.answer, fact.scale, fact.program) == ("-3.52", "", "11.44 - 14.96")


def test_column_groups_are_paired_within_themselves() -> None:
    text = (
        "|  | Domestic September 30, 2019 | 2018 | International September 30, 2019 | 2018 |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| Discount rate | 4.00% | 3.75% | 1.90% | 2.80% |\n"
    )
    facts = by_question(text)
    domestic = facts["What is the change in Discount rate (domestic) from 2018 to 2019?"]
    international = facts["What is the change in Discount rate (international) from 2018 to 2019?"]
    assert (domestic.answer, domestic.scale) == ("0.25", "percent")
    assert international.program == "1.90 - 2.80"
    assert not any("3.75" in f.program and "1.90" in f.program for f in facts.values())


def test_a_repeated_row_label_takes_its_section() -> None:
    text = (
        "| Year Ended December 31, | 2019 | 2018 |\n| --- | --- | --- |\n"
        "| Current: |  |  |\n| Federal | $5 | $4 |\n"
        "| Deferred: |  |  |\n| Federal | 4,206 | 4,860 |\n\n(Dollars in thousands)"
    )
    fact = by_question(text)["What is the change in Federal (Deferred) from 2018 to 2019?"]
    assert (fact.answer, fact.scale) == ("-654", "thousand")


def test_every_table_in_the_text_counts_and_prose_does_not() -> None:
    text = (
        f"A | B is not a table.\n\n{SALES}\n\n| x | 2019 | 2018 |\n|---|---|---|\n| Cost | 3 | 1 |"
    )
    questions = by_question(text)
    assert "What is the change in Cost from 2018 to 2019?" in questions
    assert "What is the change in Products from 2018 to 2019?" in questions
    assert table_facts("no table here") == []
    assert table_facts("| a | b |\n|---|---|\n| text | more |") == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(1, 3), "0.33"),
        (Fraction(2, 3), "0.67"),
        (Fraction(-5, 2), "-2.5"),
        (Fraction(1, 200), "0.01"),  # half up
        (Fraction(-1, 1000), "0"),
        (Fraction(42), "42"),
        (Fraction(-7, 200), "-0.04"),  # half away from zero
        (Fraction(10**40 + 1, 3), str(10**40 // 3) + ".67"),  # no float, no Decimal limit
    ],
)
def test_answer_text(value: Fraction, text: str) -> None:
    assert answer_text(value) == text


# Real TAT-QA dev contexts (CC BY 4.0, Zhu et al. 2021), as the loader renders them.
REAL = {p.id: p for p in load_tatqa()}


@pytest.mark.parametrize(
    ("problem", "question", "answer", "scale"),
    [
        (
            "tatqa-dev-3ffd9053",
            "What is the change in Other from 2018 to 2019?", "-12.6", "million",
        ),
        (
            "tatqa-dev-3ffd9053",
            "What is the percentage change in Other from 2018 to 2019?", "-22.22", "percent",
        ),
        (
            "tatqa-dev-d8d662b8",
            "What is the change in Federal (Deferred income tax expense (benefit))"
            " from 2018 to 2019?",
            "-654", "thousand",
        ),
        (
            "tatqa-dev-52164b70",
            "What is the change in Discount rate (international) from 2018 to 2019?",
            "-0.9", "percent",
        ),
    ],
)  # fmt: skip
def test_real_contexts_state_their_gold(problem: str, question: str, answer: str, scale: str):
    fact = by_question(REAL[problem].context)[question]
    assert (fact.answer, fact.scale) == (answer, scale)
    golds = {(q.answer, q.scale) for q in REAL[problem].queries}
    assert (answer, scale) in golds or problem == "tatqa-dev-52164b70"


def test_an_unlabelled_row_of_numbers_is_the_total() -> None:
    text = (
        "|  | 2019 | 2018 |\n| --- | --- | --- |\n"
        "| Payroll | $1,659 | $1,433 |\n| Other | 346 | 411 |\n|  | $2,005 | $1,844 |"
    )
    facts = by_question(text)
    assert facts["What is the change in Total from 2018 to 2019?"].answer == "161"
    assert facts["What is Other as a percentage of Total in 2018?"].program == "411 / 1,844 * 100"


def test_a_body_row_of_years_relabels_the_columns_below_it() -> None:
    text = (
        "| Currency | Weight (%) | FY 2019 | FY 2018 | % Change YoY |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| USD | 53.6 | 70.07 | 64.49 | 8.7 |\n"
        "| Breakup of revenue growth | FY 2019 (%) | FY 2018 (%) |  |  |\n"
        "| Impact of exchange rate | 7.6 | (2.3) |  |  |\n"
    )
    facts = by_question(text)
    usd = facts["What is the change in USD from 2018 to 2019?"]
    rate = facts["What is the change in Impact of exchange rate from 2018 to 2019?"]
    assert (usd.answer, usd.scale) == ("5.58", "")
    assert (rate.answer, rate.scale, rate.program) == ("9.9", "percent", "7.6 - (-2.3)")


def test_two_columns_of_one_year_are_named_by_their_headers() -> None:
    text = (
        "|  | December 31, 2019 | December 31, 2018 | January 1, 2018 |\n"
        "| --- | --- | --- | --- |\n"
        "| Trade receivables | 9,660 | 11,191 | 7,073 |\n"
    )
    facts = by_question(text)
    question = "What is the change in Trade receivables from January 1, 2018 to December 31, 2018?"
    assert facts[question].answer == "4118"
    average = "What is the average Trade receivables for December 31, 2018 and 2019?"
    assert facts[average].answer == "10425.5"


@pytest.mark.parametrize(
    "problem", ["tatqa-dev-3ffd9053", "tatqa-dev-d8d662b8", "tatqa-dev-52164b70"]
)
def test_each_program_computes_its_answer(problem: str) -> None:
    """The program is the derivation: run by `router.program` (no eval), it gives the answer."""
    for fact in table_facts(SALES) + table_facts(REAL[problem].context):
        steps = run_program(f"x = {fact.program.replace(',', '')}").steps
        assert [answer_text(step.value) for step in steps] == [fact.answer], fact
