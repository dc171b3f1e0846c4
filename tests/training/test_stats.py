import numpy as np
import pytest

from training.stats import (
    Comparison,
    CurvePoint,
    Interval,
    bootstrap_accuracy,
    compare,
    curve,
    full_cost_per_query,
    tokens_at_accuracy,
)


def point(k: int, rung: int, acc: float, tokens: float, sleep: float = 0.0) -> CurvePoint:
    return CurvePoint(k, rung, Interval(acc, acc, acc), tokens, 100.0, 0.0, sleep, 50.0, 0.0, 10)


def test_bootstrap_resamples_whole_contexts() -> None:
    # Two contexts: one with 9 right answers, one with 1 wrong one. Resampling contexts
    # (not queries) makes the interval span 0.0 .. 1.0.
    correct = np.array([1] * 9 + [0])
    contexts = np.array(["a"] * 9 + ["b"])
    interval = bootstrap_accuracy(correct, contexts, samples=2000)
    assert interval.mean == pytest.approx(0.9)
    assert interval.low == 0.0 and interval.high == 1.0


def test_bootstrap_interval_narrows_with_more_contexts() -> None:
    rng = np.random.default_rng(1)
    small = bootstrap_accuracy(rng.random(20) < 0.5, np.arange(20))
    large = bootstrap_accuracy(rng.random(2000) < 0.5, np.arange(2000))
    assert (large.high - large.low) < (small.high - small.low) / 5
    assert large.low < 0.5 < large.high


def test_tokens_at_accuracy_interpolates_on_the_frontier() -> None:
    points = [
        point(0, 0, 0.2, 5),
        point(0, 1, 0.1, 50),
        point(0, 2, 0.6, 105),
        point(0, 3, 0.8, 305),
    ]
    assert tokens_at_accuracy(points, 0.2) == 5
    assert tokens_at_accuracy(points, 0.4) == pytest.approx(55)  # halfway from (5, .2) to (105, .6)
    assert tokens_at_accuracy(points, 0.7) == pytest.approx(205)
    assert tokens_at_accuracy(points, 0.1) == 5  # nothing cheaper was measured
    assert tokens_at_accuracy(points, 0.9) is None


def test_compare_reads_both_curves_at_the_accuracy_both_reach() -> None:
    test_only = [point(0, 0, 0.1, 5), point(0, 3, 0.7, 300)]
    with_sleep = [point(1, 0, 0.5, 5, sleep=250), point(1, 2, 0.6, 100, sleep=250)]
    c = compare(test_only, with_sleep)
    assert c is not None and c.accuracy == pytest.approx(0.6)
    assert c.test_tokens_test_only == pytest.approx(5 + 295 * 5 / 6)
    assert c.test_tokens_with_sleep == pytest.approx(100)
    assert c.token_ratio == pytest.approx((5 + 295 * 5 / 6) / 100)


def test_amortized_cost_and_break_even() -> None:
    c = Comparison(
        1,
        0.6,
        test_tokens_test_only=300,
        test_tokens_with_sleep=10,
        sleep_tokens=2900,
        token_ratio=30,
    )
    assert c.amortized_cost(1, 10) == (3000, 100 + 2900)
    assert c.amortized_cost_ratio(10, 10) == pytest.approx(3000 / (100 + 290))
    assert c.break_even_queries(10) == pytest.approx(1.0)
    worse = Comparison(1, 0.6, 10, 20, 100, 0.5)
    assert worse.break_even_queries(10) is None


def test_full_cost_charges_prompt_tokens_with_cache_discount() -> None:
    p = CurvePoint(
        1,
        0,
        Interval(1, 1, 1),
        10,
        prompt_tokens=400,
        cached_prompt_tokens=200,
        sleep_tokens=300,
        sleep_prompt_tokens=200,
        truncated=0,
        queries=1,
    )
    expected = 10 * (10 + 0.25 * 200 + 0.125 * 200) + (300 + 0.25 * 200) / 2
    assert full_cost_per_query(p, 2, 10) == pytest.approx(expected)


def test_curve_groups_by_rung_and_counts_sleep_tokens_once_per_context() -> None:
    cols = {
        "context_id": np.array(["a", "a", "b", "a", "a", "b"]),
        "sleep_passes": np.array([1, 1, 1, 0, 0, 0]),
        "rung": np.array([0, 0, 0, 0, 0, 0]),
        "correct": np.array([1, 1, 0, 0, 1, 0]),
        "truncated": np.array([0, 0, 1, 0, 0, 0]),
        "test_completion_tokens": np.array([2, 4, 6, 10, 20, 30]),
        "test_prompt_tokens": np.array([300, 300, 300, 100, 100, 100]),
        "test_cached_prompt_tokens": np.array([0, 0, 0, 0, 0, 0]),
        "sleep_completion_tokens": np.array([200, 200, 400, 0, 0, 0]),
        "sleep_prompt_tokens": np.array([100, 100, 100, 0, 0, 0]),
    }
    (sleepy,) = curve(cols, 1, samples=50)
    assert sleepy.accuracy.mean == pytest.approx(2 / 3)
    assert sleepy.test_tokens == pytest.approx(4)
    assert sleepy.sleep_tokens == pytest.approx(300)  # (200 + 400) / 2 contexts
    assert sleepy.truncated == pytest.approx(1 / 3)
    (base,) = curve(cols, 0, samples=50)
    assert base.accuracy.mean == pytest.approx(1 / 3) and base.sleep_tokens == 0
