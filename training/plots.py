"""The one module that imports matplotlib: PNG figures of benchmark curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from training.stats import Comparison, CurvePoint


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


def quintile_bars(gains: Sequence[float], label: str, path: Path) -> Path:
    """The paper's predictability analysis: realized gain per predictability quintile."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.bar([f"Q{i + 1}" for i in range(len(gains))], gains, color="tab:blue")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("context predictability quintile (low -> high)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, plt, path)


def pareto(
    trials: Sequence[tuple[float, float]],
    builtins: Sequence[tuple[float, float, str]],
    chosen: tuple[float, float],
    path: Path,
) -> Path:
    """Accuracy against cost: every trial (train), built-ins and the chosen policy (test)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if trials:
        ax.scatter(
            [c for _, c in trials],
            [a for a, _ in trials],
            s=6,
            alpha=0.3,
            label="trials (train split)",
        )
    ax.scatter(
        [c for _, c, _ in builtins],
        [a for a, _, _ in builtins],
        marker="s",
        s=18,
        color="tab:orange",
        label="built-ins (test split)",
    )
    ax.scatter(
        [chosen[1]],
        [chosen[0]],
        marker="*",
        s=160,
        color="tab:red",
        label="trained policy (test split)",
    )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("cost per query (t x test tokens + amortized sleep tokens)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, plt, path)
