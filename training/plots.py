"""The one module that imports matplotlib: PNG figures of benchmark curves.

Every figure is meant to be read without the docs: a title that says what is
plotted on what data, axis labels with units, n where a point or bar pools
several items, and the 95% interval where the data has one. The pure helpers
(`pareto_front`, `short_label`, `quintile_panel`, `quintile_tick`) compute what is drawn and are
tested on their own; each drawing function builds its figure in `*_figure` and
saves it, so tests can read titles and labels back from the figure object.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.selection import parse_label
from training.stats import Comparison, CurvePoint, Interval, bootstrap_accuracy

PAPER_COST = "cost per query (completion-token units: t x test tokens + sleep tokens / queries)"


def cost_label(t: float, charge_prompt: bool = False) -> str:
    """The x axis of a cost plot: which cost, in which unit, at which price ratio t."""
    if charge_prompt:
        return (
            f"cost per query (completion-token units, prompt tokens charged: {t:g} x "
            "(test + prompt price) + sleep / queries)"
        )
    return f"cost per query (completion-token units: {t:g} x test tokens + sleep tokens / queries)"


def pyplot() -> Any:
    """matplotlib, headless, imported on first use: the one place the project imports it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> Path:
    """Write `fig` as a PNG (creating its folder) and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return path


# ---- report: the paper's Figures 3-4 and 9 ----------------------------------------------


def accuracy_vs_tokens_figure(curves: dict[int, list[CurvePoint]], title: str) -> Any:
    """Accuracy against mean test-time tokens, one line per k, 95% intervals, n per line."""
    fig, ax = pyplot().subplots(figsize=(7.0, 4.8))
    for k, points in sorted(curves.items()):
        label = "test-time only (raw context c)" if k == 0 else f"sleep-time k={k} (learned c')"
        ax.errorbar(
            [p.test_tokens for p in points],
            [p.accuracy.mean for p in points],
            yerr=_yerr([p.accuracy for p in points]),
            marker="o",
            capsize=3,
            label=f"{label}, n={_n_text([p.queries for p in points])} queries per point",
        )
        for p in points:
            ax.annotate(
                f"r{p.rung}",
                (p.test_tokens, p.accuracy.mean),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, -9),
            )
    ax.set_xscale("symlog", linthresh=1)  # log above 1 token; a mean of 0 still plots
    ax.set_xlabel("mean test-time completion tokens per query (log scale; rN = rung N)")
    ax.set_ylabel("accuracy (share of queries right)\nbars: 95% bootstrap interval over contexts")
    ax.set_title(f"Accuracy against test-time tokens\n{title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def accuracy_vs_tokens(curves: dict[int, list[CurvePoint]], title: str, path: Path) -> Path:
    """The paper's Figures 3-4: accuracy against mean test-time tokens, one line per k."""
    return save(accuracy_vs_tokens_figure(curves, title), path)


def cost_vs_queries_figure(
    comparisons: Sequence[Comparison], queries: Sequence[int], t: float, title: str
) -> Any:
    """Amortized cost per query against queries per context, at the accuracy both reach."""
    fig, ax = pyplot().subplots(figsize=(7.0, 4.8))
    for index, comparison in enumerate(comparisons):
        base = [comparison.amortized_cost(n, t)[0] for n in queries]
        sleepy = [comparison.amortized_cost(n, t)[1] for n in queries]
        if index == 0:
            ax.plot(
                queries, base, "k--", label=f"test-time only, accuracy {comparison.accuracy:.2f}"
            )
        ax.plot(
            queries,
            sleepy,
            marker=".",
            label=f"sleep-time k={comparison.sleep_passes}, accuracy {comparison.accuracy:.2f}",
        )
    ax.set_ylim(bottom=0)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("queries per context (the sleep-time work is shared by all of them)")
    ax.set_ylabel(
        f"cost per query (completion-token units)\n= {t:g} x test tokens + sleep / queries"
    )
    ax.set_title(f"Amortized cost per query at equal accuracy (t = {t:g})\n{title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def cost_vs_queries(
    comparisons: Sequence[Comparison], queries: Sequence[int], t: float, title: str, path: Path
) -> Path:
    """The paper's Figure 9: amortized cost per query against queries per context."""
    return save(cost_vs_queries_figure(comparisons, queries, t, title), path)


def _yerr(intervals: Sequence[Interval]) -> list[list[float]]:
    """Error bar lengths below and above each mean, for `errorbar`."""
    return [[i.mean - i.low for i in intervals], [i.high - i.mean for i in intervals]]


