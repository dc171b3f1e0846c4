"""`sleeptime report`: the paper's figures from stored outcomes only, no LLM calls.

For each outcome table: accuracy vs test-time tokens for test-time only and each
sleep budget (95% bootstrap intervals over contexts), the ratio of test-time
tokens at equal accuracy, amortized cost per query vs queries per context
(cost = t * test tokens + sleep tokens / queries) with its break-even point, the
same with prompt tokens charged (cached ones discounted), and the gain from
scaling k (and, with several budgets, the k curve: `training/k_curve.py`). The headline
says in words what it compares, and warns when the accuracies it compares sit at the floor.
`--prices FILE` adds dollars per query from a price table per model
(`training/dollar_report.py`). PNG plots (under `--out`, by default mlruns/reports/, never
beside the table), a JSON summary and an MLflow run with each rung's accuracy and tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from router.ladder import LADDER
from router.settings import load_settings
from training.dollar_report import dollar_lines, with_dollars
from training.k_curve import k_curve, k_curve_lines, read_cached
from training.outcomes import OUTCOMES, RUN, as_columns, read_outcomes
from training.price_table import PriceTable, load_prices
from training.stats import (
    Comparison,
    CurvePoint,
    compare,
    curve,
    first_per_context,
    full_cost_per_query,
    reaches,
    tokens_at_accuracy,
)

PAPER_QUERIES = 10  # the paper's Figure 9 headline: 10 queries share a context
# Below this accuracy, or with an interval reaching 0, a ratio "at equal accuracy" compares
# answers that are almost all wrong (issue 20: 0 of 40 right with full reasoning).
FLOOR = 0.1


def summarize(
    outcome_dir: Path, *, t: float, samples: int = 1000, prices: PriceTable | None = None
) -> dict[str, Any]:
    rows = read_outcomes(outcome_dir / OUTCOMES)
    cols = as_columns(rows)
    budgets = sorted(int(k) for k in np.unique(cols["sleep_passes"]))
    curves = {k: curve(cols, k, samples=samples) for k in budgets}
    comparisons = {k: compare(curves[0], curves[k]) for k in budgets if k > 0 and 0 in curves}
    dataset_queries = float(np.mean(first_per_context(cols)["queries_in_context"]))
    run = json.loads((outcome_dir / RUN).read_text()) if (outcome_dir / RUN).exists() else {}
    summary: dict[str, Any] = {
        "outcomes": str(outcome_dir),
        "dataset": str(cols["dataset"][0]) if len(cols["dataset"]) else "",
        "model": run.get("model", ""),
        "contexts": len(np.unique(cols["context_id"])),
        "queries": len(np.unique(cols["query_id"])),
        "queries_per_context": dataset_queries,
        "t": t,
        "curves": {str(k): [asdict(p) for p in points] for k, points in curves.items()},
        "comparisons": {
            str(k): _comparison_summary(c, t, dataset_queries, curves[0], curves[k])
            for k, c in comparisons.items()
            if c is not None
        },
        "k_scaling": _k_scaling(curves),
    }
    scaling = k_curve(cols, read_cached(outcome_dir), samples=samples)
    summary |= ({"k_curve": scaling} if scaling else {}) | _headline(summary)
    if prices is not None:
        summary = with_dollars(summary, rows, prices, summary["model"])
    return summary | {"headline": headline_words(summary), "warnings": floor_warnings(summary)}


def _comparison_summary(
    c: Comparison, t: float, n: float, base: list[CurvePoint], sleepy: list[CurvePoint]
) -> dict[str, Any]:
    queries = list(range(1, 21))
    return asdict(c) | {
        "amortized_cost_ratio_at_dataset_queries": c.amortized_cost_ratio(n, t),
        f"amortized_cost_ratio_at_{PAPER_QUERIES}_queries": c.amortized_cost_ratio(
            PAPER_QUERIES, t
        ),
        "break_even_queries": c.break_even_queries(t),
        "cost_curve": {
            "queries": queries,
            "test_only": [c.amortized_cost(q, t)[0] for q in queries],
            "with_sleep": [c.amortized_cost(q, t)[1] for q in queries],
        },
        "full_cost_ratio_at_dataset_queries": _full_cost_ratio(base, sleepy, c.accuracy, n, t),
        **at_best_test_only(base, sleepy, n, t),
        "at_each_sleep_point": _at_each_point(base, sleepy, t, n),
    }


def at_best_test_only(
    base: list[CurvePoint], sleepy: list[CurvePoint], n: float, t: float
) -> dict[str, Any]:
    """The ratios read at the best accuracy test-time only reaches, so that "equal accuracy"
    cannot be met at a low accuracy alone. The sleep curve reaches it when one of its points
    is at or above the lower end of that accuracy's 95% interval; the cheapest such point is
    compared with the best test-only point. Both ratios are None when it never does."""
    if not base:
        return {"best_test_only_accuracy": None, "token_ratio_at_best_test_only_accuracy": None,
                "full_cost_ratio_at_best_test_only_accuracy": None}  # fmt: skip
    best = max(base, key=lambda p: (p.accuracy.mean, -p.test_tokens))
    reaching = [p for p in sleepy if reaches(p.accuracy.mean, best.accuracy)]
    out: dict[str, Any] = {
        "best_test_only_accuracy": asdict(best.accuracy) | {"rung": best.rung},
        "token_ratio_at_best_test_only_accuracy": None,
        "full_cost_ratio_at_best_test_only_accuracy": None,
        "sleep_point_at_best_test_only_accuracy": None,
    }
    if not reaching:
        return out
    by_tokens = min(reaching, key=lambda p: p.test_tokens)
    by_cost = min(reaching, key=lambda p: full_cost_per_query(p, n, t))
    cost = full_cost_per_query(by_cost, n, t)
    return out | {
        "token_ratio_at_best_test_only_accuracy": (
            best.test_tokens / by_tokens.test_tokens if by_tokens.test_tokens else None
        ),
        "full_cost_ratio_at_best_test_only_accuracy": (
            full_cost_per_query(best, n, t) / cost if cost else None
        ),
        "sleep_point_at_best_test_only_accuracy": {
            "rung": by_cost.rung,
            "accuracy": asdict(by_cost.accuracy),
        },
    }


def _at_each_point(
    base: list[CurvePoint], sleepy: list[CurvePoint], t: float, n: float
) -> list[dict[str, Any]]:
    """The curves read at every accuracy the sleep-time curve reaches (the paper's figures
    compare whole curves): test tokens test-time only needs for it, and the cost ratio."""
    rows = []
    for p in sleepy:
        needed = tokens_at_accuracy(base, p.accuracy.mean)
        cost = t * p.test_tokens + p.sleep_tokens / n
        rows.append(
            {
                "rung": p.rung,
                "accuracy": p.accuracy.mean,
                "test_tokens_with_sleep": p.test_tokens,
                "test_tokens_test_only": needed,
                "token_ratio": needed / p.test_tokens if needed and p.test_tokens else None,
                "amortized_cost_ratio": t * needed / cost if needed is not None and cost else None,
            }
        )
    return rows


def _full_cost_ratio(
    base: list[CurvePoint], sleepy: list[CurvePoint], accuracy: float, n: float, t: float
) -> float | None:
    """Cheapest point of each curve that reaches `accuracy`, prompt tokens charged too."""

    def cheapest(points: list[CurvePoint]) -> float | None:
        costs = [full_cost_per_query(p, n, t) for p in points if p.accuracy.mean >= accuracy - 1e-9]
        return min(costs, default=None)

    b, s = cheapest(base), cheapest(sleepy)
    return b / s if b is not None and s else None


def _k_scaling(curves: dict[int, list[CurvePoint]]) -> dict[str, dict[str, float]]:
    """Accuracy per rung for each k, and its gain over test-time only at the same rung."""
    base = {p.rung: p.accuracy.mean for p in curves.get(0, [])}
    out: dict[str, dict[str, float]] = {}
    for k, points in curves.items():
        for p in points:
            out.setdefault(f"rung_{p.rung}", {})[f"k{k}"] = p.accuracy.mean
            if k and p.rung in base:
                out[f"rung_{p.rung}"][f"gain_k{k}"] = p.accuracy.mean - base[p.rung]
    return out


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    comparisons = summary["comparisons"]
    if not comparisons:
        none = {"test_token_ratio_at_equal_accuracy": None, "amortized_cost_ratio": None}
        return none | _best_at_best_test_only({})
    best_k = max(comparisons, key=lambda k: comparisons[k]["token_ratio"])
    best = comparisons[best_k]
    return {
        "best_sleep_passes": int(best_k),
        "equal_accuracy": best["accuracy"],
        "test_token_ratio_at_equal_accuracy": best["token_ratio"],
        "amortized_cost_ratio": best[f"amortized_cost_ratio_at_{PAPER_QUERIES}_queries"],
        "amortized_cost_queries": PAPER_QUERIES,
        "amortized_cost_ratio_at_dataset_queries": best["amortized_cost_ratio_at_dataset_queries"],
        "full_cost_ratio_at_dataset_queries": best["full_cost_ratio_at_dataset_queries"],
        "break_even_queries": best["break_even_queries"],
        **_best_at_best_test_only(comparisons),
    }


def _best_at_best_test_only(comparisons: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The sleep budget whose curve reaches the best test-only accuracy at the lowest full
    cost; its ratios, or None for both when no budget's curve reaches it."""
    names = ("token_ratio_at_best_test_only_accuracy", "full_cost_ratio_at_best_test_only_accuracy")
    reached = [c for c in comparisons.values() if c[names[1]] is not None]
    if not reached:
        return dict.fromkeys(names)
    best = max(reached, key=lambda c: c[names[1]])
    return {name: best[name] for name in names}


