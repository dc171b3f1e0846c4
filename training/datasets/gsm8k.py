"""Stateful GSM8K and its multi-query variant, from the copy bundled in the package.

Single query: the paper's Stateful GSM8K, one question per context. Multi
query: the socratic annotations put a sub-question before every solution step,
which gives several questions sharing one context, the setting where the
paper's amortised cost (sleep once, answer many) applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.errors import DatasetError
from router.grading import canonical_number, extract_answer, gsm8k_gold
from training.datasets.lines import Source, bundled, decode, iter_lines, require
from training.datasets.sentences import is_question, split_problem
from training.datasets.types import LoadReport, Query, StatefulProblem

_CALC_RE = re.compile(r"<<[^<>]*=([^<>=]*)>>")
Builder = Callable[[dict[str, Any], str, str, int, LoadReport], StatefulProblem]


def _prefix(source: Source) -> str:
    stem = Path(source.name).stem
    return "gsm8k-socratic" if stem == "test_socratic" else f"gsm8k-{stem}"


def gold_from_answer(answer: str, line: int) -> str:
    """The "#### N" value in canonical form ("2,125" -> "2125")."""
    try:
        gold = canonical_number(gsm8k_gold(answer))
    except ValueError as exc:
        raise DatasetError(str(exc), line=line) from exc
    if gold is None:
        raise DatasetError(f"gold {gsm8k_gold(answer)!r} is not a number", line=line)
    return gold


def gsm8k_problem(
    row: dict[str, Any], problem_id: str, source: str, line: int, report: LoadReport
) -> StatefulProblem:
    """One GSM8K row ({"question", "answer"}) as a one-query stateful problem."""
    text = require(row, "question", str, line)
    gold = gold_from_answer(require(row, "answer", str, line), line)
    split = split_problem(text)
    report.question_not_found += not split.found
    report.question_not_last += not split.question_last
    query = Query(f"{problem_id}/q0", split.question, gold, "final")
    return StatefulProblem(problem_id, split.context, (query,), source)


def step_gold(step: str) -> str | None:
    """What a solution step computes: its last <<expr=X>> result, else its last number."""
    results = _CALC_RE.findall(step)
    if results and (gold := canonical_number(results[-1])) is not None:
        return gold
    return extract_answer(_CALC_RE.sub(" ", step))


def _key(question: str) -> str:
    return " ".join(question.split()).casefold()


def _sub_questions(answer: str, final_question: str, report: LoadReport) -> list[tuple[str, str]]:
    """(sub-question, gold) in solution order; first of identical texts wins, and a
    sub-question that repeats the final question yields to it (its gold is the dataset's)."""
    seen = {_key(final_question)}
    kept: list[tuple[str, str]] = []
    for line in answer.splitlines():
        question, marker, step = line.partition(" ** ")
        if line.startswith("####") or not marker:
            continue
        question = question.strip()
        if not is_question(question):
            report.sub_questions_skipped_not_question += 1
        elif _key(question) in seen:
            report.sub_questions_duplicate += 1
        elif (gold := step_gold(step)) is None:
            report.sub_questions_skipped_no_gold += 1
        else:
            seen.add(_key(question))
            kept.append((question, gold))
    return kept


def socratic_problem(
    row: dict[str, Any], problem_id: str, source: str, line: int, report: LoadReport
) -> StatefulProblem:
    """One socratic row as a context with its sub-questions and then the final question."""
    single = gsm8k_problem(row, problem_id, source, line, report)
    final = single.queries[0]
    subs = _sub_questions(row["answer"], final.question, report)
    queries = [Query(f"{problem_id}/q{i}", q, gold, "sub") for i, (q, gold) in enumerate(subs)]
    queries.append(Query(f"{problem_id}/q{len(subs)}", final.question, final.answer, "final"))
    return StatefulProblem(problem_id, single.context, tuple(queries), source)


def _load(
    source: Source, limit: int | None, report: LoadReport, build: Builder
) -> list[StatefulProblem]:
    report.source = _prefix(source)
    problems: list[StatefulProblem] = []
    for number, raw in iter_lines(source):
        if limit is not None and len(problems) >= limit:
            break
        problem_id = f"{report.source}-{len(problems):04d}"
        problem = build(decode(raw, number), problem_id, report.source, number, report)
        problems.append(report.add(problem))
    report.log()
    return problems


def load_stateful_gsm8k(
    path: Path | None = None, *, limit: int | None = None, report: LoadReport | None = None
) -> list[StatefulProblem]:
    """Stateful GSM8K (default: the bundled test split), one query per problem."""
    source = Path(path) if path is not None else bundled("test.jsonl")
    return _load(source, limit, report if report is not None else LoadReport(), gsm8k_problem)


def load_multi_query_gsm8k(
    path: Path | None = None, *, limit: int | None = None, report: LoadReport | None = None
) -> list[StatefulProblem]:
    """Socratic GSM8K (default: bundled test_socratic): sub-questions plus the final one."""
    source = Path(path) if path is not None else bundled("test_socratic.jsonl")
    return _load(source, limit, report if report is not None else LoadReport(), socratic_problem)
