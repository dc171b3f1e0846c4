"""Costs: the paper cost from policies.Prices, and the per-tenant tokens-saved yardstick."""

from __future__ import annotations

from policies import Prices
from router.proxy.costs import Costs


def test_the_cost_is_the_papers() -> None:
    prices = Prices(test_ratio=7.0)
    assert Costs(prices).paper_cost("enriched", 4) == prices.paper_cost(4) == 28.0


def test_a_cached_answer_costs_nothing_whatever_usage_it_shows() -> None:
    assert Costs(Prices()).paper_cost("cached", 9) == 0.0


def test_tokens_saved_against_the_tenants_full_route_mean() -> None:
    costs = Costs(Prices())
    assert costs.tokens_saved("a", "enriched", 10) is None  # no full answer yet
    costs.saw_completion("a", "full", 100)
    assert costs.tokens_saved("a", "enriched", 10) == 90
    costs.saw_completion("a", "full", 200)  # a running mean, the newest weighing 0.1
    assert costs.tokens_saved("a", "cached", 0) == 110
    assert costs.tokens_saved("a", "full", 10) is None  # the full route saves nothing
    assert costs.tokens_saved("a", "enriched", None) is None  # a stream's count comes later
    assert costs.tokens_saved("a", "enriched", 500) == 0
    assert costs.tokens_saved("b", "enriched", 10) is None  # no figure crosses tenants


def test_only_full_answers_with_tokens_move_the_mean() -> None:
    costs = Costs(Prices())
    costs.saw_completion("a", "enriched", 100)
    costs.saw_completion("a", "full", 0)
    assert costs.tokens_saved("a", "enriched", 1) is None
