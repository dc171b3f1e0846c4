"""Outcome tables -> replay table with honest estimator scores.

The policy acts on the estimators' probabilities, so replay must use scores the
estimators could have produced without seeing the query's own context: they are
predicted out of fold (folds by context), never in-sample.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from router.predictability import CONTEXT_FEATURES, QUERY_FEATURES, CalibratedModel, matrix
from training.commands.predictability import labelled_rows, load_features
from training.outcomes import OUTCOMES, Outcome, read_outcomes
from training.replay import ReplayTable, build_table


def load_rows(folders: list[Path]) -> tuple[list[Outcome], list[Any], list[dict[str, Any]]]:
    """(outcomes, features, labelled rows at the lowest rung run on c')."""
    outcomes: list[Outcome] = []
    features = []
    for folder in folders:
        outcomes += read_outcomes(folder / OUTCOMES)
        features += load_features(folder)
    return outcomes, features, labelled_rows(outcomes, features, low_rung(outcomes))


def low_rung(outcomes: list[Outcome]) -> int:
    """The cheapest rung run on c': the "enriched" estimator's label."""
    return min((o.rung for o in outcomes if o.sleep_passes > 0), default=0)


def load_replay_table(folders: list[Path], *, folds: int = 5, seed: int = 0) -> ReplayTable:
    return replay_table(*load_rows(folders), folds=folds, seed=seed)


def replay_table(
    outcomes: list[Outcome],
    features: list[Any],
    rows: list[dict[str, Any]],
    *,
    folds: int = 5,
    seed: int = 0,
) -> ReplayTable:
    """From what `load_rows` read, so a caller that needs the rows too reads them once."""
    cached, enriched, context = out_of_fold_scores(rows, folds=folds, seed=seed)
    return build_table(
        outcomes,
        features,
        cached_confidence=cached,
        enriched_confidence=enriched,
        predictability=context,
    )


def out_of_fold_scores(
    rows: list[dict[str, Any]], *, folds: int, seed: int
) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float], dict[str, float]]:
    contexts = sorted({r["context_id"] for r in rows})
    fold_of = {
        c: i % folds for i, c in enumerate(np.random.default_rng(seed).permutation(contexts))
    }
    cached: dict[tuple[str, int], float] = {}
    enriched: dict[tuple[str, int], float] = {}
    per_context: dict[str, list[float]] = defaultdict(list)
    for fold in range(folds):
        train = [r for r in rows if fold_of[r["context_id"]] != fold]
        held = [r for r in rows if fold_of[r["context_id"]] == fold]
        if not held or not train:
            continue
        scores = {
            name: model.predict_proba(matrix(held, model.features))[:, 1]
            for name, model in fit_estimators(train).items()
        }
        for index, r in enumerate(held):
            cached[(r["query_id"], r["sleep_passes"])] = float(scores["cached"][index])
            enriched[(r["query_id"], r["sleep_passes"])] = float(scores["enriched"][index])
            per_context[r["context_id"]].append(float(scores["context"][index]))
    return cached, enriched, {c: float(np.mean(v)) for c, v in per_context.items()}


# name: (label, features); one recipe for the out-of-fold scores and the served estimators.
RECIPES = {
    "cached": ("cached_correct", QUERY_FEATURES),
    "enriched": ("low_correct", QUERY_FEATURES),
    "context": ("low_correct", CONTEXT_FEATURES),
}


def fit_estimators(rows: list[dict[str, Any]]) -> dict[str, CalibratedModel]:
    """The three estimators of RECIPES, fit on `rows`. `sleeptime train` serves them fit on
    every row beside its policy, so the scores the proxy sees are distributed like the
    out-of-fold scores the policy's thresholds were tuned on."""
    return {
        name: CalibratedModel(features=feats).fit(matrix(rows, feats), [r[label] for r in rows])
        for name, (label, feats) in RECIPES.items()
    }


def split_masks(
    contexts: np.ndarray, shares: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / validation / test context masks."""
    order = np.random.default_rng(seed).permutation(len(contexts))
    cut1 = round(len(contexts) * shares[0])
    cut2 = cut1 + round(len(contexts) * shares[1])
    masks = [np.zeros(len(contexts), dtype=bool) for _ in range(3)]
    for mask, part in zip(masks, (order[:cut1], order[cut1:cut2], order[cut2:]), strict=True):
        mask[part] = True
    return masks[0], masks[1], masks[2]