def headline_words(summary: dict[str, Any]) -> str | None:
    """What the headline ratio compares, in words: which rungs on c and on c', at which
    accuracy, and what it leaves out."""
    if not summary["comparisons"]:
        return None
    k = str(summary["best_sleep_passes"])
    c = summary["comparisons"][k]
    costs = c["cost_curve"]
    at_one = costs["test_only"][0] / costs["with_sleep"][0] if costs["with_sleep"][0] else None
    return (
        f"headline: mean test-time tokens per query at equal accuracy {c['accuracy']:.3f} (the "
        f"highest both curves reach): {c['test_tokens_test_only']:.1f} on the raw context c "
        f"(test-time only, {_reached_at(summary['curves']['0'], c['accuracy'])}) vs "
        f"{c['test_tokens_with_sleep']:.1f} on the learned context c' after {k} sleep "
        f"pass{'' if k == '1' else 'es'} ({_reached_at(summary['curves'][k], c['accuracy'])}): "
        f"{_times(c['token_ratio'], 'fewer', 'more')} tokens, sleep-time tokens not counted. "
        f"Counting them (t = {summary['t']}), the cost per query is "
        f"{_times(at_one, 'lower', 'higher')} at 1 query per context and "
        f"{_times(c[f'amortized_cost_ratio_at_{PAPER_QUERIES}_queries'], 'lower', 'higher')} "
        f"at {PAPER_QUERIES} queries per context"
    )


