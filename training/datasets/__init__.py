"""Benchmark datasets as stateful problems: one context, one or more queries.

    load_dataset("gsm8k")        Stateful GSM8K test (1,319 problems, 1 query each)
    load_dataset("gsm8k-multi")  socratic GSM8K test: sub-questions + final question
    load_dataset("tatqa")        TAT-QA dev: 278 tables + text, 1,668 span/arithmetic queries
    load_dataset("my.jsonl")     your own file (see training.datasets.user_jsonl)

Everything is read from the copy bundled inside the package. Pass a
`LoadReport` to any loader to get its counts (problems with a context, questions
not found or not last, sub-questions skipped); the same summary is logged.
"""

from __future__ import annotations

from pathlib import Path

from router.errors import DatasetError
from training.datasets.gsm8k import load_multi_query_gsm8k, load_stateful_gsm8k
from training.datasets.sentences import split_context_and_question, split_sentences
from training.datasets.tatqa import load_tatqa
from training.datasets.types import LoadReport, Query, StatefulProblem
from training.datasets.user_jsonl import load_jsonl

__all__ = [
    "LoadReport",
    "Query",
    "StatefulProblem",
    "load_dataset",
    "load_jsonl",
    "load_multi_query_gsm8k",
    "load_stateful_gsm8k",
    "load_tatqa",
    "split_context_and_question",
    "split_sentences",
]

NAMED = {
    "gsm8k": load_stateful_gsm8k,
    "gsm8k-multi": load_multi_query_gsm8k,
    "tatqa": load_tatqa,
}


def load_dataset(
    name_or_path: str | Path, *, limit: int | None = None, report: LoadReport | None = None
) -> list[StatefulProblem]:
    """A named bundled dataset, else a path to a JSONL file."""
    loader = NAMED.get(str(name_or_path))
    if loader is not None:
        return loader(limit=limit, report=report)
    path = Path(name_or_path)
    if not path.is_file():
        raise DatasetError(
            f"no dataset named {str(name_or_path)!r}: not one of {sorted(NAMED)}, nor a file"
        )
    try:
        return load_jsonl(path, limit=limit, report=report)
    except DatasetError as exc:  # a line number alone does not say which file
        named = DatasetError(f"{path}: {exc}")
        named.line = exc.line
        raise named from exc
