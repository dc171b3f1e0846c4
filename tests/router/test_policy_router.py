"""The trained policy behind the proxy's routing hook, on real fitted estimators."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from policies import PolicyError, Threshold, save
from policies.builtin import Learned
from router.policy_router import PolicyRouter, answer_formats
from router.predictability import CONTEXT_FEATURES, QUERY_FEATURES, CalibratedModel, matrix
from router.store.base import ContextRecord

WORDS = ["eggs", "money", "market", "breakfast", "trains", "miles"]


def encode(texts: list[str]) -> np.ndarray:
    vectors = np.array([[t.lower().count(w) for w in WORDS] for t in texts], float) + 1e-3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fitted(features: tuple[str, ...]) -> CalibratedModel:
    """Trained on rows where a near-identical anticipated question means a right answer."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "similarity": s,
            "second_similarity": 0.1,
            "cached_support": 1,
            "cached_agreement": 1.0,
            "n_anticipated": 2,
            "context_agreement": 1.0,
            "context_consistency": 1.0,
            "truncated_passes": 0,
            "context_words": 20,
            "context_numbers": 3,
        }
        for s in rng.uniform(0, 1, 200)
    ]
    labels = [r["similarity"] > 0.8 for r in rows]
    return CalibratedModel(features=features).fit(matrix(rows, features), labels)


def context(
    anticipated: list[dict] | None,
    status: str = "done",
    *,
    seen: int = 3,
    expected: float | None = None,
    truncated: int = 0,
) -> ContextRecord:
    return ContextRecord(
        "t",
        "ducks",
        1,
        "Ducks lay 16 eggs. She sells them for $2.",
        "explicit",
        seen,
        status,
        "Notes: ...",
        anticipated,
        100,
        None,
        0.0,
        expected,
        truncated,
    )


ROUTER = PolicyRouter(
    Threshold(cached_threshold=0.9, enriched_threshold=0.0, enriched_rung=0, full_rung=3),
    {
        "cached": fitted(QUERY_FEATURES),
        "enriched": fitted(QUERY_FEATURES),
        "context": fitted(CONTEXT_FEATURES),
    },
    encode,
)
ANTICIPATED = [
    {"question": "How much money at the market?", "answer": "18", "support": 1, "agreement": 1.0},
    {"question": "How many trains?", "answer": "3", "support": 1, "agreement": 1.0},
]


def test_close_query_is_served_the_anticipated_answer() -> None:
    decision = ROUTER.decide("t", context(ANTICIPATED), "How much money at the market?")
    assert decision.route == "cached" and decision.answer == "18"
    assert decision.scores["cached"] > 0.9 and decision.scores["similarity"] > 0.99


def test_the_context_features_carry_the_stored_truncated_passes() -> None:
    """collect's tables carry it, so the estimators were fit on it: serving must too."""
    for truncated in (0, 2):
        features, _ = ROUTER.features(context(ANTICIPATED, truncated=truncated), "How many?")
        assert features["truncated_passes"] == truncated


def test_far_query_goes_to_the_learned_context_at_the_policy_rung() -> None:
    decision = ROUTER.decide("t", context(ANTICIPATED), "How many miles to breakfast?")
    assert decision.route == "enriched" and decision.rung == "answer"
    assert decision.answer is None


def test_nothing_learned_means_full_at_the_policys_rung() -> None:
    """The client left the budget to sleeptime: full still gets the policy's instruction."""
    for unlearned in (None, context(ANTICIPATED, status="queued"), context([])):
        decision = ROUTER.decide("t", unlearned, "q")
        assert (decision.route, decision.rung) == ("full", "steps")


def test_a_context_the_policy_would_not_sleep_on_goes_full() -> None:
    """As in replay: the policy's sleep rule decides whether the learned context is used."""
    picky = PolicyRouter(
        Learned(sleep_min_value=1e9, cached_threshold=0.9, enriched_threshold=0.0),
        ROUTER.models,
        encode,
    )
    decision = picky.decide("t", context(ANTICIPATED), "How much money at the market?")
    assert decision.route == "full" and decision.rung == "steps"
    eager = PolicyRouter(
        Learned(sleep_min_value=0.0, enriched_threshold=0.0), ROUTER.models, encode
    )
    assert eager.decide("t", context(ANTICIPATED), "How many miles?").route == "enriched"


def test_the_sleep_rule_weighs_the_registered_expected_queries() -> None:
    """The first query of a context registered for 20 queries is routed as training saw it:
    by the 20 to come, not by the one sighting so far."""
    score = ROUTER.models["context"].predict_proba(
        matrix([ROUTER.features(context(ANTICIPATED), "q")[0]], CONTEXT_FEATURES)
    )[0, 1]
    policy = Learned(sleep_min_value=score * 10, cached_threshold=2.0, enriched_threshold=0.0)
    router = PolicyRouter(policy, ROUTER.models, encode)
    first = "How many miles?"
    assert router.decide("t", context(ANTICIPATED, seen=1), first).route == "full"
    assert router.decide("t", context(ANTICIPATED, seen=1, expected=20), first).route == "enriched"
    assert router.decide("t", context(ANTICIPATED, seen=12), first).route == "enriched"


def test_the_query_length_reaches_the_policy() -> None:
    policy = Learned(sleep_min_value=0.0, cached_threshold=2.0, enriched_threshold=0.0)
    limited = PolicyRouter(replace(policy, enriched_max_words=4), ROUTER.models, encode)
    assert limited.decide("t", context(ANTICIPATED), "How many miles?").route == "enriched"
    long = "How many miles did the trains run before breakfast?"
    assert limited.decide("t", context(ANTICIPATED), long).route == "full"


def test_a_checked_policy_names_the_check_and_the_fallback_rung() -> None:
    policy = Learned(
        sleep_min_value=0.0, cached_threshold=2.0, enriched_threshold=0.0, check_rung=1
    )
    decision = PolicyRouter(policy, ROUTER.models, encode).decide(
        "t", context(ANTICIPATED), "How many miles?"
    )
    assert (decision.route, decision.rung) == ("enriched", "answer")
    assert (decision.check_rung, decision.fallback_rung) == ("brief", "steps")
    unchecked = ROUTER.decide("t", context(ANTICIPATED), "How many miles?")
    assert unchecked.check_rung is None and not unchecked.checked
    assert unchecked.fallback_rung == "steps"  # where its answer goes when cut at its budget


def test_an_anticipated_check_carries_the_nearest_answer() -> None:
    policy = Learned(
        sleep_min_value=0.0, cached_threshold=2.0, enriched_threshold=0.0, check_anticipated=True
    )
    router = PolicyRouter(policy, ROUTER.models, encode)
    money = router.decide("t", context(ANTICIPATED), "How much money at the market in all?")
    trains = router.decide("t", context(ANTICIPATED), "How many trains ran?")
    assert (money.check_answer, trains.check_answer) == ("18", "3")
    assert money.checked and money.check_rung is None and money.fallback_rung == "steps"


def test_the_formats_a_policy_routes_come_from_its_file(tmp_path: Path) -> None:
    """A policy file that names none was trained on GSM8K's numbers."""
    path = save(Threshold(), tmp_path / "p.json")
    assert answer_formats(path) == frozenset({"number"}) == ROUTER.formats
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "answer_formats": ["span", "number"]})
    )
    assert answer_formats(path) == frozenset({"span", "number"})
    path.write_text(json.dumps({**json.loads(path.read_text()), "answer_formats": "span"}))
    with pytest.raises(PolicyError, match="answer_formats"):
        answer_formats(path)