def _times(ratio: float | None, under: str, over: str) -> str:
    """A ratio read the way it goes: 2.00x lower, or 1.25x higher (not 0.80x lower)."""
    if ratio is None or ratio <= 0:
        return "n/a"
    return f"{ratio:.2f}x {under}" if ratio >= 1 else f"{1 / ratio:.2f}x {over}"


def _reached_at(points: list[dict[str, Any]], accuracy: float) -> str:
    """The rung(s) at which a curve reaches `accuracy`, in words."""
    names = [_rung_name(p["rung"]) for p in _points_read(points, accuracy)]
    if len(names) == 2:
        return f"between {names[0]} and {names[1]}"
    return names[0] if names else "not reached"


def _points_read(points: list[dict[str, Any]], accuracy: float) -> list[dict[str, Any]]:
    """The frontier point(s) `tokens_at_accuracy` reads for `accuracy`: the rung reaching it,
    and the one below where it interpolates between two."""
    below = None
    for p in sorted(points, key=lambda p: p["test_tokens"]):
        if below is not None and p["accuracy"]["mean"] <= below["accuracy"]["mean"]:
            continue
        if p["accuracy"]["mean"] >= accuracy - 1e-12:
            exact = below is None or p["accuracy"]["mean"] <= accuracy + 1e-12
            return [p] if exact else [below, p]
        below = p
    return []


def _rung_name(level: int) -> str:
    names = {r.level: r.name for r in LADDER}
    return f"rung {level} '{names[level]}'" if level in names else f"rung {level}"


def floor_warnings(summary: dict[str, Any]) -> list[str]:
    """A warning when the headline's accuracies sit at the floor: below FLOOR, or a compared
    rung's 95% interval includes 0."""
    if not summary["comparisons"]:
        return []
    k = str(summary["best_sleep_passes"])
    accuracy = summary["comparisons"][k]["accuracy"]
    compared = [p for key in ("0", k) for p in _points_read(summary["curves"][key], accuracy)]
    at_zero = [p for p in compared if p["accuracy"]["low"] <= 0]
    if accuracy >= FLOOR and not at_zero:
        return []
    return [
        f"the headline compares accuracies at the floor: equal accuracy {accuracy:.3f}"
        + (f" (below {FLOOR})" if accuracy < FLOOR else "")
        + (
            f", {len(at_zero)} compared rung(s) with a 95% interval that includes 0"
            if at_zero
            else ""
        )
        + "; its ratios compare answers that are almost all wrong and say little about "
        "sleep-time compute"
    ]


