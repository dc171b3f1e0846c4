"""How much of a dataset's arithmetic the table facts answer before any question is asked.

The measure behind sleep-time table work (`router/table_facts.py`): an
arithmetic question is covered when some fact of its own context states its
gold by the TAT-QA metric (exact match, scale included). `named` is stricter:
the fact's question also names the row the question asks about, which rules out
a number that matches by chance. `matched` is what a prompt reads: the gold is
stated by one of the learned lines `router.note_match` picks for the question.

    python -m training.table_coverage --offset 150 --limit 0 --lines 4
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from router.answer_formats import answer_format
from router.note_match import note_lines, ranked
from router.sleep import learned_context
from router.span_metric import score
from router.table_facts import TableFact, table_facts
from training.datasets import load_dataset
from training.datasets.types import Query, StatefulProblem

_FILLER = {"the", "a", "an", "of", "and", "in", "for", "total"}
_SUFFIX = {"percent": "%", "thousand": " thousand", "million": " million", "billion": " billion"}


@dataclass(frozen=True)
class TableCoverage:
    contexts: int
    arithmetic: int  # queries with answer_type "arithmetic"
    covered: int  # some fact of the context states the gold
    named: int  # ... and that fact names a row the question names
    matched: int  # ... among the learned lines a query's prompt carries (`lines` of them)
    facts_median: float
    facts_max: int

    @property
    def share(self) -> float:
        return self.covered / self.arithmetic if self.arithmetic else 0.0

    @property
    def matched_share(self) -> float:
        return self.matched / self.arithmetic if self.arithmetic else 0.0

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


def _matched(query: Query, lines: list[str], keep: int) -> bool:
    """Whether a line among the `keep` the question matches states the gold."""
    gold = query.answers or (query.answer,)
    for _, line in ranked(query.question, lines)[:keep]:
        value = line.rsplit(": ", 1)[-1]
        if score(value, gold, query.scale, answer_type="arithmetic").em == 1:
            return True
    return False


def table_coverage(
    problems: Sequence[StatefulProblem], *, limit: int | None = None, lines: int = 4
) -> TableCoverage:
    """Coverage of the arithmetic queries in `problems` by their contexts' table facts
    (the first `limit` of each context, as a store that keeps only so many would), and by
    the `lines` learned lines each query's prompt would carry."""
    counts: list[int] = []
    arithmetic = covered = named = matched = 0
    span = answer_format("span")
    for problem in problems:
        facts = table_facts(problem.context, limit=limit)
        counts.append(len(facts))
        learned = note_lines(learned_context([], span, problem.context).text)
        for query in problem.queries:
            if query.answer_type != "arithmetic":
                continue
            arithmetic += 1
            matching = _covering(query, facts)
            covered += bool(matching)
            named += any(_row_named(f, query.question) for f in matching)
            matched += _matched(query, learned, lines)
    median = float(statistics.median(counts)) if counts else 0.0
    return TableCoverage(
        len(problems), arithmetic, covered, named, matched, median, max(counts, default=0)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.table_coverage")
    parser.add_argument("--dataset", default="tatqa")
    parser.add_argument("--offset", type=int, default=0, help="contexts to skip first")
    parser.add_argument("--limit", type=int, default=0, help="contexts to count, 0: all")
    parser.add_argument("--lines", type=int, default=4, help="learned lines a prompt carries")
    args = parser.parse_args(argv)
    problems = load_dataset(args.dataset)[
        args.offset : args.offset + args.limit if args.limit else None
    ]
    coverage = table_coverage(problems, lines=args.lines)
    print(
        json.dumps(
            asdict(coverage)
            | {"share": round(coverage.share, 4), "matched_share": round(coverage.matched_share, 4)}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
