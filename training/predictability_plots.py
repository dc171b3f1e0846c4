"""The figures of `sleeptime predictability`, drawn through `training.plots`.

`training.plots` is the one module that imports matplotlib; these compose its helpers
into the command's two PNGs, each read without the docs: the paper's quintile analysis
(gain of sleep-time compute by predictability), and the cached route's
precision-coverage curve (wrong share of served answers against coverage, the bar the
issue allows, and the thresholds marked where they fall).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.plots import pyplot, quintile_bars, quintile_panel, save
from training.precision_coverage import CoveragePoint


def quintiles(
    summary: dict[str, Any],
    held_out: tuple[np.ndarray, np.ndarray],
    by_logprob: tuple[np.ndarray, np.ndarray] | None,
    path: Path,
) -> Path:
    """The paper's quintile analysis: realized gain by predicted predictability."""
    panels = [
        quintile_panel(
            *held_out,
            f"scored by the context-level logistic estimator, fit on the other contexts "
            f"({summary['test_contexts']} held-out contexts)",
            f"contexts by predicted P(rung {summary['low_rung']} right on c'), in quintiles; "
            "ticks: score range, mean gain [95% interval]",
        )
    ]
    if by_logprob is not None:
        panels.append(
            quintile_panel(
                *by_logprob,
                f"the paper's log p(q|c), nothing fit ({summary['logprob_contexts']} contexts)",
                "contexts by mean per-token log p(query | context), in quintiles; "
                "ticks: score range, mean gain [95% interval]",
            )
        )
    tables = ", ".join(Path(f).name for f in summary["outcomes"])
    title = (
        "Gain of sleep-time compute by predictability quintile (the paper finds it rising)\n"
        f"{tables} · bars: mean gain per context, 95% bootstrap interval over contexts"
    )
    ylabel = (
        f"accuracy gain at rung {summary['low_rung']}: c' minus c\n(share of a context's queries)"
    )
    return quintile_bars(panels, title, ylabel, path)


LABELS = {"cached": "request-time features", "cached_logprob": "with log p(q|c)"}


def precision_coverage_figure(
    curves: Mapping[str, list[CoveragePoint]], summary: Mapping[str, Any], title: str
) -> Any:
    """Wrong share of served answers against coverage, one line per estimator; the bar at
    max_wrong, a ring at the threshold chosen on training contexts, a cross at the best."""
    fig, ax = pyplot().subplots(figsize=(7.0, 4.8))
    max_wrong = 0.05
    for name, curve in curves.items():
        figures = summary[name]
        max_wrong = figures["max_wrong"]
        line = ax.plot(
            [p.coverage for p in curve],
            [p.wrong for p in curve],
            marker=".",
            markersize=3,
            label=f"{LABELS.get(name, name)}: AUC {figures['auc']:.2f}, n={figures['rows']}",
        )[0]
        for key, marker, what in (
            ("chosen", "o", "chosen on training contexts"),
            ("best", "x", "best held-out"),
        ):
            point = figures.get(key)
            if point and point["served"]:
                ax.plot(
                    point["coverage"], point["wrong"], marker, color=line.get_color(),
                    fillstyle="none", label=f"  threshold {what}: {point['threshold']:.2f}",
                )  # fmt: skip
    ax.axhline(max_wrong, color="grey", linestyle="--", label=f"{max_wrong:.0%} wrong allowed")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("coverage: share of held-out (query, k) rows served from cache")
    ax.set_ylabel("share of served cached answers that are wrong")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return fig


def cached_curves(
    summary: Mapping[str, Any], curves: Mapping[str, list[CoveragePoint]], path: Path
) -> Path:
    """The cached route's curves of `sleeptime predictability`'s held-out contexts."""
    tables = ", ".join(Path(f).name for f in summary["outcomes"])
    title = (
        "Cached route: wrong answers served against coverage, by threshold on P(cached right)\n"
        f"{tables} · {summary['test_contexts']} held-out contexts, estimators fit on the others"
    )
    return save(precision_coverage_figure(curves, summary["cached_route"], title), path)
