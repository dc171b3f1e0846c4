"""`sleeptime report` in MLflow: one run per report, in the experiment `sleeptime-benchmarks`,
with each rung's accuracy (and interval) and tokens as metrics named by route and rung, the
headline in words as its description, the outcome table as its dataset input, the summary
and the plots as artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.ladder import LADDER
from training.outcomes import OUTCOMES

EXPERIMENT = "sleeptime-benchmarks"


def rung_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Each curve point as metrics named by route and rung: `full/rung3-steps/accuracy` on
    the raw context, `enriched-k1/rung0-answer/test_tokens` after one sleep pass."""
    names = {r.level: r.name for r in LADDER}
    metrics = {}
    for k, points in summary["curves"].items():
        route = "full" if k == "0" else f"enriched-k{k}"
        for p in points:
            prefix = f"{route}/rung{p['rung']}-{names.get(p['rung'], 'custom')}"
            metrics |= {
                f"{prefix}/accuracy": p["accuracy"]["mean"],
                f"{prefix}/accuracy_low": p["accuracy"]["low"],
                f"{prefix}/accuracy_high": p["accuracy"]["high"],
                f"{prefix}/test_tokens": p["test_tokens"],
                f"{prefix}/sleep_tokens": p["sleep_tokens"],
            }
    return metrics


def log_report(summary: dict[str, Any], paths: list[Path], uri: str) -> str:
    from training import tracking

    table = Path(summary["outcomes"])
    with tracking.run(uri, EXPERIMENT, f"report {table.name}") as active:
        tracking.log_params(
            {k: summary[k] for k in ("dataset", "model", "contexts", "queries", "t", "outcomes")}
        )
        tracking.set_tags({"mlflow.note.content": _description(summary)})
        tracking.log_metrics(
            {
                k: v
                for k, v in summary.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            | rung_metrics(summary)
        )
        tracking.log_table_input(table / OUTCOMES, table.name, "evaluation", {})
        tracking.log_dict(summary, "summary.json")
        for path in paths:
            tracking.log_artifact(path)
        return str(active.info.run_id)


def _description(summary: dict[str, Any]) -> str:
    return (
        f"`sleeptime report` of `{Path(summary['outcomes']).name}` ({summary['model']}, "
        f"{summary['contexts']} contexts, {summary['queries']} queries). "
        + (summary["headline"] or "No sleep-time budget to compare.")
        + "".join(f"\n\n**Warning**: {w}." for w in summary["warnings"])
    )
