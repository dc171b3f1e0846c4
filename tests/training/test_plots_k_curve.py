"""The k-curve figure says what it shows: sleep-time tokens with each tick's k, accuracy with
its interval, n per point; the report's summary becomes its lines."""

from __future__ import annotations

from training import plots
from training.report_plots import k_curve_lines
from training.stats import Interval


def texts(fig) -> str:
    ax = fig.axes[0]
    parts = [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    parts += [t.get_text() for t in ax.get_xticklabels()]
    return "\n".join(parts + [t.get_text() for t in ax.get_legend().get_texts()])


def summary_curve() -> dict:
    def point(k: int, tokens: float, cached: dict | None) -> dict:
        accuracy = {"0": {"mean": 0.2 * k, "low": 0.1 * k, "high": 0.25 * k}}
        return {"sleep_passes": k, "contexts": 50, "sleep_tokens": tokens,
                "accuracy": accuracy, "cached_correct": cached}  # fmt: skip

    cached = {"mean": 0.3, "low": 0.2, "high": 0.4}
    return {"mode": "adaptive", "points": [point(1, 180.0, cached), point(2, 390.0, None)]}


def test_the_summary_becomes_a_line_per_rung_and_one_for_the_cached_answer() -> None:
    lines = k_curve_lines(summary_curve())
    rung, cached = list(lines)
    assert rung.startswith("accuracy on c' at rung 0 (adaptive k)") and "n=50 contexts" in rung
    assert lines[rung] == [
        (1, 180.0, Interval(0.2, 0.1, 0.25)),
        (2, 390.0, Interval(0.4, 0.2, 0.5)),
    ]
    assert cached.startswith("cached answer right") and lines[cached] == [
        (1, 180.0, Interval(0.3, 0.2, 0.4))
    ]


def test_the_figure_names_its_axes_ticks_and_lines(tmp_path) -> None:
    fig = plots.k_curve_figure(k_curve_lines(summary_curve()), "gsm8k-multi · m · 50 contexts")
    words = texts(fig)
    assert "Sleep-time scaling" in words and "gsm8k-multi · m · 50 contexts" in words
    assert "mean sleep-time completion tokens per context" in words
    assert "95% bootstrap interval over contexts" in words
    assert "180\nk=1" in words and "390\nk=2" in words
    assert "cached answer right" in words
    plots.pyplot().close(fig)
    path = plots.k_curve(k_curve_lines(summary_curve()), "t", tmp_path / "k" / "k_curve.png")
    assert path.stat().st_size > 10_000
