"""The k curve on small hand-built tables: accuracy and cached correctness per sleep budget
with intervals over contexts, the paired gain from k = 1 to the best k, adaptive budgets."""

from __future__ import annotations

import pytest
from outcome_rows import outcome_row

from training.k_curve import cached_outcomes, k_curve, k_curve_lines
from training.outcome_features import QueryFeatureRow
from training.outcomes import Outcome, as_columns

CONTEXTS = 10


def right(k: int, context: int, query: int) -> bool:
    """q0 is right on the first half of the contexts at every k; q1 is wrong at k = 1, right
    at k = 4 everywhere, and at k = 2 on the first three contexts only."""
    if query == 0:
        return context < 5
    return {1: False, 2: context < 3, 4: True}[k]


def table(budgets: tuple[int, ...] = (1, 2, 4), cap: int = 99) -> list[Outcome]:
    rows = []
    for c in range(CONTEXTS):
        for q in range(2):
            for k in (0, *budgets):
                ok = right(k, c, q) if k else False
                rows.append(outcome_row(f"c{c}", f"c{c}/q{q}", k, 0, ok, 5, sleep_prompt=50 * k,
                                        sleep=100 * k, sleep_latency=1.0,
                                        sleep_passes_spent=min(k, cap)))  # fmt: skip
    return rows


def feature(c: int, q: int, k: int, ok: bool) -> QueryFeatureRow:
    return QueryFeatureRow(f"c{c}", f"c{c}/q{q}", k, 0.9, 0.1, "1", 1, 1.0, ok, 1, 1.0, 1.0,
                           0, 10, 2)  # fmt: skip


def test_one_sleep_budget_has_no_curve() -> None:
    assert k_curve(as_columns(table((1,))), {}, samples=50) is None


def test_each_budget_reads_accuracy_tokens_and_passes_with_intervals_over_contexts() -> None:
    curve = k_curve(as_columns(table()), {}, samples=200)
    assert curve["mode"] == "fixed"
    points = {p["sleep_passes"]: p for p in curve["points"]}
    assert sorted(points) == [1, 2, 4]
    for k, mean in ((1, 0.25), (2, 0.4), (4, 0.75)):
        a = points[k]["accuracy"]["0"]
        assert a["mean"] == pytest.approx(mean)
        assert a["low"] < a["mean"] < a["high"]  # contexts differ: the interval is not a point
        assert points[k]["sleep_tokens"] == 100 * k and points[k]["passes_spent"] == k
        assert points[k]["contexts"] == CONTEXTS and points[k]["cached_correct"] is None


def test_the_gain_to_the_best_k_is_paired_over_contexts() -> None:
    gain = k_curve(as_columns(table()), {}, samples=200)["gains"]["rung_0"]
    assert (gain["from_k"], gain["best_k"], gain["largest_k"], gain["queries"]) == (1, 4, 4, 20)
    # every context gains exactly one of its two queries: resampling contexts moves both
    # budgets together, so the difference has no spread although each accuracy has plenty
    assert gain["gain"] == pytest.approx({"mean": 0.5, "low": 0.5, "high": 0.5})
    assert gain["gain_to_largest_k"] == gain["gain"]


def test_a_table_whose_contexts_stopped_early_is_adaptive() -> None:
    cols = as_columns(table(cap=2))  # every context settled after 2 passes
    curve = k_curve(cols, {}, samples=50)
    assert curve["mode"] == "adaptive"
    assert [p["passes_spent"] for p in curve["points"]] == [1.0, 2.0, 2.0]


def test_cached_correctness_comes_from_the_features_per_budget() -> None:
    rows = [feature(c, q, k, k == 4 or (q == 0 and c < 5)) for c in range(10) for q in range(2)
            for k in (1, 2, 4)]  # fmt: skip
    curve = k_curve(as_columns(table()), cached_outcomes(rows), samples=200)
    cached = [p["cached_correct"]["mean"] for p in curve["points"]]
    assert cached == pytest.approx([0.25, 0.25, 1.0])
    gain = curve["gains"]["cached"]
    assert gain["best_k"] == 4 and gain["gain"]["mean"] == pytest.approx(0.75)
    text = "\n".join(k_curve_lines(curve))
    assert "k curve (fixed sleep budgets):" in text
    assert "k=4: 400 sleep tokens/context, 4.00 passes spent" in text
    assert "gain cached from k=1 to the best k=4: +0.750" in text


def test_features_missing_for_a_budget_give_no_cached_gain() -> None:
    rows = [feature(c, 0, 1, True) for c in range(10)]
    curve = k_curve(as_columns(table()), cached_outcomes(rows), samples=50)
    assert curve["points"][0]["cached_correct"]["mean"] == 1.0
    assert curve["points"][1]["cached_correct"] is None
    assert curve["gains"]["cached"] is None
