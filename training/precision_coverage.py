"""The cached route's precision-coverage: how much it can serve, and how often wrongly.

The cached route serves the nearest anticipated answer when P(it is right) clears a
threshold, so each threshold trades coverage (the share of queries served from cache)
against the share of those served answers that are wrong. The issue's bar: at most 5 in
100 wrong at a threshold that serves at least 30% of the queries.

Two details keep the figures honest. Scores tie (a calibrated logistic over a one-pass
table, where agreement is always 1.0, gives few distinct probabilities) and the router
serves `score >= threshold`, ties together, so the curve has one point per distinct
score, never a cut inside a tie. And a threshold needs enough served answers for its
wrong share to mean anything (`min_served`: with fewer than 20, one wrong answer is
already more than 5 in 100, and none wrong is luck). Intervals resample whole contexts:
a context's queries share its sleep passes, so they are not independent draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIN_SERVED = 20  # the fewest served answers at which one wrong one is 5 in 100


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # serve from cache when the score is at least this
    served: int
    coverage: float  # share of all queries served from cache
    wrong: float  # share of the served answers that are wrong (0 when none is served)


def coverage_curve(labels: Sequence[bool], scores: Sequence[float]) -> list[CoveragePoint]:
    """One point per distinct score, highest threshold (least served) first."""
    right, score = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    order = np.argsort(-score, kind="mergesort")
    ranked, wrong = score[order], np.cumsum(~right[order])
    ends = np.nonzero(np.r_[ranked[1:] != ranked[:-1], True])[0] if len(ranked) else []
    return [
        CoveragePoint(
            float(ranked[i]), int(i + 1), (i + 1) / len(ranked), float(wrong[i] / (i + 1))
        )
        for i in ends
    ]


def best_threshold(
    curve: Sequence[CoveragePoint], max_wrong: float, min_served: int = MIN_SERVED
) -> CoveragePoint | None:
    """The largest coverage at which at most `max_wrong` of the served answers are wrong."""
    ok = [p for p in curve if p.wrong <= max_wrong and p.served >= min_served]
    return max(ok, key=lambda p: p.served) if ok else None


def served_at(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> CoveragePoint:
    """What a threshold chosen elsewhere serves here."""
    right, served = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float) >= threshold
    n = int(served.sum())
    wrong = float((~right[served]).mean()) if n else 0.0
    return CoveragePoint(threshold, n, n / len(right) if len(right) else 0.0, wrong)


def thin(curve: Sequence[CoveragePoint], points: int = 40) -> list[CoveragePoint]:
    """At most `points` of the curve, evenly by coverage, the ends kept: for JSON."""
    if len(curve) <= points:
        return list(curve)
    picks = np.unique(np.round(np.linspace(0, len(curve) - 1, points)).astype(int))
    return [curve[i] for i in picks]


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """`training.stats.roc_auc` (Mann-Whitney, ties at their mean rank) in numpy alone: the
    bootstrap computes it a thousand times per figure."""
    right = np.asarray(labels, dtype=bool)
    positives, negatives = int(right.sum()), int((~right).sum())
    if not positives or not negatives:
        return float("nan")
    _, inverse, counts = np.unique(
        np.asarray(scores, dtype=float), return_inverse=True, return_counts=True
    )
    mean_rank = np.cumsum(counts) - (counts - 1) / 2
    ranked = mean_rank[inverse.reshape(-1)][right].sum()
    return float((ranked - positives * (positives + 1) / 2) / (positives * negatives))


def context_resamples(groups: Sequence[str], samples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of `samples` bootstrap draws of whole contexts, with replacement."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.nonzero(inverse == g)[0] for g in range(inverse.max(initial=-1) + 1)]
    rng = np.random.default_rng(seed)
    for _ in range(samples if members else 0):
        yield np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])


def interval(values: Sequence[float]) -> tuple[float, float]:
    """95% percentile interval, ignoring draws where the figure is undefined (one class)."""
    kept = np.asarray(values, dtype=float)
    kept = kept[~np.isnan(kept)]
    if not len(kept):
        return float("nan"), float("nan")
    return float(np.percentile(kept, 2.5)), float(np.percentile(kept, 97.5))


def bootstrap(
    figure: Callable[[np.ndarray, np.ndarray], float],
    labels: Sequence[bool],
    scores: Sequence[float],
    groups: Sequence[str],
    *,
    samples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% interval of `figure(labels, scores)` over resampled contexts."""
    right, score = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    draws = [figure(right[ix], score[ix]) for ix in context_resamples(groups, samples, seed)]
    return interval(draws)


def group_folds(groups: Sequence[str], folds: int, seed: int) -> list[np.ndarray]:
    """Row indices of `folds` parts, each holding whole contexts (for out-of-fold scores)."""
    ids = np.unique(np.asarray(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    parts = np.array_split(ids, min(folds, len(ids)))
    return [np.nonzero(np.isin(np.asarray(groups), part))[0] for part in parts if len(part)]


def cached_figures(
    labels: Sequence[bool],
    scores: Sequence[float],
    groups: Sequence[str],
    *,
    max_wrong: float,
    min_served: int = MIN_SERVED,
    chosen: float | None = None,
    samples: int = 1000,
) -> dict[str, Any]:
    """The held-out figures of one cached-answer estimator: AUC with its interval over
    contexts, the curve, its best threshold at `max_wrong`, and what a threshold `chosen`
    on the training contexts serves here (the honest one: not picked on these rows)."""
    curve = coverage_curve(labels, scores)
    best = best_threshold(curve, max_wrong, min_served)
    auc_low, auc_high = bootstrap(roc_auc, labels, scores, groups, samples=samples)
    return {
        "rows": len(labels),
        "contexts": len(set(groups)),
        "base_rate": float(np.mean(labels)) if len(labels) else float("nan"),
        "auc": roc_auc(np.asarray(labels), np.asarray(scores)),
        "auc_interval": [auc_low, auc_high],
        "max_wrong": max_wrong,
        "min_served": min_served,
        "best": asdict(best) if best else None,
        "chosen": _chosen(labels, scores, groups, chosen, samples),
        "curve": [asdict(p) for p in thin(curve)],
    }


def _chosen(
    labels: Sequence[bool],
    scores: Sequence[float],
    groups: Sequence[str],
    threshold: float | None,
    samples: int,
) -> dict[str, Any] | None:
    if threshold is None:
        return None
    point = served_at(labels, scores, threshold)

    def coverage(y: np.ndarray, s: np.ndarray) -> float:
        return served_at(y, s, threshold).coverage

    def wrong(y: np.ndarray, s: np.ndarray) -> float:
        served = served_at(y, s, threshold)
        return served.wrong if served.served else float("nan")

    return asdict(point) | {
        "coverage_interval": list(bootstrap(coverage, labels, scores, groups, samples=samples)),
        "wrong_interval": list(bootstrap(wrong, labels, scores, groups, samples=samples)),
    }
