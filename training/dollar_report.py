"""`report --prices FILE`: the report's curves priced in dollars, per model.

Relative costs (`policies.Prices`) price every token of every model alike; once a small
model answers on a large model's learned context, or sleep-time work runs at a batch
discount, only dollars compare the routes. Each outcome row is priced by
`price_table.dollar_parts` (the answering model's test-time tokens plus the context's
sleep-time bill at the sleep model's discounted price, over the context's queries), each
curve point gets its mean, and the dollar ratio is read at the best test-time-only
accuracy by the same rule as `full_cost_ratio_at_best_test_only_accuracy`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np

from training.outcomes import Outcome
from training.price_table import PriceTable, dollar_parts
from training.stats import reaches

RATIO = "dollar_cost_ratio_at_best_test_only_accuracy"
FULL_RATIO = "full_cost_ratio_at_best_test_only_accuracy"


def dollar_curves(rows: list[Outcome], prices: PriceTable, model: str) -> dict[str, list[dict]]:
    """Mean dollars per query at each (k, rung), split into test-time and sleep-time."""
    parts: dict[tuple[int, int], list[tuple[float, float, float]]] = defaultdict(list)
    for o in rows:
        test, share = dollar_parts(o, prices, model)
        # The row's total as row_dollars adds it, then its two parts.
        parts[(o.sleep_passes, o.rung)].append((test + share, test, share))
    curves: dict[str, list[dict]] = {}
    for (k, rung), values in sorted(parts.items()):
        total, test, sleep = np.mean(values, axis=0)
        curves.setdefault(str(k), []).append(
            {
                "rung": rung,
                "dollars_per_query": float(total),
                "test_dollars": float(test),
                "sleep_dollars": float(sleep),
                "queries": len(values),
            }
        )
    return curves


def at_best_test_only_dollars(
    comparison: dict[str, Any], base: dict[int, float], sleepy: list[dict[str, Any]],
    dollars: dict[int, float],
) -> dict[str, Any]:  # fmt: skip
    """The best test-only point's dollars over those of the cheapest sleep-time point at or
    above the lower end of its 95% interval; None when no sleep-time point gets there."""
    best = comparison.get("best_test_only_accuracy")
    reading: dict[str, Any] = {RATIO: None, "dollars_at_best_test_only_accuracy": None}
    if not best:
        return reading
    reaching = [p for p in sleepy if reaches(p["accuracy"]["mean"], best)]
    if not reaching:
        return reading
    cheapest = min(reaching, key=lambda p: dollars[p["rung"]])
    spent = dollars[cheapest["rung"]]
    return {
        RATIO: base[best["rung"]] / spent if spent else None,
        "dollars_at_best_test_only_accuracy": {
            "test_only": base[best["rung"]],
            "with_sleep": spent,
            "sleep_rung": cheapest["rung"],
        },
    }


def with_dollars(
    summary: dict[str, Any], rows: list[Outcome], prices: PriceTable, model: str
) -> dict[str, Any]:
    """The summary with dollars beside every relative cost: per curve point, per comparison
    and at the top, each new field right after the field it stands beside."""
    curves = dollar_curves(rows, prices, model)
    per_rung = {k: {p["rung"]: p["dollars_per_query"] for p in ps} for k, ps in curves.items()}
    comparisons = {}
    for k, c in summary["comparisons"].items():
        reading = at_best_test_only_dollars(
            c, per_rung.get("0", {}), summary["curves"][k], per_rung[k]
        )
        comparisons[k] = _after(c, FULL_RATIO, reading)
    ratios = [c[RATIO] for c in comparisons.values() if c[RATIO] is not None]
    top = {RATIO: max(ratios, default=None)}
    out = _after(summary, FULL_RATIO, top) | {"comparisons": comparisons}
    used = {name: asdict(price) for name, price in sorted(prices.items())}
    return out | {"prices": used, "dollar_curves": curves}


def _after(d: dict[str, Any], key: str, new: dict[str, Any]) -> dict[str, Any]:
    """`d` with `new`'s keys right after `key` (at the end when `key` is absent)."""
    if key not in d:
        return d | new
    out: dict[str, Any] = {}
    for name, value in d.items():
        out[name] = value
        if name == key:
            out |= new
    return out


def dollar_lines(summary: dict[str, Any]) -> list[str]:
    """Dollars per query per point, and the ratio, for `report`'s plain output."""
    if "dollar_curves" not in summary:
        return []
    lines = ["dollars per 1,000 queries (price table; sleep-time work amortized):"]
    for k, points in summary["dollar_curves"].items():
        name = "test-time only" if k == "0" else f"sleep k={k}"
        cells = ", ".join(f"r{p['rung']} ${1000 * p['dollars_per_query']:.4f}" for p in points)
        lines.append(f"   {name}: {cells}")
    ratio = summary.get(RATIO)
    read = "n/a (no sleep-time point reaches it)" if ratio is None else f"{ratio:.2f}x"
    lines.append(f"   dollar cost ratio at the best test-time-only accuracy: {read}")
    return lines
