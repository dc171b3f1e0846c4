"""How much of a dataset's arithmetic the table facts answer before any question is asked.

The measure behind sleep-time table work (`router/table_facts.py`): an
arithmetic question is covered when some fact of its own context states its
gold by the TAT-QA metric (exact match, scale included). `named` is stricter:
the fact's question also names the row the question asks about, which rules out
a number that matches by chance.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from router.span_metric import score
from router.table_facts import TableFact, table_facts
from training.datasets.types import Query, StatefulProblem

_FILLER = {"the", "a", "an", "of", "and", "in", "for", "total"}
_SUFFIX = {"percent": "%", "thousand": " thousand", "million": " million", "billion": " billion"}


@dataclass(frozen=True)
class TableCoverage:
    contexts: int
    arithmetic: int  # queries with answer_type "arithmetic"
    covered: int  # some fact of the context states the gold
    named: int  # ... and that fact names a row the question names
    facts_median: float
    facts_max: int

    @property
    def share(self) -> float:
        return self.covered / self.arithmetic if self.arithmetic else 0.0

    @property
    def named_share(self) -> float:
        return self.named / self.arithmetic if self.arithmetic else 0.0


def stated(fact: TableFact) -> str:
    """The fact as a model would state it: "-12.6 million", "-22.22%"."""
    return fact.answer + _SUFFIX.get(fact.scale, "")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold())) - _FILLER


def _row_named(fact: TableFact, question: str) -> bool:
    """Every word of the fact's row label (its section aside) is in the question."""
    words = _words(re.sub(r"\s*\(.*\)\s*$", "", fact.row))
    return bool(words) and words <= _words(question)


def _covering(query: Query, facts: list[TableFact]) -> list[TableFact]:
    gold = query.answers or (query.answer,)
    return [
        f for f in facts if score(stated(f), gold, query.scale, answer_type="arithmetic").em == 1
    ]


def table_coverage(
    problems: Sequence[StatefulProblem], *, limit: int | None = None
) -> TableCoverage:
    """Coverage of the arithmetic queries in `problems` by their contexts' table facts
    (the first `limit` of each context, as a store that keeps only so many would)."""
    counts: list[int] = []
    arithmetic = covered = named = 0
    for problem in problems:
        facts = table_facts(problem.context, limit=limit)
        counts.append(len(facts))
        for query in problem.queries:
            if query.answer_type != "arithmetic":
                continue
            arithmetic += 1
            matching = _covering(query, facts)
            covered += bool(matching)
            named += any(_row_named(f, query.question) for f in matching)
    median = float(statistics.median(counts)) if counts else 0.0
    return TableCoverage(len(problems), arithmetic, covered, named, median, max(counts, default=0))
