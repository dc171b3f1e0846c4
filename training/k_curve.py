"""The k curve: what more sleep-time compute buys (the paper's sleep-time scaling).

For a table with several sleep budgets k, each k's accuracy at every learned rung and its
cached-answer correctness (the nearest anticipated answer, `features.csv.gz`), against the
sleep-time tokens a context spent on it. With adaptive stopping (`collect --adaptive`) a
budget is a cap, so a table says it is adaptive when some context spent fewer passes than
its budget, and the curve reads its mean passes spent beside the cap.

Intervals resample contexts, not queries (the queries of one context share its sleep-time
work and its difficulty), with `stats.bootstrap_accuracy`. The gain from k = 1 to the best k
is paired: the same contexts' queries under both budgets, resampled together, so a context
that is hard at every k does not widen the interval of the difference.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from training.outcome_features import FEATURES, QueryFeatureRow, read_features
from training.stats import Columns, bootstrap_accuracy, first_per_context, select

# (query_id, k) -> (context_id, cached answer right)
Cached = dict[tuple[str, int], tuple[str, bool]]


def read_cached(folder: Path) -> Cached:
    """The cached route's outcomes, where the table's features were built (no embedding
    model is run here: `predictability` builds them)."""
    path = folder / FEATURES
    return cached_outcomes(read_features(path)) if path.is_file() else {}


def cached_outcomes(rows: list[QueryFeatureRow]) -> Cached:
    return {(r.query_id, r.sleep_passes): (r.context_id, r.cached_correct) for r in rows}


def k_curve(cols: Columns, cached: Cached, *, samples: int = 1000) -> dict[str, Any] | None:
    """None for a table with fewer than two sleep budgets (nothing to scale)."""
    budgets = sorted(int(k) for k in np.unique(cols["sleep_passes"]) if k > 0)
    if len(budgets) < 2:
        return None
    spent = cols.get("sleep_passes_spent", cols["sleep_passes"])
    adaptive = bool(np.any(spent < cols["sleep_passes"]))
    points = [_point(cols, cached, k, samples) for k in budgets]
    rungs = sorted({int(r) for r in cols["rung"][cols["sleep_passes"] > 0]})
    gains = {f"rung_{r}": _rung_gain(cols, budgets, r, samples) for r in rungs}
    gains["cached"] = _cached_gain(cached, budgets, samples)
    return {"mode": "adaptive" if adaptive else "fixed", "points": points, "gains": gains}


def _point(cols: Columns, cached: Cached, k: int, samples: int) -> dict[str, Any]:
    at_k = select(cols, cols["sleep_passes"] == k)
    per_context = first_per_context(at_k)
    spent = per_context.get("sleep_passes_spent", per_context["sleep_passes"])
    accuracy = {}
    for rung in np.unique(at_k["rung"]):
        part = select(at_k, at_k["rung"] == rung)
        interval = bootstrap_accuracy(part["correct"], part["context_id"], samples=samples)
        accuracy[str(int(rung))] = asdict(interval)
    return {
        "sleep_passes": k,
        "contexts": len(per_context["context_id"]),
        "sleep_tokens": float(per_context["sleep_completion_tokens"].mean()),
        "sleep_prompt_tokens": float(per_context["sleep_prompt_tokens"].mean()),
        "passes_spent": float(np.mean(spent)),
        "accuracy": accuracy,
        "cached_correct": _cached_accuracy(cached, k, samples),
    }


def _cached_accuracy(cached: Cached, k: int, samples: int) -> dict[str, float] | None:
    rows = [value for (_, budget), value in cached.items() if budget == k]
    if not rows:
        return None
    contexts, right = (np.array(column) for column in zip(*rows, strict=True))
    return asdict(bootstrap_accuracy(right, contexts, samples=samples))


def _rung_gain(cols: Columns, budgets: list[int], rung: int, samples: int) -> dict[str, Any]:
    """Accuracy at the best k minus at k = 1 (the smallest budget if 1 is not collected)."""
    on_rung = cols["rung"] == rung
    right = {
        k: _by_query(select(cols, on_rung & (cols["sleep_passes"] == k)), "correct")
        for k in budgets
    }
    return _gain(right, samples)


def _cached_gain(cached: Cached, budgets: list[int], samples: int) -> dict[str, Any] | None:
    right = {k: {q: value for (q, budget), value in cached.items() if budget == k} for k in budgets}
    return _gain(right, samples) if all(right.values()) else None


def _by_query(cols: Columns, column: str) -> dict[str, tuple[str, bool]]:
    return {
        str(q): (str(c), bool(v))
        for q, c, v in zip(cols["query_id"], cols["context_id"], cols[column], strict=True)
    }


def _gain(right: dict[int, dict[str, tuple[str, bool]]], samples: int) -> dict[str, Any]:
    """The best k by accuracy (the smallest on a tie) against the first budget, and the
    largest k against it too: the best k is chosen on the same data, so its gain leans
    high, and the largest k's says whether the last passes helped or hurt."""
    first, largest = min(right), max(right)
    best = max(right, key=lambda k: (_mean(right[k]), -k))
    queries, gain = _paired(right[first], right[best], samples)
    return {
        "from_k": first,
        "best_k": best,
        "queries": queries,
        "gain": gain,
        "largest_k": largest,
        "gain_to_largest_k": _paired(right[first], right[largest], samples)[1],
    }


def _paired(
    before: dict[str, tuple[str, bool]], after: dict[str, tuple[str, bool]], samples: int
) -> tuple[int, dict[str, float] | None]:
    """Accuracy after minus before on the queries both answered, with a 95% interval that
    resamples contexts, both budgets' answers to a context together (None: none shared)."""
    both = sorted(set(before) & set(after))
    if not both:
        return 0, None
    contexts = np.array([before[q][0] for q in both])
    difference = np.array([float(after[q][1]) - float(before[q][1]) for q in both])
    return len(both), asdict(bootstrap_accuracy(difference, contexts, samples=samples))


def _mean(right: dict[str, tuple[str, bool]]) -> float:
    return float(np.mean([v for _, v in right.values()])) if right else float("-inf")


def k_curve_lines(curve: dict[str, Any] | None) -> list[str]:
    """The k curve as text lines for `report`'s plain output."""
    if not curve:
        return []
    lines = [f"k curve ({curve['mode']} sleep budgets):"]
    for p in curve["points"]:
        rungs = ", ".join(
            f"r{rung} {a['mean']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"
            for rung, a in p["accuracy"].items()
        )
        c = p["cached_correct"]
        cached = "n/a" if c is None else f"{c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"
        lines.append(
            f"   k={p['sleep_passes']}: {p['sleep_tokens']:.0f} sleep tokens/context, "
            f"{p['passes_spent']:.2f} passes spent; accuracy {rungs}; cached right {cached}"
        )
    for name, g in curve["gains"].items():
        if g is not None and g["gain"] is not None:
            i, j = g["gain"], g["gain_to_largest_k"] or g["gain"]
            lines.append(
                f"   gain {name} from k={g['from_k']} to the best k={g['best_k']}: "
                f"{_signed(i)}; to k={g['largest_k']}: {_signed(j)} "
                f"(paired over contexts, {g['queries']} queries)"
            )
    return lines


def _signed(i: dict[str, float]) -> str:
    return f"{i['mean']:+.3f} [{i['low']:+.3f}, {i['high']:+.3f}]"
