"""Outcome tables on disk: one row per (context, query, action), full information.

Every action that collection tried is a row, so any policy can be replayed
offline on the table without calling an LLM. Tables are gzip CSV (a few MB for
thousands of rows, readable by anything); sleep-time artifacts (each pass's raw
text, notes and anticipated answers) go beside them as gzip JSONL.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from router.errors import DatasetError

OUTCOMES = "outcomes.csv.gz"
SLEEP = "sleep.jsonl.gz"
CONTEXTS = "contexts.jsonl.gz"  # the problems themselves, so a table needs no dataset to replay
RUN = "run.json"


@dataclass(frozen=True)
class Outcome:
    dataset: str
    context_id: str
    query_id: str
    query_kind: str
    queries_in_context: int
    sleep_passes: int  # 0: test-time only, on the raw context c; else k (adaptive: a cap)
    rung: int
    correct: bool
    truncated: bool
    predicted: str
    gold: str
    test_prompt_tokens: int
    test_cached_prompt_tokens: int
    test_completion_tokens: int
    test_latency_s: float
    sleep_prompt_tokens: int  # of the passes spent on the context (shared by its queries)
    sleep_completion_tokens: int
    sleep_latency_s: float
    # Columns added later, so defaulted: a table written before them still loads.
    sleep_passes_spent: int = -1  # passes c' was built from; -1: sleep_passes (fixed k)
    test_model: str = ""  # the model that answered; "": the run's model
    sleep_model: str = ""  # the model that ran the passes; "": the run's model

    def __post_init__(self) -> None:
        """An adaptive budget spends at most `sleep_passes`; a fixed one (every table before
        the column) spends exactly that, which is the default."""
        if self.sleep_passes_spent < 0:
            object.__setattr__(self, "sleep_passes_spent", self.sleep_passes)


FIELDS = [f.name for f in fields(Outcome)]
Row = TypeVar("Row")
_CASTS: dict[str, Callable[[str], Any]] = {
    "bool": lambda v: v in {"1", "True", "true"},
    "int": int,
    "float": float,
    "str": str,
}


def write_rows(path: Path, rows: Iterable[Any], kind: type) -> int:
    """Any flat dataclass as gzip CSV (booleans as 0/1); returns the rows written."""
    count = 0
    with gzip.open(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(kind)])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: int(v) if isinstance(v, bool) else v for k, v in asdict(row).items()}
            )
            count += 1
    return count


def read_rows(path: Path, kind: type[Row]) -> list[Row]:
    """The inverse of write_rows: each column cast back to its field's type."""
    types = {f.name: f.type for f in fields(kind)}  # strings: `from __future__ import annotations`
    with gzip.open(path, "rt", newline="", encoding="utf-8") as handle:
        return [
            kind(**{k: _CASTS[types[k]](v) for k, v in row.items()})
            for row in csv.DictReader(handle)
        ]


def write_outcomes(path: Path, rows: Iterable[Outcome]) -> int:
    return write_rows(path, rows, Outcome)


def read_outcomes(path: Path) -> list[Outcome]:
    if not path.is_file():
        raise DatasetError(f"no outcome table at {path}: write one with `sleeptime collect`")
    return read_rows(path, Outcome)


def as_columns(rows: list[Outcome]) -> dict[str, np.ndarray]:
    """Column arrays for vectorised metrics and replay."""
    return {name: np.array([getattr(r, name) for r in rows]) for name in FIELDS}


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Gzip JSONL, or plain JSONL where the name does not end in .gz."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