def k_curve_figure(lines: dict[str, Sequence[tuple[int, float, Interval]]], title: str) -> Any:
    """Accuracy (per learned rung) and cached-answer correctness against mean sleep-time
    tokens per context: each line's (k, tokens, interval) points; the lines are nudged
    apart so their intervals stay legible, and each tick says its k."""
    fig, ax = pyplot().subplots(figsize=(7.0, 4.8))
    ticks = {x: k for points in lines.values() for k, x, _ in points}
    nudge = 0.01 * (max(ticks, default=0) - min(ticks, default=0) or 1)
    for index, (label, points) in enumerate(lines.items()):
        shift = (index - (len(lines) - 1) / 2) * nudge
        intervals = [i for _, _, i in points]
        ax.errorbar([x + shift for _, x, _ in points], [i.mean for i in intervals],
                    yerr=_yerr(intervals), fmt="s--" if label.startswith("cached") else "o-",
                    capsize=3, label=label)  # fmt: skip
    ax.set_xticks(list(ticks), [f"{x:.0f}\nk={k}" for x, k in ticks.items()], fontsize=8)
    ax.set_xlabel("mean sleep-time completion tokens per context (k = sleep passes)")
    ax.set_ylabel("share of queries right\nbars: 95% bootstrap interval over contexts")
    ax.set_title(f"Sleep-time scaling: accuracy against sleep-time tokens\n{title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def k_curve(
    lines: dict[str, Sequence[tuple[int, float, Interval]]], title: str, path: Path
) -> Path:
    """The paper's sleep-time scaling figure, written to `path`."""
    return save(k_curve_figure(lines, title), path)


def _n_text(counts: Sequence[int]) -> str:
    low, high = min(counts, default=0), max(counts, default=0)
    return str(low) if low == high else f"{low}-{high}"


# ---- predictability: the paper's quintile analysis ---------------------------------------


@dataclass(frozen=True)
class Bars:
    """One panel of the quintile plot: a bar per bin, its 95% interval, its n and score range."""

    title: str
    xlabel: str
    gains: Sequence[Interval]
    n: Sequence[int]
    score_ranges: Sequence[tuple[float, float]]


def quintile_parts(scores: np.ndarray, bins: int = 5) -> list[np.ndarray]:
    """Indices per score quintile, lowest first: the bins `stats.quintile_gain` averages."""
    order = np.argsort(np.asarray(scores, dtype=float), kind="mergesort")
    return np.array_split(order, bins)


def quintile_panel(scores: np.ndarray, gains: np.ndarray, title: str, xlabel: str) -> Bars:
    """Contexts binned by score: each bin's mean gain with its 95% interval (bootstrap over
    the bin's contexts), its n and the range of scores it holds."""
    parts = quintile_parts(scores)
    return Bars(
        title=title,
        xlabel=xlabel,
        gains=[bootstrap_accuracy(np.asarray(gains)[p], p) for p in parts],
        n=[len(p) for p in parts],
        score_ranges=[
            (float(scores[p].min()), float(scores[p].max())) if len(p) else (np.nan, np.nan)
            for p in parts
        ],
    )


def quintile_tick(index: int, n: int, score_range: tuple[float, float], gain: Interval) -> str:
    """A bar's tick label: its quintile, how many contexts, the scores it holds, its gain."""
    if n == 0:
        return f"Q{index + 1}, n=0\nno contexts"
    low, high = score_range
    return (
        f"Q{index + 1}, n={n}\n{low:.3g} to {high:.3g}\n"
        f"gain {gain.mean:+.2f}\n[{gain.low:+.2f}, {gain.high:+.2f}]"
    )


def quintile_figure(panels: Sequence[Bars], title: str, ylabel: str) -> Any:
    """The paper's predictability analysis: realized gain per predictability quintile."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(8.0, 6.4 * len(panels)), 5.0), sharey=True, squeeze=False
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        _bars(ax, panel)
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=10)
    return fig


def _bars(ax: Any, panel: Bars) -> None:
    rows = zip(panel.n, panel.score_ranges, panel.gains, strict=True)
    ticks = [quintile_tick(i, n, r, g) for i, (n, r, g) in enumerate(rows)]
    means = [0.0 if math.isnan(g.mean) else g.mean for g in panel.gains]
    errors = [
        [_span(g.mean, g.low) for g in panel.gains],
        [_span(g.high, g.mean) for g in panel.gains],
    ]
    ax.bar(ticks, means, yerr=errors, capsize=4, color="tab:blue", alpha=0.85)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title(textwrap.fill(panel.title, 90), fontsize=9)
    ax.set_xlabel(textwrap.fill(panel.xlabel, 100), fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(alpha=0.3, axis="y")


def _span(a: float, b: float) -> float:
    return 0.0 if math.isnan(a) or math.isnan(b) else max(0.0, a - b)


def quintile_bars(panels: Sequence[Bars], title: str, ylabel: str, path: Path) -> Path:
    """The quintile figure, one panel per predictability measure, written to `path`."""
    return save(quintile_figure(panels, title, ylabel), path)


# ---- train: the Pareto plot ---------------------------------------------------------------


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (accuracy, cost) points no other point beats on both (higher accuracy at no more
    cost), cheapest first: accuracy rises strictly along it."""
    front: list[tuple[float, float]] = []
    for accuracy, cost in sorted(points, key=lambda p: (p[1], -p[0])):
        if not front or accuracy > front[-1][0]:
            front.append((accuracy, cost))
    return front


