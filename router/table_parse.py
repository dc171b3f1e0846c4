"""Markdown pipe tables read out of any context text: columns, numeric rows, the scale.

Financial tables write numbers their own way: "$ 1,452.4", "(12.3)" for -12.3,
"-" for nil, "4.00%"; the scale is said once, in the text ("in millions",
"$'000", "€m") or in a header, never in the cells. Columns are labelled by their
header, by its year when it has one ("Years Ended September 30, 2019" -> 2019),
and grouped by what the header says besides the year ("Domestic 2019" and
"Domestic 2018" belong together, "International 2019" apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_NUMBER = re.compile(r"^(-)?(\()?(-)?(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?(\))?$")
_NIL = {"-", "--", "\u2014", "\u2013", "\u2014\u2014"}  # spaces already removed
_CURRENCY = re.compile(r"US\$|\$|€|£|¥|RMB|HK\$|A\$|C\$")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_FISCAL = re.compile(r"\bFY\s?'?(\d{2})\b", re.IGNORECASE)
_SPACED_YEAR = re.compile(r"\b([12]) ([09]) (\d) (\d)\b")
_DATE_WORDS = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
    r"|\b\d{1,2}(?:st|nd|rd|th)?\b|\b(?:as of|as at|at|fy|fiscal|year|years|ended|ending|end)\b"
)
_COMPARISON = re.compile(r"\b(?:change|variance|vs|versus|increase|decrease|difference)\b", re.I)
_NOT_A_WORD = re.compile(r"[^a-z%$€£¥ ]+")
_THOUSANDS = re.compile(r"['\u2018\u2019]\s?000s?\b|\b000s\b|\(1,000\)")
_ABBREVIATED = re.compile(r"(?:\$|€|£|¥)\s?(m|mn|bn|k)\b", re.IGNORECASE)
_TEXT_SCALES = (  # said in prose: only as "in millions", "(thousands of ...", "$'000", "€m"
    re.compile(r"\bin\s+(?:[a-z$€£¥.]+\s+){0,3}(thousands?|millions?|billions?)\b", re.I),
    re.compile(r"\((?:[a-z$€£¥.]+\s+){0,3}(thousands?|millions?|billions?)\b", re.I),
    _THOUSANDS,
    _ABBREVIATED,
)
_HEADER_SCALES = (  # a header cell names its unit in passing: "RMB'Million", "$ million"
    re.compile(r"\b(thousands?|millions?|billions?)\b", re.I),
    _THOUSANDS,
    _ABBREVIATED,
)
_ABBREVIATIONS = {"m": "million", "mn": "million", "bn": "billion", "k": "thousand"}


@dataclass(frozen=True)
class Cell:
    value: Fraction
    text: str  # as the program shows it: "1,452.4", "-12.3", "0" for "-"
    percent: bool


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    year: int | None
    group: str  # the header without its year, lower case: what columns share
    group_suffix: str = ""  # " (Domestic)" when the table has several groups
    percent: bool = False  # its header says "%" or "percent"
    named_by_year: bool = True  # no other column of its group has the same year

    @property
    def label(self) -> str:
        return str(self.year) if self.year and self.named_by_year else self.header


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    columns: tuple[Column, ...] = field(default=())


@dataclass(frozen=True)
class NumericRow:
    label: str
    values: dict[int, Cell]  # column index -> cell
    percent: bool  # all its cells are percentages
    is_total: bool
    section: str = ""  # the label-only row above it ("Deferred tax liabilities")


def parse_cell(text: str) -> Cell | None:
    """A number as financial tables write it, or None for text."""
    raw = _CURRENCY.sub("", text).replace("\u2212", "-").replace(" ", "")
    percent = raw.endswith("%") or raw.endswith("%)")
    raw = raw.replace("%", "")
    if raw in _NIL:
        return Cell(Fraction(0), "0", percent)
    match = _NUMBER.match(raw)
    if not match or not (match.group(4) or match.group(5)):
        return None
    minus, opened, minus2, whole, decimals, closed = match.groups()
    if bool(opened) != bool(closed):
        return None
    shown = (whole or "0") + (decimals or "")
    value = Fraction(shown.replace(",", ""))
    negative = bool(minus or minus2 or opened) and value != 0
    return Cell(-value if negative else value, f"-{shown}" if negative else shown, percent)


def _cells(line: str) -> list[str]:
    match = _ROW.match(line)
    inner = match.group(1) if match else ""
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(inner)]


def column_year(header: str) -> int | None:
    """The year a header names ("2019", "FY19", "2 0 1 8"), else None; a comparison
    ("2019 vs. 2018", "% Change 2018 to 2019") is no year's column."""
    header = _SPACED_YEAR.sub(r"\1\2\3\4", header)
    header = _FISCAL.sub(lambda m: f"20{m.group(1)}", header)
    years = set(_YEAR.findall(header))
    if len(years) != 1 or _COMPARISON.search(header):
        return None
    return int(years.pop())


