"""TAT-QA (dev split) as stateful problems: one financial-report table plus its text, ~6 queries.

The context is what a small model reads well: the table as a markdown pipe table
(the header rows merged into one header line, cells as given, empty cells empty)
and then the paragraphs in their `order`. Every question loads, in `order`, and
anything unusual about it is counted in the `LoadReport`, never dropped.
Answers are spans graded by the TAT-QA metric (`router/span_metric.py`), so the
problem says `answer_format="span"` and each query carries all its gold spans
and the scale.
"""

from __future__ import annotations

import gzip
import json
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from router.errors import DatasetError
from training.datasets.types import LoadReport, Query, StatefulProblem

SOURCE = "tatqa-dev"
_YEAR = re.compile(r"^\s*(?:19|20)\d{2}\s*$")
_NUMBER = re.compile(r"^[\s$€£¥(]*-?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*%?\)?\s*$")


def bundled_tatqa() -> Traversable:
    """The copy shipped inside the package (see training/data/tatqa/README.md)."""
    return files("training") / "data" / "tatqa" / "tatqa_dataset_dev.json.gz"


def _read(source: Path | Traversable) -> list[dict[str, Any]]:
    try:
        raw = source.read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {source}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{source}: invalid JSON: {exc.msg}") from exc
    if not isinstance(data, list):
        raise DatasetError(f"{source}: a JSON {type(data).__name__}, expected a list")
    return data


def _cell(value: Any, report: LoadReport) -> str:
    text = " ".join(str(value).split())
    if "|" in text:
        report.note("cells with a pipe (escaped)")
        text = text.replace("|", "\\|")
    return text


def _is_value(cell: str) -> bool:
    """A number in a body cell; a bare year is a column label, not a value."""
    return bool(_NUMBER.match(cell)) and not _YEAR.match(cell)


def _header_size(rows: list[list[str]]) -> int:
    """Leading rows before the first row holding a value; a trailing label-only row
    ("Assets", "Transportation Solutions:") opens the body instead."""
    first = next((i for i, row in enumerate(rows) if any(map(_is_value, row[1:]))), 1)
    while first > 1 and rows[first - 1][0] and not any(rows[first - 1][1:]):
        first -= 1
    return first


def _filled(row: list[str]) -> list[int]:
    return [i for i, cell in enumerate(row[1:], start=1) if cell]


def _header(rows: list[list[str]], width: int) -> list[str]:
    """One header line. Where other header rows label the columns one by one, a row
    with a single label ("Fiscal", "(in millions)") spans them all: it captions the
    row-label column instead of sitting over one column. Other rows stack per column."""
    merged: list[list[str]] = [[] for _ in range(width)]
    labelled = any(len(_filled(row)) > 1 for row in rows)
    for row in rows:
        filled = _filled(row)
        if labelled and len(filled) == 1:
            merged[0].extend(cell for cell in (row[0], row[filled[0]]) if cell)
            continue
        for i, cell in enumerate(row):
            if cell:
                merged[i].append(cell)
    return [" ".join(parts) for parts in merged]


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_table(table: list[list[Any]], report: LoadReport | None = None) -> str:
    """A TAT-QA table as a markdown pipe table with one header line."""
    report = report if report is not None else LoadReport()
    width = max((len(row) for row in table), default=0)
    if any(len(row) != width for row in table):
        report.note("ragged tables (padded)")
    rows = [[_cell(c, report) for c in row] + [""] * (width - len(row)) for row in table]
    if width == 0:
        return ""
    size = _header_size(rows)
    lines = [_line(_header(rows[:size], width)), _line(["---"] * width)]
    lines.extend(_line(row) for row in rows[size:])
    return "\n".join(lines)


def render_context(item: dict[str, Any], report: LoadReport | None = None) -> str:
    """The table, then the paragraphs in `order`, separated by blank lines."""
    paragraphs = sorted(item.get("paragraphs") or [], key=lambda p: p.get("order", 0))
    parts = [render_table(item.get("table", {}).get("table") or [], report)]
    parts.extend(" ".join(str(p.get("text", "")).split()) for p in paragraphs)
    return "\n\n".join(part for part in parts if part)


def _gold_spans(question: dict[str, Any], report: LoadReport) -> tuple[str, ...]:
    answer = question.get("answer")
    if isinstance(answer, list):
        spans = tuple(str(a) for a in answer)
        if not all(span.strip() for span in spans):
            report.note("empty gold spans (kept)")
        if any(";" in span for span in spans):
            report.note("spans holding '; ' (joined answer ambiguous)")
        return spans
    if isinstance(answer, bool) or answer is None or answer == "":
        report.note("questions with no answer")
        return ()
    if question.get("answer_type") not in ("arithmetic", "count"):
        report.note("non-list span answers")
    return (str(answer),)


def tatqa_query(question: dict[str, Any], problem_id: str, report: LoadReport) -> Query:
    spans = _gold_spans(question, report)
    return Query(
        id=f"{problem_id}/q{question.get('order', 0)}",
        question=" ".join(str(question.get("question", "")).split()),
        answer="; ".join(spans),
        answers=spans,
        scale=str(question.get("scale") or ""),
        answer_type=str(question.get("answer_type") or ""),
    )


def tatqa_problem(item: dict[str, Any], report: LoadReport) -> StatefulProblem:
    uid = str(item.get("table", {}).get("uid") or "")
    problem_id = f"{SOURCE}-{uid.split('-')[0]}"
    questions = sorted(item.get("questions") or [], key=lambda q: q.get("order", 0))
    queries = [tatqa_query(q, problem_id, report) for q in questions]
    if len({q.id for q in queries}) != len(queries):
        report.note("contexts with repeated question order (ids suffixed)")
        queries = [_suffixed(q, i) for i, q in enumerate(queries)]
    context = render_context(item, report)
    return StatefulProblem(problem_id, context, tuple(queries), SOURCE, answer_format="span")


def _suffixed(query: Query, index: int) -> Query:
    return Query(
        f"{query.id}-{index}", query.question, query.answer, query.kind,
        query.answers, query.scale, query.answer_type,
    )  # fmt: skip


def load_tatqa(
    path: Path | None = None, *, limit: int | None = None, report: LoadReport | None = None
) -> list[StatefulProblem]:
    """TAT-QA dev (default: the bundled copy), one problem per table, in file order."""
    report = report if report is not None else LoadReport()
    report.source = SOURCE
    problems: list[StatefulProblem] = []
    for item in _read(Path(path) if path is not None else bundled_tatqa()):
        if limit is not None and len(problems) >= limit:
            break
        if not isinstance(item, dict):
            raise DatasetError(f"context {len(problems)}: a {type(item).__name__}, not an object")
        problems.append(report.add(tatqa_problem(item, report)))
    report.log()
    return problems
