"""Benchmark metrics over outcome tables: pure numpy, no model, no IO.

Accuracy intervals bootstrap over contexts (all queries of a context move
together, since they share its sleep-time work and its difficulty). Curves are
accuracy against mean test-time completion tokens, one point per rung, as in
the paper's Figures 3-4; "at equal accuracy" reads each curve's monotone
frontier with linear interpolation between rungs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies import Prices

Columns = dict[str, np.ndarray]

# Prices relative to one completion token (OpenAI-style: input 1/4, cached input 1/8 of output).


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class CurvePoint:
    sleep_passes: int
    rung: int
    accuracy: Interval
    test_tokens: float  # mean completion tokens per query
    prompt_tokens: float
    cached_prompt_tokens: float
    sleep_tokens: float  # mean sleep completion tokens per context
    sleep_prompt_tokens: float
    truncated: float  # share of answers cut off by the rung's budget
    queries: int


def select(cols: Columns, mask: np.ndarray) -> Columns:
    return {k: v[mask] for k, v in cols.items()}


def bootstrap_accuracy(
    correct: np.ndarray, contexts: np.ndarray, *, samples: int = 1000, seed: int = 0
) -> Interval:
    """95% percentile interval of pooled accuracy, resampling whole contexts."""
    if len(correct) == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    _, index = np.unique(contexts, return_inverse=True)
    hits = np.bincount(index, weights=correct.astype(float))
    counts = np.bincount(index).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(counts), size=(samples, len(counts)))
    accuracies = hits[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(accuracies, [2.5, 97.5])
    return Interval(float(hits.sum() / counts.sum()), float(low), float(high))


def curve(cols: Columns, sleep_passes: int, *, samples: int = 1000) -> list[CurvePoint]:
    points = []
    on_budget = cols["sleep_passes"] == sleep_passes
    for level in np.unique(cols["rung"][on_budget]):
        part = select(cols, on_budget & (cols["rung"] == level))
        per_context = first_per_context(part)
        points.append(
            CurvePoint(
                sleep_passes=sleep_passes,
                rung=int(level),
                accuracy=bootstrap_accuracy(part["correct"], part["context_id"], samples=samples),
                test_tokens=float(part["test_completion_tokens"].mean()),
                prompt_tokens=float(part["test_prompt_tokens"].mean()),
                cached_prompt_tokens=float(part["test_cached_prompt_tokens"].mean()),
                sleep_tokens=float(per_context["sleep_completion_tokens"].mean()),
                sleep_prompt_tokens=float(per_context["sleep_prompt_tokens"].mean()),
                truncated=float(part["truncated"].mean()),
                queries=len(part["correct"]),
            )
        )
    return sorted(points, key=lambda p: p.test_tokens)


def first_per_context(cols: Columns) -> Columns:
    """One row per context (its first): for values every query of a context shares."""
    _, first = np.unique(cols["context_id"], return_index=True)
    return {k: v[first] for k, v in cols.items()}


def tokens_at_accuracy(points: list[CurvePoint], target: float) -> float | None:
    """Fewest mean test tokens at which the curve reaches `target` (interpolated)."""
    frontier = _frontier(points)
    if not frontier or frontier[-1][1] < target - 1e-12:
        return None
    previous = None  # below the cheapest rung there is nothing measured to interpolate
    for tokens, accuracy in frontier:
        if accuracy >= target - 1e-12:
            if previous is None or accuracy == previous[1]:
                return tokens
            share = (target - previous[1]) / (accuracy - previous[1])
            return previous[0] + share * (tokens - previous[0])
        previous = (tokens, accuracy)
    return None


def _frontier(points: list[CurvePoint]) -> list[tuple[float, float]]:
    """Points that beat every cheaper point: the best accuracy reachable per budget."""
    frontier: list[tuple[float, float]] = []
    for p in sorted(points, key=lambda p: p.test_tokens):
        if not frontier or p.accuracy.mean > frontier[-1][1]:
            frontier.append((p.test_tokens, p.accuracy.mean))
    return frontier


@dataclass(frozen=True)
class Comparison:
    sleep_passes: int
    accuracy: float  # the accuracy both curves reach
    test_tokens_test_only: float
    test_tokens_with_sleep: float
    sleep_tokens: float  # per context
    token_ratio: float

    def amortized_cost(self, queries: float, t: float) -> tuple[float, float]:
        """(test-time only, with sleep) paper cost per query."""
        prices = Prices(test_ratio=t)
        with_sleep = prices.paper_cost(self.test_tokens_with_sleep, self.sleep_tokens, queries)
        return prices.paper_cost(self.test_tokens_test_only), with_sleep

    def amortized_cost_ratio(self, queries: float, t: float) -> float:
        base, with_sleep = self.amortized_cost(queries, t)
        return base / with_sleep if with_sleep else float("inf")

    def break_even_queries(self, t: float) -> float | None:
        """Queries per context from which sleep-time compute is cheaper; None: never."""
        saved = t * (self.test_tokens_test_only - self.test_tokens_with_sleep)
        return self.sleep_tokens / saved if saved > 0 else None


def compare(test_only: list[CurvePoint], with_sleep: list[CurvePoint]) -> Comparison | None:
    """Test-time tokens each side needs for the highest accuracy both reach."""
    if not test_only or not with_sleep:
        return None
    target = min(max(p.accuracy.mean for p in test_only), max(p.accuracy.mean for p in with_sleep))
    base, sleepy = tokens_at_accuracy(test_only, target), tokens_at_accuracy(with_sleep, target)
    if base is None or sleepy is None:
        return None
    return Comparison(
        sleep_passes=with_sleep[0].sleep_passes,
        accuracy=target,
        test_tokens_test_only=base,
        test_tokens_with_sleep=sleepy,
        sleep_tokens=with_sleep[0].sleep_tokens,
        token_ratio=base / sleepy if sleepy > 0 else float("inf"),
    )


def reaches(accuracy: float, best: Interval | dict) -> bool:
    """Whether a sleep-time point's accuracy reaches the best test-time-only accuracy: at or
    above the lower end of its 95% interval. One rule for every ratio read there (tokens,
    full cost, dollars), so the ratios compare the same points."""
    low = best["low"] if isinstance(best, dict) else best.low
    return accuracy >= low - 1e-9


def full_cost_per_query(point: CurvePoint, queries: float, t: float) -> float:
    """Cost that also charges prompt tokens (cached ones at a discount) on both phases."""
    return Prices(test_ratio=t).full_cost(
        point.test_tokens,
        point.prompt_tokens,
        point.cached_prompt_tokens,
        point.sleep_tokens,
        point.sleep_prompt_tokens,
        queries,
    )


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), 1-based."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    rank = np.empty(len(values))
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            rank[order[start:end]] = (start + end + 1) / 2
            start = end
    return rank


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (Mann-Whitney)."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    r = ranks(np.asarray(scores, dtype=float))
    return float((r[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((np.asarray(probabilities) - np.asarray(labels, dtype=float)) ** 2))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(np.asarray(a, dtype=float)), ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def coverage_at_precision(
    labels: np.ndarray, scores: np.ndarray, max_wrong: float
) -> tuple[float, float]:
    """Largest share of items servable (score >= threshold) with a wrong rate <= max_wrong.

    Returns (coverage, threshold); (0, inf) when no threshold qualifies.
    """
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    wrong = np.cumsum(~np.asarray(labels, dtype=bool)[order])
    served = np.arange(1, len(order) + 1)
    ok = wrong / served <= max_wrong
    if not ok.any():
        return 0.0, float("inf")
    last = int(np.nonzero(ok)[0].max())
    return float(served[last] / len(order)), float(np.asarray(scores)[order][last])


def precision_at_coverage(
    labels: np.ndarray, scores: np.ndarray, coverage: float
) -> tuple[float, float]:
    """Share right among the top `coverage` share of items by score, and that threshold."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    n = max(1, int(np.ceil(coverage * len(order))))
    top = np.asarray(labels, dtype=bool)[order[:n]]
    return float(top.mean()), float(np.asarray(scores)[order][n - 1])


def quintile_gain(scores: np.ndarray, gains: np.ndarray, bins: int = 5) -> list[float]:
    """Mean realized gain in each score quintile, lowest predictability first."""
    order = np.argsort(np.asarray(scores, dtype=float), kind="mergesort")
    return [
        float(np.mean(np.asarray(gains)[part])) if len(part) else float("nan")
        for part in np.array_split(order, bins)
    ]
