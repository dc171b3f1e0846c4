"""The figures say what they show: titles, axis units, n, intervals; the pure helpers behind
them (the Pareto front, point labels, quintile bins) are right on their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import plots
from training.stats import Comparison, CurvePoint, Interval, quintile_gain


def texts(fig) -> str:
    """Every title, axis label, tick label and legend entry of a figure, in one string."""
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.get_xticklabels()]
        legend = ax.get_legend()
        parts += [t.get_text() for t in legend.get_texts()] if legend else []
        parts += [child.get_text() for child in ax.texts]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plots.pyplot().close("all")


def test_pareto_front_keeps_what_nothing_beats_cheapest_first() -> None:
    points = [(0.5, 100.0), (0.4, 50.0), (0.45, 120.0), (0.6, 300.0), (0.6, 200.0), (0.1, 10.0)]
    assert plots.pareto_front(points) == [(0.1, 10.0), (0.4, 50.0), (0.5, 100.0), (0.6, 200.0)]
    assert plots.pareto_front([]) == []
    assert plots.pareto_front([(0.3, 5.0), (0.3, 5.0)]) == [(0.3, 5.0)]


def test_short_label_names_builtins_briefly() -> None:
    assert plots.short_label("test-time-only(rung=3)") == "test-time-only r3"
    assert plots.short_label("always-sleep(passes=2, rung=0)") == "always-sleep k=2 r0"
    assert plots.short_label("threshold(x=0.5)") == "threshold x=0.5"
    assert plots.short_label("learned") == "learned"


def test_cost_label_says_the_unit_and_the_price_ratio() -> None:
    assert "10 x test tokens" in plots.cost_label(10)
    assert "completion-token units" in plots.cost_label(4, charge_prompt=True)
    assert "prompt tokens charged" in plots.cost_label(4, charge_prompt=True)


def test_pareto_figure_keeps_train_trials_and_test_points_apart() -> None:
    trials = [(0.2, 30.0), (0.3, 200.0), (0.25, 400.0), (0.4, 1000.0)]
    builtins = [(0.1, 35.0, "test-time-only(rung=0)"), (0.35, 2700.0, "test-time-only(rung=3)")]
    fig = plots.pareto_figure(
        trials, builtins, (0.45, 1300.0), title="study s", test_note="10 held-out contexts"
    )
    train_ax, test_ax = fig.axes
    assert "train split" in train_ax.get_title() and "test split" in test_ax.get_title()
    assert "10 held-out contexts" in test_ax.get_title()
    assert fig._suptitle.get_text() == "study s"
    front = next(line for line in train_ax.get_lines() if "Pareto front" in line.get_label())
    assert list(front.get_xdata()) == [30.0, 200.0, 1000.0]
    assert list(front.get_ydata()) == [0.2, 0.3, 0.4]
    all_text = texts(fig)
    for expected in ("Optuna trials (n=4)", "test-time-only r0", "test-time-only r3"):
        assert expected in all_text
    assert "trained policy: accuracy 0.450" in all_text
    assert "cost per query" in train_ax.get_xlabel() and "accuracy" in train_ax.get_ylabel()


def test_pareto_keeps_its_old_call_and_writes_a_png(tmp_path: Path) -> None:
    path = plots.pareto([(0.2, 30.0)], [(0.1, 35.0, "x")], (0.3, 40.0), tmp_path / "p.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert plots.pareto([], [], (0.3, 40.0), tmp_path / "empty.png").exists()


def test_quintile_panel_bins_like_quintile_gain_with_n_and_intervals() -> None:
    rng = np.random.default_rng(1)
    scores, gains = rng.random(23), rng.choice([-1.0, 0.0, 1.0], size=23)
    panel = plots.quintile_panel(scores, gains, "t", "x")
    assert [g.mean for g in panel.gains] == pytest.approx(quintile_gain(scores, gains))
    assert panel.n == [5, 5, 5, 4, 4]
    assert all(g.low <= g.mean <= g.high for g in panel.gains)
    lows = [low for low, _ in panel.score_ranges]
    assert lows == sorted(lows)


def test_quintile_figure_has_a_title_n_and_an_interval_per_bar() -> None:
    panel = plots.quintile_panel(np.arange(10.0), np.array([0, 1] * 5, dtype=float), "p", "x")
    fig = plots.quintile_figure([panel, panel], "Gain by quintile", "accuracy gain")
    assert fig._suptitle.get_text() == "Gain by quintile"
    assert len(fig.axes) == 2
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0].startswith("Q1, n=2") and "gain +0.50\n[+0.00, +1.00]" in ticks[0]
    assert fig.axes[0].get_ylabel() == "accuracy gain"
    error_bars = [c for c in fig.axes[0].containers if getattr(c, "errorbar", None)]
    assert error_bars  # one interval per bar


def test_quintile_tick_handles_an_empty_bin() -> None:
    empty = Interval(float("nan"), float("nan"), float("nan"))
    assert plots.quintile_tick(2, 0, (float("nan"), float("nan")), empty) == "Q3, n=0\nno contexts"
    panel = plots.quintile_panel(np.arange(3.0), np.zeros(3), "p", "x")
    assert panel.n == [1, 1, 1, 0, 0]
    plots.quintile_figure([panel], "t", "y")  # draws without an error


def _point(k: int, rung: int, accuracy: float, tokens: float) -> CurvePoint:
    return CurvePoint(
        k,
        rung,
        Interval(accuracy, accuracy - 0.1, accuracy + 0.1),
        tokens,
        100,
        0,
        200 * k,
        0,
        0.0,
        56,
    )


def test_report_figures_name_what_they_show() -> None:
    curves = {0: [_point(0, 0, 0.1, 3.5), _point(0, 3, 0.5, 260)], 1: [_point(1, 0, 0.2, 3.4)]}
    fig = plots.accuracy_vs_tokens_figure(curves, "gsm8k · 56 contexts")
    text = texts(fig)
    assert "Accuracy against test-time tokens" in text and "gsm8k · 56 contexts" in text
    assert "n=56 queries per point" in text and "95% bootstrap interval" in text
    assert "tokens per query" in fig.axes[0].get_xlabel()
    comparison = Comparison(1, 0.3, 150.0, 15.0, 190.0, 10.0)
    fig = plots.cost_vs_queries_figure([comparison], range(1, 11), 10, "gsm8k-multi")
    assert "Amortized cost per query" in fig.axes[0].get_title()
    assert "completion-token units" in fig.axes[0].get_ylabel()
    assert "queries per context" in fig.axes[0].get_xlabel()