def _group(header: str) -> str:
    """The header without its date: "April 26, 2019" and "April 27, 2018" are one group."""
    without = _YEAR.sub("", _FISCAL.sub("", _SPACED_YEAR.sub(r"\1\2\3\4", header)))
    without = _NOT_A_WORD.sub(" ", _DATE_WORDS.sub(" ", without.lower()))
    return " ".join(without.split())


def _columns(header: list[str]) -> tuple[Column, ...]:
    """A header that is only a year joins the group on its left ("Domestic 2019 | 2018")."""
    columns: list[Column] = []
    for i, cell in enumerate(header[1:], start=1):
        if not cell:
            continue
        year, group = column_year(cell), _group(cell)
        if year and not group and columns and columns[-1].year:
            group = columns[-1].group
        percent = "%" in cell or "percent" in cell.lower()
        columns.append(Column(i, cell, year, group, percent=percent))
    dated = [(c.group, c.year) for c in columns if c.year]
    columns = [
        replace(c, named_by_year=False) if dated.count((c.group, c.year)) > 1 else c
        for c in columns
    ]
    if len({group for group, _ in dated}) < 2:
        return tuple(columns)
    return tuple(
        replace(c, group_suffix=f" ({c.group})") if c.year and c.group else c for c in columns
    )


def _table(lines: list[str]) -> Table:
    header = _cells(lines[0])
    rows = [_cells(line) for line in lines[2:]]
    width = max([len(header), *(len(r) for r in rows)])
    header += [""] * (width - len(header))
    padded = tuple(tuple(r + [""] * (width - len(r))) for r in rows)
    return Table(tuple(header), padded, _columns(header))


def parse_tables(text: str) -> list[Table]:
    """Every markdown pipe table in `text`: a header line, a separator, body lines."""
    lines = text.split("\n")
    tables: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        if _ROW.match(lines[i]) and _SEPARATOR.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and _ROW.match(lines[end]):
                end += 1
            tables.append(_table(lines[i:end]))
            i = end
        else:
            i += 1
    return tables


def _row_label(cell: str) -> str:
    return " ".join(cell.split()).rstrip(":").strip()


def _value(text: str, column: Column) -> Cell | None:
    cell = parse_cell(text)
    if cell is None or cell.percent or not column.percent:
        return cell
    return Cell(cell.value, cell.text, True)


def numeric_rows(table: Table) -> list[NumericRow]:
    """Rows with a label and at least two numbers under labelled columns; a label
    that repeats ("Federal" under "Current" and "Deferred") takes its section's name."""
    found = []
    section = ""
    for row in table.rows:
        label = _row_label(row[0]) if row else ""
        values = {c.index: cell for c in table.columns if (cell := _value(row[c.index], c))}
        if label and not any(row[1:]):
            section = label
        if len(values) < 2 or not any(c.value for c in values.values()):
            continue
        label = label or f"Total {section}".strip()  # an unlabelled row of numbers closes a block
        if "%" in label or "percent" in label.lower():
            values = {i: replace(cell, percent=True) for i, cell in values.items()}
        percent = all(cell.percent for cell in values.values())
        is_total = "total" in label.lower().split()
        found.append(NumericRow(label, values, percent, is_total, section))
    labels = [row.label for row in found]
    return [
        replace(row, label=f"{row.label} ({row.section})")
        if labels.count(row.label) > 1 and row.section
        else row
        for row in found
    ]


def _is_subheader(row: tuple[str, ...]) -> bool:
    """A body row that labels the columns anew ("| Breakup | FY 2019 (%) | FY 2018 (%) |")."""
    cells = [cell for cell in row[1:] if cell]
    if len(cells) < 2 or not all(column_year(cell) for cell in cells):
        return False
    return not row[0] or any(parse_cell(cell) is None for cell in cells)


def blocks(table: Table) -> list[Table]:
    """The table cut at each body row that relabels the columns, each part with its header."""
    parts: list[Table] = []
    header, rows = list(table.header), []
    for row in table.rows:
        if _is_subheader(row):
            parts.append(Table(tuple(header), tuple(rows), _columns(header)))
            header, rows = list(row), []
        else:
            rows.append(row)
    parts.append(Table(tuple(header), tuple(rows), _columns(header)))
    return [part for part in parts if part.rows]


def _named_scale(match: re.Match[str]) -> str:
    if match.re is _THOUSANDS:
        return "thousand"
    word = match.group(1).lower()
    return _ABBREVIATIONS.get(word) or word.rstrip("s")


def find_scale(text: str, *, header: bool = False) -> str:
    """The first scale a text states ("in millions", "$'000", "€m"; in a header also
    a bare "million"), else ""."""
    matches = [m for p in (_HEADER_SCALES if header else _TEXT_SCALES) if (m := p.search(text))]
    return _named_scale(min(matches, key=lambda m: m.start())) if matches else ""


def table_scale(table: Table, context: str) -> str:
    """The scale the table's header states, else the first one the context states."""
    return find_scale(" ".join(table.header), header=True) or find_scale(context)
