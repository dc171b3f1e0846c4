"""The cost model: the paper's cost, the full cost with prompt tokens, dollars per model."""

from __future__ import annotations

import numpy as np
import pytest

from policies import ModelPrice, Prices, price_of


def test_the_papers_cost_amortizes_sleep_over_the_contexts_queries() -> None:
    assert Prices().paper_cost(test=30, sleep=200, queries=4) == 10 * 30 + 50


def test_the_full_cost_charges_prompt_tokens_cached_ones_at_a_discount() -> None:
    prices = Prices(test_ratio=10, prompt=0.25, cached_prompt=0.125)
    # 100 prompt tokens, 40 of them cached; 100 sleep prompt tokens over 2 queries
    expected = 10 * (5 + 0.25 * 60 + 0.125 * 40) + 100 / 2 + 0.25 * 100 / 2
    assert prices.full_cost(5, 100, 40, sleep=100, sleep_prompt=100, queries=2) == expected


def test_cost_is_the_full_cost_only_when_prompt_tokens_are_charged() -> None:
    args = (5, 100, 40, 100, 100, 2)
    assert Prices().cost(*args) == Prices().paper_cost(5, 100, 2)
    charged = Prices(charge_prompt=True)
    assert charged.cost(*args) == charged.full_cost(*args)


def test_arrays_and_numbers_alike() -> None:
    tokens = np.array([1.0, 2.0])
    assert np.allclose(Prices().paper_cost(tokens, np.array([10.0, 0.0])), [20.0, 20.0])


def test_dollars_per_model_with_cache_and_sleep_discounts() -> None:
    price = ModelPrice(input=2.0, output=8.0, cached_input=0.5, sleep_discount=0.5)
    assert price.dollars(1_000_000, 1_000_000) == pytest.approx(10.0)
    assert price.dollars(1_000_000, 0, cached=1_000_000) == pytest.approx(0.5)
    assert price.dollars(1_000_000, 1_000_000, sleep=True) == pytest.approx(5.0)
    assert ModelPrice(input=1.0, output=1.0).dollars(0, 0, cached=0) == 0.0


def test_a_model_is_priced_by_its_name_or_longest_prefix() -> None:
    table = {"gpt-4o": ModelPrice(2.5, 10.0), "gpt-4o-mini": ModelPrice(0.15, 0.6)}
    assert price_of(table, "gpt-4o-mini-2024-07-18") == table["gpt-4o-mini"]
    assert price_of(table, "gpt-4o-2024-08-06") == table["gpt-4o"]
    assert price_of(table, "llama") is None


def test_a_price_is_read_from_a_table_and_every_mistake_names_its_key() -> None:
    given = {"input": 1, "output": 4.0, "cached_input": 0.5, "sleep_discount": 0.5}
    assert ModelPrice.from_dict(given) == ModelPrice(1.0, 4.0, 0.5, 0.5)
    assert ModelPrice.from_dict({"input": 1, "output": 2}).cached_input is None
    for bad, says in [
        ({"input": 1}, "both 'input' and 'output'"),
        ({"input": 1, "output": -2}, "'output' must be a number"),
        ({"input": True, "output": 2}, "'input' must be a number"),
        ({"input": "1", "output": 2}, "'input' must be a number"),
        ({"input": 1, "output": 2, "outptu": 3}, "unknown key 'outptu'"),
    ]:
        with pytest.raises(ValueError, match=says):
            ModelPrice.from_dict(bad)