def short_label(name: str) -> str:
    """`always-sleep(passes=1, rung=0)` -> `always-sleep k=1 r0`: a built-in's point label."""
    base, params = parse_label(name)
    short = {"rung": "r{}", "passes": "k={}"}
    return " ".join([base] + [short.get(k, f"{k}={{}}").format(v) for k, v in params])


def pareto_figure(
    trials: Sequence[tuple[float, float]],
    builtins: Sequence[tuple[float, float, str]],
    chosen: tuple[float, float],
    *,
    title: str = "Policy search: accuracy against cost",
    cost_label: str = PAPER_COST,
    train_note: str = "",
    test_note: str = "held-out contexts",
    chosen_train: tuple[float, float] | None = None,
) -> Any:
    """Two panels sharing both axes: the trials on the train split with their Pareto front;
    the built-ins (named) and the trained policy on the test split."""
    fig, (train_ax, test_ax) = pyplot().subplots(
        1, 2, figsize=(12.0, 5.0), sharex=True, sharey=True
    )
    _trials_panel(train_ax, trials, chosen_train, train_note)
    _test_panel(test_ax, builtins, chosen, test_note)
    for ax in (train_ax, test_ax):
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel(f"{cost_label}, log scale", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    train_ax.set_ylabel("accuracy (share of queries right)")
    fig.suptitle(title, fontsize=10)
    return fig


def _trials_panel(
    ax: Any,
    trials: Sequence[tuple[float, float]],
    chosen_train: tuple[float, float] | None,
    note: str,
) -> None:
    ax.scatter(
        [c for _, c in trials],
        [a for a, _ in trials],
        s=6,
        alpha=0.3,
        color="tab:blue",
        label=f"Optuna trials (n={len(trials)})",
    )
    front = pareto_front(trials)
    ax.plot(
        [c for _, c in front],
        [a for a, _ in front],
        "-o",
        color="tab:blue",
        markersize=3,
        drawstyle="steps-post",
        label=f"Pareto front of the trials ({len(front)} points)",
    )
    if chosen_train is not None:
        ax.scatter(
            [chosen_train[1]],
            [chosen_train[0]],
            marker="*",
            s=160,
            color="tab:red",
            label="trained policy",
        )
    ax.set_title("train split: every trial" + (f" ({note})" if note else ""), fontsize=9)


def _test_panel(
    ax: Any, builtins: Sequence[tuple[float, float, str]], chosen: tuple[float, float], note: str
) -> None:
    ax.scatter(
        [c for _, c, _ in builtins],
        [a for a, _, _ in builtins],
        marker="s",
        s=22,
        color="tab:orange",
        label=f"built-in policies (n={len(builtins)})",
    )
    ordered = sorted(builtins, key=lambda b: (b[1], b[0]))
    for index, (accuracy, cost, name) in enumerate(ordered):
        ax.annotate(  # neighbours alternate above and below, so close points stay legible
            short_label(name),
            (cost, accuracy),
            fontsize=7,
            textcoords="offset points",
            xytext=(5, 5 if index % 2 == 0 else -11),
        )
    front = pareto_front([(a, c) for a, c, _ in builtins])
    ax.plot(
        [c for _, c in front],
        [a for a, _ in front],
        ":",
        color="tab:orange",
        drawstyle="steps-post",
        label="Pareto front of the built-ins",
    )
    ax.scatter(
        [chosen[1]],
        [chosen[0]],
        marker="*",
        s=200,
        color="tab:red",
        zorder=3,
        label=f"trained policy: accuracy {chosen[0]:.3f}, cost {chosen[1]:.0f}",
    )
    ax.set_title(
        "test split: built-ins and the trained policy" + (f" ({note})" if note else ""), fontsize=9
    )


def pareto(
    trials: Sequence[tuple[float, float]],
    builtins: Sequence[tuple[float, float, str]],
    chosen: tuple[float, float],
    path: Path,
    **options: Any,
) -> Path:
    """Accuracy against cost: trials (train split) beside built-ins and the chosen policy
    (test split); `options` are `pareto_figure`'s keywords."""
    return save(pareto_figure(trials, builtins, chosen, **options), path)
