"""One contract every policy passes, plus each built-in's own behaviour."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import policies
from policies import (
    REGISTRY,
    AlwaysSleep,
    ContextFeatures,
    Learned,
    Policy,
    PolicyError,
    QueryDecision,
    QueryFeatures,
    TestTimeOnly,
    Threshold,
    from_dict,
    load,
    save,
)

EXAMPLES: list[Policy] = [
    TestTimeOnly(rung=2),
    AlwaysSleep(passes=3, rung=1),
    Threshold(passes=2, cached_threshold=0.8, enriched_threshold=0.4),
    Learned(sleep_min_value=1.5, passes_high=5, enriched_threshold_slope=0.3),
]
GRID = [
    (ContextFeatures(p, n), QueryFeatures(s, c, e, has))
    for p in (0.0, 0.5, 1.0)
    for n in (1.0, 10.0)
    for s, c, e in ((0.1, 0.1, 0.1), (0.9, 0.95, 0.9), (0.5, 0.5, 0.6))
    for has in (True, False)
]


@pytest.fixture(params=EXAMPLES, ids=lambda p: p.name)
def policy(request: pytest.FixtureRequest) -> Policy:
    return request.param


class TestPolicyContract:
    def test_registered_by_name(self, policy: Policy) -> None:
        assert REGISTRY[policy.name] is type(policy)

    def test_round_trips_through_json(self, policy: Policy, tmp_path: Path) -> None:
        path = save(policy, tmp_path / "policy.json")
        assert load(path) == policy
        assert from_dict(json.loads(path.read_text())) == policy

    def test_is_frozen_and_params_are_its_fields(self, policy: Policy) -> None:
        with pytest.raises(AttributeError):
            policy.rung = 9  # type: ignore[misc]
        assert type(policy)(**policy.params()) == policy

    def test_decisions_are_valid(self, policy: Policy) -> None:
        for context, query in GRID:
            assert policy.sleep(context).passes >= 0
            decision = policy.route(context, query)
            assert decision.route in policies.ROUTES
            assert decision.rung >= 0
            if not query.has_learned_context:
                assert decision.route == "full"


def test_unknown_name_or_parameter_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="unknown policy"):
        from_dict({"name": "magic", "params": {}})
    with pytest.raises(PolicyError, match="rungg"):
        from_dict({"name": "test-time-only", "params": {"rungg": 1}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PolicyError, match="not JSON"):
        load(bad)


def test_threshold_prefers_cache_then_enriched_then_full() -> None:
    policy = Threshold(cached_threshold=0.9, enriched_threshold=0.5, enriched_rung=1, full_rung=4)
    ctx = ContextFeatures()
    assert policy.route(ctx, QueryFeatures(0.9, 0.95, 0.9, True)).route == "cached"
    assert policy.route(ctx, QueryFeatures(0.5, 0.5, 0.6, True)) == policies.QueryDecision(
        "enriched", 1
    )
    assert policy.route(ctx, QueryFeatures(0.1, 0.1, 0.1, True)) == policies.QueryDecision(
        "full", 4
    )


def test_learned_sleeps_only_where_it_pays_and_scales_k() -> None:
    policy = Learned(sleep_min_value=1.0, passes_low=1, passes_high=4, passes_split=0.8)
    assert policy.sleep(ContextFeatures(0.5, 1.0)).passes == 0  # 0.5 expected served queries
    assert policy.sleep(ContextFeatures(0.5, 4.0)).passes == 1
    assert policy.sleep(ContextFeatures(0.9, 4.0)).passes == 4


def test_learned_sends_long_queries_to_full_reasoning() -> None:
    policy = Learned(enriched_threshold=0.0, enriched_max_words=10, enriched_rung=1, full_rung=3)
    context = ContextFeatures(0.5, 4.0)
    short = QueryFeatures(enriched_confidence=0.2, has_learned_context=True, words=6)
    long = QueryFeatures(enriched_confidence=0.2, has_learned_context=True, words=18)
    assert policy.route(context, short) == QueryDecision("enriched", 1)
    assert policy.route(context, long) == QueryDecision("full", 3)
    assert Learned(enriched_threshold=0.0).route(context, long).route == "enriched"  # no limit


def test_learned_can_check_its_cheap_answer_and_names_the_fallback() -> None:
    policy = Learned(enriched_threshold=0.0, enriched_rung=0, full_rung=4, check_rung=1)
    query = QueryFeatures(enriched_confidence=0.2, has_learned_context=True)
    assert policy.route(ContextFeatures(), query) == QueryDecision("enriched", 0, 1, 4)
    unlearned = QueryFeatures(has_learned_context=False)
    assert policy.route(ContextFeatures(), unlearned) == QueryDecision("full", 4)  # no check
    same = Learned(**{**policy.params(), "check_rung": 0})  # the served answer's own rung
    assert same.route(ContextFeatures(), query) == QueryDecision("enriched", 0)
    both = Learned(**{**same.params(), "check_anticipated": True})
    assert both.route(ContextFeatures(), query) == QueryDecision("enriched", 0, None, 4, True)


def test_policies_package_imports_nothing_of_ours_or_any_sdk() -> None:
    allowed = {
        "__future__",
        "abc",
        "collections",
        "itertools",
        "dataclasses",
        "json",
        "math",
        "pathlib",
        "typing",
        "numpy",
        "policies",
    }
    for path in Path(policies.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_a_policy_file_names_the_answer_formats_it_was_trained_on(tmp_path) -> None:
    path = save(Learned(), tmp_path / "policy.json", ["span", "number", "span"])
    assert json.loads(path.read_text())["answer_formats"] == ["number", "span"]
    assert load(path) == Learned()
    assert "answer_formats" not in json.loads(save(Learned(), tmp_path / "p.json").read_text())
