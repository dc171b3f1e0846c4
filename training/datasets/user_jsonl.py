"""Anyone's own contexts and queries, one JSON object per line.

Two shapes are accepted on any line, so a GSM8K-style file can be used as is:

    {"id": "doc-1", "context": "...", "queries": [{"question": "...", "answer": "42"}]}
    {"question": "... How many ...?", "answer": "... #### 42"}   (split statefully)

`id` is optional (default "<file stem>-<line>"), and so is a query's `kind`
("final" or "sub"). Numeric answers are stored canonically ("1,234.0" ->
"1234"); an answer with no number in it is kept as text, graded by equality.
Unknown keys are ignored. Strict by default: the first bad line raises
DatasetError naming it. With strict=False bad lines are skipped and listed in
`report.bad_lines` (and logged), for exploring a file that is being cleaned up.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

from router.errors import DatasetError
from router.grading import canonical_number
from training.datasets.gsm8k import gsm8k_problem
from training.datasets.lines import decode, iter_lines, require
from training.datasets.types import LoadReport, Query, StatefulProblem, log

_KINDS = ("final", "sub")


def _gold(value: str | int | float, line: int, index: int) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise DatasetError(f"query {index}: 'answer' is {value}", line=line)
    text = format(Decimal(repr(value)), "f") if not isinstance(value, str) else value.strip()
    if not text:
        raise DatasetError(f"query {index}: empty 'answer'", line=line)
    return canonical_number(text) or text


def _query(item: Any, problem_id: str, index: int, line: int) -> Query:
    if not isinstance(item, dict):
        raise DatasetError(f"query {index} is a JSON {type(item).__name__}", line=line)
    question = require(item, "question", str, line).strip()
    if not question:
        raise DatasetError(f"query {index}: empty 'question'", line=line)
    answer = _gold(require(item, "answer", (str, int, float), line), line, index)
    kind = item.get("kind", "final")
    if kind not in _KINDS:
        raise DatasetError(f"query {index}: 'kind' must be one of {_KINDS}", line=line)
    return Query(f"{problem_id}/q{index}", question, answer, kind)


def _context_problem(
    row: dict[str, Any], problem_id: str, source: str, line: int
) -> StatefulProblem:
    context = require(row, "context", str, line)
    items = require(row, "queries", list, line)
    if not items:
        raise DatasetError("'queries' is empty", line=line)
    queries = tuple(_query(item, problem_id, i, line) for i, item in enumerate(items))
    return StatefulProblem(problem_id, context.strip(), queries, source)


def _problem_id(row: dict[str, Any], path: Path, line: int) -> str:
    if "id" not in row:
        return f"{path.stem}-{line:04d}"
    value = require(row, "id", (str, int), line)
    if not str(value).strip():
        raise DatasetError("empty 'id'", line=line)
    return str(value).strip()


def _problem(row: dict[str, Any], path: Path, line: int, report: LoadReport) -> StatefulProblem:
    problem_id = _problem_id(row, path, line)
    if "context" in row or "queries" in row:
        return _context_problem(row, problem_id, path.name, line)
    if "question" in row:
        return gsm8k_problem(row, problem_id, path.name, line, report)
    raise DatasetError(
        "expected 'context' and 'queries', or GSM8K 'question' and 'answer'", line=line
    )


def load_jsonl(
    path: Path,
    *,
    limit: int | None = None,
    strict: bool = True,
    report: LoadReport | None = None,
) -> list[StatefulProblem]:
    """Problems from a user JSONL file (shapes in the module docstring)."""
    path = Path(path)
    report = report if report is not None else LoadReport()
    report.source = path.name
    problems: list[StatefulProblem] = []
    seen: dict[str, int] = {}
    for number, raw in iter_lines(path):
        if limit is not None and len(problems) >= limit:
            break
        try:
            problem = _problem(decode(raw, number), path, number, report)
            if problem.id in seen:
                raise DatasetError(
                    f"duplicate id {problem.id!r} (line {seen[problem.id]})", line=number
                )
        except DatasetError as exc:
            if strict:
                raise
            report.bad_lines.append((number, str(exc)))
            log.warning("%s: skipped %s", path.name, exc)
            continue
        seen[problem.id] = number
        problems.append(report.add(problem))
    report.log()
    return problems
