"""Derived quantities of a markdown table, computed exactly, as anticipated questions.

TAT-QA's arithmetic questions are mostly a handful of shapes over one table row:
the change between two years (225 of 718 dev questions), the average (178),
the percentage change (165), a row as a percentage of another (63), a sum (59).
A small model sets these up well and gets the arithmetic wrong, so sleep time
computes them here from the table itself: every markdown pipe table in any
context, each numeric row, each pair of columns, exact in `Fraction`, rounded
as TAT-QA golds are (2 decimals), with the scale the context states ("in
millions", "$'000", a "%" cell). Nothing a model wrote is run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import pairwise

from router.table_parse import (
    Column,
    NumericRow,
    Table,
    blocks,
    find_scale,
    numeric_rows,
    parse_tables,
    table_scale,
)

PERCENT_CHANGE = "percentage change"
# The order facts come in, by how often TAT-QA asks for each (after the latest pair).
CHANGE, AVERAGE, RELATIVE_CHANGE, SHARE, AVERAGE_ALL, SUM = range(6)


@dataclass(frozen=True)
class TableFact:
    question: str  # as TAT-QA asks it: "What is the change in Total sales from 2018 to 2019?"
    answer: str  # rounded as TAT-QA golds are: "-12.6", "-22.22"
    scale: str  # "", "thousand", "million", "billion" or "percent"
    program: str  # the derivation from the cells: "(44.1 - 56.7) / 56.7 * 100"
    row: str = field(default="", compare=False)  # the row label it is about


def answer_text(value: Fraction) -> str:
    """Whole numbers exactly, others to 2 decimals (half up), no trailing zeros."""
    if value.denominator == 1:
        return str(value.numerator)
    cents = int(abs(value) * 100 + Fraction(1, 2))
    whole, part = divmod(cents, 100)
    text = f"{whole}.{part:02d}".rstrip("0").rstrip(".")
    return f"-{text}" if value < 0 and cents else text


def _operand(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


@dataclass(frozen=True)
class _Pair:
    old: Column
    new: Column
    rank: int  # 0 for the newest adjacent pair of a group, 1 for the others


def _pairs(columns: list[Column]) -> Iterator[_Pair]:
    """Adjacent columns of each group in time order (oldest first where years say),
    and first to last where there are three or more."""
    for group in _groups(columns):
        ordered = _in_time(group)
        adjacent = list(pairwise(ordered))
        if len(ordered) > 2:
            adjacent.append((ordered[0], ordered[-1]))
        newest = adjacent[-2 if len(ordered) > 2 else -1] if adjacent else None
        for old, new in adjacent:
            yield _Pair(old, new, 0 if (old, new) == newest else 1)


def _in_time(group: list[Column]) -> list[Column]:
    """Oldest first by year, the later column first within a year (reports put the
    newest on the left); columns without years stay in their order."""
    if not all(c.year for c in group):
        return group
    return sorted(group, key=lambda c: (c.year or 0, -c.index))


def _groups(columns: list[Column]) -> list[list[Column]]:
    """Dated columns that share a header apart from the date ("Domestic 2019", "Domestic
    2018"); in a table without dates, all columns in their order ("First quarter", ...)."""
    if not any(c.year for c in columns):
        return [columns] if len(columns) > 1 else []
    groups: dict[str, list[Column]] = {}
    for column in columns:
        if column.year:
            groups.setdefault(column.group, []).append(column)
    return [g for g in groups.values() if len(g) > 1]


def _in(row: NumericRow, column: Column) -> str:
    return f"{row.label}{column.group_suffix}"


def _pair_facts(row: NumericRow, pair: _Pair, scale: str) -> Iterator[tuple[int, TableFact]]:
    old, new = row.values.get(pair.old.index), row.values.get(pair.new.index)
    if old is None or new is None:
        return
    scale = "percent" if old.percent and new.percent else scale
    span = f"from {pair.old.label} to {pair.new.label}"
    name = _in(row, pair.new)
    change = new.value - old.value
    program = f"{new.text} - {_operand(old.text)}"
    yield (
        CHANGE,
        TableFact(f"What is the change in {name} {span}?", answer_text(change), scale, program),
    )
    average = (new.value + old.value) / 2
    program = f"({new.text} + {old.text}) / 2"
    yield AVERAGE, TableFact(
        f"What is the average {name} for {pair.old.label} and {pair.new.label}?",
        answer_text(average), scale, program,
    )  # fmt: skip
    if old.value != 0:
        ratio = change / old.value * 100
        program = f"({new.text} - {_operand(old.text)}) / {_operand(old.text)} * 100"
        question = f"What is the {PERCENT_CHANGE} in {name} {span}?"
        yield RELATIVE_CHANGE, TableFact(question, answer_text(ratio), "percent", program)
    if scale == "percent":  # two rates do not add up to anything
        return
    total = new.value + old.value
    program = f"{new.text} + {old.text}"
    total_of = "sum of" if row.is_total else "total"
    yield SUM, TableFact(
        f"What is the {total_of} {name} in {pair.old.label} and {pair.new.label}?",
        answer_text(total), scale, program,
    )  # fmt: skip


def _share_facts(rows: list[NumericRow], table: Table) -> Iterator[tuple[int, TableFact]]:
    """Each row as a percentage of the total row that closes its block."""
    block: list[NumericRow] = []
    for row in rows:
        if not row.is_total:
            block.append(row)
            continue
        for part in block:
            for column in table.columns:
                yield from _share(part, row, column)
        block = []


def _share(part: NumericRow, total: NumericRow, column: Column) -> Iterator[tuple[int, TableFact]]:
    value, whole = part.values.get(column.index), total.values.get(column.index)
    if value is None or whole is None or whole.value == 0 or value.percent or whole.percent:
        return
    question = (
        f"What is {part.label} as a percentage of {total.label} in {column.label}"
        f"{column.group_suffix}?"
    )
    program = f"{value.text} / {whole.text} * 100"
    share = answer_text(value.value / whole.value * 100)
    yield SHARE, TableFact(question, share, "percent", program, row=part.label)


def _average_all(
    row: NumericRow, columns: list[Column], scale: str
) -> Iterator[tuple[int, TableFact]]:
    for group in _groups(columns):
        cells = [row.values[c.index] for c in group if c.index in row.values]
        if len(cells) < 3 or len(cells) != len(group):
            continue
        scale = "percent" if all(c.percent for c in cells) else scale
        ordered = _in_time(group)
        average = sum((c.value for c in cells), Fraction(0)) / len(cells)
        program = f"({' + '.join(c.text for c in cells)}) / {len(cells)}"
        years = f"from {ordered[0].label} to {ordered[-1].label}"
        question = f"What is the average {_in(row, group[0])} {years}?"
        yield AVERAGE_ALL, TableFact(question, answer_text(average), scale, program)


def _table_facts(table: Table, scale: str) -> Iterator[tuple[int, int, TableFact]]:
    scale = find_scale(" ".join(table.header), header=True) or scale
    rows = numeric_rows(table)
    pairs = list(_pairs(list(table.columns)))
    for row in rows:
        for pair in pairs:
            for kind, fact in _pair_facts(row, pair, scale):
                yield pair.rank, kind, replace(fact, row=row.label)
        for kind, fact in _average_all(row, list(table.columns), scale):
            yield 1, kind, replace(fact, row=row.label)
    for kind, fact in _share_facts([r for r in rows if not r.percent], table):
        yield 1, kind, fact


def table_facts(context: str, *, limit: int | None = None) -> list[TableFact]:
    """Every derived quantity of every table in `context`, most useful first: the
    latest year's changes, averages and percentage changes, then older pairs,
    shares of a total, sums."""
    ranked = [
        (rank, kind, order, fact)
        for table in parse_tables(context)
        for part in blocks(table)
        for order, (rank, kind, fact) in enumerate(_table_facts(part, table_scale(table, context)))
    ]
    ranked.sort(key=lambda item: item[:3])
    seen: set[str] = set()
    facts = []
    for *_, fact in ranked:
        if fact.question not in seen:
            seen.add(fact.question)
            facts.append(fact)
    return facts[:limit] if limit is not None else facts
