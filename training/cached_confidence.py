"""Is the cached answer right? The cached-answer estimator scored on held-out contexts.

The estimator reads the nearest anticipated answer's agreement and support among its
request-time features (`router.estimator_features`); where a table has the paper's
log p(q|c) (`sleeptime logprob`), a second estimator adds it, reported beside the first
and never saved (the proxy does not know log p(q|c)). The serving threshold is chosen on
the training contexts' out-of-fold scores and then applied to the held-out ones, so the
held-out wrong share is not the one the threshold was picked on; the held-out curve's
own best threshold is reported too, as the most the estimator could give.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from router.predictability import LOGPROB_FEATURE, QUERY_FEATURES, CalibratedModel, matrix
from training import precision_coverage as pc
from training.commands.logprob import read_logprobs

TARGET = "cached_correct"
FOLDS = 5
Curves = dict[str, list[pc.CoveragePoint]]


def with_logprobs(rows: list[dict[str, Any]], folders: Sequence[Path]) -> list[dict[str, Any]]:
    """Each row with its query's mean per-token log p(q|c), where the table has one."""
    logprobs = {k: v for folder in folders for k, v in read_logprobs(folder).items()}
    return [
        r | {LOGPROB_FEATURE: logprobs[r["query_id"]].mean_logprob}
        if r["query_id"] in logprobs
        else r
        for r in rows
    ]


def variants(rows: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    """The estimators to score: request-time features, and with log p(q|c) where every row
    has it (a table scored in part would leave the estimator a hole to fill)."""
    found = {"cached": QUERY_FEATURES}
    if rows and all(LOGPROB_FEATURE in r for r in rows):
        found["cached_logprob"] = (*QUERY_FEATURES, LOGPROB_FEATURE)
    return found


def fit(rows: list[dict[str, Any]], features: tuple[str, ...], kind: str) -> CalibratedModel:
    model = CalibratedModel(kind=kind, features=features)
    return model.fit(matrix(rows, features), np.array([r[TARGET] for r in rows], dtype=bool))


def out_of_fold(rows: list[dict[str, Any]], features: tuple[str, ...], kind: str) -> np.ndarray:
    """Each training row scored by an estimator fit on the other training contexts."""
    scores = np.full(len(rows), np.nan)
    folds = pc.group_folds([r["context_id"] for r in rows], FOLDS, seed=0)
    for part in folds if len(folds) > 1 else []:
        rest = sorted(set(range(len(rows))) - set(part.tolist()))
        model = fit([rows[i] for i in rest], features, kind)
        scores[part] = model.predict_proba(matrix([rows[i] for i in part], features))[:, 1]
    return scores


def chosen_threshold(
    rows: list[dict[str, Any]],
    features: tuple[str, ...],
    kind: str,
    max_wrong: float,
    min_served: int,
) -> float | None:
    """The threshold the training contexts' out-of-fold scores support, or None."""
    scores = out_of_fold(rows, features, kind)
    scored = ~np.isnan(scores)
    labels = np.array([r[TARGET] for r in rows], dtype=bool)[scored]
    best = pc.best_threshold(pc.coverage_curve(labels, scores[scored]), max_wrong, min_served)
    return best.threshold if best else None


def held_out(
    train_rows: list[dict[str, Any]],
    test_rows: list[dict[str, Any]],
    *,
    kind: str,
    max_wrong: float,
    min_served: int = pc.MIN_SERVED,
    samples: int = 1000,
    fitted: dict[str, CalibratedModel] | None = None,
) -> tuple[dict[str, Any], Curves]:
    """Per estimator variant: its held-out figures (overall and per sleep budget k), and the
    held-out curves to plot. `fitted`: variants already fit on `train_rows`, reused."""
    summary: dict[str, Any] = {}
    curves: Curves = {}
    for name, features in variants(train_rows + test_rows).items():
        model = (fitted or {}).get(name) or fit(train_rows, features, kind)
        scores = model.predict_proba(matrix(test_rows, features))[:, 1]
        scored = Scored(
            np.array([r[TARGET] for r in test_rows], dtype=bool),
            scores,
            np.array([r["context_id"] for r in test_rows]),
            chosen_threshold(train_rows, features, kind, max_wrong, min_served),
        )
        ks = np.array([r["sleep_passes"] for r in test_rows])
        every = np.ones(len(test_rows), dtype=bool)
        pooled = scored.figures(every, max_wrong, min_served, samples)
        budgets = sorted(set(ks.tolist()))
        by_k = {
            int(k): _short(
                pooled
                if len(budgets) == 1
                else scored.figures(ks == k, max_wrong, min_served, samples)
            )
            for k in budgets
        }
        summary[name] = pooled | {"features": list(features), "by_k": by_k}
        curves[name] = pc.coverage_curve(scored.labels, scores)
    return summary, curves


class Scored(NamedTuple):
    """Held-out rows as one estimator scored them, and the threshold chosen in training."""

    labels: np.ndarray
    scores: np.ndarray
    groups: np.ndarray
    chosen: float | None

    def figures(
        self, mask: np.ndarray, max_wrong: float, min_served: int, samples: int
    ) -> dict[str, Any]:
        return pc.cached_figures(
            self.labels[mask], self.scores[mask], self.groups[mask].tolist(),
            max_wrong=max_wrong, min_served=min_served, chosen=self.chosen, samples=samples,
        )  # fmt: skip


def _short(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in ("curve", "max_wrong", "min_served")}


def text(summary: dict[str, Any]) -> str:
    """The printed report's lines for the cached route."""
    return "".join(_variant_text(name, s) for name, s in summary.items())


def _variant_text(name: str, s: dict[str, Any]) -> str:
    low, high = s["auc_interval"]
    label = "with log p(q|c)" if name == "cached_logprob" else "request-time features"
    lines = [
        f"cached route, {label}, held out: AUC {s['auc']:.3f} [{low:.3f}, {high:.3f}] over "
        f"{s['contexts']} contexts, {s['rows']} rows, base rate {s['base_rate']:.3f}",
        f"  threshold from training contexts: {_point(s['chosen'])}",
        f"  best held-out threshold (<= {s['max_wrong']:.0%} wrong, >= {s['min_served']} "
        f"served): {_point(s['best'])}",
    ]
    if len(s["by_k"]) > 1:
        lines += [
            f"  k={k}: AUC {f['auc']:.3f} [{f['auc_interval'][0]:.3f}, "
            f"{f['auc_interval'][1]:.3f}], best {_point(f['best'])}"
            for k, f in s["by_k"].items()
        ]
    return "\n".join(lines) + "\n"


def _point(point: dict[str, Any] | None) -> str:
    if point is None:
        return "none"
    text = (
        f"{point['threshold']:.3f} serves {point['coverage']:.1%} ({point['served']}), "
        f"{point['wrong']:.1%} of them wrong"
    )
    if "coverage_interval" in point:
        (c_low, c_high), (w_low, w_high) = point["coverage_interval"], point["wrong_interval"]
        text += f" (coverage [{c_low:.1%}, {c_high:.1%}], wrong [{w_low:.1%}, {w_high:.1%}])"
    return text
