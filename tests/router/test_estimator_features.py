"""The one function that computes the estimators' features, for old and voted contexts."""

from __future__ import annotations

import numpy as np

from policies.features import Anticipation
from router.anticipated import Anticipated
from router.estimator_features import request_features, votes
from router.predictability import QUERY_FEATURES, matrix


def test_votes_read_the_worker_and_the_store_alike() -> None:
    voted = [Anticipated("a?", "1", 3, 2 / 3), Anticipated("b?", "2", 1, 1.0)]
    stored = [{"question": a.question, "answer": a.answer, "support": a.support,
               "agreement": a.agreement} for a in voted]  # fmt: skip
    assert votes(voted) == votes(stored) == [Anticipation(3, 2 / 3), Anticipation(1, 1.0)]


def test_answers_stored_before_voting_count_as_one_agreed_pass() -> None:
    assert votes([{"question": "a?", "answer": "1"}]) == [Anticipation(1, 1.0)]


def test_the_nearest_answers_agreement_and_support_are_features() -> None:
    anticipated = [Anticipated("far?", "1", 4, 1.0), Anticipated("near?", "2", 4, 0.5)]
    features = request_features(np.array([0.2, 0.9]), anticipated, "Ducks lay 16 eggs.", 1)
    assert (features["cached_agreement"], features["cached_support"]) == (0.5, 4)
    assert features["similarity"] == 0.9 and features["second_similarity"] == 0.2
    assert features["context_agreement"] == 0.75 and features["context_consistency"] == 0.5
    assert features["truncated_passes"] == 1
    assert matrix([features], QUERY_FEATURES).shape == (1, len(QUERY_FEATURES))


def test_nothing_anticipated_gives_zero_agreement() -> None:
    features = request_features(np.zeros(0), [], "Text.", 0)
    assert features["cached_support"] == 0 and features["cached_agreement"] == 0.0
    assert features["n_anticipated"] == 0
