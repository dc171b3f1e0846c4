"""The one module that imports matplotlib: PNG figures of benchmark curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from training.metrics import Comparison, CurvePoint


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_vs_tokens(curves: dict[int, list[CurvePoint]], title: str, path: Path) -> Path:
    """The paper's Figures 3-4: accuracy against mean test-time tokens, one line per k."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for k, points in sorted(curves.items()):
        xs = [p.test_tokens for p in points]
        ys = [p.accuracy.mean for p in points]
        errors = [
            [p.accuracy.mean - p.accuracy.low for p in points],
            [p.accuracy.high - p.accuracy.mean for p in points],
        ]
        label = "test-time only (c)" if k == 0 else f"sleep-time k={k} (c')"
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=label)
        for p in points:
            ax.annotate(
                str(p.rung),
                (p.test_tokens, p.accuracy.mean),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, -8),
            )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("mean test-time completion tokens per query (rung numbers beside points)")
    ax.set_ylabel("accuracy (95% bootstrap interval over contexts)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def cost_vs_queries(
    comparisons: Sequence[Comparison], queries: Sequence[int], t: float, title: str, path: Path
) -> Path:
    """The paper's Figure 9: amortized cost per query against queries per context."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for index, comparison in enumerate(comparisons):
        base = [comparison.amortized_cost(n, t)[0] for n in queries]
        sleepy = [comparison.amortized_cost(n, t)[1] for n in queries]
        if index == 0:
            ax.plot(queries, base, "k--", label=f"test-time only @ acc {comparison.accuracy:.2f}")
        ax.plot(
            queries,
            sleepy,
            marker=".",
            label=f"sleep k={comparison.sleep_passes} @ acc {comparison.accuracy:.2f}",
        )
    ax.set_xlabel("queries per context")
    ax.set_ylabel(f"cost per query = {t:g} x test tokens + sleep tokens / queries")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
