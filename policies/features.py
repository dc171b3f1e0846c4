"""The features of a (context artifacts, query) pair: one definition for replay and the proxy.

Training computes them for every (query, sleep budget) of an outcome table
(`training.outcome_features`); the proxy computes them per request from the context's
stored learned context (`router.policy_router`). Both call these functions, so the
estimators and the policy see online exactly what they were fit and tuned on offline.
The embedding of the query is the callers' business (an IO adapter); here the cosine
similarities to the anticipated questions arrive as an array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The context-level names, in the order the estimators read them (router.predictability).
CONTEXT_SIGNALS = (
    "n_anticipated",
    "context_agreement",
    "context_consistency",
    "truncated_passes",
    "context_words",
    "context_numbers",
)


@dataclass(frozen=True)
class Anticipation:
    """What the features read of one anticipated question: how many passes asked it
    (support) and the share of them that gave its voted answer (agreement)."""

    support: int = 1
    agreement: float = 1.0


def context_signals(
    text: str, anticipated: Sequence[Anticipation], truncated_passes: int
) -> dict[str, float | int]:
    """Known once sleep-time work is done, before any query: the context-level features."""
    agreements = [a.agreement for a in anticipated]
    words = text.split()
    return {
        "n_anticipated": len(anticipated),
        "context_agreement": float(np.mean(agreements)) if agreements else 0.0,
        "context_consistency": float(np.mean([a == 1.0 for a in agreements]))
        if agreements
        else 0.0,
        "truncated_passes": int(truncated_passes),
        "context_words": len(words),
        "context_numbers": sum(any(ch.isdigit() for ch in w) for w in words),
    }


def nearest(similarities: np.ndarray) -> int | None:
    """The anticipated question the cached route would answer from; None when none."""
    return int(np.argsort(-similarities)[0]) if len(similarities) else None


def query_signals(
    similarities: np.ndarray, anticipated: Sequence[Anticipation]
) -> dict[str, float | int]:
    """How the query relates to what was anticipated: the nearest question's similarity,
    the runner-up's, and how settled the nearest one's answer is."""
    if not len(similarities):
        return {"similarity": 0.0, "second_similarity": 0.0, "cached_support": 0,
                "cached_agreement": 0.0}  # fmt: skip
    order = np.argsort(-similarities)
    best = anticipated[int(order[0])]
    return {
        "similarity": float(similarities[order[0]]),
        "second_similarity": float(similarities[order[1]]) if len(order) > 1 else 0.0,
        "cached_support": int(best.support),
        "cached_agreement": float(best.agreement),
    }


def query_words(query: str) -> int:
    """QueryFeatures.words: one definition for the tables training reads and the proxy."""
    return len(query.split())
