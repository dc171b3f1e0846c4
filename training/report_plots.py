"""`report`'s PNG figures, drawn from its JSON summary alone (so a stored summary redraws
them): accuracy against test-time tokens, amortized cost against queries per context, and
for a table with several sleep budgets the k curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.stats import Comparison, CurvePoint, Interval


def write_plots(summary: dict[str, Any], out: Path) -> list[Path]:
    from training import plots

    curves = {
        int(k): [CurvePoint(**(p | {"accuracy": Interval(**p["accuracy"])})) for p in ps]
        for k, ps in summary["curves"].items()
    }
    title = f"{summary['dataset']} · {summary['model']} · {summary['contexts']} contexts"
    paths = [plots.accuracy_vs_tokens(curves, title, out / "accuracy_vs_test_tokens.png")]
    comparisons = [
        Comparison(**{k: v for k, v in c.items() if k in Comparison.__dataclass_fields__})
        for c in summary["comparisons"].values()
    ]
    if comparisons:
        paths.append(
            plots.cost_vs_queries(
                comparisons,
                list(range(1, 21)),
                summary["t"],
                title,
                out / "amortized_cost_vs_queries.png",
            )
        )
    if summary.get("k_curve"):
        lines = k_curve_lines(summary["k_curve"])
        paths.append(plots.k_curve(lines, title, out / "k_curve.png"))
    return paths


def k_curve_lines(curve: dict[str, Any]) -> dict[str, list[tuple[int, float, Interval]]]:
    """The k curve's lines: accuracy per learned rung, then cached correctness, each as
    (k, mean sleep tokens per context, interval) where that k has the measurement."""
    lines: dict[str, list[tuple[int, float, Interval]]] = {}
    counts = sorted({p["contexts"] for p in curve["points"]})
    n = f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]}-{counts[-1]}"
    for p in curve["points"]:
        at = (p["sleep_passes"], p["sleep_tokens"])
        for rung, accuracy in p["accuracy"].items():
            label = f"accuracy on c' at rung {rung} ({curve['mode']} k), {n} contexts per point"
            lines.setdefault(label, []).append((*at, Interval(**accuracy)))
    for p in curve["points"]:
        if p["cached_correct"] is not None:
            label = f"cached answer right (nearest anticipated answer), {n} contexts per point"
            lines.setdefault(label, []).append(
                (p["sleep_passes"], p["sleep_tokens"], Interval(**p["cached_correct"]))
            )
    return lines
