"""The plain data every benchmark and replay runs on, and the loaders' tally.

A loader never drops anything silently: whatever it could not use is counted
in a `LoadReport`, so a benchmark can say what fraction of a dataset it ran on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("training.datasets")


@dataclass(frozen=True)
class Query:
    id: str  # unique within the dataset, e.g. "gsm8k-test-0012/q0"
    question: str
    answer: str  # gold, normalised numeric string (text golds kept as text)
    kind: str = "final"  # "final" or "sub" (socratic sub-question)
    answers: tuple[str, ...] = ()  # every gold span (TAT-QA); empty where `answer` says it all
    scale: str = ""  # the gold's scale: "", "thousand", "million", "billion" or "percent"
    answer_type: str = ""  # the dataset's own label, e.g. TAT-QA "span", "arithmetic"


@dataclass(frozen=True)
class StatefulProblem:
    id: str
    context: str
    queries: tuple[Query, ...]
    source: str  # e.g. "gsm8k-test", "gsm8k-socratic", or the user file name
    answer_format: str = "number"  # how answers are graded: "number", "span" or "text"

    @property
    def has_context(self) -> bool:
        """Without a context there is nothing to think about at sleep time."""
        return bool(self.context.strip())


@dataclass
class LoadReport:
    """Counts a loader fills in; pass one in to read them, or read the log."""

    source: str = ""
    problems: int = 0
    with_context: int = 0
    question_not_found: int = 0  # whole problem became the query, empty context
    question_not_last: int = 0  # the question sat before other sentences
    queries: int = 0
    sub_questions_skipped_no_gold: int = 0
    sub_questions_skipped_not_question: int = 0  # "Simplify", "Define a variable"
    sub_questions_duplicate: int = 0  # repeated text, or the final question again
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # strict=False only
    odd: dict[str, int] = field(default_factory=dict)  # kept but unusual, by kind (TAT-QA)

    def summary(self) -> str:
        parts = [
            f"{self.source}: {self.problems} problems",
            f"{self.with_context} with context",
            f"{self.queries} queries",
            f"question not found {self.question_not_found}",
            f"question not last {self.question_not_last}",
        ]
        skipped = self.sub_questions_skipped_no_gold + self.sub_questions_skipped_not_question
        if skipped or self.sub_questions_duplicate:
            parts.append(
                f"sub-questions skipped {skipped} "
                f"(no gold {self.sub_questions_skipped_no_gold}, "
                f"not a question {self.sub_questions_skipped_not_question}), "
                f"duplicates {self.sub_questions_duplicate}"
            )
        if self.bad_lines:
            parts.append(f"bad lines {len(self.bad_lines)}")
        parts.extend(f"{kind} {count}" for kind, count in sorted(self.odd.items()))
        return ", ".join(parts)

    def note(self, kind: str) -> None:
        """Count something a loader kept although it was unusual."""
        self.odd[kind] = self.odd.get(kind, 0) + 1

    def add(self, problem: StatefulProblem) -> StatefulProblem:
        self.problems += 1
        self.with_context += problem.has_context
        self.queries += len(problem.queries)
        return problem

    def log(self) -> None:
        lossy = self.question_not_found or self.bad_lines
        log.log(logging.WARNING if lossy else logging.INFO, "%s", self.summary())
