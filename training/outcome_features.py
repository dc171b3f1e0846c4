"""Features of each (query, sleep budget k) from stored sleep-time artifacts.

For a context's first k passes: the anticipated questions (voted across passes)
and, per query, its nearest anticipated question by embedding similarity and
that question's answer, which is what the cached route would serve. Whether
that answer is right is the cached route's outcome, so `features.csv.gz`
completes the outcome table for replay. Context-level signals (agreement among
passes, how much was anticipated) come from the same artifacts, before any query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policies.features import nearest, query_words
from router.answer_formats import AnswerFormat, Gold, answer_format, gold
from router.estimator_features import request_features
from router.fact_notes import with_facts
from router.sleep import Anticipated, vote
from router.table_facts import table_facts
from training.outcomes import (
    CONTEXTS,
    OUTCOMES,
    SLEEP,
    read_jsonl,
    read_outcomes,
    read_rows,
    write_rows,
)

FEATURES = "features.csv.gz"
Encoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class QueryFeatureRow:
    context_id: str
    query_id: str
    sleep_passes: int
    similarity: float  # cosine to the nearest anticipated question (0 when none)
    second_similarity: float
    cached_answer: str
    cached_support: int  # passes that anticipated the nearest question
    cached_agreement: float  # share of them that gave the served answer
    cached_correct: bool
    n_anticipated: int
    context_agreement: float  # mean agreement over the context's anticipated questions
    context_consistency: float  # share of anticipated questions all passes agree on
    truncated_passes: int
    context_words: int
    context_numbers: int
    query_words: int = 0  # short queries are the one-step ones a cheap route gets right


def anticipated_for(
    passes: list[dict], k: int, fmt: AnswerFormat | None = None, context: str = ""
) -> tuple[Anticipated, ...]:
    """What the proxy's worker would have stored after k passes: the passes' answers voted
    as the format counts them, and the facts of `context`'s tables where the format adds
    them (`router.sleep.learned_context`)."""
    fmt = fmt or answer_format(None)
    first = [p for p in passes if p["pass"] < k]
    voted = vote(
        (Anticipated(a["question"], a["answer"]) for p in first for a in p["anticipated"]),
        fmt.vote_key,
    )
    if fmt.table_facts and context:
        return with_facts("", voted, table_facts(context))[1]
    return voted


def gold_of(query: dict) -> Gold:
    """A query of contexts.jsonl; tables from before answer formats have only `answer`."""
    return gold(query["answer"], query.get("answers") or (), query.get("scale") or "")


def build_features(outcome_dir: Path, encode: Encoder) -> list[QueryFeatureRow]:
    contexts = {c["id"]: c for c in read_jsonl(outcome_dir / CONTEXTS)}
    passes: dict[str, list[dict]] = defaultdict(list)
    for record in read_jsonl(outcome_dir / SLEEP):
        passes[record["context_id"]].append(record)
    budgets = sorted({r.sleep_passes for r in read_outcomes(outcome_dir / OUTCOMES)} - {0})
    rows = []
    for context_id, context in contexts.items():
        for k in budgets:
            rows += _context_rows(context, passes[context_id], k, encode)
    return rows


def _context_rows(
    context: dict, passes: list[dict], k: int, encode: Encoder
) -> list[QueryFeatureRow]:
    fmt = answer_format(context.get("answer_format"))
    anticipated = anticipated_for(passes, k, fmt, context["context"])
    queries = context["queries"]
    sims = _similarities(
        [q["question"] for q in queries], [a.question for a in anticipated], encode
    )
    truncated = sum(p["truncated"] for p in passes if p["pass"] < k)
    rows = []
    for index, query in enumerate(queries):
        best = nearest(sims[index])
        cached = anticipated[best] if best is not None else None
        rows.append(
            QueryFeatureRow(
                context_id=context["id"],
                query_id=query["id"],
                sleep_passes=k,
                **request_features(sims[index], anticipated, context["context"], truncated),
                cached_answer=cached.answer if cached else "",
                cached_correct=bool(cached and fmt.grade(cached.answer, gold_of(query))),
                query_words=query_words(query["question"]),
            )
        )
    return rows


def _similarities(queries: list[str], anticipated: list[str], encode: Encoder) -> np.ndarray:
    if not anticipated:
        return np.zeros((len(queries), 0))
    vectors = encode(queries + anticipated)
    return vectors[: len(queries)] @ vectors[len(queries) :].T


def write_features(path: Path, rows: list[QueryFeatureRow]) -> None:
    write_rows(path, rows, QueryFeatureRow)


def read_features(path: Path) -> list[QueryFeatureRow]:
    return read_rows(path, QueryFeatureRow)