def render_text(summary: dict[str, Any]) -> str:
    lines = [
        f"== {summary['dataset']} ({summary['model']}): {summary['contexts']} contexts, "
        f"{summary['queries']} queries, {summary['queries_per_context']:.2f} per context",
        f"{'budget':<16}{'rung':>5}{'accuracy [95% CI]':>24}{'test tok':>10}"
        f"{'prompt':>8}{'cut':>6}{'sleep tok':>10}",
    ]
    for k, points in summary["curves"].items():
        for p in points:
            a = p["accuracy"]
            name = "test-time only" if k == "0" else f"sleep k={k}"
            lines.append(
                f"{name:<16}{p['rung']:>5}{a['mean']:>9.3f} [{a['low']:.3f}, {a['high']:.3f}]"
                f"{p['test_tokens']:>10.1f}{p['prompt_tokens']:>8.0f}"
                f"{p['truncated']:>6.2f}{p['sleep_tokens']:>10.1f}"
            )
    for k, c in summary["comparisons"].items():
        be = c["break_even_queries"]
        lines.append(
            f"k={k}: at accuracy {c['accuracy']:.3f}: {c['test_tokens_test_only']:.1f} vs "
            f"{c['test_tokens_with_sleep']:.1f} test tokens ({c['token_ratio']:.2f}x); amortized "
            f"cost ratio {c['amortized_cost_ratio_at_dataset_queries']:.2f}x at "
            f"{summary['queries_per_context']:.1f} queries/context, "
            f"{c[f'amortized_cost_ratio_at_{PAPER_QUERIES}_queries']:.2f}x at {PAPER_QUERIES}; "
            f"break-even {'never' if be is None else f'{be:.2f} queries'}; with prompt tokens "
            f"{_fmt(c['full_cost_ratio_at_dataset_queries'])}x"
        )
        for row in c["at_each_sleep_point"]:
            head = (
                f"   k={k} rung {row['rung']}: accuracy {row['accuracy']:.3f} with "
                f"{row['test_tokens_with_sleep']:.1f} test tokens; "
            )
            if row["test_tokens_test_only"] is None:
                lines.append(head + "test-time only never reaches it")
                continue
            lines.append(
                head + f"test-time only needs {_fmt(row['test_tokens_test_only'])} "
                f"({_fmt(row['token_ratio'])}x tokens, {_fmt(row['amortized_cost_ratio'])}x "
                f"amortized cost at {summary['queries_per_context']:.0f} queries/context)"
            )
    lines += k_curve_lines(summary.get("k_curve")) + dollar_lines(summary)
    if summary["headline"]:
        lines.append(summary["headline"])
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sleeptime report", description=__doc__)
    parser.add_argument("outcomes", nargs="+", type=Path, help="folders written by collect")
    parser.add_argument("--t", type=float, default=None, help="test/sleep token price ratio")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("mlruns/reports"),
        help="plots go to OUT/<table name>/ (default mlruns/reports, not committed)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    parser.add_argument(
        "--prices", type=Path, default=None, help='dollars per model: a TOML [models."NAME"] file'
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap samples per interval"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="log no MLflow run")
    parser.add_argument("--config", default=None, help="a settings TOML file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    t = args.t if args.t is not None else settings.test_token_price_ratio
    prices = load_prices(args.prices) if args.prices else None
    from training.report_plots import write_plots

    summaries = []
    for folder in args.outcomes:
        summary = summarize(folder, t=t, samples=args.bootstrap, prices=prices)
        paths = [] if args.no_plots else write_plots(summary, args.out / folder.name)
        summary["plots"] = [str(p) for p in paths]
        for warning in summary["warnings"]:
            print(f"warning: {folder.name}: {warning}", file=sys.stderr)
        if not args.no_mlflow:
            from training.report_tracking import log_report

            summary["mlflow_run_id"] = log_report(summary, paths, settings.mlflow_uri)
        summaries.append(summary)
        if not args.json:
            print(render_text(summary) + "\n")
    if args.json:
        json.dump(summaries[0] if len(summaries) == 1 else summaries, sys.stdout, indent=2)
        print()
    return 0
