"""The ratios read at the best accuracy test-time only reaches (issue 17, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.commands.report import at_best_test_only, main
from training.stats import CurvePoint, Interval, full_cost_per_query


def point(k: int, rung: int, mean: float, low: float, tokens: float, prompt: float = 100.0):
    return CurvePoint(
        sleep_passes=k,
        rung=rung,
        accuracy=Interval(mean, low, mean + (mean - low)),
        test_tokens=tokens,
        prompt_tokens=prompt,
        cached_prompt_tokens=0.0,
        sleep_tokens=300.0 if k else 0.0,
        sleep_prompt_tokens=200.0 if k else 0.0,
        truncated=0.0,
        queries=100,
    )


BASE = [point(0, 0, 0.30, 0.20, 5), point(0, 1, 0.45, 0.35, 60), point(0, 3, 0.70, 0.60, 300)]


def test_a_sleep_curve_that_stops_below_the_best_accuracy_has_no_ratio():
    sleepy = [point(1, 0, 0.45, 0.35, 5), point(1, 1, 0.55, 0.45, 50)]  # beats rung 1 only
    out = at_best_test_only(BASE, sleepy, n=6.0, t=10.0)
    assert out["best_test_only_accuracy"]["mean"] == pytest.approx(0.70)
    assert out["best_test_only_accuracy"]["rung"] == 3
    assert out["token_ratio_at_best_test_only_accuracy"] is None
    assert out["full_cost_ratio_at_best_test_only_accuracy"] is None


def test_reaching_the_interval_reads_the_cheapest_sleep_point_that_does():
    sleepy = [point(1, 0, 0.62, 0.52, 6), point(1, 3, 0.72, 0.62, 280)]
    out = at_best_test_only(BASE, sleepy, n=6.0, t=10.0)
    assert out["token_ratio_at_best_test_only_accuracy"] == pytest.approx(300 / 6)
    cheap = full_cost_per_query(sleepy[0], 6.0, 10.0)
    assert out["full_cost_ratio_at_best_test_only_accuracy"] == pytest.approx(
        full_cost_per_query(BASE[2], 6.0, 10.0) / cheap
    )
    assert out["sleep_point_at_best_test_only_accuracy"]["rung"] == 0


def test_a_point_just_below_the_lower_end_does_not_count():
    out = at_best_test_only(BASE, [point(1, 0, 0.599, 0.5, 6)], n=6.0, t=10.0)
    assert out["token_ratio_at_best_test_only_accuracy"] is None


def test_the_text_says_so_when_test_time_only_never_reaches_a_sleep_point(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On TAT-QA the learned context at rung 0 beats every test-time rung."""
    table = Path(__file__).resolve().parents[3] / "benchmarks" / "tatqa-qwen2.5-coder-1.5b"
    assert main([str(table), "--no-plots", "--no-mlflow"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("   k=")]
    assert lines and not any("n/a" in ln for ln in lines)
    assert any(ln.endswith("test-time only never reaches it") for ln in lines)
