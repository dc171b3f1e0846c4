"""The cached route's precision-coverage figures on arrays whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from training import precision_coverage as pc
from training import stats
from training.precision_coverage import roc_auc


def test_a_perfect_score_serves_exactly_the_right_answers() -> None:
    labels = np.array([True] * 30 + [False] * 70)
    scores = np.where(labels, 0.9, 0.1) + np.linspace(0, 0.01, 100)
    curve = pc.coverage_curve(labels, scores)
    exact = pc.best_threshold(curve, max_wrong=0.0)
    assert exact is not None
    assert (exact.served, exact.coverage, exact.wrong) == (30, 0.3, 0.0)
    assert pc.served_at(labels, scores, exact.threshold) == exact
    assert pc.best_threshold(curve, max_wrong=0.05).served == 31  # 1 wrong in 31 is 3%


def test_a_tie_is_served_whole_never_cut_inside() -> None:
    """Three answers share a score and one is wrong: no threshold serves only the two right."""
    labels = [True, True, False, True, False]
    scores = [0.9, 0.9, 0.9, 0.5, 0.1]
    curve = pc.coverage_curve(labels, scores)
    assert [p.served for p in curve] == [3, 4, 5]
    assert curve[0].wrong == pytest.approx(1 / 3) and curve[0].threshold == 0.9
    assert pc.best_threshold(curve, max_wrong=0.05, min_served=1) is None


def test_a_few_lucky_answers_are_not_a_threshold() -> None:
    labels = [True] * 5 + [False] * 95
    scores = np.linspace(1, 0, 100)
    curve = pc.coverage_curve(labels, scores)
    assert pc.best_threshold(curve, max_wrong=0.05) is None  # 5 served: too few to tell
    assert pc.best_threshold(curve, max_wrong=0.05, min_served=5).served == 5


def test_nothing_served_is_nothing_wrong() -> None:
    point = pc.served_at([True, False], [0.2, 0.3], threshold=0.5)
    assert (point.served, point.coverage, point.wrong) == (0, 0.0, 0.0)
    assert pc.coverage_curve([], []) == []


def test_thinning_keeps_both_ends() -> None:
    curve = pc.coverage_curve(np.arange(500) % 3 == 0, np.linspace(1, 0, 500))
    thin = pc.thin(curve, points=40)
    assert len(thin) <= 40 and thin[0] == curve[0] and thin[-1] == curve[-1]
    assert pc.thin(curve[:10]) == curve[:10]


def test_resamples_take_whole_contexts() -> None:
    groups = ["a", "a", "a", "b", "c", "c"]
    for draw in pc.context_resamples(groups, samples=50, seed=1):
        picked = [groups[i] for i in draw]
        for g in set(picked):
            assert picked.count(g) % groups.count(g) == 0
        assert len(set(draw.tolist()) & {0, 1, 2}) in (0, 3)


def test_the_auc_interval_is_over_contexts_and_skips_one_class_draws() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat([f"c{i}" for i in range(40)], 3)
    labels = rng.random(120) < 0.5
    perfect = pc.bootstrap(roc_auc, labels, labels.astype(float), groups, samples=200)
    assert perfect == (1.0, 1.0)
    noise = rng.random(120)
    low, high = pc.bootstrap(roc_auc, labels, noise, groups, samples=200)
    assert low < roc_auc(labels, noise) < high and 0.05 < high - low < 0.4
    assert pc.interval([float("nan")]) != pc.interval([float("nan")])  # nan: undefined


def test_folds_hold_whole_contexts_once() -> None:
    groups = [f"c{i // 2}" for i in range(22)]
    folds = pc.group_folds(groups, folds=5, seed=0)
    assert len(folds) == 5
    assert sorted(np.concatenate(folds).tolist()) == list(range(22))
    for fold in folds:
        inside = {groups[i] for i in fold}
        assert all(groups[i] not in inside for f in folds if f is not fold for i in f)


def test_figures_report_the_chosen_threshold_with_intervals() -> None:
    labels = np.random.default_rng(0).random(100) < 0.5
    groups = [f"c{i // 4}" for i in range(100)]
    figures = pc.cached_figures(labels, labels * 0.8 + 0.1, groups, max_wrong=0.05, chosen=0.5)
    assert figures["auc"] == 1.0 and figures["auc_interval"] == [1.0, 1.0]
    assert figures["best"]["coverage"] == labels.mean()
    chosen = figures["chosen"]
    assert (chosen["coverage"], chosen["wrong"]) == (labels.mean(), 0.0)
    low, high = chosen["coverage_interval"]
    assert chosen["wrong_interval"] == [0.0, 0.0] and low < labels.mean() < high
    assert pc.cached_figures(labels, labels * 1.0, groups, max_wrong=0.05)["chosen"] is None


def test_the_bootstraps_auc_is_the_stats_one() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.random(300), 1)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(stats.roc_auc(labels, scores))
    assert np.isnan(roc_auc([True, True], [0.1, 0.2]))
