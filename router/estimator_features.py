"""The features the estimators read, computed by one function for training and serving.

Training's tables (`training.outcome_features`) and the proxy's requests
(`router.policy_router`) both call `request_features`, so the nearest anticipated
answer's agreement (share of sleep passes that gave it) and support (passes that asked
it) the cached-answer estimator was fit on are the ones it is scored on. Apart from
`router.predictability` so that building a table does not import scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from policies.features import Anticipation, context_signals, query_signals


def votes(anticipated: Iterable[Any]) -> list[Anticipation]:
    """Support and agreement of each anticipated answer, from the sleep worker's
    `Anticipated` or the store's dicts of them. Answers stored before voting carry neither:
    one pass, agreed, which is what a one-pass context's vote gives too."""

    def get(item: Any, name: str, default: float) -> Any:
        return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)

    return [
        Anticipation(int(get(a, "support", 1)), float(get(a, "agreement", 1.0)))
        for a in anticipated
    ]


def request_features(
    similarities: np.ndarray,
    anticipated: Iterable[Any],
    context_text: str,
    truncated_passes: int,
) -> dict[str, float | int]:
    """Every feature the estimators read for one query, from the cosine similarities of the
    query to the anticipated questions (in their order) and the context's sleep artifacts.
    Training's tables (`training.outcome_features`) and the proxy's requests
    (`router.policy_router`) both call this, so the nearest answer's agreement and support
    the estimator was fit on are the ones it is scored on."""
    counted = votes(anticipated)
    return query_signals(similarities, counted) | context_signals(
        context_text, counted, truncated_passes
    )
